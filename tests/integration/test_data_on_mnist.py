"""The real MNIST copy: its files pass the structural checks, another registered dataset's files are
refused naming both, and a grey dataset keeps one channel while Stacked-MNIST sets three."""
import numpy as np
import pytest

from mnistgan import data
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError, DataError


def test_real_mnist_copy_passes_structural_validation(mnist_dir, isolated_env):
    images, labels = data.load_split("mnist", "train", mnist_dir, download=False)
    assert images.shape == (60000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and set(np.unique(labels)) == set(range(10))
    test_images, _ = data.load_split("mnist", "test", mnist_dir, download=False)
    assert test_images.shape == (10000, 1, 28, 28)


def test_the_wrong_dataset_is_refused_naming_both(mnist_dir, isolated_env, monkeypatch, tmp_path, capsys):
    """MNISTGAN_DATA_DIR (or --data-dir) at the MNIST copy with --dataset fashion-mnist: one
    line naming both datasets, before any run folder is made."""
    from mnistgan.cli import main

    monkeypatch.setenv("MNISTGAN_DATA_DIR", str(mnist_dir))
    with pytest.raises(DataError, match=r"\(from \$MNISTGAN_DATA_DIR\) holds mnist, not fashion-mnist: "
                                        r"its train labels are mnist's"):
        data.load_split("fashion-mnist", "train", download=False)
    assert data.load_split("mnist", "test", download=False)[0].shape == (10000, 1, 28, 28)  # the right one loads
    monkeypatch.delenv("MNISTGAN_DATA_DIR")
    code = main(["train", "--dataset", "fashion-mnist", "--data-dir", str(mnist_dir), "--no-download",
                 "--no-progress", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and "holds mnist, not fashion-mnist" in err and "(from --data-dir)" in err
    assert not (tmp_path / "r").exists()


def test_a_grey_dataset_refuses_three_channels_and_stacked_mnist_sets_them(mnist_dir):
    from mnistgan.runs import fit_to_data

    grey = from_preset("seed", {"channels": 3, "data_dir": str(mnist_dir), "train_images": 100})
    with pytest.raises(ConfigError, match="mnist has 1 channel"):
        fit_to_data(grey, data.training_set(grey, "cpu")[1])
    stacked = from_preset("dcgan", {"dataset": "stacked-mnist", "data_dir": str(mnist_dir), "train_images": 100})
    d, found, _ = data.training_set(stacked, "cpu")
    config = fit_to_data(stacked, found)
    assert found == data.Found("stacked-mnist", 3, 1000, 60000)
    assert config.channels == 3 and config.num_classes == 1000 and d.images.shape == (100, 3, 28, 28)
