"""The quality probe: a cheap FID in the log rows, so that curves show quality and not only losses."""
from __future__ import annotations

import numpy as np
import torch

from ..system import distributed, seeds
from .. import images
from .base import Callback


class QualityProbe(Callback):
    """Every eval_every epochs (and at the end): FID of eval_n forgeries (fixed noise) against
    the real test split, added to the epoch's log row as "fid". The feature network and real
    features are loaded once. Under torchrun each process draws and measures its share
    (distributed.share_and_gather) and rank 0 adds the number."""

    def __init__(self):
        self.reference = None

    def on_epoch_end(self, trainer, row):
        c = trainer.config
        if not c.eval_every or (row["epoch"] % c.eval_every and row["images_seen"] < c.total_images):
            return
        from ..metrics import Context, Reference, fid

        if self.reference is None:
            self.reference = Reference(c.dataset, c.data_dir, c.download, device=str(trainer.device), invert=c.invert,
                                       channels=c.channels)
        z = trainer.make_noise(c.eval_n, seeds.derived_seed(c.seed, seeds.EVAL_NOISE)).split(1000)

        def draw(share: slice) -> np.ndarray:  # classes cycle; a process may have no share of a small eval_n
            mine = z[share]
            return images.to_uint8(torch.cat([trainer.generate(chunk) for chunk in mine])) if mine else \
                np.zeros((0, *c.image_shape), np.uint8)

        if not trainer.dist.active:
            row["fid"] = fid(Context(draw(slice(0, len(z))), self.reference))["fid"]
            return

        def measured(share: slice):
            fakes = draw(share)
            return (torch.from_numpy(fakes), *self.reference.net(fakes))

        gathered = distributed.share_and_gather(len(z), measured, trainer.device)
        if gathered is not None:
            fakes, feats, probs = gathered
            row["fid"] = fid(Context(fakes.numpy(), self.reference, (feats, probs)))["fid"]
