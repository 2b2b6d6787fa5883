"""runtime: devices, derived seeds, RNG capture and restore."""
import random

import numpy as np
import pytest
import torch

from mnistgan import runtime
from mnistgan.errors import ConfigError


def test_derived_seeds_are_stable_distinct_and_63_bit():
    seeds = [runtime.derived_seed(0, p) for p in range(6)]
    assert len(set(seeds)) == 6 and all(0 <= s < 2**63 for s in seeds)
    assert runtime.derived_seed(0, runtime.NOISE) == runtime.derived_seed(0, runtime.NOISE)
    assert runtime.derived_seed(0, runtime.NOISE) != runtime.derived_seed(1, runtime.NOISE)


def test_rng_capture_and_restore_round_trip():
    noise = torch.Generator().manual_seed(3)
    runtime.seed_global_rngs(7)
    torch.randn(3, generator=noise)
    tensors, meta = runtime.capture_rng(noise)
    ahead = (torch.randn(3, generator=noise), torch.rand(2), np.random.rand(2), random.random())
    other = torch.Generator().manual_seed(99)
    runtime.seed_global_rngs(8)
    runtime.restore_rng(other, tensors, meta)
    again = (torch.randn(3, generator=other), torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(ahead[0], again[0]) and torch.equal(ahead[1], again[1])
    assert np.array_equal(ahead[2], again[2]) and ahead[3] == again[3]


def test_device_choice():
    assert runtime.resolve_device("cpu").type == "cpu"
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available here; use --device cpu"):
            runtime.resolve_device("cuda")
