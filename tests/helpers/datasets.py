"""Synthetic datasets in MNIST's file format."""
import gzip
from pathlib import Path

import numpy as np


def write_idx(path, array, magic=None, compress=True):
    """Writes an IDX file of unsigned bytes (optionally with a wrong magic number)."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_dataset(folder, n_train=60000, n_test=10000, seed=0):
    """A synthetic MNIST-shaped dataset with the canonical file names."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder
