"""Stacked-MNIST on synthetic digits: the recipe (deterministic, as it says), and the mode
metric's numbers against hand computation (tests/integration/test_stacked_on_mnist.py has
the real dataset)."""
import numpy as np
import pytest

from mnistgan import data, metrics


def test_stacks_follow_the_recipe_on_synthetic_digits():
    """Stack i's red, green, blue digits are numpy's default_rng(seed).integers(0, N, (count, 3))
    [i]; its label 100 r + 10 g + b; the same seed gives the same stacks."""
    rng = np.random.default_rng(5)
    digits = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50)
    stacks, triples = data.stack_digits(digits, labels, 200, seed=7)
    which = np.random.default_rng(7).integers(0, 50, size=(200, 3))
    assert stacks.shape == (200, 3, 28, 28) and stacks.dtype == np.uint8
    for i in (0, 1, 99, 199):
        for c in range(3):
            assert np.array_equal(stacks[i, c], digits[which[i, c]])
        assert triples[i] == 100 * labels[which[i, 0]] + 10 * labels[which[i, 1]] + labels[which[i, 2]]
    again, again_labels = data.stack_digits(digits, labels, 200, seed=7)
    assert np.array_equal(again, stacks) and np.array_equal(again_labels, triples)
    other, _ = data.stack_digits(digits, labels, 200, seed=8)
    assert not np.array_equal(other, stacks)


def test_mode_histogram_and_kl_against_hand_computation():
    covered, kl = metrics.mode_histogram(np.array([0, 0, 1, 2]), k=4)
    # q = (1/2, 1/4, 1/4, 0): KL(q || uniform) = 1/2 log 2 + 2 * 1/4 log 1 = 0.3466
    assert covered == 3 and kl == pytest.approx(0.5 * np.log(2))
    assert metrics.mode_histogram(np.arange(1000)) == (1000, pytest.approx(0.0, abs=1e-12))
    # seven modes drawn equally: KL = log(1000 / 7), against uniform over all 1,000
    assert metrics.mode_histogram(np.repeat([3, 50, 123, 321, 456, 789, 999], 10))[1] == pytest.approx(np.log(1000 / 7))


def test_the_sampling_floor_is_the_multinomial_one():
    """At n uniform draws over k modes the reverse KL is about (k - 1) / 2n, and the modes
    covered about k (1 - e^(-n/k))."""
    floor = metrics.sampling_floor(26000, draws=50)
    assert floor["kl"] == pytest.approx(999 / 52000, rel=0.1)
    assert floor["modes"] == pytest.approx(1000 * (1 - np.exp(-26)), abs=0.5)
    small = metrics.sampling_floor(2000, draws=50)
    assert small["modes"] == pytest.approx(1000 * (1 - np.exp(-2)), rel=0.02)
