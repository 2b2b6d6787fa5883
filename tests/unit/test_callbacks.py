"""callbacks: hook order, the console report and messages, the progress bar, the run folder,
the quality probe."""
import json

import numpy as np
import pytest

from mnistgan.callbacks import Callback, ConsoleReport, ProgressBar, QualityProbe, RunFolder
from mnistgan.store.rundir import read_log
from mnistgan.config import apply_overrides
from mnistgan.data import DeviceData
from mnistgan.training.trainer import Trainer, TrainingInterrupted


def fake_data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return DeviceData(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))


class Record(Callback):
    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after

    def on_epoch_start(self, trainer, epoch, first_step):
        self.events.append(("start", epoch, first_step))

    def on_step(self, trainer):
        self.events.append("step")
        if self.stop_after and trainer.images_seen == self.stop_after:
            trainer.request_stop()

    def on_refresh(self, trainer, means, images_per_s):
        self.events.append(("refresh", sorted(means)))

    def on_steps_end(self, trainer):
        self.events.append("steps_end")

    def on_epoch_end(self, trainer, row):
        self.events.append(("end", row["epoch"], row["partial"]))

    def on_interrupt(self, trainer):
        self.events.append("interrupt")

    def on_train_end(self, trainer):
        self.events.append("train_end")


def test_hooks_run_in_order(tiny_config):
    rec = Record()
    Trainer(tiny_config).fit(fake_data(), [rec])             # 2 epochs of 10 steps
    refresh = ("refresh", ["d_fake", "d_loss", "d_real", "g_loss"])
    epoch = lambda e: [("start", e, 0), *["step"] * 10, refresh, "steps_end", ("end", e, False)]
    assert rec.events == epoch(1) + epoch(2) + ["train_end"]


def test_an_interrupt_reaches_the_callbacks_then_raises(tiny_config):
    rec = Record(stop_after=300)
    with pytest.raises(TrainingInterrupted) as e:
        Trainer(tiny_config).fit(fake_data(), [rec])
    assert e.value.images_seen == 300
    assert rec.events[-3:] == [("refresh", ["d_fake", "d_loss", "d_real", "g_loss"]), "interrupt", "steps_end"]


def test_console_report_prints_the_tutorials_lines_and_messages(tiny_config, capsys):
    cfg = apply_overrides(tiny_config, {"epochs": 3, "report_every": 2})
    Trainer(cfg).fit(fake_data(), [ConsoleReport()])
    out = capsys.readouterr().out
    assert [line.split(" Cost")[0] for line in out.splitlines()] == ["Epoch: 0001", "Epoch: 0001", "Epoch: 0002",
                                                                     "Epoch: 0002", "Epoch: 0003", "Epoch: 0003"]
    ConsoleReport().on_message("resuming x")
    assert capsys.readouterr().err == "mnistgan: resuming x\n"


def test_progress_bar_counts_steps(tiny_config, capsys):
    bar = ProgressBar()
    Trainer(tiny_config).fit(fake_data(), [bar])
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "10/10" in err and "D(G(z))" in err and bar.bar is None


def test_run_folder_writes_rows_pictures_and_checkpoints(tiny_config, tmp_path):
    run = tmp_path / "r"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    real = np.zeros((100, 1, 28, 28), np.uint8)
    t = Trainer(apply_overrides(tiny_config, {"keep_checkpoints": 1}))
    t.fit(fake_data(), [RunFolder(run, real)])
    rows = read_log(run)
    assert [(r["epoch"], r["images_seen"]) for r in rows] == [(1, 1000), (2, 2000)]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["001.png", "002.png", "grid-001.png", "grid-002.png"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-000000002000.safetensors"]
    for name in ("progress.gif", "progress.png", "losses.png", "real_vs_fake.png"):
        assert (run / name).stat().st_size > 1000, name


def test_quality_probe_adds_fid_to_the_row(tiny_config, tmp_path, isolated_env, fake_mnist):
    cfg = apply_overrides(tiny_config, {"eval_every": 2, "eval_n": 50, "data_dir": str(fake_mnist), "download": False})
    rows = []

    class Keep(Callback):
        def on_epoch_end(self, trainer, row):
            rows.append(dict(row))

    probe = QualityProbe()
    Trainer(cfg).fit(fake_data(), [probe, Keep()])
    assert "fid" not in rows[0] and rows[1]["fid"] > 0          # epoch 2 only
    assert probe.reference is not None and probe.reference.dataset == "mnist"
    json.dumps(rows)
