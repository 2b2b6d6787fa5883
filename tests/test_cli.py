import numpy as np
import pytest

from mnistgan.cli import main
from mnistgan.runs import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run on synthetic data (library path, no real MNIST needed)."""
    from conftest import make_dataset
    from mnistgan.config import from_preset

    root = tmp_path_factory.mktemp("cli")
    folder = make_dataset(root / "data", 60000, 10000)
    cfg = from_preset("seed", {"train_images": 500, "epochs": 2, "progress": False, "device": "cpu",
                               "data_dir": str(folder), "download": False, "out": str(root / "run")})
    train(cfg)
    return root / "run"


def test_sample_png_and_npy_are_deterministic(trained_run, tmp_path):
    assert main(["sample", str(trained_run), "--n", "12", "--seed", "3", "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["sample", str(trained_run), "--n", "12", "--seed", "3", "--out", str(tmp_path / "b.npy")]) == 0
    assert main(["sample", str(trained_run), "--n", "12", "--seed", "4", "--out", str(tmp_path / "c.npy")]) == 0
    a, b, c = (np.load(tmp_path / f"{k}.npy") for k in "abc")
    assert a.shape == (12, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert main(["sample", str(trained_run), "--n", "64", "--out", str(tmp_path / "d.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "d.png") as img:
        assert img.size == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2))


@pytest.mark.parametrize("argv, message", [
    (["sample", "NOPE"], "run folder NOPE does not exist"),
    (["sample", "{run}", "--out", "x.jpg"], "--out must end in .png or .npy"),
    (["sample", "{run}", "--out", "/nonexistent/x.png"], "folder /nonexistent does not exist"),
    (["sample", "{tmp}"], "is not a run with a checkpoint"),
    (["train", "--preset", "fancy", "--out", "{tmp}/r"], "unknown preset 'fancy'"),
    (["train", "--dataset", "cifar10", "--out", "{tmp}/r"], "unknown dataset 'cifar10'"),
    (["train", "--device", "tpu", "--out", "{tmp}/r"], "device must be auto, cpu"),
    (["train", "--out", "{run}", "--data-dir", "{data}", "--no-download"], "already holds a run"),
    (["train", "--out", "{tmp}/r", "--data-dir", "{tmp}/none", "--no-download"], "mnist not found and downloading is off"),
    (["data", "check", "--data-dir", "{tmp}/none"], "mnist not found and downloading is off"),
])
def test_errors_are_one_line_and_non_zero(argv, message, trained_run, tmp_path, capsys):
    subst = {"run": str(trained_run), "tmp": str(tmp_path), "data": str(trained_run.parent / "data")}
    code = main([a.format(**subst) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert "mnistgan: error: " in err and message in err.split("mnistgan: error: ", 1)[1]
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing created on a failed start


def test_bad_flag_values_fail_in_argparse(capsys):
    for argv in (["train", "--epochs", "0"], ["train", "--lr", "fast"], ["sample", "r", "--n", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "expected a number of at least 1, got 0" in capsys.readouterr().err


def test_existing_run_is_not_touched(trained_run, capsys):
    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")}
    assert main(["train", "--out", str(trained_run), "--data-dir", str(trained_run.parent / "data")]) == 1
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*")} == before


def test_data_check(trained_run, capsys):
    assert main(["data", "check", "--data-dir", str(trained_run.parent / "data")]) == 0
    out = capsys.readouterr().out
    assert "mnist train: 60000 images, 60000 labels, valid" in out
    assert "mnist test: 10000 images, 10000 labels, valid" in out


def test_out_that_cannot_be_written(trained_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--out", str(blocker / "run"), "--data-dir", str(trained_run.parent / "data")]) == 1
    assert "cannot write to --out" in capsys.readouterr().err
    assert main(["train", "--out", str(blocker), "--data-dir", str(trained_run.parent / "data")]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_full_disk_mid_run_is_one_line_and_keeps_the_checkpoint(trained_run, tmp_path, capsys, monkeypatch):
    import errno

    from mnistgan import checkpoint as ckpt
    from mnistgan import images

    calls = {"n": 0}
    original = images.save_grid

    def save_grid(path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return original(path, *a, **k)

    monkeypatch.setattr(images, "save_grid", save_grid)
    run = tmp_path / "run"
    code = main(["train", "--out", str(run), "--data-dir", str(trained_run.parent / "data"), "--no-progress",
                 "--set", "train_images=500", "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "grid-002.png: No space left on device" in err and "Traceback" not in err
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [ckpt.filename(500)]
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


def test_corrupt_checkpoint_on_sample(trained_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    for p in (copy / "checkpoints").iterdir():
        p.write_bytes(b"\x00" * 10)
    assert main(["sample", str(copy), "--out", str(tmp_path / "x.png")]) == 1
    assert "not a checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
