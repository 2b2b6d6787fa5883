"""--tensorboard: the events read back with TensorBoard's own reader match log.jsonl step for
step, also across an interrupted and resumed run; without the package, one line and no run."""
import importlib.util
import os
import signal

import pytest

from mnistgan.cli import main
from mnistgan.config import from_preset
from mnistgan.runs import read_log, resume, train
from mnistgan.training.trainer import Trainer, TrainingInterrupted

from helpers.datasets import make_dataset

pytest.importorskip("tensorboard")


def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_events_match_the_log_across_interrupted_and_repeated_work(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", 1000, 100)
    run = tmp_path / "run"
    cfg = from_preset("seed", {"train_images": 500, "epochs": 3, "progress": False, "device": "cpu",
                               "dataset": f"idx:{data}", "out": str(run), "tensorboard": True,
                               "hidden": 32})
    calls = {"n": 0}
    original = Trainer.train_step

    def step_then_signal(self, real, labels=None):
        out = original(self, real, labels)
        calls["n"] += 1
        if calls["n"] == 7:  # mid-epoch 2 (5 steps an epoch): a partial row at 700 images, then redone
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    with pytest.raises(TrainingInterrupted):
        train(cfg)
    assert [e.step for e in events(run).Scalars("loss/D")] == [500]
    monkeypatch.setattr(Trainer, "train_step", original)
    resume(run)
    assert [e.step for e in events(run).Scalars("loss/D")] == [500, 1000, 1500]
    # The newest checkpoint damaged: resume redoes epoch 3 from the one before, and the
    # first process's events at 1500 must not show beside the new ones.
    newest = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    resume(run)
    rows = read_log(run)
    assert [r["images_seen"] for r in rows] == [500, 1000, 1500]
    acc = events(run)
    for key, tag in {"d_loss": "loss/D", "g_loss": "loss/G", "d_real": "D(x)", "d_fake": "D(G(z))"}.items():
        got = acc.Scalars(tag)
        assert [e.step for e in got] == [r["images_seen"] for r in rows], tag  # 700 is gone, nothing twice
        assert [e.value for e in got] == pytest.approx([r[key] for r in rows], rel=1e-6), tag
    grids = acc.Images("forgeries/fixed_noise")
    assert [g.step for g in grids] == [500, 1000, 1500] and grids[-1].width == 302
    assert acc.Scalars("final/d_loss")[-1].value == pytest.approx(rows[-1]["d_loss"], rel=1e-6)
    assert "_hparams_/experiment" in acc.summary_metadata  # the config as hparams


def test_without_the_package_the_flag_fails_before_training(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    out = tmp_path / "run"
    assert main(["train", "--tensorboard", "--out", str(out), "--no-progress", "--max-images", "100"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == ['mnistgan: error: --tensorboard needs the tensorboard package: pip install "mnistgan[tensorboard]"']
    assert not out.exists()
