"""The Python API: train, load and evaluate in a notebook or a script, with the same config
keys, validation and errors as the command line (exceptions, not exits).

    import mnistgan
    run = mnistgan.train(preset="cdcgan", epochs=5, out="runs/c")   # same config keys as --set
    g = mnistgan.load("runs/c")                  # newest loadable checkpoint, EMA when present
    x = g.sample(16, digit=7, seed=0)            # uint8 numpy (N, 28, 28); g.sample_tensor(...) for torch
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
        from .callbacks import read_log

        return read_log(self.path)


def configure(preset: str = "seed", settings: dict[str, Any] | None = None, **more: Any) -> TrainConfig:
    """The validated config a new run of `preset` with these settings (a dict, keyword
    arguments, or both; None values are ignored) trains with (default out: runs/PRESET, or
    runs/PRESET-N when taken). Raises ConfigError naming a bad value."""
    from . import runs
    from .config import from_preset

    settings = {**(settings or {}), **more}
    out = settings.get("out") or str(runs.free_run_dir(Path("runs") / preset))
    return from_preset(preset, {**settings, "out": out})


def train(preset: str = "seed", *, resume: str | os.PathLike | None = None, callbacks: Sequence | None = None,
          config: TrainConfig | None = None, **settings: Any) -> Run:
    """Trains a new run (preset plus any config keys, e.g. epochs=5, out="runs/c", lr=1e-4;
    or a `config` from configure), or continues `resume` exactly (settings then may only
    change harmless keys such as epochs). Returns the Run. Raises ConfigError, DataError,
    CheckpointError like the CLI's one-line errors, and TrainingInterrupted after
    SIGINT/SIGTERM (a checkpoint is written)."""
    from . import runs

    if resume is not None:
        trainer = runs.resume(resume, settings, callbacks)
        return Run(Path(resume), trainer.config, trainer.images_seen)
    config = config if config is not None else configure(preset, settings)
    trainer = runs.train(config, callbacks)
    return Run(Path(config.out), trainer.config, trainer.images_seen)  # with what the dataset decided (classes, train_images)


class Generator:
    """A trained generator, ready to forge: the EMA weights when the run kept them (batch
    norm recalibrated), in eval mode."""

    def __init__(self, run_or_checkpoint: str | os.PathLike, device: str = "cpu"):
        from . import generation

        self.G, self.config = generation.load_generator(run_or_checkpoint, device)
        self.device = next(self.G.parameters()).device

    def sample(self, n: int = 64, digit: int | None = None, seed: int = 0) -> np.ndarray:
        """n forgeries, uint8 (n, 28, 28); the same (checkpoint, n, digit, seed) gives the same images."""
        from . import generation

        return generation.forge(self.G, self.config, n, seed, digit)

    def sample_tensor(self, n: int = 64, digit: int | None = None, seed: int = 0) -> torch.Tensor:
        """The same forgeries as sample(), as floats (n, 1, 28, 28) in [0, 1] on the CPU."""
        return torch.from_numpy(self.sample(n, digit, seed)).float().div_(255).unsqueeze(1)


def load(run_or_checkpoint: str | os.PathLike, device: str = "cpu") -> Generator:
    """The generator of a run's newest checkpoint (or of a checkpoint file)."""
    return Generator(run_or_checkpoint, device)


def evaluate(images, metrics: Sequence[str] | None = None, dataset: str = "mnist", data_dir=None,
             device: str = "cpu", invert: str = "auto") -> dict[str, Any]:
    """Measures forgeries (uint8 (N, 28, 28) or floats in [0, 1], numpy or torch) against the
    dataset's test split: {metric: {value name: number}}; all metrics when none are named.
    `dataset`: mnist, fashion-mnist, folder:PATH or idx:PATH (whose classifier must have been
    trained: `mnistgan classifier train --dataset ...`)."""
    from .metrics import evaluate as run_metrics

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    result, _ = run_metrics(images, dataset, list(metrics) if metrics else None, data_dir, device=device,
                             invert=invert)
    return result["metrics"]
