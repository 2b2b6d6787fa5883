"""Pictures of a run: grids, the seed's strip, the progress GIF and sheet, loss curves and
the real-versus-forgery figure. Pure functions of arrays; nothing here trains.

Uses matplotlib's object-oriented Figure (no pyplot global state, no display needed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image


def to_uint8(images) -> np.ndarray:
    """B x C x 28 x 28 floats in [0, 1] (a tensor or an array) -> B x C x 28 x 28 uint8 images,
    the one layout of every image array inside the package (C = 1 grey, 3 colour)."""
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    arr = np.asarray(images, dtype=np.float32)
    return (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def public(images: np.ndarray) -> np.ndarray:
    """Images as the user gets them (`sample`'s .npy, `Generator.sample`, walks): a grey
    image's channel axis dropped (... x 28 x 28), colour ones as they are (... x C x 28 x 28).
    The only place the package leaves its N x C x 28 x 28 layout."""
    return images.reshape(public_shape(images.shape))


def public_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of `public`'s array for an array of this shape."""
    return shape[:-3] + shape[-2:] if shape[-3] == 1 else shape


def is_colour(images: np.ndarray) -> bool:
    """Whether N x C x H x W images have more than one channel."""
    return images.shape[1] > 1


def picture(image: np.ndarray) -> np.ndarray:
    """One C x H x W image as a picture library draws it: H x W (grey) or H x W x C (colour)."""
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def grid(images: np.ndarray, nrow: int = 10, pad: int = 2, fill: int = 0) -> np.ndarray:
    """Tiles N x C x H x W uint8 images into rows of nrow, with pad pixels between them: an
    H' x W' (grey) or H' x W' x C (colour) picture."""
    colour = is_colour(images)
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    rows = -(-n // nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad) + ((images.shape[1],) if colour else ()),
                  fill, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = picture(images[i])
    return out


def read_picture(path: str | os.PathLike) -> np.ndarray:
    """A saved picture as a uint8 array: H x W if it is grey, H x W x 3 if it is in colour."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L" if img.mode in ("L", "1", "P", "I", "I;16", "F") else "RGB"))


def grid_row(tiled: np.ndarray, diagonal: bool = False, n: int = 10, size: int = 28, pad: int = 2) -> np.ndarray:
    """n images of a tiled n x n grid (as `grid` makes it, grey or colour): its first row, or its diagonal
    (a conditional grid's rows are classes, so the diagonal shows every class)."""
    step = size + pad
    row = np.stack([tiled[pad + step * (i if diagonal else 0):step + step * (i if diagonal else 0),
                          pad + step * i:step + step * i] for i in range(n)])
    return row[:, None] if tiled.ndim == 2 else np.ascontiguousarray(row.transpose(0, 3, 1, 2))  # N x C x H x W


def save_grid(path, images: np.ndarray, nrow: int = 10, scale: int = 1):
    """Saves uint8 images as one PNG grid (grey, or RGB for colour images) to a path or a binary file."""
    img = Image.fromarray(grid(images, nrow))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path, format="PNG")
    return path


def save_strip(path: str | os.PathLike, images: np.ndarray) -> Path:
    """The seed tutorial's picture: one row of forgeries in matplotlib's default colour map
    (figsize (n, 1), axes off, saved with bbox_inches='tight')."""
    n = len(images)
    fig = Figure(figsize=(n, 1))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, img in zip(axes, images):
        ax.set_axis_off()
        ax.imshow(picture(img).astype(np.float32) / 255.0)  # (colour images are drawn in their own colours)
    fig.savefig(path, bbox_inches="tight", format="png")
    return path


def save_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], ms_per_frame: int = 150) -> Path:
    """An animated GIF of uint8 pictures (H x W grey, or H x W x 3 colour: each frame given a
    palette of its own colours); the last frame is held longer."""
    pics = [Image.fromarray(f).convert("P") if f.ndim == 2 else Image.fromarray(f).quantize(256) for f in frames]
    durations = [ms_per_frame] * (len(pics) - 1) + [max(ms_per_frame, 1500)]
    pics[0].save(path, format="GIF", save_all=True, append_images=pics[1:], duration=durations, loop=0)
    return path


def save_progress_sheet(path: str | os.PathLike, rows: Sequence[tuple[int, np.ndarray]]) -> Path:
    """One row per saved epoch (its forgeries of the same fixed noise), labelled with the
    epoch: the whole forging process on one sheet."""
    strips = [grid(images, nrow=len(images), pad=2) for _, images in rows]
    sheet = np.concatenate(strips, axis=0)
    height = strips[0].shape[0]
    fig = Figure(figsize=(sheet.shape[1] / 40 + 1.2, sheet.shape[0] / 40 + 0.5))
    ax = fig.subplots()
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([height * i + height / 2 for i in range(len(rows))], [f"epoch {e}" for e, _ in rows])
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("Forgeries of one fixed noise batch, epoch by epoch", fontsize=10)
    fig.savefig(path, bbox_inches="tight", dpi=100, format="png")
    return path


def save_losses(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """D and G loss, D(x) and D(G(z)) against epochs; and FID when the run logged it."""
    x = [r["images_seen"] / max(1, r["images_per_epoch"]) for r in rows]
    fid = [(xi, r["fid"]) for xi, r in zip(x, rows) if r.get("fid") is not None]
    fig = Figure(figsize=(13.5 if fid else 9, 3.5))
    axes = fig.subplots(1, 3 if fid else 2)
    ax1, ax2 = axes[0], axes[1]
    ax1.plot(x, [r["d_loss"] for r in rows], label="D loss")
    ax1.plot(x, [r["g_loss"] for r in rows], label="G loss")
    ax1.set_xlabel("epoch")
    ax1.set_title("losses (epoch means)")
    ax1.legend()
    ax2.plot(x, [r["d_real"] for r in rows], label="D(x), real")
    ax2.plot(x, [r["d_fake"] for r in rows], label="D(G(z)), forged")
    ax2.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("epoch")
    ax2.set_title("the police officer's verdicts")
    ax2.legend()
    if fid:
        axes[2].plot(*zip(*fid), marker="o", color="C2")
        axes[2].set_yscale("log")
        axes[2].set_xlabel("epoch")
        axes[2].set_title("FID (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path


def save_real_vs_fake(path: str | os.PathLike, real: np.ndarray, fake: np.ndarray, nrow: int = 10) -> Path:
    """Real digits beside forgeries, as two grids."""
    fig = Figure(figsize=(10, 5.4))
    for ax, images, title in zip(fig.subplots(1, 2), (real, fake), ("real", "forged")):
        ax.imshow(grid(images, nrow), cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path


def save_novelty(path, forgeries: np.ndarray, train: np.ndarray, dists, idxs,
                 rows: int = 8) -> Path:
    """Forgeries, each beside its three nearest training images with their pixel distances:
    the "original versus forgery" comparison, measured. Shows the closest forgeries first
    half and random ones after, so both copies and typical cases are seen."""
    d = np.asarray(dists)[:, 0]
    closest = list(np.argsort(d)[:rows // 2])
    rng = np.random.default_rng(0)
    rest = [i for i in rng.permutation(len(d)) if i not in closest][:rows - len(closest)]
    chosen = closest + rest
    fig = Figure(figsize=(6, 1.6 * len(chosen)))
    axes = fig.subplots(len(chosen), 4, squeeze=False)
    for r, i in enumerate(chosen):
        panels = [(forgeries[i], "forgery")] + [(train[int(idxs[i][j])], f"train #{int(idxs[i][j])}\nd = {float(dists[i][j]):.2f}")
                                                for j in range(3)]
        for c, (img, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(picture(img), cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
            ax.set_title(title, fontsize=8)
    fig.suptitle("Forgeries and their nearest training images (pixel L2, images in [0, 1])", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    return path
