"""IDX files (the format MNIST and its kin ship in), read as a stream that stops one byte
past the size their header promises, which is checked first: structure (magic number,
dimensions, counts, label range) is validated, never a checksum (a user's own copy may be
re-encoded)."""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension


# What an IDX file of each kind must be: its magic number and its shape after the count.
KINDS = {"images": (IMAGE_MAGIC, (28, 28), "N x 28 x 28 images"), "labels": (LABEL_MAGIC, (), "N labels")}
MAX_IDX_BYTES = 1 << 31  # data an IDX file may promise (2 GiB; MNIST's training images are 47 MB)
MAX_LABELS = MAX_IDX_BYTES // (28 * 28)  # labels a file may promise: one per image of a largest image file


def _describe(magic: int, dims: tuple[int, ...]) -> str:
    kind = next((k for k, (m, _, _) in KINDS.items() if m == magic), None)
    what = {"images": "an image file", "labels": "a label file"}.get(kind, "an IDX file")
    return f"{what} (magic 0x{magic:08x}, {' x '.join(map(str, dims)) or 'no dimensions'})"


def read_idx(path: str | os.PathLike, kind: str | None = None, count: int | None = None) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (gzip-compressed or raw), checking its header
    before its data: the magic number (and, given `kind`, that it is an image or a label
    file), the item count (given `count`), then exactly the bytes the header promises. Sizes
    are computed with Python integers and gzip data is decompressed as a stream that stops
    one byte past the promised size, so a crafted header or a decompression bomb costs
    nothing."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            return _read_idx_stream(f, path, kind, count)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e}); delete the file and fetch it again") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _read_idx_stream(f, path: Path, kind: str | None, count: int | None) -> np.ndarray:
    raw = f.read(4)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header (expected at least 4)")
    magic = int.from_bytes(raw, "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: bad magic number 0x{magic:08x}; expected 0x{IMAGE_MAGIC:08x} "
                        f"(images) or 0x{LABEL_MAGIC:08x} (labels): not an IDX file of unsigned bytes")
    ndim = raw[3]
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{path}: header truncated ({4 + len(raw)} bytes, expected {4 + 4 * ndim})")
    dims = tuple(int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    if kind is not None:
        want_magic, item, what = KINDS[kind]
        if magic != want_magic or dims[1:] != item:
            raise DataError(f"{path}: is {_describe(magic, dims)}; expected {kind[:-1]} data: "
                            f"magic 0x{want_magic:08x}, {what}")
        if count is not None and dims[0] != count:
            raise DataError(f"{path}: its header says it holds {dims[0]} {kind}; expected {count}")
    size = math.prod(dims)  # a Python integer: no overflow
    shape = " x ".join(map(str, dims))
    if ndim == 1 and dims[0] > MAX_LABELS:  # (a label per image: no more labels than images could be read)
        raise DataError(f"{path}: its header promises {dims[0]:,} labels, more than the {MAX_LABELS:,} images "
                        "this reader accepts")
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path}: its header ({shape}) promises {size:,} bytes of data, more than the "
                        f"{MAX_IDX_BYTES:,} this reader accepts")
    data = f.read(size + 1)
    if len(data) < size:
        raise DataError(f"{path}: holds {len(data)} bytes of data but its header ({shape}) promises {size} "
                        "(truncated?)")
    if len(data) > size:
        raise DataError(f"{path}: holds more data than the {size} bytes its header ({shape}) promises")
    return np.frombuffer(data, np.uint8).reshape(dims).copy()  # writable, owns its memory


def read_images(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """Reads an IDX image file: N x 28 x 28 unsigned bytes (N = count when given)."""
    return read_idx(path, "images", count)


def read_labels(path: str | os.PathLike, count: int | None = None, num_classes: int = 10) -> np.ndarray:
    """Reads an IDX label file: N unsigned bytes, each below num_classes."""
    arr = read_idx(path, "labels", count)
    if arr.size and int(arr.max()) >= num_classes:
        bad = int(np.argmax(arr >= num_classes))
        raise DataError(f"{path}: label {int(arr[bad])} at index {bad} is out of range; "
                        f"expected 0..{num_classes - 1}")
    return arr


