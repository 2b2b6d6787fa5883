"""Issue: training that survives. Exact resume, signals, SIGKILL at many points, divergence."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from mnistgan.store import checkpoint as ckpt
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError, DivergenceError, RunError
from mnistgan.runs import read_log, resume, train
from mnistgan.training.trainer import Trainer, TrainingInterrupted

from helpers.datasets import make_dataset
from helpers.runs import assert_same_run


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("resume") / "data", 60000, 10000)


def config(data_dir, out, **kw):
    values = {"train_images": 500, "epochs": 3, "progress": False, "device": "cpu", "strip_every": 2,
              "data_dir": str(data_dir), "download": False, "out": str(out), **kw}
    return from_preset("seed", values)


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(config(data_dir, out))
    return out


def test_interrupt_mid_epoch_then_resume_is_bit_identical(data_dir, reference, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = Trainer.train_step

    def step_then_signal(self, real, labels=None):
        out = original(self, real, labels)
        calls["n"] += 1
        if calls["n"] == 7:  # mid-epoch 2 (5 steps an epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    with pytest.raises(TrainingInterrupted) as e:
        train(config(data_dir, tmp_path / "run"))
    assert e.value.images_seen == 700 and e.value.signum == signal.SIGINT
    assert ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name == ckpt.filename(700)
    monkeypatch.setattr(Trainer, "train_step", original)
    resume(tmp_path / "run")
    assert_same_run(reference, tmp_path / "run")


def test_more_epochs_on_resume_allowed_and_recorded(data_dir, tmp_path):
    run = tmp_path / "run"
    train(config(data_dir, run, epochs=2))
    resume(run, {"epochs": 3})
    assert [r["epoch"] for r in read_log(run)] == [1, 2, 3]
    rec = [json.loads(line) for line in (run / "resumes.jsonl").read_text().splitlines()]
    assert rec == [{"checkpoint": ckpt.filename(1000), "images_seen": 1000, "changes": {"epochs": 3}}]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3


def test_resume_equals_longer_run(data_dir, reference, tmp_path):
    run = tmp_path / "run"
    train(config(data_dir, run, max_images=1200))
    resume(run, {"max_images": "none"})
    assert_same_run(reference, run)


def test_changing_the_maths_on_resume_is_refused(data_dir, reference, tmp_path):
    before = {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"cannot change lr \(run: 0.0002, asked: 0.001\) when resuming"):
        resume(reference, {"lr": 1e-3})
    with pytest.raises(ConfigError, match="cannot change batch_size"):
        resume(reference, {"batch_size": 50})
    assert {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()} == before


def test_resume_errors(tmp_path):
    with pytest.raises(RunError, match="run folder .*nope does not exist"):
        resume(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="is not a run folder"):
        resume(tmp_path / "empty")


def test_damaged_newest_checkpoint_falls_back_and_is_kept(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train(config(data_dir, run, epochs=2))
    newest = ckpt.list_checkpoints(run / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    resume(run, {"epochs": 3})
    assert "skipping damaged checkpoint" in capsys.readouterr().err
    assert [r["epoch"] for r in read_log(run)] == [1, 2, 3]


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(data_dir, tmp_path, monkeypatch):
    from mnistgan.data import DeviceData

    run = tmp_path / "run"
    calls = {"n": 0}
    original = DeviceData.batch

    def batch(self, order, step, batch_size, part=None):  # the 8th batch carries a NaN pixel
        calls["n"] += 1
        x, y = original(self, order, step, batch_size, part)
        if calls["n"] == 8:
            x[0, 0, 0, 0] = float("nan")
        return x, y

    monkeypatch.setattr(DeviceData, "batch", batch)
    first = ckpt.filename(500)
    with pytest.raises(DivergenceError, match=r"the discriminator's loss \(D loss\) became nan at step 8 \(epoch 2\)"):
        train(config(data_dir, run))
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [first]
    tensors, meta = ckpt.load(run / "checkpoints" / first)  # intact
    assert meta["images_seen"] == 500 and all(torch.isfinite(v).all() for k, v in tensors.items() if v.is_floating_point())
    assert [r["epoch"] for r in read_log(run)] == [1]


# ------------------------------------------------------------------ real processes
CHILD = textwrap.dedent("""
    import os, signal, stat, sys
    fn, n = sys.argv[1], int(sys.argv[2])
    import mnistgan.store.checkpoint, mnistgan.images, mnistgan.training.trainer
    count = {"n": 0}

    def due():
        count["n"] += 1
        return count["n"] == n

    if fn == "os.fsync":
        orig = os.fsync
        def torn_then_kill(fd):  # the file misses its last bytes, then the process dies
            if due():
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.ftruncate(fd, max(0, os.fstat(fd).st_size - 10))
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(fd)
        os.fsync = torn_then_kill
    else:
        owner, name = {"os.replace": (os, "replace"), "prune": (mnistgan.store.checkpoint, "prune"),
                       "train_step": (mnistgan.training.trainer.Trainer, "train_step"),
                       "save_gif": (mnistgan.images, "save_gif")}[fn]
        orig = getattr(owner, name)
        def killer(*a, **k):
            if due():
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(*a, **k)
        setattr(owner, name, killer)
    from mnistgan.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def cli(args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mnistgan.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def cli_train_args(run, data_dir):
    return ["train", "--out", str(run), "--data-dir", str(data_dir), "--no-download", "--no-progress",
            "--epochs", "3", "--device", "cpu", "--set", "train_images=500", "--set", "strip_every=2"]


# (function, n-th call at which the process is SIGKILLed). fsync calls run: config.json (file 1,
# folder 2), then each epoch: log row (3, 6, 9), checkpoint file (4, 7, 10) and folder (5, 8, 11)
# (pictures are not fsynced). os.replace: config.json (1), then each epoch its grid, its strip
# (epochs 1, 2 and 3 here) and its checkpoint (4, 7, 10). Killed: mid-epoch (steps 8, 13); with a
# torn log line; with a torn checkpoint temp file; with a complete temp file before its rename;
# after the rename before pruning; during the end-of-run figures.
KILL_POINTS = [("train_step", 8), ("train_step", 13), ("os.fsync", 6), ("os.fsync", 7), ("os.fsync", 8),
               ("os.replace", 7), ("os.replace", 10), ("prune", 2), ("save_gif", 1)]


@pytest.mark.slow
@pytest.mark.parametrize("fn, n", KILL_POINTS)
def test_sigkill_anywhere_then_resume_finishes_identically(fn, n, data_dir, reference, tmp_path):
    run = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", CHILD, fn, str(n), *cli_train_args(run, data_dir)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    done = cli(["train", "--resume", str(run), "--no-progress"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(reference, run)
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]  # killed writes cleaned up
    for name in ("progress.gif", "progress.png", "losses.png", "real_vs_fake.png"):
        assert (run / name).exists()


def test_killed_before_the_first_checkpoint_says_so(data_dir, tmp_path):
    run = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", CHILD, "train_step", "3", *cli_train_args(run, data_dir)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL
    done = cli(["train", "--resume", str(run)])
    assert done.returncode == 1
    assert "has no checkpoint to resume from" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_sigint_writes_a_checkpoint_and_prints_the_resume_hint(data_dir, tmp_path):
    run = tmp_path / "run"
    args = cli_train_args(run, data_dir)
    args[args.index("--epochs") + 1] = "200"
    proc = subprocess.Popen([sys.executable, "-m", "mnistgan.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ckpt.list_checkpoints(run / "checkpoints") and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert f"Resume with: mnistgan train --resume {run}" in err
    images_seen = ckpt.read_header(ckpt.list_checkpoints(run / "checkpoints")[-1])["images_seen"]
    assert 0 < images_seen < 200 * 500
    done = cli(["train", "--resume", str(run), "--no-progress", "--epochs", str(images_seen // 500 + 2)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_log(run)[-1]["epoch"] == images_seen // 500 + 2


@pytest.mark.parametrize("damage", ["nested", "config-not-object", "missing-tensor", "images-seen-text"])
def test_crafted_newest_checkpoint_falls_back_to_the_older_good_one(damage, data_dir, tmp_path, capsys):
    """Whatever is wrong with the newest checkpoint (its header, its config, its state), resume
    reports it, keeps it, and continues from the one before."""
    import struct

    run = tmp_path / "run"
    train(config(data_dir, run, epochs=2))
    newest = ckpt.list_checkpoints(run / "checkpoints")[-1]
    tensors, meta = ckpt.load(newest)
    if damage == "nested":
        raw = ('{"__metadata__": ' + "[" * 100000 + "]" * 100000 + "}").encode()
        newest.write_bytes(struct.pack("<Q", len(raw)) + raw)
    else:
        if damage == "config-not-object":
            meta["config"] = ["seed"]
        elif damage == "missing-tensor":
            tensors.pop("opt_d.0.exp_avg")
        else:
            meta["images_seen"] = "many"
        ckpt.save(newest, tensors, meta)
    resume(run, {"epochs": 3})
    err = capsys.readouterr().err
    assert "skipping damaged checkpoint" in err and newest.name in err and "Traceback" not in err
    assert [r["epoch"] for r in read_log(run)] == [1, 2, 3]


def test_resuming_with_fewer_epochs_than_done_is_refused_and_changes_nothing(data_dir, tmp_path):
    run = tmp_path / "run"
    train(config(data_dir, run, epochs=2))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    with pytest.raises(ConfigError, match=r"has already trained 2.00 epochs \(1,000 images\); --epochs 1 would end "
                                          r"before that. Ask for at least 2 epochs \(nothing was changed\)"):
        resume(run, {"epochs": 1})
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before


LOCK_HOLDER = """
import sys, time
from mnistgan.store.files import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_process_on_one_run_folder_is_refused_naming_the_holder(data_dir, tmp_path):
    run = tmp_path / "run"
    train(config(data_dir, run, epochs=1))
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (run / "log.jsonl").read_bytes()
        with pytest.raises(RunError, match=rf"is in use by another mnistgan process \(pid {holder.pid} on "):
            resume(run, {"epochs": 2})
        assert (run / "log.jsonl").read_bytes() == before and not (run / "resumes.jsonl").exists()
        fresh = tmp_path / "fresh"   # a new run racing into a folder another process holds
        fresh.mkdir()
        second = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(fresh)], stdout=subprocess.PIPE, text=True)
        try:
            assert second.stdout.readline().strip() == "locked"
            with pytest.raises(RunError, match="is in use by another mnistgan process"):
                train(config(data_dir, fresh, epochs=1))
            assert [p.name for p in fresh.iterdir()] == [".lock"]
        finally:
            second.kill()
            second.wait()
    finally:
        holder.kill()
        holder.wait()
    resume(run, {"epochs": 2})  # the OS released the killed holder's lock: no stale lock
    assert [r["epoch"] for r in read_log(run)] == [1, 2]
