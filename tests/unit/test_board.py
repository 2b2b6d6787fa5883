"""The time-to-quality board's own arithmetic (benchmarks/board.py): one table row a run, one
column a budget, the right cell for each; a curve drawn per run; a run folder without a
checkpoint is not taken for a run to continue. (Its training and evaluation are mnistgan's
commands, tested where they live.)"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BOARD = Path(__file__).resolve().parents[2] / "benchmarks" / "board.py"


@pytest.fixture(scope="module")
def board():
    sys.path.insert(0, str(BOARD.parent))
    try:
        spec = importlib.util.spec_from_file_location("board", BOARD)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BOARD.parent))


def row(run, seconds, fid, recall, dataset="mnist", machine="machine: CPU X (avx2, avx512f), 2 CPUs; torch"):
    return {"dataset": dataset, "run": run, "seconds": seconds, "fid": fid, "recall": recall, "precision": 0.7,
            "machine": machine, "date": "2026-12-07", "images": 1000, "epochs": 0.1}


def test_table_puts_each_figure_in_its_runs_row_and_its_budgets_column(board):
    rows = [row("best", 150, 30.0, 0.62), row("best", 300, 12.9, 0.77), row("best lr=5e-4", 150, 15.1, 0.73),
            row("r3gan", 300, 1, 0.5, dataset="stacked-mnist")]
    lines = board.table(rows, "mnist").splitlines()
    assert lines[0] == "| run | machine, date | 150 s: fid / recall | 300 s: fid / recall |"
    assert lines[2] == "| `best` | CPU X (avx2, avx512f), 2026-12-07 | 30.00 / 0.620 | 12.90 / 0.770 |"
    assert lines[3] == "| `best lr=5e-4` | CPU X (avx2, avx512f), 2026-12-07 | 15.10 / 0.730 |  |"
    assert len(lines) == 4  # the other dataset's row stays out
    modes = board.table([{**row("r3gan", 300, 0, 0, dataset="stacked-mnist"), "modes": 964, "kl": 0.714}],
                        "stacked-mnist").splitlines()
    assert modes[0].endswith("300 s: modes / kl |") and modes[2].endswith("| 964 / 0.714 |")


def test_a_cell_carries_parzen_and_the_worst_digit_when_the_row_has_them(board):
    rows = [{**row("best aux_weight=1", 600, 6.34, 0.789), "parzen": 197.2, "digit_worst": 0.99, "digit_worst_k": 2},
            row("best", 600, 6.01, 0.814)]
    lines = board.table(rows, "mnist").splitlines()
    assert lines[2].endswith("| 6.34 / 0.789; Parzen 197; worst `--digit k` 0.990 |")
    assert lines[3].endswith("| 6.01 / 0.814 |")
    assert board.line(rows[0]).endswith("parzen 197.2  worst --digit k 0.990 (k=2)")


def test_two_sittings_runs_of_one_candidate_are_two_curves_and_a_continued_run_joins_its_own(board):
    earlier = {**row("best", 300, 11.39, 0.70), "date": "2026-12-07"}  # a row from before "curve" was kept
    today = {**row("best", 300, 11.90, 0.68), "date": "2026-12-07", "curve": "2026-12-07T23:00:00"}
    joins = board.continued([earlier, today], "best", "mnist", today["machine"])
    assert joins == {"curve": "2026-12-07T23:00:00", "date": "2026-12-07"}
    later = {**row("best", 600, 9.76, 0.71), **joins}  # measured after midnight, in the same curve
    lines = board.table([earlier, today, later], "mnist").splitlines()
    assert lines[2].endswith("| 11.39 / 0.700 |  |") and lines[3].endswith("| 11.90 / 0.680 | 9.76 / 0.710 |")
    assert len(lines) == 4
    assert board.continued([earlier], "best lr=5e-4", "mnist", today["machine"]) == {}


def test_plot_draws_the_curves(board, tmp_path):
    out = tmp_path / "docs" / "board.png"
    board.plot([row("best", 150, 30.0, 0.62), row("best", 300, 12.9, 0.77)], "mnist", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_a_checkpoint_is_not_a_run_to_continue(board, tmp_path):
    assert board.trained_seconds(tmp_path / "absent") is None
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert board.trained_seconds(tmp_path / "run") is None


def test_each_row_names_the_precision_its_run_trained_in(board, tmp_path):
    import json

    import torch

    from mnistgan.system import runtime

    native = runtime.native_bf16(torch.device("cpu"))
    for precision, model, expected in [("fp32", "dcgan", "fp32"), ("bf16", "mlp", "bf16"), ("auto", "mlp", "fp32"),
                                       ("auto", "resnet", "bf16" if native else "fp32")]:
        (tmp_path / "config.json").write_text(json.dumps({"precision": precision, "model": model}))
        assert board.precision_of(tmp_path) == expected, (precision, model)


def test_a_legend_names_each_curves_machine_kind_so_one_candidate_on_two_kinds_stays_two(board):
    amd = "machine: AMD EPYC (avx2, avx512f, avx512_bf16), 2 CPUs; torch 2.13.0+cpu"
    xeon = "machine: Intel(R) Xeon(R) Processor (avx2, avx512f), 2 CPUs; torch 2.13.0+cpu"
    assert board.kind_of(amd) == "AMD EPYC avx512_bf16"
    assert board.kind_of(xeon) == "Intel Xeon avx512f"
    assert board.kind_of("machine: Some CPU, 2 CPUs; torch") == "Some"


def test_each_measured_row_is_written_at_once_whole(board, tmp_path):
    """A stop during a later budget loses none of the earlier ones: each row is kept as soon as
    it is measured, and the file is replaced whole (never left half-written)."""
    results = tmp_path / "screens" / "board.json"
    rows = [row("best", 150, 30.0, 0.62)]
    board.save(rows, row("best", 300, 12.9, 0.77), results)
    kept = json.loads(results.read_text())
    assert [r["seconds"] for r in kept] == [150, 300] and rows == kept
    assert not results.with_suffix(".part").exists()


def test_a_kept_run_trained_with_a_presets_old_values_is_told_apart(board, tmp_path):
    """A kept run is continued only while its candidate still means the same values: a preset
    changed since (here `best`'s beta1) must not add the old setting's figures to its curve."""
    from mnistgan.config import from_preset

    run = tmp_path / "best-fashion-mnist"
    run.mkdir()
    then = from_preset("best", {"beta1": 0.5, "dataset": "fashion-mnist", "out": str(run), "epochs": 1000,
                                "max_seconds": 600.0, "train_images": 60000})
    (run / "config.json").write_text(json.dumps(then.to_dict()))
    assert board.changed_values(run, "best") == {"beta1": (0.5, 0.0)}
    assert board.changed_values(run, "best beta1=0.5") == {}
    assert board.changed_values(run, "best beta1=0.5 batch_size=7") == {"batch_size": (then.batch_size, 7)}
