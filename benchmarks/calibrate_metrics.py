"""Calibration of mnistgan's metrics: what a good and a bad number look like.

    python benchmarks/calibrate_metrics.py [--dataset mnist] [--data-dir DIR] [--run RUN ...] [--write]

Evaluates, with n = 10,000 each: real training images (train[:10000]) against the test
split, uniform noise, and each --run given (its latest checkpoint, seed 0). Prints one
table; --write stores the references beside the shipped feature network
(src/mnistgan/metrics/weights/<dataset>-calibration.json), where `mnistgan evaluate`
prints them beside every result.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from mnistgan.data import load_split
from mnistgan.metrics import CALIBRATION, evaluate, flatten
from mnistgan.generation import sample

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN", help="a trained run to include, e.g. 'seed, 100 epochs=runs/seed'")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    train, _ = load_split(a.dataset, "train", a.data_dir, download=False, progress=False)
    sets = {"real train": train[:a.n],
            "uniform noise": np.random.default_rng(0).integers(0, 256, (a.n, 28, 28), dtype=np.uint8)}
    for item in a.run:
        name, _, run = item.rpartition("=")
        sets[name or run] = sample(run, n=a.n, seed=0)
    references = {}
    for name, imgs in sets.items():
        result, _ = evaluate(imgs, a.dataset, data_dir=a.data_dir, progress=False)
        references[name] = result
        print(f"{name}: done ({sum(result['seconds'].values()):.0f} s)", flush=True)
    table = {"references": references}
    flat = {name: flatten(r) for name, r in references.items()}
    keys = list(next(iter(flat.values())))
    print(f"{'metric':<26}" + "".join(f"{name:>22}" for name in flat))
    for key in keys:
        print(f"{key:<26}" + "".join(f"{f.get(key, float('nan')):>22.4g}" for f in flat.values()))
    if a.write:
        path = CALIBRATION / f"{a.dataset}-calibration.json"
        path.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
