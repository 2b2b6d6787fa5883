"""Latent walks: a spherical walk between two noise vectors, and for a conditional model a
walk across its classes with the noise fixed."""
from __future__ import annotations

import os

import numpy as np
import torch

from .. import images
from ..config import TrainConfig
from ..errors import ConfigError
from .draw import class_labels, generate, noise
from .load import load_generator

MAX_WALK = 1_000  # steps of a latent walk (a row of 1,000 forgeries; its slerp and images stay small)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors (Shoemake 1985; White 2016 for GANs)."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so


@torch.no_grad()
def interpolate(run_or_checkpoint: str | os.PathLike, steps: int = 10, seed: int = 0, device: str = "cpu",
                digit: int | None = None) -> np.ndarray:
    """Latent walks, as rows of `steps` images (rows x steps x C x 28 x 28 uint8): a spherical walk
    between two noise vectors; for a conditional model also a walk across its classes
    with the noise fixed (the label embedding interpolated linearly, 0 -> 1 -> ... -> K-1)."""
    if not 2 <= steps <= MAX_WALK:
        raise ConfigError(f"--n must be 2..{MAX_WALK:,} steps for an interpolation, got {steps:,}")
    G, config = load_generator(run_or_checkpoint, device)
    return walk(G, config, steps, seed, digit)


@torch.no_grad()
def walk(G: torch.nn.Module, config: TrainConfig, steps: int = 10, seed: int = 0, digit: int | None = None) -> np.ndarray:
    """interpolate's walks for a loaded generator."""
    if not 2 <= steps <= MAX_WALK:
        raise ConfigError(f"a walk takes 2..{MAX_WALK:,} steps, got {steps:,}")
    dev = next(G.parameters()).device
    a, b = noise(2, config.z_dim, seed)
    z = slerp(a, b, torch.linspace(0, 1, steps))
    rows = [generate(G, z, class_labels(config, steps, digit))]
    if config.takes_labels:
        emb = G.class_embeddings()                             # K x embed_dim
        k = emb.shape[0]
        t = torch.linspace(0, k - 1, steps, device=dev)
        lo = t.floor().long().clamp(max=k - 2)
        w = (t - lo)[:, None]
        between = (1 - w) * emb[lo] + w * emb[lo + 1]
        rows.append(G(a.to(dev).expand(steps, -1), class_embedding=between).float())
    return np.stack([images.to_uint8(r) for r in rows])
