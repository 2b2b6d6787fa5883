"""A checkpoint's networks, ready to draw from: the EMA generator when the run kept one (its
batch-norm statistics recomputed for its weights), the discriminator on request."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TrainConfig
from ..store import checkpoint as ckpt
from ..store import modelfolder
from ..system import runtime, seeds


@torch.no_grad()
def recalibrate_batch_norm(G: torch.nn.Module, config: TrainConfig, device, batches: int = 8, size: int = 256) -> None:
    """Recomputes G's batch-norm running statistics for its current weights: the exact
    average over `batches` fixed noise batches (momentum None). An EMA generator needs this:
    the raw G's statistics belong to other weights, and sampling with them was measured to
    score clearly worse. Deterministic, so resumed runs stay exact.

    Not torch.optim.swa_utils.update_bn, which does the same for a loader of inputs: it
    passes each batch's first element alone to the model, and a conditional generator must
    also be given its labels; and its batches would have to be drawn here anyway."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = G.training
    G.train()
    gen = torch.Generator().manual_seed(seeds.derived_seed(config.seed, seeds.EVAL_NOISE, 1))
    for _ in range(batches):
        z = torch.randn(size, config.z_dim, generator=gen).to(device)
        labels = torch.randint(0, config.label_count, (size,), generator=gen).to(device) if config.takes_labels else None
        G(z, labels)
    for m, mom in zip(norms, momenta):
        m.momentum = mom
    G.train(was_training)


def load_generator(run_or_checkpoint: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """(generator in eval mode, config) from a run folder's newest loadable checkpoint or a
    checkpoint file: the EMA generator when the run kept one (its batch-norm statistics
    recomputed)."""
    nets = load_networks(run_or_checkpoint, device, discriminator=False)
    return nets.G, nets.config


@dataclass
class Networks:
    """A checkpoint's networks, ready to use: G as sampled (load_generator), D or None."""
    path: Path                     # the checkpoint they came from
    G: torch.nn.Module
    D: torch.nn.Module | None
    config: TrainConfig


def load_networks(run_or_checkpoint: str | os.PathLike, device: str = "cpu", discriminator: bool = True) -> Networks:
    """G (and D in eval mode, unless discriminator=False) from one read of a checkpoint file,
    of a run's newest checkpoint that loads (checkpoint.open_checkpoint: one whose config or
    tensors do not fit is skipped there, before anything is allocated for it), of a model
    folder (store/modelfolder.py: what `export --format hub` writes), or of the package's
    zoo ("pretrained:NAME", mnistgan.zoo)."""
    from .. import models, zoo

    where = zoo.resolve(run_or_checkpoint)
    if modelfolder.is_model_folder(where):
        return _from_model_folder(where, runtime.resolve_device(device), discriminator)

    def restore(path: Path, tensors: dict, meta: dict) -> tuple[Networks, bool]:
        config = ckpt.config_of(path, meta)
        G, D = models.build(config)
        sampled = ckpt.sampled_generator(tensors)
        ckpt.load_module(sampled, G, tensors, path)
        if discriminator:
            ckpt.load_module(ckpt.D, D, tensors, path)
        return Networks(path, G, D if discriminator else None, config), sampled == ckpt.G_EMA

    dev = runtime.resolve_device(device)  # (a bad device fails before anything is read)
    _, (nets, ema) = ckpt.open_checkpoint(where, models.layout, restore)
    nets.G = nets.G.to(dev)
    if ema:
        recalibrate_batch_norm(nets.G, nets.config, dev)
    nets.G.eval()
    if discriminator:
        nets.D = nets.D.to(dev).eval()
    return nets


def _from_model_folder(folder: Path, dev: torch.device, discriminator: bool) -> Networks:
    """A model folder's networks: its G is already the sampled one (statistics recomputed)."""
    from .. import models

    path, tensors, meta = modelfolder.load(folder, models.layout)
    config = ckpt.config_of(path, meta)
    G, D = models.build(config)
    ckpt.load_module(ckpt.G, G, tensors, path)
    if discriminator:
        ckpt.load_module(ckpt.D, D, tensors, path)
    return Networks(path, G.to(dev).eval(), D.to(dev).eval() if discriminator else None, config)
