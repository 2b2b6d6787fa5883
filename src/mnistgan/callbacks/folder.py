"""The run folder as training fills it (the layout is rundir's): log rows, pictures and
checkpoints as the run goes, and the summary figures at its end."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import checkpoint as ckpt
from .. import images, rundir, runtime
from .base import Callback


class RunFolder(Callback):
    """Writes log rows, pictures and checkpoints as the run goes, and the summary figures at
    its end. Everything is derived from files on disk, so a resumed run's figures cover the
    whole run. A stop request (on_interrupt) writes a checkpoint: this is the callback that
    makes a signal safe."""

    def __init__(self, path: str | os.PathLike, real_examples: np.ndarray):
        self.path = Path(path)
        self.samples = self.path / rundir.SAMPLES
        self.checkpoints = self.path / rundir.CHECKPOINTS
        self.real_examples = real_examples  # 100 x 28 x 28 (colour: 100 x 3 x 28 x 28) uint8 for real_vs_fake.png

    def on_epoch_end(self, trainer, row):
        c, e = trainer.config, row["epoch"]
        rundir.append_row(self.path, row)
        images.save_grid(self.samples / f"grid-{e:03d}.png", images.to_uint8(trainer.generate_fixed()))
        if e == 1 or e % c.strip_every == 0 or row["images_seen"] >= c.total_images or row["partial"]:
            z = trainer.make_noise(10, runtime.derived_seed(c.seed, runtime.STRIP_NOISE, e))  # conditional: 0..9
            images.save_strip(self.samples / f"{e:03d}.png", images.to_uint8(trainer.generate(z)))
        self.save_checkpoint(trainer)

    def on_interrupt(self, trainer):
        self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer) -> Path:
        tensors, meta = trainer.state()
        path = ckpt.save(self.checkpoints / ckpt.filename(trainer.images_seen), tensors, meta)
        ckpt.prune(self.checkpoints, trainer.config.keep_checkpoints)
        return path

    def on_train_end(self, trainer):
        c = trainer.config
        rows = rundir.read_log(self.path)
        grids = sorted(self.samples.glob("grid-*.png"))
        if grids:
            images.save_gif(self.path / "progress.gif", [images.read_picture(p) for p in grids])
            last = int(grids[-1].stem.split("-")[1])
            wanted = sorted({1, last, *range(c.strip_every, last + 1, c.strip_every)})
            sheet = [(e, images.grid_row(images.read_picture(self.samples / f"grid-{e:03d}.png"), c.takes_labels))
                     for e in wanted if (self.samples / f"grid-{e:03d}.png").exists()]
            images.save_progress_sheet(self.path / "progress.png", sheet)
        if rows:
            images.save_losses(self.path / "losses.png", rows)
        images.save_real_vs_fake(self.path / "real_vs_fake.png", self.real_examples,
                                 images.to_uint8(trainer.generate_fixed()))
