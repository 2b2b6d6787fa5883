"""TensorBoard's log of a run (`--tensorboard`; needs the tensorboard package)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import images
from ..store import rundir
from .base import Callback


class TensorBoardLog(Callback):
    """RUN/tensorboard/ for TensorBoard (`--tensorboard`; needs the tensorboard package): per
    epoch row, at step = images seen, the scalars below and the fixed-noise grid; at the end
    the config as hparams with the final row's numbers as its metrics. A resumed run appends
    to the same folder; `purge_step` (one past the last row kept in log.jsonl) hides what the
    interrupted process logged after it, so no step appears twice."""

    SCALARS = {"d_loss": "loss/D", "g_loss": "loss/G", "d_real": "D(x)", "d_fake": "D(G(z))",
               "images_per_s": "speed/images_per_s", "fid": "quality/fid"}

    def __init__(self, path: str | os.PathLike, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(path) / rundir.TENSORBOARD), purge_step=purge_step)
        self.last: dict[str, Any] = {}

    @staticmethod
    def check_installed() -> None:
        """Fails in one line, before any work, when the tensorboard package is missing."""
        import importlib.util

        from ..errors import ConfigError

        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError('--tensorboard needs the tensorboard package: pip install "mnistgan[tensorboard]"')

    def on_epoch_end(self, trainer, row):
        step = row["images_seen"]
        for key, tag in self.SCALARS.items():
            if isinstance(row.get(key), (int, float)):
                self.writer.add_scalar(tag, row[key], step)
        grid = images.grid(images.to_uint8(trainer.generate_fixed()))
        self.writer.add_image("forgeries/fixed_noise", grid, step, dataformats="HW" if grid.ndim == 2 else "HWC")
        self.writer.flush()
        self.last = row

    def on_train_end(self, trainer):
        from torch.utils.tensorboard.summary import hparams

        config = {k: ("none" if v is None else v) for k, v in trainer.config.to_dict().items()
                  if v is None or isinstance(v, (bool, int, float, str))}
        final = {f"final/{k}": float(self.last[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake", "fid")
                 if isinstance(self.last.get(k), (int, float))}
        for summary in hparams(config, final):  # in this run's own folder (add_hparams would make another)
            self.writer.file_writer.add_summary(summary)
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, self.last.get("images_seen", 0))
        self.writer.close()
