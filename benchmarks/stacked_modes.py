"""Stacked-MNIST's mode count for presets at one training budget, side by side: each preset
trains on stacked-mnist for --seconds of training time (pictures and checkpoints excluded),
one after another (never two at once: they would share the cores), then its newest
checkpoint is evaluated (`mnistgan evaluate RUN --metrics modes`: 26,000 forgeries, each
channel read by the MNIST classifier). Prints modes covered and reverse KL beside the real
test stacks' and the sampling floor, with the machine line.

    python benchmarks/stacked_modes.py --presets r3gan,dcgan --seconds 120
    python benchmarks/stacked_modes.py --presets r3gan --seconds 3600 --keep runs/
    python benchmarks/stacked_modes.py --runs "r3gan" "r3gan reg_every=8" --seconds 600

The published numbers (R3GAN, Huang et al. 2024, Table 3; 26,000 samples) are printed below
for comparison: DCGAN 99 / 3.40, WGAN-GP 959 / 0.73, PacGAN 992 / 0.28, StyleGAN2 940 /
0.42, PresGAN 1000 / 0.12, DDGAN 1000 / 0.071, MEG 1000 / 0.031, R3GAN 1000 / 0.029.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402

PUBLISHED = [("DCGAN", 99, 3.40), ("WGAN-GP", 959, 0.73), ("PacGAN", 992, 0.28), ("StyleGAN2", 940, 0.42),
             ("PresGAN", 1000, 0.12), ("DDGAN", 1000, 0.071), ("MEG", 1000, 0.031), ("R3GAN", 1000, 0.029)]


def one(spec: str, seconds: float, folder: Path, data_dir: str, sets: list[str]) -> dict:
    """Trains and evaluates one run: spec is "PRESET [KEY=VALUE ...]"."""
    preset, *own = spec.split()
    sets = [*sets, *own]
    run = folder / "-".join(spec.split()).replace("=", "")
    mnistgan = [sys.executable, "-m", "mnistgan"]
    extra = [a for s in sets for a in ("--set", s)]
    subprocess.run([*mnistgan, "train", "--preset", preset, "--dataset", "stacked-mnist", "--data-dir", data_dir,
                    "--out", str(run), "--epochs", "1000", "--set", f"max_seconds={seconds}", "--no-progress", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*mnistgan, "evaluate", str(run), "--metrics", "modes", "--data-dir", data_dir],
                   check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    modes = json.loads((run / "metrics.json").read_text())["metrics"]["modes"]
    return {"preset": spec, "images": rows[-1]["images_seen"],
            "epochs": rows[-1]["images_seen"] / rows[-1]["images_per_epoch"],
            "train_s": sum(r["seconds"] for r in rows), **modes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="r3gan,dcgan")
    p.add_argument("--runs", nargs="+", help='instead of --presets: "PRESET KEY=VALUE ..." each')
    p.add_argument("--seconds", type=float, default=120.0, help="training time per preset")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every preset")
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--keep", help="folder to keep the runs in (default: a temporary one)")
    a = p.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(a.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = [one(spec, a.seconds, folder, a.data_dir, a.set) for spec in (a.runs or a.presets.split(","))]
    print(f"\nStacked-MNIST, {a.seconds:g} s of training each, 26,000 forgeries read channel by channel")
    print(f"{'preset':<24}{'images':>10}{'epochs':>8}{'modes':>7}{'KL':>8}")
    for r in results:
        print(f"{r['preset']:<24}{r['images']:>10,}{r['epochs']:>8.2f}{r['modes']:>7}{r['kl']:>8.3f}")
    real, floor = results[0]["real_stacks"], results[0]["sampling_floor"]
    print(f"{'real stacks':<42}{real['modes']:>7}{real['kl']:>8.3f}   (test digits, read right {real['read_right']:.3f})")
    print(f"{'sampling floor':<42}{floor['modes']:>7.0f}{floor['kl']:>8.3f}")
    print("published (R3GAN, Table 3): " + ", ".join(f"{n} {m} / {k}" for n, m, k in PUBLISHED))


if __name__ == "__main__":
    main()
