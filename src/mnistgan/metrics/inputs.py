"""Forgeries as a user hands them to an evaluation (arrays, or a .npy file of any tool's),
checked and brought to the package's N x C x 28 x 28 uint8 layout."""
from __future__ import annotations

import numpy as np

from ..errors import MnistganError

MAX_IMAGES = 100_000  # images one evaluation takes: their features (N x 128 float64) stay in memory


def as_uint8_images(images, what: str = "images", chunk: int = 10_000) -> np.ndarray:
    """N x C x 28 x 28 uint8 images (the package's layout) from what a user gives: uint8
    images or floats in [0, 1], N x 28 x 28, N x 1 x 28 x 28 or N x 3 x 28 x 28 (a
    memory-mapped array is converted chunk by chunk). Refuses other dtypes (bool, complex,
    other integers, objects), non-finite values and out-of-range floats, naming the first
    bad image."""
    images = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if images.ndim == 3 and images.shape[1:] == (28, 28):  # a grey user's layout (images.public)
        images = images[:, None]
    if not (images.ndim == 4 and images.shape[1:] in ((1, 28, 28), (3, 28, 28))):
        raise MnistganError(f"{what} must be N x 28 x 28 (grey) or N x 3 x 28 x 28 (colour), got shape {images.shape}")
    n = len(images)
    if n < 10:
        raise MnistganError(f"at least 10 images are needed to evaluate, got {n}")
    if n > MAX_IMAGES:
        raise MnistganError(f"{what} holds {n:,} images; an evaluation takes at most {MAX_IMAGES:,}")
    if images.dtype == np.uint8:  # a writable copy of a memory map (torch needs writable arrays)
        return np.array(images) if not images.flags.writeable else np.ascontiguousarray(images)
    if images.dtype.kind != "f":
        raise MnistganError(f"{what} holds {images.dtype} values; expected uint8 (0..255) or floats in [0, 1]")
    out = np.empty(images.shape, np.uint8)
    for start in range(0, n, chunk):
        part = np.asarray(images[start:start + chunk], dtype=np.float64)
        bad = ~np.isfinite(part)
        if bad.any():
            i = start + int(np.argmax(bad.reshape(len(part), -1).any(1)))
            raise MnistganError(f"{what}: image {i} holds a non-finite value ({part.flat[np.argmax(bad)]})")
        if part.min() < 0 or part.max() > 1:
            raise MnistganError(f"{what}: float images must lie in [0, 1] (uint8 images in 0..255); "
                                f"found values from {part.min():g} to {part.max():g}")
        out[start:start + len(part)] = (part * 255).round().astype(np.uint8)
    return out


def read_images(path) -> np.ndarray:
    """The forgeries of a .npy file (N x 28 x 28 or N x 3 x 28 x 28: uint8, or floats in [0, 1]), never
    unpickled, read through a memory map and checked before use (see as_uint8_images)."""
    what = f"--images {path}"
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise MnistganError(f"{what} is not a .npy file (no NumPy header)")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise MnistganError(f"cannot read {what}: {e.strerror or e}") from None
    except ValueError as e:  # a damaged header, object arrays, a file shorter than its header says
        raise MnistganError(f"cannot read {what}: {e}") from None
    return as_uint8_images(arr, what)
