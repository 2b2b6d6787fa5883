import numpy as np
import pytest

from mnistgan.cli import main
from mnistgan.run import train


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
