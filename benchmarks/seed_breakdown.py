"""Where the seed step's time goes, on this machine, in one process: the whole training step
beside its parts, each timed alone with the same tensors and shapes.

    python benchmarks/seed_breakdown.py [--seconds 3] [--rounds 3] [--data-dir DIR]

Parts: the 14 matrix products of the step (replayed with torch.mm/addmm on the step's own
operand layouts: transposed views where the step uses them), the two fused Adam updates
(433,000 parameters), the batch gather (index_select of uint8 rows, to float), the noise draw.
The rest of the step (ReLU slopes, sigmoid, softplus, sums, statistics, Python) is the
difference. Rounds alternate the measurements, and the medians are printed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from mnistgan.config import from_preset
from mnistgan.data import DeviceData, load_split
from mnistgan.training.trainer import Trainer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402


def per_call(fn, seconds: float) -> float:
    """Seconds per call of fn, over about `seconds`."""
    for _ in range(20):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            fn()
        n += 20
    return (time.perf_counter() - t0) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    a = p.parse_args()
    print(describe())
    images, labels = load_split("mnist", "train", a.data_dir, download=False, progress=False)
    data = DeviceData(images, labels)
    cfg = from_preset("seed", {"progress": False, "device": "cpu"})
    t = Trainer(cfg, torch.device("cpu"))
    t.process_settings().__enter__()  # the run's float settings (denormals flushed), for the rest of this script
    assert t.engine.kind == "hand-derived", "the seed preset should take the hand-derived step"
    B, order = cfg.batch_size, data.epoch_order(0, 0)
    state = {"s": 0}

    def step():
        t.stats.window[0].copy_(t.train_step(*data.batch(order, state["s"] % 500, B)))
        state["s"] += 1

    step()
    f = t.engine.seed_step
    # The step's products with its operand layouts ('.t()': a transposed view, as in fastpath.py).
    z, hg, x, hd, dl, dhd = torch.randn(B, 128), f.hg, f.x, f.hd, f.dl, f.dhd
    fake, hd2, dl2, dhd2, dog, dhg = f.x[B:], f.hd2, f.dl2, f.dhd2, f.dfake, f.dhg
    g1, g2, d1, d2 = f.g1.weight.detach(), f.g2.weight.detach(), f.d1.weight.detach(), f.d2.weight.detach()
    products = [  # (label, call)
        ("G fwd 1", lambda: torch.addmm(f.g1.bias, z, g1.t(), out=f.hg)),
        ("G fwd 2", lambda: torch.addmm(f.g2.bias, hg, g2.t(), out=fake)),
        ("D fwd 1 (2B)", lambda: torch.addmm(f.d1.bias, x, d1.t(), out=hd)),
        ("D fwd 2 (2B)", lambda: torch.addmm(f.d2.bias, hd, d2.t(), out=f.logit)),
        ("D grad W2", lambda: torch.mm(dl.t(), hd, out=f.grads[6])),
        ("D grad h", lambda: torch.mm(dl, d2, out=dhd)),
        ("D grad W1", lambda: torch.mm(dhd.t(), x, out=f.grads[4])),
        ("D' fwd 1", lambda: torch.addmm(f.d1.bias, fake, d1.t(), out=hd2)),
        ("D' fwd 2", lambda: torch.addmm(f.d2.bias, hd2, d2.t(), out=f.logit2)),
        ("D' grad h", lambda: torch.mm(dl2, d2, out=dhd2)),
        ("D' grad x", lambda: torch.mm(dhd2, d1, out=dog)),
        ("G grad W2", lambda: torch.mm(dog.t(), hg, out=f.grads[2])),
        ("G grad h", lambda: torch.mm(dog, g2, out=dhg)),
        ("G grad W1", lambda: torch.mm(dhg.t(), z, out=f.grads[0])),
    ]
    def all_products():
        for _, fn in products:
            fn()

    def gather():
        data.batch(order, 7, B)

    def noise():
        torch.randn(B, 128, generator=t.noise)

    def adam():
        t.opt_d.update()
        t.opt_g.update()

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        all_products()
    flops = counter.get_total_flops()
    parts = {"step": step, "products": all_products, "adam": adam, "gather": gather, "noise": noise}
    times = {k: [] for k in parts}
    with torch.no_grad():
        for _ in range(a.rounds):
            for k, fn in parts.items():
                times[k].append(per_call(fn, a.seconds))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    rest = med["step"] - med["products"] - med["adam"] - med["gather"] - med["noise"]
    print(f"seed step: {med['step']:.3f} ms ({B / med['step'] * 1e3:,.0f} images/s), {flops / 1e6:.0f} MFLOP of products")
    for k in ("products", "adam", "gather", "noise"):
        extra = f" ({flops / med[k] / 1e6:.1f} GFLOP/s)" if k == "products" else ""
        print(f"  {k:<9} {med[k]:.3f} ms  {100 * med[k] / med['step']:5.1f}%{extra}")
    print(f"  {'rest':<9} {rest:.3f} ms  {100 * rest / med['step']:5.1f}%  (elementwise passes, sums, statistics, Python)")
    print(f"the step's products alone would run at {flops / med['products'] / 1e6:.1f} GFLOP/s; the whole step "
          f"achieves {flops / med['step'] / 1e6:.1f} GFLOP/s = {100 * med['products'] / med['step']:.0f}% of it")


if __name__ == "__main__":
    main()
