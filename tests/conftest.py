import gzip
import os
from pathlib import Path

import numpy as np
import torch
import pytest

from mnistgan.config import from_preset

TIMING = {"seconds", "images_per_s"}  # log columns that are wall-clock figures

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No user cache, no data dir from the environment: tests see only what they make."""
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MNISTGAN_DATA_DIR", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST copy (../shared/data/mnist beside the repo, or $MNISTGAN_TEST_DATA)."""
    path = Path(os.environ.get("MNISTGAN_TEST_DATA", REPO.parent / "shared" / "data" / "mnist"))
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST copy not found at {path} (set MNISTGAN_TEST_DATA)")
    return path


@pytest.fixture
def tiny_config(tmp_path):
    """A seed config that trains a few steps on a small slice."""
    return from_preset("seed", {"train_images": 1000, "batch_size": 100, "epochs": 2,
                                "progress": False, "out": str(tmp_path / "run"), "device": "cpu"})


def final_state(run: Path):
    """Everything in the newest checkpoint but wall-clock figures."""
    from mnistgan.store import checkpoint as ckpt

    tensors, meta = ckpt.load(ckpt.list_checkpoints(run / "checkpoints")[-1])
    meta = {k: v for k, v in meta.items() if k not in ("epoch_seconds", "train_seconds", "config")}
    return tensors, meta


def log_without_timing(run: Path):
    from mnistgan.runs import read_log

    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_log(run)]


def assert_same_run(a: Path, b: Path):
    """Two runs ended bit-identical: every tensor and metadata value of the newest checkpoint
    (but wall-clock figures and the config, which names the folder), and every log row."""
    ta, ma = final_state(a)
    tb, mb = final_state(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert ma == mb
    assert log_without_timing(a) == log_without_timing(b)
