"""How fast `--dataset folder:PATH` turns a folder of images into a training set: a cold
conversion (decode, grey, invert, pad, resize, cache write) and a warm start (the cache
found through its index). The folder is made here: N filled shapes (tests/helpers/shapes.py) as
PNG, JPEG and BMP files of 28 to 64 pixels, in 3 class folders.

    python benchmarks/folder_conversion.py --n 60000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))

import machine  # noqa: E402
import shapes  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60000, help="images in the folder (default 60,000)")
    p.add_argument("--folder", help="use this folder instead of making one")
    a = p.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNISTGAN_CACHE"] = str(Path(tmp) / "cache")
        from mnistgan.data import open_dataset

        folder = Path(a.folder) if a.folder else Path(tmp) / "shapes"
        if not a.folder:
            t0 = time.perf_counter()
            shapes.make_folder(folder, per_class=a.n // 3, odd_files=False)
            print(f"made {a.n:,} images in {time.perf_counter() - t0:.1f} s")
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        t0 = time.perf_counter()
        ds = open_dataset(f"folder:{folder}")
        cold = time.perf_counter() - t0
        n = len(ds.split("train")[0]) + len(ds.split("test")[0])
        t0 = time.perf_counter()
        open_dataset(f"folder:{folder}")
        warm = time.perf_counter() - t0
        print(f"folder: {n:,} images, {size / 2**20:.1f} MiB, {ds.num_classes} classes")
        print(f"cold conversion: {cold:.1f} s ({n / cold:,.0f} images/s); warm start from the cache: {warm:.2f} s")


if __name__ == "__main__":
    main()
