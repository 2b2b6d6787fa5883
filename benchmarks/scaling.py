"""Images/s of `mnistgan train` under torchrun with 1..N processes, and the bytes each step
all-reduces, per preset.

    python benchmarks/scaling.py --data-dir ../shared/data/mnist [--procs 1,2] [--presets seed,dcgan]
                                 [--device cpu|cuda]

Each (preset, process count) is one torchrun launch on 127.0.0.1 that trains a fixed number
of images; the figure is the training rate that the run's own log row records (pictures and
checkpoints excluded). On a 2-core CPU two processes share the cores that one process
already uses (2 threads): expect little or no gain there; the figure is reported as it is.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402  (the machine line every figure carries)

IMAGES = {"seed": 30000, "dcgan": 3200, "cdcgan": 3200, "wgan-gp": 3200, "best": 3200}


def allreduced_bytes(preset: str) -> tuple[int, int, float]:
    """(G parameters, D parameters, bytes all-reduced per step): D's gradients every step,
    G's every d_steps-th step, float32 (batch-norm sums and the statistics window are tiny)."""
    from mnistgan import models
    from mnistgan.config import from_preset

    c = from_preset(preset)
    G, D = models.build(c)
    g = sum(p.numel() for p in G.parameters())
    d = sum(p.numel() for p in D.parameters())
    return g, d, 4 * (d + g / c.d_steps)


def rate(preset: str, procs: int, data_dir: str, device: str, tmp: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp / f"{preset}-{procs}"
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc-per-node", str(procs), "--master-addr",
           "127.0.0.1", "--master-port", str(port), "-m", "mnistgan", "train", "--preset", preset, "--out",
           str(out), "--data-dir", data_dir, "--no-download", "--no-progress", "--device", device,
           "--set", f"train_images={IMAGES[preset]}", "--epochs", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return rows[-1]["images_per_s"]  # the second epoch: start-up excluded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--procs", default="1,2")
    p.add_argument("--presets", default="seed,dcgan")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    print(f"{describe()}; device {a.device}")
    procs = [int(x) for x in a.procs.split(",")]
    print(f"{'preset':<10}{'G params':>12}{'D params':>12}{'MB all-reduced/step':>22}"
          + "".join(f"{f'{n} proc img/s':>16}" for n in procs) + f"{'efficiency':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in a.presets.split(","):
            g, d, b = allreduced_bytes(preset)
            rates = [rate(preset, n, a.data_dir, a.device, Path(tmp)) for n in procs]
            eff = rates[-1] / (rates[0] * procs[-1] / procs[0])
            print(f"{preset:<10}{g:>12,}{d:>12,}{b / 1e6:>22.2f}" + "".join(f"{r:>16,.0f}" for r in rates)
                  + f"{eff:>12.2f}")


if __name__ == "__main__":
    main()
