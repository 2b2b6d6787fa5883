"""A run's random streams: a derived seed for each purpose, and the capture and restore of
every random number generator's state, so that a run is a pure function of its config and
its state fits in a checkpoint."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# Purposes of derived seeds: each random stream of a run has its own.
WEIGHTS, NOISE, FIXED_NOISE, STRIP_NOISE, GLOBAL, EVAL_NOISE = 0, 1, 2, 3, 4, 5


def derived_seed(*words: int) -> int:
    """A well-mixed 63-bit seed for one purpose (weights, noise, fixed noise, ...)."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def seed_global_rngs(seed: int) -> None:
    """Seeds torch's (CPU and CUDA), numpy's and Python's global generators. The loop draws
    from its own generators; this makes anything else that draws (a user's callback, a
    library) repeatable too, and the saved RNG states the same in every process."""
    s = derived_seed(seed, GLOBAL)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)


def capture_rng(noise: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON) holding the states of the run's noise generator and of torch's,
    CUDA's, numpy's and Python's global generators."""
    tensors = {"rng.noise": noise.get_state(), "rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = st
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    return tensors, {"rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                     "rng_python": [version, list(internal), gauss]}


def restore_rng(noise: torch.Generator, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Sets every generator back to what capture_rng saved."""
    noise.set_state(tensors["rng.noise"])
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            if f"rng.cuda.{i}" in tensors:
                torch.cuda.set_rng_state(tensors[f"rng.cuda.{i}"], i)
    name, keys, *rest = meta["rng_numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = meta["rng_python"]
    random.setstate((version, tuple(internal), gauss))
