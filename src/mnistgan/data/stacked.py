"""Stacked-MNIST's recipe: three MNIST digits as an image's red, green and blue channels."""
from __future__ import annotations

import numpy as np

# Stacked-MNIST (Metz et al. 2017; VEEGAN, PacGAN and R3GAN measure mode collapse on it): an
# image is three MNIST digits as its red, green and blue channels, so its class (mode) is
# one of 1,000 digit triples, 100 r + 10 g + b. Made from the MNIST files, deterministically:
# stack i's three digits are drawn independently and uniformly (numpy's PCG64 from the
# split's seed below, integers(0, N, size=(count, 3)), columns red, green, blue) from the
# training digits for the training stacks and from the test digits for the test stacks.
# 26,000 test stacks: the count the field reads forgeries at, so the real stacks' own modes
# and KL are measured at the same count.
STACKED = "stacked-mnist"
STACKS = {"train": (60000, 0), "test": (26000, 1)}  # split -> (stacks, seed)


def stack_digits(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count x 3 x 28 x 28 uint8 stacks, count labels 100 r + 10 g + b) from N x 28 x 28
    digits and their labels: each stack's red, green and blue digit drawn uniformly with
    replacement, numpy's default generator seeded with seed."""
    which = np.random.default_rng(seed).integers(0, len(images), size=(count, 3))  # count x (r, g, b)
    triples = labels.astype(np.int64)[which]                                        # count x 3 digits
    return np.ascontiguousarray(images[which]), triples @ np.array([100, 10, 1])


