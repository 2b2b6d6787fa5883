"""Images/s of one training step (both phases, optimisers, EMA) for presets and settings, on
random batches of the data's shape: the quick measure behind choosing a network size, one
configuration after another in one sitting (nothing else may run meanwhile).

    python benchmarks/step_speed.py --channels 3 --runs "r3gan" "r3gan width=24" "dcgan" "wgan-gp"
    python benchmarks/step_speed.py --channels 3 --runs "r3gan r1_gamma=0 r2_gamma=0"
    python benchmarks/step_speed.py --channels 3 --classes 1000 --rounds 3 --runs "r3gan" "r3gan reg_every=8"

With --rounds N the runs alternate N times and each one's median is printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from mnistgan.config import from_preset, parse_sets  # noqa: E402
from mnistgan.training.trainer import Trainer  # noqa: E402


def images_per_second(preset: str, sets: dict, channels: int, classes: int, steps: int, warm: int = 3) -> float:
    cfg = from_preset(preset, {"progress": False, "device": "cpu", "channels": channels, "num_classes": classes, **sets})
    t = Trainer(cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, channels, 28, 28, generator=gen)
    y = torch.randint(0, classes, (cfg.batch_size,), generator=gen)
    with t.process_settings():
        for _ in range(warm):
            t.train_step(x, y)
            t.images_seen += cfg.batch_size  # (the step's number: which steps update G, regularise)
        t0 = time.perf_counter()
        for _ in range(steps):
            t.train_step(x, y)
            t.images_seen += cfg.batch_size
        seconds = time.perf_counter() - t0
    return steps * cfg.batch_size / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=["r3gan", "dcgan"], help='"PRESET KEY=VALUE ..." each')
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10, help="the data's classes (stacked-mnist: 1000)")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--rounds", type=int, default=1, help="alternate the runs this many times; medians")
    a = p.parse_args()
    print(describe())
    rates: dict[str, list[float]] = {spec: [] for spec in a.runs}
    for r in range(a.rounds):
        for spec in a.runs:
            preset, *sets = spec.split()
            rates[spec].append(images_per_second(preset, parse_sets(sets), a.channels, a.classes, a.steps))
            print(f"{'round ' + str(r + 1) + ': ' if a.rounds > 1 else ''}{spec:<40} {rates[spec][-1]:8.0f} images/s",
                  flush=True)
    if a.rounds > 1:
        for spec, values in rates.items():
            print(f"median {spec:<40} {sorted(values)[len(values) // 2]:8.0f} images/s")


if __name__ == "__main__":
    main()
