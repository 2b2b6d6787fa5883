"""Where one preset's training step spends its time, operator by operator and shape by shape
(torch.profiler, CPU self time), on random batches of the data's shape: the table behind
"which convolution is slow" questions. Nothing else may run meanwhile.

    python benchmarks/step_profile.py dcgan
    python benchmarks/step_profile.py r3gan --channels 3 --classes 1000 --set reg_every=8

Prints the machine line, the step's images/s over the profiled steps (the profiler adds a
little), and the operators with their input shapes, most time first.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from mnistgan.config import from_preset, parse_sets  # noqa: E402
from mnistgan.training.trainer import Trainer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("preset")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rows", type=int, default=25)
    a = p.parse_args()
    print(describe())
    cfg = from_preset(a.preset, {"progress": False, "device": "cpu", "channels": a.channels,
                                 "num_classes": a.classes, **parse_sets(a.set)})
    t = Trainer(cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, a.channels, 28, 28, generator=gen)
    y = torch.randint(0, a.classes, (cfg.batch_size,), generator=gen)

    def steps(n: int) -> None:
        for _ in range(n):
            t.train_step(x, y)
            t.images_seen += cfg.batch_size  # (the step's number: which steps update G, regularise)

    with t.process_settings():
        steps(10)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            t0 = time.perf_counter()
            steps(a.steps)
            seconds = time.perf_counter() - t0
    print(f"{a.preset} {' '.join(a.set)}: {a.steps * cfg.batch_size / seconds:,.0f} images/s under the profiler, "
          f"{1000 * seconds / a.steps:.1f} ms a step of {cfg.batch_size}")
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=36, max_shapes_column_width=80))


if __name__ == "__main__":
    main()
