"""The Python API: train, load and evaluate in a notebook or a script, with the same config
keys, validation and errors as the command line (exceptions, not exits).

    import mnistgan
    run = mnistgan.train(preset="cdcgan", epochs=5, out="runs/c")   # same config keys as --set
    g = mnistgan.load("runs/c")                  # newest loadable checkpoint, EMA when present
    x = g.sample(16, digit=7, seed=0)            # uint8 numpy (N, 28, 28), colour (N, 3, 28, 28); g.sample_tensor(...) for torch
    scores = mnistgan.evaluate(x, metrics=["fid", "coverage"])
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .config import TrainConfig


@dataclass(frozen=True)
class Run:
    """A run folder and the config it trained with."""
    path: Path
    config: TrainConfig
    images_seen: int = 0  # when train returned: the config's total, or fewer after max_seconds

    def log(self) -> list[dict[str, Any]]:
        """The epoch rows of log.jsonl."""
        from .store.rundir import read_log

        return read_log(self.path)


def configure(preset: str = "seed", settings: dict[str, Any] | None = None, **more: Any) -> TrainConfig:
    """The validated config a new run of `preset` with these settings (a dict, keyword
    arguments, or both; None values are ignored) trains with (default out: runs/PRESET, or
    runs/PRESET-N when taken; under torchrun out must be given). Raises ConfigError naming a
    bad value."""
    from . import runs
    from .config import from_preset

    settings = {**(settings or {}), **more}
    out = settings.get("out") or runs.default_out(preset)
    return from_preset(preset, {**settings, "out": out})


def train(preset: str | None = None, *, resume: str | os.PathLike | None = None, callbacks: Sequence | None = None,
          config: TrainConfig | None = None, tune_malloc: bool = True, settings: dict[str, Any] | None = None,
          **more: Any) -> Run:
    """Trains a new run (preset, default "seed", plus any config keys as a `settings` dict,
    keyword arguments or both, e.g. epochs=5, out="runs/c", lr=1e-4; or a `config` from
    configure), or continues `resume` exactly (settings then may only change harmless keys
    such as epochs). Returns the Run. Raises
    ConfigError, DataError, RunError (CheckpointError among them) like the CLI's one-line errors, and
    TrainingInterrupted after SIGINT/SIGTERM (a checkpoint is written).

    Under torchrun it behaves as `mnistgan train` does: it joins the process group (and
    leaves it), and after a restart of the group (`torchrun --max-restarts N`) it continues
    the run in `out` from its newest checkpoint.

    What it changes in the process: while it trains, the run's own float settings are in
    force (denormal floats flushed to zero on every CPU thread as config flush_denormals
    says, TF32 on CUDA as config tf32 says), and both are restored when it returns. On a
    CPU it also tunes glibc's malloc to keep freed memory for reuse (the conv presets train
    faster), which lasts for the rest of the process: tune_malloc=False leaves malloc as it
    was (runtime.keep_freed_memory)."""
    from . import runs
    from .callbacks import Callback
    from .errors import ConfigError

    settings = {**(settings or {}), **more}
    if callbacks is not None and (isinstance(callbacks, (str, bytes, Callback)) or
                                  not all(isinstance(cb, Callback) for cb in callbacks)):
        raise ConfigError(f"callbacks must be a list of mnistgan.callbacks.Callback objects, got {callbacks!r}")
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise ConfigError(f"resume must be a run folder's path, got {resume!r}")
    if resume is not None:
        if preset is not None or config is not None:
            raise ConfigError("resume continues a run with its own preset and config; preset and config do not apply")
        trainer = runs.start(resume_from=resume, overrides=settings, callbacks=callbacks, tune_malloc=tune_malloc)
    else:
        if config is not None and (preset is not None or settings):
            raise ConfigError("give either a config (from configure) or a preset with settings, not both")
        config = config if config is not None else configure(preset or "seed", settings)
        trainer = runs.start(config, overrides=settings, callbacks=callbacks, tune_malloc=tune_malloc)
    # (with what the dataset decided: classes, train_images)
    return Run(Path(trainer.config.out), trainer.config, trainer.images_seen)


class Generator:
    """A trained generator, ready to forge: the EMA weights when the run kept them (batch
    norm recalibrated), in eval mode."""

    def __init__(self, run_or_checkpoint: str | os.PathLike, device: str = "cpu"):
        from . import generation
        from .errors import ConfigError

        if not isinstance(run_or_checkpoint, (str, os.PathLike)):
            raise ConfigError(f"load takes a run folder, a checkpoint file, a model folder or 'pretrained:NAME', "
                              f"got {run_or_checkpoint!r}")

        self.G, self.config = generation.load_generator(run_or_checkpoint, device)
        self.device = next(self.G.parameters()).device

    def sample(self, n: int = 64, digit: int | None = None, seed: int = 0) -> np.ndarray:
        """n forgeries, uint8 (n, 28, 28), or (n, C, 28, 28) for a colour run; the same
        (checkpoint, n, digit, seed) gives the same images."""
        from . import generation, images

        return images.public(generation.forge(self.G, self.config, n, seed, digit))

    def sample_tensor(self, n: int = 64, digit: int | None = None, seed: int = 0) -> torch.Tensor:
        """The same forgeries as sample(), as floats (n, C, 28, 28) in [0, 1] on the CPU."""
        from . import generation

        return torch.from_numpy(generation.forge(self.G, self.config, n, seed, digit)).float().div_(255)


def load(run_or_checkpoint: str | os.PathLike, device: str = "cpu") -> Generator:
    """The generator of a run's newest checkpoint, of a checkpoint file, of a model folder
    (`export --format hub`) or of the package's zoo: load("pretrained:best-mnist")."""
    return Generator(run_or_checkpoint, device)


def evaluate(images, metrics: Sequence[str] | None = None, dataset: str = "mnist", data_dir=None,
             device: str = "cpu", invert: str = "auto") -> dict[str, Any]:
    """Measures forgeries (uint8 (N, 28, 28) or (N, 3, 28, 28), or floats in [0, 1], numpy or torch) against the
    dataset's test split: {metric: {value name: number}}; all metrics when none are named.
    `dataset`: mnist, fashion-mnist, folder:PATH or idx:PATH (whose classifier must have been
    trained: `mnistgan classifier train --dataset ...`)."""
    from .metrics import evaluate as run_metrics

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    result, _ = run_metrics(images, dataset, list(metrics) if metrics else None, data_dir, device=device,
                             invert=invert)
    return result["metrics"]
