"""Peak memory of `mnistgan sample RUN --n N --out x.npy`, in a process of its own.

    python benchmarks/sample_memory.py --data-dir ../shared/data/mnist [--n 1000000] [--src OTHER/src]

Trains a tiny seed run (200 images, 1 epoch) once, then runs the sample command in a fresh
process and reports its peak resident memory (ru_maxrss from wait4) and wall time. --src
runs the command against another checkout's src/ (e.g. an older commit unpacked with
`git archive COMMIT src | tar -x -C /tmp/old`), so that before and after are measured
side by side on one machine.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402


def peak_of(argv: list[str], src: Path) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of `mnistgan ARGV` run with src first on the import path."""
    code = "import sys; from mnistgan.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: mnistgan {' '.join(argv)}")
    return usage.ru_maxrss / 1024, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="a folder with MNIST's four IDX files")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--src", action="append", default=[], help="src/ folders to compare (default: this checkout's)")
    a = p.parse_args()
    srcs = [Path(s).resolve() for s in a.src] or [REPO / "src"]
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        peak_of(["train", "--out", str(run), "--data-dir", a.data_dir, "--no-progress", "--no-download",
                 "--set", "train_images=200", "--epochs", "1"], REPO / "src")
        for src in srcs:
            out = Path(tmp) / f"x-{abs(hash(src))}.npy"
            mib, seconds = peak_of(["sample", str(run), "--n", str(a.n), "--out", str(out)], src)
            print(f"{str(src):<40} sample --n {a.n:,} --out x.npy: peak RSS {mib:,.0f} MiB, {seconds:.1f} s, "
                  f"file {out.stat().st_size / 2**20:,.0f} MiB")
            out.unlink()


if __name__ == "__main__":
    main()
