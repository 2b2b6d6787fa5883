"""Forgeries from a trained generator: loading one from a checkpoint (the EMA generator,
its batch-norm statistics recomputed), noise and labels, sampling in chunks, latent walks,
and writing the result. The one place the CLI, the metrics and the Trainer's pictures draw
forgeries from; nothing here trains.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .store import checkpoint as ckpt
from .store import files
from . import images
from .system import runtime, threads
from .config import TrainConfig
from .errors import ConfigError

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
    gen = torch.Generator().manual_seed(runtime.derived_seed(config.seed, runtime.EVAL_NOISE, 1))
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
    or of a run's newest checkpoint that loads (checkpoint.open_checkpoint): one whose
    config or tensors do not fit is skipped there, before anything is allocated for it."""
    from . import models

    def restore(path: Path, tensors: dict, meta: dict) -> tuple[Networks, bool]:
        config = ckpt.config_of(path, meta)
        G, D = models.build(config)
        sampled = ckpt.sampled_generator(tensors)
        ckpt.load_module(sampled, G, tensors, path)
        if discriminator:
            ckpt.load_module(ckpt.D, D, tensors, path)
        return Networks(path, G, D if discriminator else None, config), sampled == ckpt.G_EMA

    dev = runtime.resolve_device(device)  # (a bad device fails before anything is read)
    _, (nets, ema) = ckpt.open_checkpoint(run_or_checkpoint, models.layout, restore)
    nets.G = nets.G.to(dev)
    if ema:
        recalibrate_batch_norm(nets.G, nets.config, dev)
    nets.G.eval()
    if discriminator:
        nets.D = nets.D.to(dev).eval()
    return nets


MAX_SAMPLES = 10_000_000   # forgeries one request may ask for (7.8 GB as uint8)
MAX_GRID = 10_000          # forgeries a PNG grid may show (100 x 100 at 2x: 6,004 pixels a side)
MAX_WALK = 1_000           # steps of a latent walk (a row of 1,000 forgeries; its slerp and images stay small)


def whole(name: str, value, low: int = 0, high: int | None = None, optional: bool = False):
    """value as a whole number in low..high (None allowed when optional), or a ConfigError
    naming it: a bool, a float such as 7.5, or a string is refused, not passed on."""
    import numbers

    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be {low}..{high if high is not None else ''}, got {value}")
    return int(value)


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
    labels = class_labels(config, n, whole("digit", digit, optional=True, low=-2**63))
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
    if out.suffix.lower() == ".png":
        if n > MAX_GRID:
            raise ConfigError(f"a PNG grid of {n:,} forgeries is no picture (at most {MAX_GRID:,}); "
                              "write a .npy array instead")
        return write(out, sample(run_or_checkpoint, n, seed, device, digit), force=force)
    G, config = load_generator(run_or_checkpoint, device)
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


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors (Shoemake 1985; White 2016 for GANs)."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so


@torch.no_grad()
def interpolate(run_or_checkpoint: str | os.PathLike, steps: int = 10, seed: int = 0, device: str = "cpu",
                digit: int | None = None) -> np.ndarray:
    """Latent walks, as rows of `steps` images (rows x steps x 28 x 28 uint8; colour: rows x steps x C x 28 x 28): a spherical walk
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


def check_output(out: str | os.PathLike, force: bool = False) -> Path:
    """out as a Path if forgeries can be written there: .png or .npy, in a folder that
    exists, and no file there yet (unless force)."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png or .npy, got {str(out)!r}")
    files.check_outputs([out], force)
    return out


def write(out: str | os.PathLike, forgeries: np.ndarray, nrow: int | None = None, force: bool = False,
          walks: bool = False) -> Path:
    """Writes uint8 forgeries (N x C x 28 x 28; with walks, rows x steps x C x 28 x 28) as a
    .npy array (a grey image's channel axis dropped: images.public) or a .png grid (nrow images a row: default about square, at most 10;
    walks: a row per walk), atomically; an existing file is replaced only with force."""
    out = check_output(out, force)
    try:
        if out.suffix.lower() == ".npy":
            files.write_npy(out, images.public(forgeries), overwrite=force)
        else:
            if walks:
                nrow = nrow or forgeries.shape[1]
            flat = forgeries.reshape(-1, *forgeries.shape[2 if walks else 1:])
            with files.atomic_file(out, overwrite=force) as f:
                images.save_grid(f, flat, nrow=nrow or min(10, int(np.ceil(np.sqrt(len(flat))))), scale=2)
    except FileExistsError:
        raise ConfigError(f"{out} already exists; nothing was overwritten (--force replaces it)") from None
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    return out
