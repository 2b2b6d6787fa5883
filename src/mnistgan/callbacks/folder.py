"""The run folder as training fills it (the layout is rundir's): log rows, pictures and
checkpoints as the run goes, and the summary figures at its end."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..store import checkpoint as ckpt
from .. import images
from ..store import rundir
from ..system import seeds
from .base import Callback


class RunFolder(Callback):
    """Writes log rows, pictures and checkpoints as the run goes, and the summary figures at
    its end. Everything is derived from files on disk, so a resumed run's figures cover the
    whole run. A stop request (on_interrupt) writes a checkpoint: this is the callback that
    makes a signal safe."""

    def __init__(self, path: str | os.PathLike, real_examples: np.ndarray):
        self.path = Path(path)
        self.checkpoints = self.path / rundir.CHECKPOINTS
        self.real_examples = real_examples  # 100 x 28 x 28 (colour: 100 x 3 x 28 x 28) uint8 for real_vs_fake.png

    def _picture(self, rel: str, draw, *args) -> None:
        """draw(file, *args) into the run's file rel, never through a link (rundir.writing);
        not fsynced (a resume draws the pictures again), as they were before."""
        with rundir.writing(self.path, rel, durable=False) as f:
            draw(f, *args)

    def on_epoch_end(self, trainer, row):
        c, e = trainer.config, row["epoch"]
        rundir.append_row(self.path, row)
        self._picture(f"{rundir.SAMPLES}/grid-{e:03d}.png", images.save_grid, images.to_uint8(trainer.generate_fixed()))
        if e == 1 or e % c.strip_every == 0 or row["images_seen"] >= c.total_images or row["partial"]:
            z = trainer.make_noise(10, seeds.derived_seed(c.seed, seeds.STRIP_NOISE, e))  # conditional: 0..9
            self._picture(f"{rundir.SAMPLES}/{e:03d}.png", images.save_strip, images.to_uint8(trainer.generate(z)))
        self.save_checkpoint(trainer)

    def on_interrupt(self, trainer):
        self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer) -> Path:
        tensors, meta = trainer.state()
        path = ckpt.save(self.checkpoints / ckpt.filename(trainer.images_seen), tensors, meta, root=self.path)
        ckpt.prune(self.checkpoints, trainer.config.keep_checkpoints, root=self.path)
        return path

    def on_train_end(self, trainer):
        c = trainer.config
        rows = rundir.read_log(self.path)
        grids = rundir.grids(self.path)  # (epoch, path), by epoch as a number
        if grids:
            self._picture("progress.gif", images.save_gif, [images.read_picture(p) for _, p in grids])
            last = grids[-1][0]
            wanted = {1, last, *range(c.strip_every, last + 1, c.strip_every)}
            sheet = [(e, images.grid_row(images.read_picture(p), c.takes_labels)) for e, p in grids if e in wanted]
            self._picture("progress.png", images.save_progress_sheet, sheet)
        if rows:
            self._picture("losses.png", images.save_losses, rows)
        self._picture("real_vs_fake.png", images.save_real_vs_fake, self.real_examples,
                      images.to_uint8(trainer.generate_fixed()))
