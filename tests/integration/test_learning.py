"""End to end on the real MNIST copy: artifacts, and a test that the seed GAN learns."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mnistgan.config import from_preset
from mnistgan.data import DeviceData, load_split
from mnistgan.generation import sample
from mnistgan.runs import read_log, train
from mnistgan.training.trainer import Trainer


def test_short_run_leaves_every_artifact(mnist_dir, tmp_path, capsys):
    cfg = from_preset("seed", {"train_images": 2000, "epochs": 3, "strip_every": 2, "report_every": 2,
                               "progress": False, "device": "cpu", "data_dir": str(mnist_dir),
                               "download": False, "out": str(tmp_path / "run")})
    train(cfg)
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text()) == {**cfg.to_dict(), "data_key": "mnist"}  # (the data's identity is set when it starts)
    rows = read_log(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "images_seen", "seconds", "images_per_s"):
            assert np.isfinite(r[key])
    assert rows[-1]["images_seen"] == 6000
    sizes = {
        "samples/grid-001.png": (302, 302), "samples/grid-002.png": (302, 302), "samples/grid-003.png": (302, 302),
    }
    for name, size in sizes.items():
        with Image.open(run / name) as img:
            assert img.size == size and img.mode == "L"
    for name in ("samples/001.png", "samples/002.png", "samples/003.png"):  # strips: 1, every 2nd, last
        with Image.open(run / name) as img:
            w, h = img.size
            assert img.mode == "RGBA" and w > 6 * h  # one coloured row of ten
    assert not (run / "samples" / "004.png").exists()
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (302, 302)
    for name in ("progress.png", "losses.png", "real_vs_fake.png"):
        with Image.open(run / name) as img:
            assert img.size[0] > 300 and img.size[1] > 100
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [
        "ckpt-000000002000.safetensors", "ckpt-000000004000.safetensors", "ckpt-000000006000.safetensors"]
    digits = sample(run, n=5, seed=0)
    assert digits.shape == (5, 28, 28) and digits.dtype == np.uint8


def test_cli_main_job_short(mnist_dir, tmp_path, monkeypatch):
    from mnistgan.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data-dir", str(mnist_dir), "--max-images", "1000", "--no-progress"]) == 0
    assert (tmp_path / "runs" / "seed" / "progress.png").exists()
    assert main(["train", "--data-dir", str(mnist_dir), "--max-images", "1000", "--no-progress"]) == 0
    assert (tmp_path / "runs" / "seed-2" / "progress.png").exists()  # the default never overwrites


def forgery_scores(x: torch.Tensor, ref: torch.Tensor, ref_labels: torch.Tensor) -> dict:
    """Pixel-space checks: distance to the nearest real digit, which digit that is, diversity."""
    x = x.reshape(len(x), -1)
    nearest, idx = torch.cdist(x, ref).min(1)
    counts = torch.bincount(ref_labels[idx], minlength=10)
    return {"nn": nearest.mean().item(), "classes": int((counts > 0).sum()),
            "top_share": counts.max().item() / len(x), "spread": torch.pdist(x).mean().item()}


@pytest.mark.slow
def test_the_seed_gan_learns_digits(mnist_dir):
    """10 epochs of the seed preset on real MNIST (about a minute on 2 cores).

    Measured here: untrained G: nn 13.1, 1 class, spread 0.1; after 10 epochs: nn 5.9,
    10 classes, top share 0.29, spread 6.4; real test digits: nn 5.0, 10 classes, spread 10.1.
    Each bound is false for the untrained generator and for a collapsed one."""
    images, labels = load_split("mnist", "train", mnist_dir, download=False)
    test_images, test_labels = load_split("mnist", "test", mnist_dir, download=False)
    ref = torch.from_numpy(test_images[:5000].reshape(5000, -1).copy()).float() / 255
    ref_labels = torch.from_numpy(test_labels[:5000].astype(np.int64))
    cfg = from_preset("seed", {"epochs": 10, "progress": False, "device": "cpu"})
    trainer = Trainer(cfg)
    z = trainer.make_noise(500, 123)
    before = forgery_scores(trainer.generate(z), ref, ref_labels)
    trainer.fit(DeviceData(images[:55000], labels[:55000]))
    after = forgery_scores(trainer.generate(z), ref, ref_labels)
    print("untrained", before, "\ntrained", after)
    bounds = lambda s: s["nn"] < 7.5 and s["classes"] >= 7 and s["top_share"] < 0.5 and s["spread"] > 3.0
    assert not bounds(before)
    assert bounds(after), after
