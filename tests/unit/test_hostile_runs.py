"""A run folder someone sent you (a zip, a shared disk) must never destroy your files: every
write into a run refuses links and non-regular files, checkpoints are read like every other
run file (regular, inside the run, sized from their header before their tensors, their
networks sized before anything is allocated), and a resume refuses other data; metrics,
numbers, pages and limits that a crafted run could break. Each hostile case here failed (or,
reading a 16 GiB sparse checkpoint whole, ran out of time) on the code before these rules;
the three healthy controls (a resume that writes everything, the same data moved, eps=inf)
pass on both."""
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from mnistgan.store import checkpoint as ckpt
from mnistgan.config import from_preset
from mnistgan.errors import CheckpointError, ConfigError, MnistganError, RunError

from helpers.datasets import make_dataset

THESIS = b"\\documentclass{article} my thesis, five years of work\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished run (seed preset, 2 epochs of 500 synthetic images) and its data."""
    from mnistgan.runs import train

    root = tmp_path_factory.mktemp("hostile")
    data = make_dataset(root / "data", n_train=500, n_test=100)
    config = from_preset("seed", {"train_images": 500, "batch_size": 100, "epochs": 2, "progress": False,
                                  "out": str(root / "run"), "device": "cpu", "dataset": f"idx:{data}",
                                  "keep_checkpoints": 2})
    train(config)
    return root / "run", data


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run, its config pointing at itself."""
    copy = tmp_path / "run"
    shutil.copytree(trained[0], copy)
    return copy


@pytest.fixture
def thesis(tmp_path):
    path = tmp_path / "thesis.tex"
    path.write_bytes(THESIS)
    return path


def resume(run: Path, **overrides):
    from mnistgan.runs import resume as resume_

    return resume_(run, {"epochs": 3, "progress": False, **overrides})


# --------------------------------------------------------------------------- writes
def test_a_linked_lock_is_not_an_empty_folder_and_is_never_written(tmp_path, thesis, trained):
    from mnistgan.runs import train

    out = tmp_path / "sent"
    out.mkdir()
    (out / ".lock").symlink_to(thesis)
    config = from_preset("seed", {"train_images": 500, "epochs": 1, "progress": False, "out": str(out),
                                  "device": "cpu", "dataset": f"idx:{trained[1]}"})
    with pytest.raises(ConfigError, match="already holds files"):
        train(config)
    assert thesis.read_bytes() == THESIS


def test_resume_and_evaluate_refuse_a_linked_lock(run, thesis):
    from mnistgan.evaluation import run as evaluate_run

    (run / ".lock").unlink()
    (run / ".lock").symlink_to(thesis)
    with pytest.raises(RunError, match=r"\.lock is a link"):
        resume(run)
    with pytest.raises(RunError, match=r"\.lock is a link"):
        evaluate_run(str(run), n=100, metrics=["fid"])
    assert thesis.read_bytes() == THESIS
    fifo = run / ".lock"
    fifo.unlink()
    os.mkfifo(fifo)
    with pytest.raises(RunError, match=r"\.lock is a FIFO"):
        resume(run)


@pytest.mark.parametrize("name", ["resumes.jsonl", "log.jsonl", "config.json", "losses.png", "progress.gif",
                                  "real_vs_fake.png", "metrics.json"])
def test_resume_refuses_a_run_file_that_is_a_link(run, thesis, name):
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(thesis)
    with pytest.raises(RunError, match=f"{name} is a link"):
        resume(run)
    assert thesis.read_bytes() == THESIS


def test_a_linked_grid_or_strip_is_refused_not_written_through(run, thesis):
    from mnistgan.store import rundir

    (run / "samples" / "grid-003.png").symlink_to(thesis)
    with pytest.raises(RunError, match="grid-003.png is a link"):
        resume(run)
    assert thesis.read_bytes() == THESIS
    # ... and the one writer refuses it whoever calls it
    with pytest.raises(RunError, match="is a link"):
        with rundir.writing(run, "samples/grid-003.png") as f:
            f.write(b"x")
    assert thesis.read_bytes() == THESIS


def test_linked_checkpoints_folder_is_refused_and_the_other_run_keeps_its_checkpoints(run, trained, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained[0], other)
    before = sorted(p.name for p in (other / "checkpoints").iterdir())
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(other / "checkpoints")
    with pytest.raises(RunError, match="checkpoints is a link"):
        resume(run)
    assert sorted(p.name for p in (other / "checkpoints").iterdir()) == before
    # pruning through the run never deletes outside it
    with pytest.raises(RunError, match="checkpoints is a link"):
        ckpt.prune(run / "checkpoints", 1, root=run)
    assert sorted(p.name for p in (other / "checkpoints").iterdir()) == before


def test_linked_samples_folder_is_refused(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(run / "samples")
    (run / "samples").symlink_to(elsewhere)
    with pytest.raises(RunError, match="samples is a link"):
        resume(run)
    assert list(elsewhere.iterdir()) == []


def test_a_healthy_resume_still_writes_everything(run):
    resume(run)
    assert (run / "samples" / "grid-003.png").is_file() and (run / "progress.gif").is_file()
    assert len(ckpt.list_checkpoints(run / "checkpoints")) == 2


def test_unstarted_removal_removes_a_link_not_what_it_leads_to(tmp_path, thesis):
    from mnistgan.store import rundir

    out = tmp_path / "new"
    lock = rundir.make(out)
    (out / "thesis-link").symlink_to(thesis)
    (out / "dir-link").symlink_to(tmp_path)
    rundir.remove_unstarted(out, lock)
    assert thesis.read_bytes() == THESIS and not out.exists()


# ---------------------------------------------------------------------- checkpoints
def _newest(run: Path) -> Path:
    return ckpt.list_checkpoints(run / "checkpoints")[-1]


def _with_config(path: Path, out: Path, **changes) -> Path:
    """The checkpoint at path, written to out with its config changed (a crafted file)."""
    tensors, meta = ckpt.load(path)
    meta["config"] = {**meta["config"], **changes}
    return ckpt.save(out, tensors, meta)


def test_a_fifo_as_newest_checkpoint_is_skipped_without_blocking(run):
    from mnistgan.generation import load_networks

    healthy = _newest(run)
    os.mkfifo(run / "checkpoints" / ckpt.filename(10**11))
    done = []
    worker = threading.Thread(target=lambda: done.append(load_networks(run).path), daemon=True)
    worker.start()
    worker.join(20)
    assert done == [healthy]


def test_a_sparse_checkpoint_is_refused_from_its_header_in_little_memory(run, tmp_path):
    """A valid header with a 16 GiB sparse tail: refused before any tensor byte is read; the
    reading process's peak memory (VmHWM) stays far below the file's size."""
    sparse = run / "checkpoints" / ckpt.filename(10**11)
    shutil.copyfile(_newest(run), sparse)
    with open(sparse, "r+b") as f:
        f.truncate(16 << 30)
    with pytest.raises(CheckpointError, match="declares .* the file holds 17,179,869,184"):
        ckpt.load(sparse)
    script = ("import sys; from mnistgan.generation import load_networks; n = load_networks(sys.argv[1]); "
              "print(n.path.name); print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].strip())")
    out = subprocess.run([sys.executable, "-c", script, str(run)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, hwm = out.stdout.splitlines()
    assert name == ckpt.list_checkpoints(run / "checkpoints")[-2].name  # the one before it
    assert int(hwm.split()[1]) < 1 << 20  # kB: under 1 GiB


def test_a_config_asking_for_32_gb_is_refused_before_anything_is_allocated(run, tmp_path):
    crafted = _with_config(_newest(run), tmp_path / "big.safetensors", hidden=16384, layers=16)
    from mnistgan import models

    with pytest.raises(CheckpointError, match="8,081,392,401 parameters"):
        ckpt.load(crafted, models.layout)
    script = ("import sys; from mnistgan.generation import load_networks\n"
              "try: load_networks(sys.argv[1])\nexcept Exception as e: print(type(e).__name__, e)\n"
              "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].strip())")
    out = subprocess.run([sys.executable, "-c", script, str(crafted)], capture_output=True, text=True, timeout=120)
    assert "CheckpointError" in out.stdout and "parameters" in out.stdout, out.stdout + out.stderr
    assert int(out.stdout.splitlines()[-1].split()[1]) < 1 << 20
    # the same settings on the command line fail before any work too
    with pytest.raises(ConfigError, match="parameters"):
        models.build(from_preset("r3gan", {"width": 1024, "z_dim": 4096}))


@pytest.mark.parametrize("damage", [{"channels": 3}, "list"])
def test_a_newest_checkpoint_with_a_damaged_config_is_skipped_by_every_reader(run, tmp_path, damage):
    import mnistgan
    from mnistgan.export import export
    from mnistgan.generation import load_networks

    older = _newest(run)
    newest = run / "checkpoints" / ckpt.filename(10**11)
    if damage == "list":
        tensors, meta = ckpt.load(older)
        meta["config"] = ["seed"]
        ckpt.save(newest, tensors, meta)
    else:
        _with_config(older, newest, **damage)
    assert load_networks(run).path == older
    assert mnistgan.load(run).sample(2, seed=0).shape[0] == 2
    _, card = export(run, tmp_path / "g.pt", "torchscript")
    assert older.name in card.read_text()


def test_resume_refuses_other_data_naming_both(run, trained, tmp_path):
    other = make_dataset(tmp_path / "other-data", n_train=500, n_test=100, seed=7)  # same counts and classes
    with pytest.raises(ConfigError, match=r"is not the data this run trained on: the run's data is idx-[0-9a-f]{16}, "
                                          r"this is idx-[0-9a-f]{16}"):
        resume(run, dataset=f"idx:{other}")


def test_resume_refuses_a_registered_dataset_in_place_of_its_own(run, fake_mnist):
    with pytest.raises(ConfigError, match=r"mnist is not the data this run trained on: the run's data is idx-[0-9a-f]{16}, "
                                          r"this is mnist"):
        resume(run, dataset="mnist", data_dir=str(fake_mnist))


def test_a_run_from_before_the_datas_identity_refuses_another_dataset(run, tmp_path):
    newest = _newest(run)
    _with_config(newest, newest, data_key=None)
    with pytest.raises(ConfigError, match="cannot change dataset"):
        resume(run, dataset=f"idx:{make_dataset(tmp_path / 'd2', n_train=500, n_test=100, seed=3)}")


def test_resume_on_the_same_data_elsewhere_goes_on(run, trained, tmp_path):
    moved = tmp_path / "moved-data"
    shutil.copytree(trained[1], moved)
    resume(run, dataset=f"idx:{moved}")
    assert ckpt.read_header(_newest(run))["images_seen"] == 1500


# --------------------------------------------------------------------------- metrics
def _context(test: int, train: int = 100, per_channel: int = 1, colour: bool = False):
    from types import SimpleNamespace

    return SimpleNamespace(dataset="folder-abc", test=(np.zeros((test, 28, 28), np.uint8), np.zeros(test)),
                           train=(np.zeros((train, 28, 28), np.uint8), np.zeros(train)),
                           net=SimpleNamespace(per_channel=per_channel), colour=colour)


@pytest.mark.parametrize("name, message", [
    ("prdc", "metric prdc needs at least 6 real test images; folder-abc has 5 test"),
    ("modes", "metric modes applies to stacked-mnist .* only; folder-abc is not"),
])
def test_every_metric_says_what_it_needs_in_one_line(name, message):
    from mnistgan.metrics import check_needs

    with pytest.raises(MnistganError, match=message):
        check_needs(name, _context(5))
    for fine in ("fid", "kid", "coverage"):
        check_needs(fine, _context(5))
    with pytest.raises(MnistganError, match="needs at least 2 real test images"):
        check_needs("kid", _context(1))


def test_non_finite_results_never_reach_metrics_json(tmp_path):
    import json

    from mnistgan.metrics import finite

    clean = finite({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf"), "e": 2}})
    assert clean == {"a": None, "b": [1.0, None], "c": {"d": None, "e": 2}}
    json.dumps(clean, allow_nan=False)


@pytest.mark.parametrize("name", ["/dev/zero", "../../../../etc/passwd", "mnist/../mnist", None, ["mnist"], ""])
def test_calibration_is_found_by_a_known_name_only(name, tmp_path):
    from mnistgan.metrics import calibration

    assert calibration(name) == {}
    assert calibration("mnist")["references"]
    planted = tmp_path / "evil-calibration.json"  # a metrics.json naming tmp_path/evil as its dataset
    planted.write_text('{"references": {"planted": {}}}')
    assert calibration(str(tmp_path / "evil")) == {}


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("sets, message", [
    (["epochs=1e999"], "epochs must be an integer, got '1e999'"),
    (["epochs=٣"], "epochs must be an integer, got '٣'"),
    (["threads=²"], "threads must be auto or a thread count from 1 to 1024, got '²'"),
    (["lr=٣"], "lr must be a float, got '٣'"),
    (["eps=inf"], "eps must be a finite number, got inf"),
])
def test_every_number_on_the_command_line_is_read_by_one_parser(sets, message, capsys, tmp_path):
    from mnistgan.cli import main

    args = ["train", "--out", str(tmp_path / "r")] + [a for s in sets for a in ("--set", s)]
    assert main(args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mnistgan: error: {message}"]


def test_a_number_in_the_environment_is_read_by_the_same_parser(monkeypatch):
    from mnistgan.data import folder as imagefolder

    monkeypatch.setenv("MNISTGAN_WORKERS", "²")
    with pytest.raises(ConfigError, match="MNISTGAN_WORKERS must be an integer, got '²'"):
        imagefolder._workers()
    monkeypatch.setenv("MNISTGAN_WORKERS", "100000")
    with pytest.raises(ConfigError, match="MNISTGAN_WORKERS must be at most"):
        imagefolder._workers()
    monkeypatch.setenv("MNISTGAN_WORKERS", "1")
    assert imagefolder._workers() == 1


def test_a_number_in_a_saved_config_is_read_by_the_same_parser(run):
    import json

    from mnistgan.config import TrainConfig

    values = json.loads((run / "config.json").read_text())
    for bad in ({"epochs": "1e999"}, {"hidden": 10**400}, {"threads": "²"}, {"lr": "Infinity"}):
        with pytest.raises(ConfigError):
            TrainConfig.from_dict({**values, **bad})


def test_the_api_takes_a_thread_count_and_a_path(tmp_path):
    import mnistgan

    config = mnistgan.configure("seed", threads=2, out=tmp_path / "r")
    assert config.threads == "2" and config.out == str(tmp_path / "r")


@pytest.mark.parametrize("command", ["sample", "evaluate"])  # (export writes CPU files: it has no --device)
def test_a_bad_device_is_one_line_in_every_command(command, run, tmp_path, capsys):
    from mnistgan.cli import main

    args = {"sample": ["sample", str(run), "--out", str(tmp_path / "x.npy"), "--n", "4"],
            "evaluate": ["evaluate", str(run), "--n", "100", "--metrics", "fid", "--out", str(tmp_path / "m.json")]}[command]
    assert main(args + ["--device", "cpux"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "mnistgan: error: device must be auto, cpu, cuda, cuda:N or mps, got 'cpux'"


# ------------------------------------------------------------------------ smaller
@pytest.mark.parametrize("v2, limits, want", [
    (True, {"": "max 100000", "docker/abc": "150000 100000"}, 2),
    (True, {"": "50000 100000", "docker/abc": "max 100000"}, 1),
    (True, {"": "max 100000", "docker/abc": "max 100000"}, None),
    (False, {"docker/abc": ("300000", "100000")}, 3),
    (False, {"docker/abc": ("-1", "100000")}, None),
])
def test_the_thread_policy_reads_a_cgroup_cpu_quota(tmp_path, v2, limits, want):
    from mnistgan.system.threads import cpu_quota

    root = tmp_path / "cgroup"
    for group, value in limits.items():
        folder = (root if v2 else root / "cpu") / group
        folder.mkdir(parents=True, exist_ok=True)
        if v2:
            (folder / "cpu.max").write_text(value + "\n")
        else:
            (folder / "cpu.cfs_quota_us").write_text(value[0] + "\n")
            (folder / "cpu.cfs_period_us").write_text(value[1] + "\n")
    own = tmp_path / "self-cgroup"
    own.write_text("0::/docker/abc\n" if v2 else "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert cpu_quota(root, own) == want


def test_progress_pictures_take_grids_in_epoch_order_past_999(tmp_path):
    from mnistgan import images
    from mnistgan.store import rundir

    (tmp_path / "samples").mkdir()
    for e in (1, 101, 999, 1000):
        images.save_grid(tmp_path / "samples" / f"grid-{e:03d}.png", np.full((4, 1, 28, 28), e % 256, np.uint8), nrow=2)
    assert [e for e, _ in rundir.grids(tmp_path)] == [1, 101, 999, 1000]


def test_an_interpolation_is_bounded_before_any_work(run, tmp_path, capsys):
    from mnistgan.cli import main

    assert main(["sample", str(run), "--interpolate", "--n", "5000000", "--out", str(tmp_path / "w.npy")]) != 0
    assert "--n must be 2..1,000 steps for an interpolation, got 5,000,000" in capsys.readouterr().err


def test_a_folder_image_linked_to_an_endless_file_is_hashed_by_its_declared_size(tmp_path):
    from mnistgan.data.folder import _file_digest

    link = tmp_path / "zz.png"
    link.symlink_to("/proc/self/pagemap")
    import hashlib

    assert _file_digest(link) == hashlib.sha256(b"").digest()  # st_size 0: read no further
    os.mkfifo(tmp_path / "fifo.png")
    assert _file_digest(tmp_path / "fifo.png") == hashlib.sha256(b"not a regular file").digest()


def test_export_reads_a_crafted_metrics_file_without_failing(run, tmp_path):
    from mnistgan.export import export

    for crafted in ('{"metrics": [1, 2]}', '{"metrics": {"fid": 3}}', "[" * 100000 + "]" * 100000, '"text"'):
        (run / "metrics.json").write_text(crafted)
        out, card = export(run, tmp_path / "g.pt", "torchscript", force=True)
        assert "Not measured yet" in card.read_text()


# ----------------------------------------------------------------------------- serve
@pytest.fixture
def served(trained, tmp_path):
    """`serve` over a folder holding a copy of the trained run ("healthy"): (root, base URL)."""
    pytest.importorskip("fastapi")
    from mnistgan.web.app import serve_in_thread

    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(trained[0], root / "healthy")
    base, stop = serve_in_thread(root)
    yield root, base
    stop()


def fetch(base: str, path: str, headers: dict | None = None, timeout: float = 20.0) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_serve_keeps_forging_for_a_healthy_run_beside_a_fifo_and_a_sparse_checkpoint(served, trained):
    root, base = served
    for name in ("fifo", "sparse"):
        shutil.copytree(trained[0], root / name)
        for old in ckpt.list_checkpoints(root / name / "checkpoints"):
            old.unlink()
        newest = root / name / "checkpoints" / ckpt.filename(10**11)
        if name == "fifo":
            os.mkfifo(newest)
        else:
            shutil.copyfile(_newest(trained[0]), newest)
            with open(newest, "r+b") as f:
                f.truncate(16 << 30)
    for name in ("fifo", "sparse"):
        status, body = fetch(base, f"/api/runs/{name}/forge?n=4")
        assert status == 409 and b"no checkpoint of this run can be loaded" in body, body
    status, body = fetch(base, "/api/runs/healthy/forge?n=4")
    assert status == 200 and body.startswith(b"\x89PNG")
    assert fetch(base, "/")[0] == 200


def test_crafted_log_and_metrics_never_break_the_pages(served):
    root, base = served
    run = root / "healthy"
    deep = "[" * 100000 + "]" * 100000
    with open(run / "log.jsonl", "a") as f:
        f.write(deep + "\n" + '{"images_seen": ' + deep + "}\n" + "{}" * 10 + "\n")
    (run / "metrics.json").write_text('{"feature_network": null, "dataset": "/dev/zero", "metrics": {"fid": {"fid": 3.5}}}')
    for path in ("/", "/runs/healthy", "/runs/healthy/fragment"):
        status, body = fetch(base, path)
        assert status == 200, (path, body[:300])
    assert b"3.5" in fetch(base, "/runs/healthy")[1]
    from mnistgan.web.story import report

    assert "3.5" in report(run)
    (run / "metrics.json").write_text(deep)
    assert fetch(base, "/runs/healthy")[0] == 200 and fetch(base, "/")[0] == 200


def test_the_runs_index_reads_a_bounded_tail_of_each_log(tmp_path, trained):
    """Rows the index parses are flat and few: a log of 8 MiB of '{}' rows costs the index
    no more than its last 64 KiB."""
    pytest.importorskip("fastapi")
    from mnistgan.web import story

    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    with open(run / "log.jsonl", "a") as f:
        f.write(("[" + "{}," * 2_000_000 + "{}]\n"))
        f.write("{" + '"x": {},' * 1000 + '"images_seen": 1}\n')  # nested: never parsed
        f.write('{"epoch": 3, "images_seen": 1500, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5}\n')
    described = story.describe(run, story.INDEX_LOG_LIMIT)
    assert described["images_seen"] == 1500 and described["damaged_rows"] == 1
    assert [r["images_seen"] for r in described["rows"]] == [1500]  # (the tail starts inside the 6 MB row)
    assert not story._flat_object('{"a": {"b": 1}}') and story._flat_object('{"images_seen": 5, "d_loss": 1.0}')


def test_cpu_costly_requests_from_another_site_are_refused(served):
    root, base = served
    status, body = fetch(base, "/api/runs/healthy/forge?n=4", {"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and b"another site" in body
    status, _ = fetch(base, "/api/runs/healthy/walk?steps=4", {"Origin": "http://evil.example"})
    assert status == 403
    assert fetch(base, "/api/runs/healthy/forge?n=4", {"Sec-Fetch-Site": "same-origin"})[0] == 200
    assert fetch(base, "/api/runs/healthy/forge?n=4")[0] == 200  # (a script, curl: no browser headers)


def test_a_host_pattern_the_server_cannot_answer_is_refused_at_start():
    pytest.importorskip("fastapi")
    from mnistgan.web.app import allowed_hosts

    with pytest.raises(MnistganError, match=r"--allow-host '\*example.com'"):
        allowed_hosts("127.0.0.1", ["*example.com"])
    assert "*.example.com" in allowed_hosts("127.0.0.1", ["*.example.com"])


def test_serve_only_ever_lowers_its_priority():
    """As a process already at nice 15, lower_priority(10) leaves it at 15 (as root, setting
    10 would have raised it)."""
    pytest.importorskip("fastapi")
    script = ("import os; os.nice(15); from mnistgan.web.app import lower_priority; lower_priority(10); "
              "print(os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "15", out.stderr
