"""Stacked-MNIST made from the real MNIST files: the recipe against recorded label hashes,
the real stacks' modes near the sampling floor, and forgeries of a few known triples read as
exactly those."""
import hashlib

import numpy as np
import pytest
import torch

from mnistgan import data, metrics
from mnistgan.metrics.classifier import FeatureNet


@pytest.fixture(scope="module")
def stacked(mnist_dir):
    return data.open_dataset("stacked-mnist", mnist_dir, download=False)


def test_stacked_mnist_from_the_mnist_files(stacked, mnist_dir):
    """Training stacks from training digits (seed 0), test stacks from test digits (seed 1),
    sizes as stated; the labels (which depend only on MNIST's canonical labels and numpy's
    generator) hash as recorded, on every machine."""
    assert stacked.channels == 3 and stacked.num_classes == 1000 and stacked.classes[123] == "123"
    train, train_labels = stacked.split("train")
    test, test_labels = stacked.split("test")
    assert train.shape == (60000, 3, 28, 28) and test.shape == (26000, 3, 28, 28)
    digits, labels = data.load_split("mnist", "train", mnist_dir, download=False)
    which = np.random.default_rng(0).integers(0, 60000, size=(60000, 3))
    assert np.array_equal(train[:500], digits[which[:500], 0])
    assert np.array_equal(train_labels, labels[which] @ np.array([100, 10, 1]))
    tdigits, _ = data.load_split("mnist", "test", mnist_dir, download=False)
    assert np.array_equal(test[:100], tdigits[np.random.default_rng(1).integers(0, 10000, size=(100, 3)), 0])
    assert hashlib.sha256(train_labels.astype(np.int64).tobytes()).hexdigest()[:16] == TRAIN_LABELS
    assert hashlib.sha256(test_labels.astype(np.int64).tobytes()).hexdigest()[:16] == TEST_LABELS
    assert len(np.unique(test_labels)) == 1000


TRAIN_LABELS = "392c82ff3a6383ff"  # sha256 of the training stacks' labels (int64), first 16 hex digits


TEST_LABELS = "98c83fd6722c926f"


def test_real_stacks_cover_every_mode_near_the_floor(stacked, mnist_dir):
    test, labels = stacked.split("test")
    result, _ = metrics.evaluate(test, "stacked-mnist", ["modes"], mnist_dir, download=False)
    m = result["metrics"]["modes"]
    assert m["modes"] == 1000 and m["n"] == 26000
    assert m["real_stacks"]["modes"] == 1000 and m["real_stacks"]["read_right"] > 0.95
    assert m["sampling_floor"]["kl"] < m["kl"] < 0.05    # above the floor (misreads), close to it
    assert m["kl"] == pytest.approx(m["real_stacks"]["kl"])  # the same images


def test_a_generator_of_a_few_triples_scores_exactly_them(mnist_dir):
    """Forgeries that are stacks of well-read test digits of seven (asymmetric) triples only:
    exactly 7 modes and KL log(1000/7); read with the channels swapped, or as their grey
    mean, the count or the triples would differ."""
    digits, labels = data.load_split("mnist", "test", mnist_dir, download=False)
    net = FeatureNet("mnist")
    _, probs = net(digits)
    sure = (probs.argmax(1).numpy() == labels) & (probs.max(1).values.numpy() > 0.999)
    triples = [(1, 2, 3), (3, 2, 1), (0, 0, 7), (7, 0, 0), (4, 5, 6), (9, 9, 9), (2, 8, 5)]
    rng = np.random.default_rng(0)
    stacks = []
    for t in triples:
        for _ in range(40):
            stacks.append(np.concatenate([digits[rng.choice(np.flatnonzero(sure & (labels == d)))] for d in t]))
    stacks = np.stack(stacks)
    result, ctx = metrics.evaluate(stacks, "stacked-mnist", ["modes"], mnist_dir, download=False)
    m = result["metrics"]["modes"]
    assert m["modes"] == 7 and m["kl"] == pytest.approx(np.log(1000 / 7))
    read = set(ctx.fake[1].argmax(1).tolist())
    assert read == {100 * r + 10 * g + b for r, g, b in triples}          # red is the hundreds
    assert 321 in read and 123 in read and 700 in read and 7 in read


def test_per_channel_features_are_the_channels_side_by_side(mnist_dir):
    digits, _ = data.load_split("mnist", "test", mnist_dir, download=False)
    stacks = np.stack([digits[:20], digits[20:40], digits[40:60]], axis=1)   # 20 x 3 x 28 x 28
    net, grey = FeatureNet("stacked-mnist"), FeatureNet("mnist")
    feats, probs = net(stacks)
    assert feats.shape == (20, 384) and probs.shape == (20, 1000)
    for c in range(3):
        torch.testing.assert_close(feats[:, 128 * c:128 * (c + 1)], grey(digits[20 * c:20 * (c + 1)])[0])
    torch.testing.assert_close(probs.sum(1), torch.ones(20, dtype=torch.float64))
    assert net.identity["name"] == "lenet-mnist-per-channel"


def test_data_check_describes_the_stacks_and_its_classifier_is_mnists(mnist_dir, capsys):
    from mnistgan.cli import main
    from mnistgan.errors import MnistganError
    from mnistgan.metrics.classifier import train_classifier

    assert main(["data", "check", "--dataset", "stacked-mnist", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "60000 stacks of three MNIST train digits (seed 0)" in out and "26000 stacks" in out
    with pytest.raises(MnistganError, match="read channel by channel by the mnist classifier"):
        train_classifier("stacked-mnist", mnist_dir)
