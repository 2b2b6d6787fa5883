"""Training throughput of mnistgan's presets, beside the machine's own matmul rate and,
when TensorFlow is installed, the original tutorial's TensorFlow 1 graph in the same run.

    python benchmarks/train_throughput.py [--seconds 20] [--presets seed] [--variants fp32,bf16,compile]
                                          [--device cpu] [--tf auto|on|off] [--data-dir DIR]
                                          [--threads auto|N] [--busy 0,1]

For each preset and variant (default: as the preset runs, precision auto; fp32; bf16 autocast;
fp32 with torch.compile; fp32 with the whole step captured as CUDA graphs, `graph`, for
--device cuda), in a fresh
process of its own, it prints steps/s and images/s of the real training step (data slicing,
both phases, both optimisers, statistics on the device), the step's FLOPs (counted by
torch.utils.flop_counter), the fraction of this machine's measured fp32 matmul rate at
exactly the step's matmul shapes (recorded from one step and replayed with torch.mm), and
the process's peak resident memory. Then, when TensorFlow is installed, the tutorial's
TF1 graph for the same number of seconds, and the seed preset's rate as a ratio of it (the
preset's default variant beside the anchors; `--anchor-variant fp32` for float32 throughout).

Contention (`--busy 0,1`): each count is a number of busy processes (a spinning loop each,
started by this script before the measurements and stopped after them, with a deadline of
their own) running beside every measurement of that round: ours and the anchors', alone
(0) and contended, in alternating rounds, then each one's contended rate as a fraction of
its alone rate. `--threads 2` pins the count (what training did before it followed the load).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from mnistgan.config import from_preset
from mnistgan.data import DeviceData, load_split
from mnistgan.system import runtime
from mnistgan.system.runtime import resolve_device
from mnistgan.training.trainer import Trainer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402  (the machine line every table carries)

TF_SCRIPT = HERE.parent.parent / "shared" / "bench" / "seed_tf1.py"
KERAS_SCRIPT = HERE.parent.parent / "shared" / "bench" / "dcgan_keras.py"


class RecordMatmuls(TorchDispatchMode):
    """Records the (m, k, n) of every matrix multiply that runs inside it."""

    def __init__(self):
        super().__init__()
        self.shapes = []
        self.convolutions = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name == "mm":
            self.shapes.append((args[0].shape[0], args[0].shape[1], args[1].shape[1]))
        elif name == "addmm":
            self.shapes.append((args[1].shape[0], args[1].shape[1], args[2].shape[1]))
        elif name.startswith("convolution"):
            self.convolutions += 1
        return func(*args, **(kwargs or {}))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(shapes, device, seconds: float) -> float:
    """FLOP/s of torch.mm replaying exactly these shapes, fp32."""
    mats = [(torch.randn(m, k, device=device), torch.randn(k, n, device=device)) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for a, b in mats * 20:
        torch.mm(a, b)
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a, b in mats:
            torch.mm(a, b)
        reps += 1
        if reps % 50 == 0:
            sync(device)
    sync(device)
    return reps * flops / (time.perf_counter() - t0)


# default: the preset as a user runs it (precision auto: bf16 autocast for the conv presets on
# CPUs with native bf16, fp32 elsewhere); graph: the whole step as CUDA graphs (a CPU runs it uncaptured)
VARIANTS = {"default": {}, "fp32": {"precision": "fp32"}, "bf16": {"precision": "bf16"},
            "compile": {"compile": True, "precision": "fp32"}, "graph": {"cuda_graph": True, "precision": "fp32"}}


def bench_preset(name: str, variant: str, data: DeviceData, device, seconds: float, threads: str = "auto") -> dict:
    cfg = from_preset(name, {"progress": False, "device": str(device), "threads": threads, **VARIANTS[variant]})
    t = Trainer(cfg, device)
    if device.type == "cpu":
        runtime.keep_freed_memory()  # as training through the CLI and the API does
    with t.process_settings() as governor:  # (the run's process settings, as Trainer.fit has them)
        r = measure_trainer(t, name, variant, data, device, seconds, governor.tick)
        r["threads"] = governor.describe()
        r["threads_now"], r["thread_changes"] = governor.threads, governor.changes
        return r


def measure_trainer(t: Trainer, name: str, variant: str, data: DeviceData, device, seconds: float,
                    tick=lambda: None) -> dict:
    cfg = t.config
    B = cfg.batch_size
    order = data.epoch_order(0, 0)
    spe = len(data) // B
    # Shapes and FLOPs of one step.
    real, labels = data.batch(order, 0, B)
    # (Counting can fail where a step differentiates twice, as wgan-gp's gradient penalty
    # does: torch's dispatch modes do not support autograd.grad inside them in every
    # version. The rate is then printed without FLOPs.)
    rec, step_flops = RecordMatmuls(), None
    try:
        with rec:
            t.train_step(real, labels)
        counter = FlopCounterMode(display=False)
        with counter:
            t.train_step(real, labels)
        step_flops = counter.get_total_flops()
    except RuntimeError as e:
        rec = RecordMatmuls()
        print(f"(FLOPs not counted for {name}: {str(e).splitlines()[0]})", file=sys.stderr)
    for s in range(20):  # warm-up
        t.stats.window[0].copy_(t.train_step(*data.batch(order, s % spe, B)))
        tick()
    sync(device)
    steps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(25):
            t.stats.window[0].copy_(t.train_step(*data.batch(order, steps % spe, B)))
            tick()  # (the thread count follows the load, as in Trainer.fit)
            steps += 1
        sync(device)
        if time.perf_counter() - t0 >= seconds:
            break
    elapsed = time.perf_counter() - t0
    # The fraction compares with torch.mm at the step's own shapes; a step that is mostly
    # convolutions has no such single reference, so it gets none.
    rate = matmul_rate(rec.shapes, device, min(seconds, 5.0)) if rec.shapes and not rec.convolutions else None
    sps = steps / elapsed
    return {"preset": name, "variant": variant, "precision": "bf16" if t.bf16 else "fp32",
            "steps_s": sps, "images_s": sps * B,
            "gflop_step": step_flops / 1e9 if step_flops else None,
            "achieved_gflops": sps * step_flops / 1e9 if step_flops else None,
            "matmul_gflops": rate / 1e9 if rate else None,
            "fraction": sps * step_flops / rate if rate and step_flops else None, "matmuls": len(rec.shapes),
            "convolutions": rec.convolutions}


def run_tf(seconds: float, data_dir: str, python: str = sys.executable, script: Path = TF_SCRIPT) -> float | None:
    """images/s of a TensorFlow anchor (the tutorial's TF1 graph, or the Keras DCGAN step),
    or None when TensorFlow is missing."""
    if not script.exists():
        print(f"(anchor not found at {script})")
        return None
    proc = subprocess.run([python, str(script), "--seconds", str(seconds), "--data-dir", data_dir],
                          capture_output=True, text=True)
    m = re.search(r": ([\d.]+) steps/s, (\d+) images/s", proc.stdout)
    if not m:
        print("(tutorial graph did not run:", (proc.stderr.strip().splitlines() or ["?"])[-1], ")")
        return None
    print(proc.stdout.strip())
    return float(m.group(2))


def child(a) -> None:
    """One (preset, variant) measurement in this fresh process; prints one JSON line."""
    device = resolve_device(a.device)
    images, labels = load_split("mnist", "train", a.data_dir, download=False, progress=False)
    data = DeviceData(images, labels, device)
    preset, variant = a.child.split(":")
    r = bench_preset(preset, variant, data, device, a.seconds, a.threads)
    r["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        r["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print("RESULT " + json.dumps(r))


BUSY = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


@contextlib.contextmanager
def busy_processes(count: int, deadline: float):
    """`count` processes that spin (a stand-in for a browser tab, a compile, a page being
    served) while the block runs; each also stops by itself after `deadline` seconds."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY, str(deadline)]) for _ in range(count)]
    try:
        if procs:
            time.sleep(1.0)  # (their interpreters starting)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="timed window per measurement")
    p.add_argument("--presets", default="seed", help="comma-separated preset names")
    p.add_argument("--variants", default="fp32,bf16,compile", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf", choices=["auto", "on", "off"], default="auto",
                   help="run the tutorial's TensorFlow 1 graph for comparison (auto: when importable)")
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of mnistgan vs the TF1 graph")
    p.add_argument("--tf-python", default=sys.executable,
                   help="the python that has tensorflow (e.g. another venv's); default: this one")
    p.add_argument("--threads", default="auto", help="the runs' threads setting: auto (default) or a count")
    p.add_argument("--anchor-variant", default="default",
                   help="comma-separated variants measured beside the anchors in each round (default: the "
                        "preset as a user runs it)")
    p.add_argument("--busy", default="0",
                   help="comma-separated counts of busy processes beside the anchor rounds, e.g. 0,1")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    busy_counts = [int(b) for b in a.busy.split(",")]
    unknown = set(a.anchor_variant.split(",")) - set(VARIANTS)
    if unknown:
        p.error(f"--anchor-variant: unknown {', '.join(sorted(unknown))} (of: {', '.join(VARIANTS)})")
    print(f"{describe()}; device {a.device}, {a.seconds:g} s per measurement, threads {a.threads}")

    def measure(name: str, variant: str) -> dict | None:
        proc = subprocess.run([sys.executable, __file__, "--child", f"{name}:{variant}", "--seconds", str(a.seconds),
                               "--device", a.device, "--data-dir", a.data_dir, "--threads", a.threads],
                              capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{name:>8} {variant:>8}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            return None
        return json.loads(line[7:])

    def show(r: dict) -> None:
        gpu = f", GPU peak {r['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in r else ""
        frac = (f"= {100 * r['fraction']:.0f}% of torch.mm's {r['matmul_gflops']:.1f} GFLOP/s at the step's "
                f"{r['matmuls']} matmul shapes" if r["fraction"] else f"({r['convolutions']} convolutions: no mm reference)")
        flops = (f"{r['gflop_step'] * 1e3:.0f} MFLOP/step, {r['achieved_gflops']:.1f} GFLOP/s {frac}"
                 if r["gflop_step"] else "FLOPs not counted")
        epoch = f", epoch of 60,000 in {60000 / r['images_s']:.0f} s" if r["preset"] != "seed" else ""
        print(f"{r['preset']:>8} {r['variant']:>8} ({r['precision']}): {r['steps_s']:8.1f} steps/s {r['images_s']:10,.0f} images/s{epoch} | "
              f"{flops} | peak RSS {r['peak_mib']:.0f} MiB{gpu}", flush=True)

    if busy_counts == [0]:
        for name in a.presets.split(","):
            for variant in a.variants.split(","):
                r = measure(name, variant)
                if r:
                    show(r)
    have_tf = False
    if a.tf != "off":
        have_tf = subprocess.run([a.tf_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
        if not have_tf and a.tf == "on":
            sys.exit("--tf on but tensorflow is not importable (pip install tensorflow-cpu, or --tf-python)")
    if a.device == "cpu" and (have_tf or busy_counts != [0]):
        anchor_rounds(a, busy_counts, measure, have_tf)


ANCHORS = {"seed": (TF_SCRIPT, "the tutorial's TF1 graph"), "dcgan": (KERAS_SCRIPT, "the Keras DCGAN step")}


def anchor_rounds(a, busy_counts: list[int], measure, have_tf: bool) -> None:
    """Each preset beside its anchor (the seed beside the tutorial's TF1 graph, dcgan beside
    the Keras DCGAN step), in alternating rounds (this machine is shared and its speed drifts
    by tens of percent within a minute), each round once per busy count and, within it, once
    per variant of --anchor-variant; then the medians, ours over the anchor's, and each one's
    contended rate over its alone rate."""
    variants = a.anchor_variant.split(",")
    for name in a.presets.split(","):
        script, what = ANCHORS.get(name, (None, None))
        ours: dict[tuple[str, int], list[float]] = {(v, b): [] for v in variants for b in busy_counts}
        theirs: dict[int, list[float]] = {b: [] for b in busy_counts}
        for i in range(a.rounds):
            for b in busy_counts:
                with busy_processes(b, deadline=(5 * len(variants) + 1) * a.seconds + 180):
                    rs = {v: measure(name, v) for v in variants}
                    anchor = run_tf(a.seconds, a.data_dir, a.tf_python, script) if have_tf and script else None
                if anchor:
                    theirs[b].append(anchor)
                beside = f"beside {b} busy" if b else "alone"
                for v, r in rs.items():
                    if r:
                        ours[(v, b)].append(r["images_s"])
                    print(f"round {i + 1}, {beside}: mnistgan {name} {v} ({r['precision'] if r else '?'}) "
                          f"{r['images_s'] if r else float('nan'):,.0f} images/s "
                          f"({r['threads'] if r else '?'}; {r['threads_now'] if r else '?'} at the end)"
                          + (f", {what} {anchor:,.0f} images/s: {r['images_s'] / anchor:.2f}x" if anchor and r else ""),
                          flush=True)
        for v in variants:
            for b in busy_counts:
                mine = ours[(v, b)]
                if not mine:
                    continue
                beside = f"beside {b} busy process{'es' if b > 1 else ''}" if b else "alone"
                line = f"{name} {v} {beside}: mnistgan median {median(mine):,.0f} images/s"
                if len(theirs[b]) == len(mine):
                    line += (f", {what} {median(theirs[b]):,.0f}: {median(mine) / median(theirs[b]):.2f}x "
                             f"(per round: {', '.join(f'{o / t:.2f}' for o, t in zip(mine, theirs[b]))})")
                if b and ours.get((v, 0)):
                    line += f"; of its alone rate: mnistgan {median(mine) / median(ours[(v, 0)]):.2f}"
                    if theirs[b] and theirs.get(0):
                        line += f", {what} {median(theirs[b]) / median(theirs[0]):.2f}"
                print(line)


if __name__ == "__main__":
    main()
