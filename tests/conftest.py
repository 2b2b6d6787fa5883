"""Fixtures every layer shares. The layers are folders: `unit/` (one concern on synthetic
data, in one process; the real MNIST copy is refused there), `integration/` (the real MNIST
copy, Debian's Fashion-MNIST, several processes, learning bars, golden hashes) and
`browser/` (the web page in a real Chromium); `helpers/` holds what tests share besides
fixtures (synthetic datasets, run comparisons, shapes, golden runs). A test's folder gives it its layer's marker: `pytest -m "not integration"`."""
import os
from pathlib import Path

import pytest
import torch

# Tests compare runs bit for bit (resume against a longer run, a kill then a resume, a repeat).
# A run's numbers depend on its thread count (MKL's sgemm splits some products' sums over the
# threads: the seed's 100 x 784 x 256 product differs at 1 and 2 threads), and the default
# count follows the load (system/threads.py): on a busy machine it changes midway through one
# run and not the other. So the suite fixes the count the way a user would, with
# OMP_NUM_THREADS (children inherit it), at torch's own count; the governor's following of the
# load is tested on its own (unit/test_threads.py clears the variable).
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))

from helpers.datasets import make_dataset
from mnistgan.config import from_preset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory):
    """A synthetic MNIST-shaped folder (60,000 and 10,000 random images and labels under the
    canonical file names: no registered dataset's labels), made once and shared: read it only."""
    return make_dataset(tmp_path_factory.mktemp("fake-mnist"))


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


def pytest_collection_modifyitems(items):
    """Each test gets its layer's marker (integration, browser) from its folder."""
    for item in items:
        layer = Path(str(item.fspath)).parent.name
        if layer in ("integration", "browser"):
            item.add_marker(layer)
