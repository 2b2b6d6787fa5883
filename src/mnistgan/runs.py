"""Run folders: where a run may be made, training a new run and resuming one exactly,
choosing the checkpoint to resume from, and stopping cleanly on SIGINT/SIGTERM.

What a run leaves in its folder is written by callbacks.RunFolder (its docstring lists the
files); this module makes the folder, writes config.json and resumes.jsonl, and decides
which callbacks run.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import checkpoint as ckpt
from . import distributed, files
from .callbacks import (Callback, ConsoleReport, ProgressBar, QualityProbe, RunFolder, TensorBoardLog, progress_bar,
                        read_log)
from .config import TrainConfig, apply_overrides, fixed_fields
from .data import DeviceData, open_dataset
from .errors import CheckpointError, ConfigError
from .files import RunLock
from .runtime import resolve_device
from .training import FiguresInterrupted, Trainer

__all__ = ["train", "resume", "read_log", "is_run", "free_run_dir", "check_run_dir", "load_latest_good"]


def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / "config.json").is_file()


def free_run_dir(base: str | os.PathLike) -> Path:
    """base if it holds no run, else base-2, base-3, ... (for the default --out)."""
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists() and _contents(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _contents(path: Path) -> list[Path]:
    """What a folder holds besides its lock file."""
    return [p for p in path.iterdir() if p.name != RunLock.NAME]


def check_run_dir(path: Path) -> None:
    """Refuses an --out that holds anything: nothing is ever overwritten."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder")
    if path.exists() and _contents(path):
        what = "a run" if is_run(path) else "files"
        raise ConfigError(f"--out {path} already holds {what}; choose another --out "
                          "(nothing was changed)")


def prepare_run_dir(path: Path) -> RunLock:
    """Creates the run folder, takes its lock, checks again that it holds nothing (another
    process may have started a run there meanwhile) and makes its sub-folders."""
    check_run_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(path).acquire()
    except OSError as e:
        raise ConfigError(f"cannot write to --out {path}: {e.strerror or e}") from None
    try:
        check_run_dir(path)
        (path / "samples").mkdir()
        (path / "checkpoints").mkdir()
    except OSError as e:
        lock.release()
        raise ConfigError(f"cannot write to --out {path}: {e.strerror or e}") from None
    except BaseException:
        lock.release()
        raise
    return lock


def _remove_unstarted(path: Path, lock: RunLock) -> None:
    """Removes what a run that failed before its first checkpoint made, so that the same
    command can simply be run again; the folder itself only if it is then empty."""
    for item in _contents(path):
        shutil.rmtree(item) if item.is_dir() else item.unlink(missing_ok=True)
    lock.path.unlink(missing_ok=True)
    lock.release()
    with contextlib.suppress(OSError):
        path.rmdir()


def load_training_data(config: TrainConfig, device: torch.device, resuming: bool = False) -> tuple[DeviceData, TrainConfig, list[str]]:
    """(the training set on device, config with the dataset's class count and train_images
    capped at its size, notices for the user). A resumed run's dataset must still have the
    classes it trained with."""
    dataset = open_dataset(config.dataset, config.data_dir, download=config.download, invert=config.invert,
                           progress=progress_bar if config.progress else None)
    imgs, labels = dataset.split("train")
    notices = []
    if config.cuda_graph and device.type != "cuda":
        notices.append(f"note: cuda_graph captures the step on CUDA devices only; on {device.type} it runs uncaptured")
    if dataset.skipped:
        notices.append(f"warning: skipped {len(dataset.skipped)} unreadable image(s) of {config.dataset}: "
                       + "; ".join(dataset.skipped[:3]) + (" ..." if len(dataset.skipped) > 3 else ""))
    n = min(config.train_images, len(imgs))
    if dataset.num_classes != config.num_classes or n != config.train_images:
        if resuming:
            raise ConfigError(f"{config.dataset} now has {len(imgs):,} training images in {dataset.num_classes} "
                              f"classes; this run trained on {config.train_images:,} in {config.num_classes}. "
                              "Restore the dataset, or start a new run (nothing was changed).")
        if config.batch_size > n:
            raise ConfigError(f"{config.dataset} has {n} training images, fewer than one batch "
                              f"(batch_size {config.batch_size}); use --set batch_size=N with N <= {n}")
        config = apply_overrides(config, {"num_classes": dataset.num_classes, "train_images": n})
    return DeviceData(imgs[:n], labels[:n], device), config, notices


def _tell(callbacks: Sequence[Callback], message: str) -> None:
    for cb in callbacks:
        cb.on_message(message)


@contextmanager
def stop_on_signals(trainer: Trainer, callbacks: Sequence[Callback]):
    """SIGINT/SIGTERM: finish the current step, write a checkpoint, stop. A second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.finishing:
            raise FiguresInterrupted(trainer.images_seen, signum)
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_signal = signum
        trainer.request_stop()
        _tell(callbacks, "stopping after this step and writing a checkpoint (Ctrl-C again aborts at once)")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def default_callbacks(config: TrainConfig, out: Path, data: DeviceData, purge_step: int | None = None) -> list[Callback]:
    """The bar (when config.progress), the quality probe, the console report, the run folder
    and TensorBoard's log (config.tensorboard; `purge_step` on resume); under torchrun for
    rank 0 alone (the other processes only train)."""
    if not distributed.current().main:  # the probe's work is shared; rank 0 writes its figure
        return [QualityProbe()] if config.eval_every else []
    bar = [ProgressBar()] if config.progress else []
    board = [TensorBoardLog(out, purge_step)] if config.tensorboard else []
    return [*bar, QualityProbe(), ConsoleReport(), RunFolder(out, data.images[:100, 0].cpu().numpy()), *board]


def training_device(config: TrainConfig) -> torch.device:
    """The config's device; under torchrun on GPUs, this process's own (cuda:LOCAL_RANK)."""
    return resolve_device(distributed.device_for(config.device, distributed.current()))


def _fit(trainer: Trainer, data: DeviceData, callbacks: list[Callback]) -> Trainer:
    with stop_on_signals(trainer, callbacks):
        trainer.fit(data, callbacks)
    return trainer


def train(config: TrainConfig, callbacks: Sequence[Callback] | None = None) -> Trainer:
    """Trains a new run into config.out; returns the trainer (its networks are trained).
    `callbacks` run after the default ones. Raises TrainingInterrupted after a signal, once
    a checkpoint is written."""
    if config.tensorboard:
        TensorBoardLog.check_installed()
    device = training_device(config)
    out = Path(config.out)
    main = distributed.current().main  # under torchrun only rank 0 touches the folder
    if main:
        check_run_dir(out)
    data, config, notices = load_training_data(config, device)  # fails on bad data before any folder is made
    if not main:
        return _fit(Trainer(config, device), data, default_callbacks(config, out, data))
    lock = prepare_run_dir(out)
    try:
        files.write_json(out / "config.json", config.to_dict(), sort_keys=True)
        everyone = [*default_callbacks(config, out, data), *(callbacks or [])]
        for notice in notices:
            _tell(everyone, notice)
        return _fit(Trainer(config, device), data, everyone)
    except BaseException:
        if not ckpt.list_checkpoints(out / "checkpoints"):  # nothing to resume: leave nothing behind
            _remove_unstarted(out, lock)
        raise
    finally:
        lock.release()


def elastic_restart(out: str | os.PathLike | None) -> Path | None:
    """Under `torchrun --max-restarts N`, a group restarted after a failure
    (TORCHELASTIC_RESTART_COUNT > 0) continues the run in `out` from its newest checkpoint:
    returns that folder. A run that failed before its first checkpoint is started again
    (rank 0 removes what it made); then, and on a first start, None."""
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0 or not out:
        return None
    out = Path(out)
    if ckpt.list_checkpoints(out / "checkpoints"):
        return out
    if distributed.current().main and out.is_dir() and is_run(out):
        _remove_unstarted(out, RunLock(out).acquire())
    return None


def load_latest_good(run: Path, callbacks: Sequence[Callback] = (),
                     restore: Callable[[Path, dict, dict], Any] | None = None) -> tuple[Path, Any]:
    """(path, what restore(path, tensors, meta) made of it; default (tensors, meta)) for the
    newest checkpoint that loads and restores: one whose file, config or state is damaged is
    reported to the callbacks and skipped (never deleted) for the one before it."""
    found = ckpt.list_checkpoints(run / "checkpoints")
    if not found:
        raise CheckpointError(f"{run} has no checkpoint to resume from (checkpoints/ is empty)")
    errors = []
    for path in reversed(found):
        try:
            tensors, meta = ckpt.load(path)
            return path, (restore(path, tensors, meta) if restore else (tensors, meta))
        except CheckpointError as e:
            errors.append(str(e))
            _tell(callbacks, f"warning: skipping damaged checkpoint: {e}")
    raise CheckpointError("no checkpoint of this run can be loaded:\n  " + "\n  ".join(errors))


def resume(run: str | os.PathLike, overrides: dict[str, Any] | None = None,
           callbacks: Sequence[Callback] | None = None) -> Trainer:
    """Continues a run exactly from its latest checkpoint. Overrides that change the maths
    are refused; harmless ones (epochs, device, ...) are applied and recorded."""
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    if not is_run(run):
        raise CheckpointError(f"{run} is not a run folder (no config.json)")
    for key in ("out", "preset"):
        if (overrides or {}).get(key) is not None:
            raise ConfigError(f"--resume continues a run in its own folder with its own preset; "
                              f"{key} cannot be set (nothing was changed)")
    main = distributed.current().main  # under torchrun every process loads, rank 0 alone writes
    with RunLock(run) if main else contextlib.nullcontext():
        return _resume(run, overrides, callbacks, main)


def _resume(run: Path, overrides: dict[str, Any] | None, callbacks: Sequence[Callback] | None,
            main: bool) -> Trainer:
    console = [ConsoleReport()] if main else []  # notices before the run's own callbacks exist

    def restore(path: Path, tensors: dict, meta: dict):
        saved = ckpt.config_of(path, meta)
        wanted = apply_overrides(saved, {k: v for k, v in (overrides or {}).items() if v is not None})
        changes = {k: v for k, v in wanted.to_dict().items() if v != getattr(saved, k)}
        refused = sorted(set(changes) & fixed_fields())
        if refused:
            detail = ", ".join(f"{k} (run: {getattr(saved, k)!r}, asked: {changes[k]!r})" for k in refused)
            raise ConfigError(f"cannot change {detail} when resuming: it changes the run's maths. "
                              "Start a new run with --out instead (nothing was changed).")
        config = apply_overrides(wanted, {"out": str(run)})
        if config.tensorboard:
            TensorBoardLog.check_installed()
        trainer = Trainer(config, training_device(config))
        trainer.load_state(tensors, meta, path)
        world = meta.get("world_size", 1)
        if world != trainer.dist.world:
            changes["world_size"] = trainer.dist.world
            _tell(console, f"warning: the run trained with {world} process(es), now {trainer.dist.world}: the "
                  "maths is the same, the floating-point sums are not, so it will not be bit-identical "
                  "to an uninterrupted run")
        if config.total_images < trainer.images_seen:
            done = trainer.images_seen / config.images_per_epoch
            raise ConfigError(f"{run} has already trained {done:.2f} epochs ({trainer.images_seen:,} images); "
                              f"--epochs {config.epochs}"
                              f"{f' with --max-images {config.max_images}' if config.max_images else ''} would end "
                              f"before that. Ask for at least {math.ceil(done)} epochs (nothing was changed).")
        return trainer, changes

    path, (trainer, changes) = load_latest_good(run, console, restore)
    config = trainer.config
    data, _, notices = load_training_data(config, trainer.device, resuming=True)
    if not main:
        return _fit(trainer, data, default_callbacks(config, run, data))
    for folder in (run, run / "checkpoints"):
        files.remove_stale_temporaries(folder)
    # Rows past the checkpoint belong to work that is about to be redone.
    rows = [r for r in read_log(run) if r["images_seen"] < trainer.images_seen or
            (r["images_seen"] == trainer.images_seen and not (r["partial"] and trainer.images_seen < config.total_images))]
    files.write_jsonl(run / "log.jsonl", rows)
    purge = rows[-1]["images_seen"] + 1 if rows else 0  # TensorBoard hides the redone work's old steps
    files.write_json(run / "config.json", config.to_dict(), sort_keys=True)
    files.append_jsonl(run / "resumes.jsonl", {"checkpoint": path.name, "images_seen": trainer.images_seen,
                                               "changes": {k: changes[k] for k in sorted(changes)}})
    _tell(console, f"resuming {run} from {path.name} ({trainer.images_seen:,} images seen, "
          f"epoch {trainer.epoch:.2f} of {config.epochs})")
    everyone = [*default_callbacks(config, run, data, purge), *(callbacks or [])]
    for notice in notices:
        _tell(everyone, notice)
    return _fit(trainer, data, everyone)
