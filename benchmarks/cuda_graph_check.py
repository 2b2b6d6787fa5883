"""The captured training step (`cuda_graph`, graphs.py) against the uncaptured one, on a GPU.

    python benchmarks/cuda_graph_check.py [--presets seed,dcgan,cdcgan,wgan-gp,best] [--steps 60]
                                          [--seconds 5] [--device cuda]

For each preset: two trainers from the same seed, one replaying CUDA graphs, one not, take
the same real batches (random images: the check is of arithmetic, not of learning); then
every tensor of their state (G, D, EMA, both optimisers) is compared, and the largest
difference printed relative to the tensor's scale. Then images/s of both for --seconds.
The bar: equal within float tolerance (the graphed step's adam-tf1 is the
same maths in another order, so not bit for bit); the seed's 100 epochs under 30 s of
training time and `dcgan` above 50,000 images/s on an H200.
Needs CUDA; on a CPU it says so and exits 2 (the CPU tests cover the plumbing around the
capture: tests/unit/test_graphs.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from mnistgan.config import from_preset
from mnistgan.data import DeviceData
from mnistgan.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402


def trainers(preset: str, device: str):
    base = {"progress": False, "device": device, "train_images": 6400}
    return Trainer(from_preset(preset, base)), Trainer(from_preset(preset, {**base, "cuda_graph": True}))


def data(n: int, device) -> DeviceData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8).numpy()
    labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8).numpy()
    return DeviceData(images, labels, device)


def run(t: Trainer, d: DeviceData, steps: int) -> None:
    B = t.config.batch_size
    order = d.epoch_order(0, 0)
    with t.process_settings():
        for s in range(steps):
            t.stats.window[0].copy_(t.train_step(*d.batch(order, s % (len(d) // B), B)))
            t.images_seen += B


def compare(a: Trainer, b: Trainer) -> tuple[str, float]:
    """(name, largest |difference| / max(|tensor|, 1e-12)) over the states' tensors."""
    worst = ("", 0.0)
    sa, sb = a.state()[0], b.state()[0]
    for name in sorted(sa):
        if name.startswith("rng"):
            continue
        x, y = sa[name].double(), sb[name].to(sa[name].device).double()
        rel = float((x - y).abs().max() / x.abs().max().clamp_min(1e-12)) if x.numel() else 0.0
        if rel > worst[1]:
            worst = (name, rel)
    return worst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="seed,dcgan,cdcgan,wgan-gp,best")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to capture (tests/unit/test_graphs.py checks the CPU side)")
        return 2
    print(f"{describe()}; GPU {torch.cuda.get_device_name(a.device)}, CUDA {torch.version.cuda}")
    d = data(6400, torch.device(a.device))
    failed = False
    for preset in a.presets.split(","):
        eager, graphed = trainers(preset, a.device)
        run(eager, d, a.steps)
        run(graphed, d, a.steps)
        rngs_equal = torch.equal(eager.noise.get_state(), graphed.noise.get_state())
        name, rel = compare(eager, graphed)
        ok = rel < 1e-4 and rngs_equal
        failed |= not ok
        rates = []
        for t in (eager, graphed):
            torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < a.seconds:
                run(t, d, 50)
                n += 50
                torch.cuda.synchronize()
            rates.append(n * t.config.batch_size / (time.perf_counter() - t0))
        print(f"{preset:>8}: after {a.steps} steps largest relative difference {rel:.2e} ({name or '-'}), "
              f"noise streams {'equal' if rngs_equal else 'DIFFER'}: {'ok' if ok else 'FAIL'} | "
              f"images/s uncaptured {rates[0]:,.0f}, graphed {rates[1]:,.0f} ({rates[1] / rates[0]:.2f}x)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
