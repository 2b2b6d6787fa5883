import numpy as np
import pytest

from mnistgan.cli import main
from mnistgan.runs import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run on synthetic data (library path, no real MNIST needed)."""
    from helpers.datasets import make_dataset
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
    (["sample", "{tmp}"], "has no checkpoint to resume from or sample"),
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


def test_bad_flags_are_one_error_line(capsys):
    """A flag argparse refuses is the same single `mnistgan: error:` line as every other error."""
    for argv, message in ((["train", "--epochs", "0"], "expected a number of at least 1, got 0"),
                          (["train", "--lr", "fast"], "expected a number, got 'fast'"),
                          (["sample", "r", "--n", "-1"], "expected a number of at least 1, got -1"),
                          (["train", "--bogus"], "unrecognized arguments: --bogus"),
                          (["fly"], "invalid choice: 'fly'")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("mnistgan: error: ") and message in err, err
        assert err.count("\n") == 1 and "usage:" not in err


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

    from mnistgan.store import checkpoint as ckpt
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


# ------------------------------------------------------------------ hardening: outputs, bounds, small lies
def test_outputs_are_never_overwritten_without_force(trained_run, tmp_path, capsys):
    mine = tmp_path / "mine.npy"
    np.save(mine, np.arange(5))
    assert main(["sample", str(trained_run), "--n", "4", "--out", str(mine)]) == 1
    assert "mine.npy already exists; nothing was overwritten (--force replaces it)" in capsys.readouterr().err
    assert np.array_equal(np.load(mine), np.arange(5))
    losses = trained_run / "losses.png"
    before = losses.read_bytes()
    assert main(["sample", str(trained_run), "--n", "4", "--out", str(losses)]) == 1
    assert losses.read_bytes() == before
    assert main(["sample", str(trained_run), "--n", "4", "--out", str(mine), "--force"]) == 0
    assert np.load(mine).shape == (4, 28, 28)
    assert main(["sample", str(trained_run), "--n", "3", "--interpolate", "--out", str(mine)]) == 1
    # evaluate: metrics.json and the novelty figure beside it, checked before any work
    np.save(tmp_path / "x.npy", np.zeros((20, 28, 28), np.uint8))
    (tmp_path / "novelty.png").write_bytes(b"a user's picture")
    assert main(["evaluate", "--images", str(tmp_path / "x.npy"), "--out", str(tmp_path / "metrics.json")]) == 1
    assert "novelty.png already exists" in capsys.readouterr().err
    assert (tmp_path / "novelty.png").read_bytes() == b"a user's picture" and not (tmp_path / "metrics.json").exists()
    # the classifier's weights (default: the shipped ones) before minutes of training
    (tmp_path / "mnist.json").write_text("{}")
    assert main(["classifier", "train", "--out", str(tmp_path), "--data-dir", str(trained_run.parent / "data")]) == 1
    assert "mnist.json already exists" in capsys.readouterr().err


def test_sampling_is_chunked_and_bounded(trained_run, tmp_path, capsys):
    from mnistgan import generation, images

    G, config = generation.load_generator(trained_run)
    # chunks: the same images as one noise draw through G in chunks of 1,000
    import torch

    z = torch.randn(2500, config.z_dim, generator=torch.Generator().manual_seed(7))
    expected = images.public(np.concatenate([images.to_uint8(generation.generate(G, part)) for part in z.split(1000)]))
    assert np.array_equal(generation.sample(trained_run, n=2500, seed=7), expected)
    assert main(["sample", str(trained_run), "--n", "2500", "--seed", "7", "--out", str(tmp_path / "a.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), expected)
    assert main(["sample", str(trained_run), "--n", "20000", "--out", str(tmp_path / "a.png")]) == 1
    assert "a PNG grid of 20,000 forgeries is no picture (at most 10,000); write a .npy" in capsys.readouterr().err
    assert main(["sample", str(trained_run), "--n", "100000000", "--out", str(tmp_path / "b.npy")]) == 1
    assert "--n must be at most 10,000,000, got 100,000,000" in capsys.readouterr().err
    assert main(["evaluate", str(trained_run), "--n", "2000000"]) == 1
    assert "--n must be at most 100,000 for an evaluation" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*tmp")) and not (tmp_path / "b.npy").exists()


def test_a_checkpoint_asking_for_absurd_sizes_is_refused(trained_run, tmp_path, capsys):
    import shutil

    from mnistgan.store import checkpoint as ckpt

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    *older, path = ckpt.list_checkpoints(copy / "checkpoints")
    tensors, meta = ckpt.load(path)
    meta["config"]["hidden"] = 10**9
    ckpt.save(path, tensors, meta)
    assert main(["sample", str(copy), "--out", str(tmp_path / "x.png")]) == 0  # the one before it is taken
    for old in older:
        old.unlink()
    assert main(["sample", str(copy), "--out", str(tmp_path / "y.png")]) == 1
    assert "its config is invalid (hidden must be at most 16,384, got 1,000,000,000)" in capsys.readouterr().err


def test_set_preset_and_set_out_say_and_do_one_true_thing(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = str(trained_run.parent / "data")
    assert main(["train", "--set", "preset=dcgan", "--out", str(tmp_path / "a"), "--data-dir", data]) == 1
    assert "a preset is chosen by name (--preset dcgan), not by setting preset=dcgan" in capsys.readouterr().err
    assert main(["train", "--set", f"out={tmp_path / 'b'}", "--data-dir", data, "--no-progress",
                 "--set", "train_images=200", "--epochs", "1"]) == 0
    assert (tmp_path / "b" / "config.json").exists() and not (tmp_path / "runs").exists()
    assert main(["train", "--out", str(tmp_path / "c"), "--set", f"out={tmp_path / 'd'}", "--data-dir", data]) == 1
    assert "disagree" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "b"), "--set", "out=elsewhere"]) == 1
    assert "out cannot be set" in capsys.readouterr().err


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_behind(trained_run, tmp_path, capsys, monkeypatch):
    """A failure before the first checkpoint removes what the run made, so the same command
    can be run again; nothing is left to block it."""
    from mnistgan.training import trainer as training

    def boom(self, *a, **k):
        raise RuntimeError("a failure in the first epoch")

    monkeypatch.setattr(training.Trainer, "train_step", boom)
    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--data-dir", str(trained_run.parent / "data"), "--no-progress",
            "--set", "train_images=200", "--epochs", "1"]
    with pytest.raises(RuntimeError):
        main(argv)
    assert not run.exists()
    monkeypatch.undo()
    assert main(argv) == 0 and (run / "config.json").exists()


def test_sigint_while_drawing_the_final_figures_says_so_and_resume_draws_them(trained_run, tmp_path, capsys, monkeypatch):
    import os
    import signal

    from mnistgan import images

    original = images.save_gif

    def interrupted(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C while the end-of-run figures are drawn
        return original(*a, **k)

    monkeypatch.setattr(images, "save_gif", interrupted)
    run = tmp_path / "run"
    code = main(["train", "--out", str(run), "--data-dir", str(trained_run.parent / "data"), "--no-progress",
                 "--set", "train_images=200", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted while drawing the final figures; training is complete" in err
    assert "done (" not in err and "writing a checkpoint" not in err
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "progress.gif").exists() and (run / "losses.png").exists()


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_everywhere(trained_run, tmp_path, capsys):
    """load, sample, export, the page and --resume take one checkpoint: the newest that loads.
    (Before, load, sample and export took the newest file and failed on a damaged one.)"""
    import shutil

    import numpy as np

    import mnistgan
    from mnistgan.store import checkpoint as ckpt
    from mnistgan.export import export

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    older, newest = ckpt.list_checkpoints(run / "checkpoints")[-2:]
    expected = mnistgan.load(older).sample(8, seed=1)
    assert not np.array_equal(expected, mnistgan.load(newest).sample(8, seed=1))  # the two differ
    newest.write_bytes(newest.read_bytes()[:1000])  # torn
    assert np.array_equal(mnistgan.load(run).sample(8, seed=1), expected)
    assert main(["sample", str(run), "--n", "8", "--seed", "1", "--out", str(tmp_path / "x.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "x.npy"), expected)
    _, card = export(run, tmp_path / "g.pt", "torchscript")
    assert older.name in card.read_text() and newest.name not in card.read_text()
    from mnistgan.generation import load_networks
    assert load_networks(run, discriminator=False).config.train_images == 500

    pytest.importorskip("fastapi")
    from fastapi import HTTPException

    from mnistgan.generation import forge
    from mnistgan.web.app import Site

    site = Site(tmp_path)  # the page's networks
    page = site.loaded("run")
    assert page.path == older and np.array_equal(forge(page.G, page.config, 8, 1)[:, 0], expected)
    # Nothing loads at all: one clear error, nothing deleted.
    for path in ckpt.list_checkpoints(run / "checkpoints")[:-1]:
        path.write_bytes(b"")
    with pytest.raises(mnistgan.CheckpointError, match="no checkpoint of this run can be loaded"):
        mnistgan.load(run)
    with pytest.raises(HTTPException) as refused:
        Site(tmp_path).loaded("run")
    assert refused.value.status_code == 409
    assert newest.exists() and older.exists()
