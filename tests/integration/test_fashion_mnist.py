"""Fashion-MNIST from Debian's dataset-fashion-mnist: every preset trains on it and its shipped
classifier meets its bar (skipped where the package is not installed)."""
from pathlib import Path

import pytest

from mnistgan.config import PRESETS, from_preset
from mnistgan.metrics.classifier import FeatureNet


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_on_fashion_mnist(preset, tmp_path, isolated_env):
    from mnistgan.runs import train

    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    cfg = from_preset(preset, {"dataset": "fashion-mnist", "train_images": 512, "epochs": 1, "progress": False,
                               "device": "cpu", "download": False, "out": str(tmp_path / "run"),
                               "eval_every": 1, "eval_n": 200})
    train(cfg)
    import json

    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert row["fid"] > 0  # measured with the shipped fashion-mnist network


def test_shipped_fashion_classifier_meets_the_bar(isolated_env):
    from mnistgan.data import load_split

    if not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    net = FeatureNet("fashion-mnist")
    images, labels = load_split("fashion-mnist", "test", None, download=False)
    _, probs = net(images)
    assert float((probs.argmax(1).numpy() == labels).mean()) >= 0.90
