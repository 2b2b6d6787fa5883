"""Running training: a new run, an exact resume, and the one entry point (`start`) that the
CLI and the Python API share, also under torchrun: it joins torchrun's process group, and
under `torchrun --max-restarts N` a group restarted after a failure continues the run from
its newest checkpoint by itself. Also: which callbacks a run gets, and stopping cleanly on
SIGINT/SIGTERM. The run folder's layout and rules are rundir's; what a run leaves in it is
written by callbacks.RunFolder.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import torch

from . import models
from .callbacks import Callback, ConsoleReport, ProgressBar, QualityProbe, RunFolder, TensorBoardLog, progress_bar
from .config import TrainConfig, apply_overrides, fixed_fields
from .data import DeviceData, Found, training_set
from .errors import ConfigError, RunError
from .store import checkpoint as ckpt
from .store import files, rundir
from .store.files import RunLock
from .store.rundir import check_run_dir, free_run_dir, is_run, read_log
from .system import distributed, runtime
from .training.trainer import FiguresInterrupted, Trainer

__all__ = ["start", "train", "resume", "read_log", "is_run", "free_run_dir", "check_run_dir", "default_out",
           "restarted_run"]


def default_out(preset: str) -> str:
    """runs/PRESET, or runs/PRESET-N when taken. Under torchrun there is no default: every
    process and every restart must agree on the folder."""
    if distributed.launched():
        raise ConfigError("under torchrun give the run folder (--out, or out=...) or resume one (--resume RUN), "
                          "so that every process and every restart agree on the run folder")
    return str(free_run_dir(Path("runs") / preset))


def _tell(callbacks: Sequence[Callback], message: str) -> None:
    for cb in callbacks:
        cb.on_message(message)


def _console() -> list[Callback]:
    """Notices before a run's own callbacks exist: rank 0 says them."""
    return [ConsoleReport()] if distributed.current().main else []


def start(config: TrainConfig | None = None, resume_from: str | os.PathLike | None = None,
          overrides: dict[str, Any] | None = None, callbacks: Sequence[Callback] | None = None,
          tune_malloc: bool = True) -> Trainer:
    """Trains the new run `config`, or continues the run `resume_from` (with harmless
    `overrides`), the same way in one process and under torchrun: joins torchrun's group for
    the run when it is not joined yet (leaving it after), and after a restart of the group
    (`torchrun --max-restarts N`) continues config.out from its newest checkpoint."""
    if (config is None) == (resume_from is None):
        raise ConfigError("give either a config to train or a run to resume")
    device = (config.device if config is not None else (overrides or {}).get("device")) or "auto"
    with distributed.joined(device):
        if config is not None:
            restart = restarted_run(config.out)
            if restart is None:
                return train(config, callbacks, tune_malloc)
            _tell(_console(), f"restart {os.environ.get('TORCHELASTIC_RESTART_COUNT')} of the group: "
                              f"resuming {restart}")
            resume_from, overrides = restart, {k: v for k, v in (overrides or {}).items() if k != "out"}
        return resume(resume_from, overrides, callbacks, tune_malloc)


def restarted_run(out: str | os.PathLike | None) -> Path | None:
    """Under `torchrun --max-restarts N`, a group restarted after a failure
    (TORCHELASTIC_RESTART_COUNT > 0) continues the run in `out` from its newest checkpoint:
    returns that folder. A run that failed before its first checkpoint is started again
    (rank 0 removes what it made); then, and on a first start, None."""
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0 or not out:
        return None
    out = Path(out)
    if ckpt.list_checkpoints(out / rundir.CHECKPOINTS):
        return out
    if distributed.current().main and out.is_dir() and is_run(out):
        rundir.remove_unstarted(out, RunLock(out).acquire())
    return None


@contextmanager
def stop_on_signals(trainer: Trainer, callbacks: Sequence[Callback]):
    """SIGINT/SIGTERM: finish the current step, write a checkpoint, stop. A second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.finishing:
            raise FiguresInterrupted(trainer.images_seen, signum, trainer.config.out)
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
    return [*bar, QualityProbe(), ConsoleReport(), RunFolder(out, _examples(data)), *board]


def training_device(config: TrainConfig) -> torch.device:
    """The config's device; under torchrun on GPUs, this process's own (cuda:LOCAL_RANK)."""
    return runtime.resolve_device(distributed.device_for(config.device, distributed.current()))


def _data(config: TrainConfig, device: torch.device, resuming: bool = False):
    """(the training set, the config fitted to it (fit_to_data), notices, with those this device adds)."""
    data, found, notices = training_set(config, device, progress_bar if config.progress else None)
    config = fit_to_data(config, found, resuming)
    if config.cuda_graph and device.type != "cuda":
        notices.insert(0, f"note: cuda_graph captures the step on CUDA devices only; on {device.type} it runs "
                          "uncaptured")
    return data, config, notices


def fit_to_data(config: TrainConfig, found: Found, resuming: bool = False) -> TrainConfig:
    """The config with the data's facts set (a new run: its identity, channels, classes, and
    train_images capped at the images there are), in one place; on resume the data must be
    the one the run trained with (the same identity, channels, classes and images)."""
    n = min(config.train_images, found.images)
    if resuming:
        if config.data_key is not None and found.key != config.data_key:
            raise ConfigError(f"{config.dataset} is not the data this run trained on: the run's data is "
                              f"{config.data_key}, this is {found.key}. Restore the run's data, or start a new run "
                              "(nothing was changed).")
        if found.channels != config.channels:
            raise ConfigError(f"{config.dataset} has {found.channels} channel(s); this run trained with {config.channels}")
        if found.num_classes != config.num_classes or n != config.train_images:
            raise ConfigError(f"{config.dataset} now has {found.images:,} training images in {found.num_classes} "
                              f"classes; this run trained on {config.train_images:,} in {config.num_classes}. "
                              "Restore the dataset, or start a new run (nothing was changed).")
        return config
    if found.channels != config.channels and config.channels != 1:
        raise ConfigError(f"{config.dataset} has {found.channels} channel(s); this config asks with {config.channels}: "
                          f"drop channels={config.channels} (it is set from the dataset)")
    if config.batch_size > n:
        raise ConfigError(f"{config.dataset} has {n} training images, fewer than one batch "
                          f"(batch_size {config.batch_size}); use --set batch_size=N with N <= {n}")
    facts = {"data_key": found.key, "channels": found.channels, "num_classes": found.num_classes, "train_images": n}
    changed = {k: v for k, v in facts.items() if getattr(config, k) != v}
    return apply_overrides(config, changed) if changed else config


def _fit(trainer: Trainer, data: DeviceData, callbacks: list[Callback], notices: Sequence[str] = (),
         tune_malloc: bool = True) -> Trainer:
    if trainer.channels_last and trainer.config.memory_format == "auto":
        notices = [*notices, "note: the residual networks run channels-last (NHWC), measured faster on this "
                             "CPU (AVX-512); --set memory_format=nchw for the other layout"]
    if trainer.bf16 and trainer.config.precision == "auto":
        notices = [*notices, "note: the networks' forward passes run in bf16 (autocast): this CPU multiplies bf16 "
                             "natively, measured faster at the same quality; --precision fp32 for float32 throughout"]
    for notice in notices:
        _tell(callbacks, notice)
    if tune_malloc and trainer.device.type == "cpu":
        runtime.keep_freed_memory()
    with stop_on_signals(trainer, callbacks):
        trainer.fit(data, callbacks)
    return trainer


def train(config: TrainConfig, callbacks: Sequence[Callback] | None = None, tune_malloc: bool = True) -> Trainer:
    """Trains a new run into config.out; returns the trainer (its networks are trained).
    `callbacks` run after the default ones. Raises TrainingInterrupted after a signal, once
    a checkpoint is written. tune_malloc: see runtime.keep_freed_memory."""
    if config.tensorboard:
        TensorBoardLog.check_installed()
    device = training_device(config)
    out = Path(config.out)
    place = distributed.current()  # under torchrun only rank 0 touches the folder
    if place.main:
        check_run_dir(out)
    data, config, notices = _data(config, device)  # fails on bad data before any folder is made
    if not place.main:
        return _fit(Trainer(config, device), data, default_callbacks(config, out, data), tune_malloc=tune_malloc)
    lock = rundir.make(out)
    try:
        rundir.write_config(out, config.to_dict())
        everyone = [*default_callbacks(config, out, data), *(callbacks or [])]
        _tell(everyone, f"training preset {config.preset!r} on {config.dataset} into {config.out}"
                        + (f" with {place.world} processes" if place.active else ""))
        return _fit(Trainer(config, device), data, everyone, notices, tune_malloc)
    except BaseException:
        if not ckpt.list_checkpoints(out / rundir.CHECKPOINTS):  # nothing to resume: leave nothing behind
            rundir.remove_unstarted(out, lock)
        raise
    finally:
        lock.release()


def resume(run: str | os.PathLike, overrides: dict[str, Any] | None = None,
           callbacks: Sequence[Callback] | None = None, tune_malloc: bool = True) -> Trainer:
    """Continues a run exactly from its newest loadable checkpoint. Overrides that change the
    maths are refused; harmless ones (epochs, device, ...) are applied and recorded."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"run folder {run} does not exist")
    if not is_run(run):
        raise RunError(f"{run} is not a run folder (no config.json)")
    for key in ("out", "preset"):
        if (overrides or {}).get(key) is not None:
            raise ConfigError(f"--resume continues a run in its own folder with its own preset; "
                              f"{key} cannot be set (nothing was changed)")
    main = distributed.current().main  # under torchrun every process loads, rank 0 alone writes
    if main:
        rundir.check_layout(run)  # a link or FIFO where the run writes: refused before anything is written
    with RunLock(run) if main else contextlib.nullcontext():
        return _resume(run, overrides, callbacks, main, tune_malloc)


def _restorer(run: Path, overrides: dict[str, Any] | None, console: Sequence[Callback]):
    """restore(path, tensors, meta) -> (Trainer, changes) for checkpoint.newest_loadable: the
    saved config with the harmless overrides, a Trainer in the checkpoint's state."""
    def restore(path: Path, tensors: dict, meta: dict):
        saved = ckpt.config_of(path, meta)
        wanted = apply_overrides(saved, {k: v for k, v in (overrides or {}).items() if v is not None})
        changes = {k: v for k, v in wanted.to_dict().items() if v != getattr(saved, k)}
        refused = sorted(set(changes) & fixed_fields())
        if saved.data_key is None and "dataset" in changes:  # (a run from before the data's identity was kept)
            refused.append("dataset")
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
    return restore


def _resume(run: Path, overrides: dict[str, Any] | None, callbacks: Sequence[Callback] | None,
            main: bool, tune_malloc: bool) -> Trainer:
    console = [ConsoleReport()] if main else []
    path, (trainer, changes) = ckpt.newest_loadable(run, _restorer(run, overrides, console),
                                                    on_skip=lambda message: _tell(console, message),
                                                    layout=models.layout)
    config = trainer.config
    data, _, notices = _data(config, trainer.device, resuming=True)
    if not main:
        return _fit(trainer, data, default_callbacks(config, run, data), tune_malloc=tune_malloc)
    for folder in (run, run / rundir.CHECKPOINTS, run / rundir.SAMPLES):
        files.remove_stale_temporaries(folder)
    # Rows past the checkpoint belong to work that is about to be redone.
    rows = rundir.keep_rows_before(run, trainer.images_seen, trainer.images_seen >= config.total_images)
    purge = rows[-1]["images_seen"] + 1 if rows else 0  # TensorBoard hides the redone work's old steps
    rundir.write_config(run, config.to_dict())
    rundir.record_resume(run, path.name, trainer.images_seen, changes)
    _tell(console, f"resuming {run} from {path.name} ({trainer.images_seen:,} images seen, "
          f"epoch {trainer.epoch:.2f} of {config.epochs})")
    everyone = [*default_callbacks(config, run, data, purge), *(callbacks or [])]
    return _fit(trainer, data, everyone, notices, tune_malloc)


def _examples(data):
    """The first 100 training images, 100 x C x 28 x 28 uint8, for real_vs_fake.png."""
    return data.images[:100].cpu().numpy()
