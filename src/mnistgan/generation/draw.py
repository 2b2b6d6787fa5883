"""Forgeries drawn from a loaded generator: noise, the labels it is given, its images in
eval mode, and sampling many in chunks (the same images whatever the chunking)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import images
from ..config import TrainConfig
from ..errors import ConfigError
from ..store import files
from ..system import numbers, threads
from .load import load_generator
from .output import check_output, write

CHUNK = 1000  # forgeries per generator call when sampling many


def noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """n noise vectors N(0, 1) drawn on the CPU from seed (identical on every device)."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def cycle_labels(n: int, k: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Labels 0, 1, ..., k-1, 0, 1, ... for n forgeries: how every picture and sample of a
    model that takes labels goes through its classes (or codes) when no class is asked for."""
    return torch.arange(n, device=device) % k


def class_labels(config: TrainConfig, n: int, digit: int | None = None) -> torch.Tensor | None:
    """What a generator of this config is given for n forgeries: None (unconditional),
    classes (or codes) 0..K-1 in turn, or `digit` n times (conditional models only)."""
    if digit is None:
        return cycle_labels(n, config.label_count) if config.takes_labels else None
    if config.info_code:
        raise ConfigError("--digit needs a conditional model; this run's codes (info_code) are learned "
                          "without labels, so code k is not digit k")
    if not config.conditional:
        raise ConfigError("--digit needs a conditional model (e.g. --preset cdcgan); this run is unconditional")
    if not 0 <= digit < config.num_classes:
        raise ConfigError(f"--digit must be 0..{config.num_classes - 1} (this run's classes), got {digit}")
    return torch.full((n,), digit, dtype=torch.long)


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
             label_count: int = 0) -> torch.Tensor:
    """G's forgeries (B x C x 28 x 28 floats in [0, 1]) for noise z, in eval mode; a generator
    that takes labels and is given none draws its classes 0..K-1 in turn."""
    device = next(G.parameters()).device
    if label_count and labels is None:
        labels = cycle_labels(len(z), label_count, device)
    was_training = G.training
    G.eval()
    try:
        return G(z.to(device), None if labels is None else labels.to(device)).float()
    finally:
        G.train(was_training)


MAX_SAMPLES = 10_000_000   # forgeries one request may ask for (7.8 GB as uint8)
MAX_GRID = 10_000          # forgeries a PNG grid may show (100 x 100 at 2x: 6,004 pixels a side)


def whole(name: str, value, low: int = 0, high: int | None = None) -> int:
    """value as a whole number in low..high, as a Python caller must pass it: a bool, a float
    such as 7.5 or 2.0, or a string is refused, not passed on (numbers.whole, exact_type)."""
    return numbers.whole(value, name, low, high, what="a whole number", exact_type=True)


def _check_count(n: int) -> None:
    whole("n", n)
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if n > MAX_SAMPLES:
        raise ConfigError(f"--n must be at most {MAX_SAMPLES:,}, got {n:,}")


@torch.no_grad()
def sample_chunks(G: torch.nn.Module, config: TrainConfig, n: int, seed: int = 0,
                  digit: int | None = None, chunks: slice | None = None) -> Iterator[np.ndarray]:
    """n forgeries as uint8 arrays of at most CHUNK x C x 28 x 28, in order: what `sample`
    returns, one chunk in memory at a time. The noise is drawn in blocks of 16 chunks: torch
    draws a normal tensor in groups of 16 values, so blocks whose size is a multiple of 16
    make the same stream as one draw of all n x z_dim values (the images do not depend on n's
    split), while memory holds one block (16,000 x z_dim floats), whatever n. `chunks`
    (a slice of chunk numbers) yields only those: one process's share of the work, the
    same images as one process would make for them. (n is checked by its callers, forge and
    sample_to_file: once a request.)"""
    seed = whole("seed", seed, 0, 2**64 - 1)
    labels = class_labels(config, n, None if digit is None else whole("digit", digit, low=-2**63))
    gen = torch.Generator().manual_seed(seed)
    for block in range(0, n, 16 * CHUNK):
        z = torch.randn(min(16 * CHUNK, n - block), config.z_dim, generator=gen)
        for i, part in enumerate(z.split(CHUNK)):
            start = block + i * CHUNK
            if chunks is not None and not chunks.start <= start // CHUNK < chunks.stop:
                continue
            threads.tick()  # (the thread count follows the load inside threads.governed)
            yield images.to_uint8(generate(G, part, None if labels is None else labels[start:start + len(part)]))


def sample(run_or_checkpoint: str | os.PathLike, n: int = 64, seed: int = 0, device: str = "cpu",
           digit: int | None = None) -> np.ndarray:
    """n forgeries as the user gets them: an N x 28 x 28 uint8 array (colour: N x C x 28 x 28); the
    same (checkpoint, n, seed, digit) gives the same images. Conditional models draw `digit`,
    or classes 0..9 in turn."""
    G, config = load_generator(run_or_checkpoint, device)
    return images.public(forge(G, config, n, seed, digit))


def forge(G: torch.nn.Module, config: TrainConfig, n: int, seed: int = 0, digit: int | None = None,
          chunks: slice | None = None) -> np.ndarray:
    """sample_chunks' forgeries in one N x C x 28 x 28 uint8 array, filled chunk by chunk
    (memory holds the result and one chunk, not a list of chunks and their concatenation)."""
    _check_count(n)
    mine = range(-(-n // CHUNK))[chunks] if chunks is not None else range(-(-n // CHUNK))
    out = np.empty((sum(min(CHUNK, n - c * CHUNK) for c in mine), *config.image_shape), np.uint8)
    filled = 0
    for part in sample_chunks(G, config, n, seed, digit, chunks):
        out[filled:filled + len(part)] = part
        filled += len(part)
    return out


def sample_to_file(run_or_checkpoint: str | os.PathLike, out: str | os.PathLike, n: int = 64, seed: int = 0,
                   device: str = "cpu", digit: int | None = None, force: bool = False) -> Path:
    """Writes n forgeries to out: a .npy array written chunk by chunk (memory holds one
    chunk, whatever n), or a .png grid of at most MAX_GRID images. Checks the output
    (and the free disk space) before any work; never replaces a file unless force."""
    out = check_output(out, force)
    _check_count(n)
    png = out.suffix.lower() == ".png"
    if png and n > MAX_GRID:
        raise ConfigError(f"a PNG grid of {n:,} forgeries is no picture (at most {MAX_GRID:,}); "
                          "write a .npy array instead")
    G, config = load_generator(run_or_checkpoint, device)
    if png:
        return write(out, forge(G, config, n, seed, digit), force=force)
    need, free = 128 + n * 784 * config.channels, shutil.disk_usage(out.parent).free
    if need > free:
        raise ConfigError(f"{n:,} forgeries need {need / 2**30:.1f} GiB in {out.parent}, which has "
                          f"{free / 2**30:.1f} GiB free")
    try:
        files.write_npy_chunks(out, images.public_shape((n, *config.image_shape)),
                               map(images.public, sample_chunks(G, config, n, seed, digit)), overwrite=force)
    except FileExistsError:
        raise ConfigError(f"{out} already exists; nothing was overwritten (--force replaces it)") from None
    return out
