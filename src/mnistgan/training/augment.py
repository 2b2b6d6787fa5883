"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020).

D judges real images and forgeries after the same random, differentiable transformation, so
it cannot win by memorising the training images' exact pixels, and G's gradient passes back
through the transformation. The grey-scale policies of the paper: `translation` (shift by up
to 1/8 of the side, zero fill) and `cutout` (a zeroed square of half the side). Written here
because the reference code is not a package, and its random draws must come from the run's
own noise stream (objectives.Draws) so that a resumed or multi-process run stays exact. Batched:
one gather or one mask for the whole batch, no per-image Python."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import registry

def parse(policy: str) -> list[str]:
    """'translation,cutout' -> ['translation', 'cutout']; '' -> []. ConfigError on unknown names."""
    return registry.check_list("augmentation", policy)


def translate(x: Tensor, shifts: Tensor, s: int) -> Tensor:
    """Each image shifted by its (dy, dx) row of `shifts` (B x 2 integers, each in [-s, s]),
    zeros shifted in. (s is given, not read from shifts: no device read in the step.)"""
    B, C, H, W = x.shape
    padded = torch.nn.functional.pad(x, (s, s, s, s))
    rows = torch.arange(H, device=x.device)[None, :] + s - shifts[:, :1]   # B x H: source row of each output row
    cols = torch.arange(W, device=x.device)[None, :] + s - shifts[:, 1:]   # B x W
    b = torch.arange(B, device=x.device)[:, None, None]
    return padded[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B x H x W x C) -> B x C x H x W


def cutout(x: Tensor, centres: Tensor, size: int) -> Tensor:
    """Each image with a size x size square around its (cy, cx) row of `centres` set to 0."""
    B, _, H, W = x.shape
    y = torch.arange(H, device=x.device)[None, :] - centres[:, :1] + size // 2   # B x H
    xx = torch.arange(W, device=x.device)[None, :] - centres[:, 1:] + size // 2  # B x W
    inside = ((y >= 0) & (y < size))[:, :, None] & ((xx >= 0) & (xx < size))[:, None, :]
    return x * (~inside).unsqueeze(1).to(x.dtype)


def augment(x: Tensor, policies: list[str], draw: Callable[..., Tensor]) -> Tensor:
    """x through each policy in turn; draw(fn, *shape) gives the batch's random draws
    (objectives.Draws: the run's noise stream, this process's share of the global batch)."""
    H = x.shape[-1]
    for p in policies:
        if p == "translation":
            s = H // 8
            x = translate(x, draw(lambda n, *shape, **kw: torch.randint(-s, s + 1, (n, *shape), **kw), 2), s)
        elif p == "cutout":
            x = cutout(x, draw(lambda n, *shape, **kw: torch.randint(0, H, (n, *shape), **kw), 2), H // 2)
    return x
