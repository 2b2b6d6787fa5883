"""Peak memory of the hostile inputs `folder:`, `idx:` and a run folder's checkpoints must
survive: each read in a fresh process (peak resident memory of the whole process, imports
included), beside the imports alone.

    python benchmarks/bombs.py

A 60,000 x 833 and a 25,000,000 x 2 white PNG (about 50 KB each: tiny files that decode to
50 million pixels), a 7,000 x 7,000 one, a 2 MB gzip file of labels whose header declares
2^31 - 1 of them (768 MiB of zeros follow); a run (seed, 2 epochs of 500 synthetic images)
whose newest checkpoint is a valid header with a 16 GiB sparse tail, and a checkpoint whose
config asks for 32 GB of networks (an MLP of 16 layers of 16,384).
"""
from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402


# The child's own peak: VmHWM is kept per address space; ru_maxrss would carry the peak of
# the process that started it across exec (the whole test session's, under pytest).
PEAK_CODE = ("\nimport re\nwith open('/proc/self/status') as _status:\n"
             "    print('PEAK', int(re.search(r'VmHWM:\\s+(\\d+)', _status.read()).group(1)) / 1024)\n")


def peak(code: str) -> tuple[float, str]:
    """(peak MiB, what the code printed) of code run in a fresh interpreter."""
    wrapped = code + PEAK_CODE
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True).stdout.splitlines()
    mib = float(next(l for l in out if l.startswith("PEAK")).split()[1])
    return mib, " ".join(l for l in out if not l.startswith("PEAK"))


def main() -> None:
    from PIL import Image

    print(describe())
    base, _ = peak("import mnistgan.data.folder, mnistgan.data")
    print(f"imports alone: {base:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for w, h in ((60_000, 833), (25_000_000, 2), (7_000, 7_000)):
            f = d / f"{w}x{h}.png"
            Image.new("L", (w, h), 255).save(f, optimize=True)
            mib, said = peak(f"from mnistgan.data.folder import to_frame\ntry:\n    print('frame', to_frame({str(f)!r}).shape)\n"
                             f"except ValueError as e:\n    print('refused:', e)")
            print(f"a {w:,} x {h:,} PNG of {f.stat().st_size:,} bytes: {mib:.0f} MiB peak ({said})")
        bomb = d / "bomb-labels-idx1-ubyte.gz"
        with gzip.open(bomb, "wb", compresslevel=9) as g:
            g.write((0x801).to_bytes(4, "big") + (2**31 - 1).to_bytes(4, "big"))
            zeros = bytes(16 << 20)
            for _ in range(48):
                g.write(zeros)
        mib, said = peak(f"from mnistgan.data import read_labels\ntry:\n    read_labels({str(bomb)!r})\n"
                         f"except Exception as e:\n    print('refused:', e)")
        print(f"a labels bomb of {bomb.stat().st_size:,} bytes: {mib:.0f} MiB peak ({said})")
        checkpoints(d)


def checkpoints(d: Path) -> None:
    """The two hostile checkpoints, read as `sample` reads a run (generation.load_networks)."""
    import contextlib
    import io
    import shutil

    import numpy as np

    from mnistgan.store import checkpoint as ckpt
    from mnistgan.config import from_preset
    from mnistgan.runs import train

    data = d / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 500), ("t10k", 100)):
        for kind, array in (("images", rng.integers(0, 256, (n, 28, 28))), ("labels", rng.integers(0, 10, n))):
            array = array.astype(np.uint8)
            header = (0x800 | array.ndim).to_bytes(4, "big") + b"".join(x.to_bytes(4, "big") for x in array.shape)
            (data / f"{split}-{kind}-idx{array.ndim}-ubyte").write_bytes(header + array.tobytes())
    run = d / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(from_preset("seed", {"train_images": 500, "epochs": 2, "progress": False, "out": str(run),
                                   "device": "cpu", "dataset": f"idx:{data}"}))
    newest = ckpt.list_checkpoints(run / "checkpoints")[-1]
    tensors, meta = ckpt.load(newest)
    meta["config"] = {**meta["config"], "hidden": 16384, "layers": 16}
    big = ckpt.save(d / "big.safetensors", tensors, meta)
    sparse = run / "checkpoints" / ckpt.filename(10**11)
    shutil.copyfile(newest, sparse)
    with open(sparse, "r+b") as f:
        f.truncate(16 << 30)
    base, _ = peak("import mnistgan.generation")
    print(f"imports of generation alone: {base:.0f} MiB")
    read = "from mnistgan.generation import load_networks\ntry:\n    print('loaded', load_networks({!r}).path.name)\n" \
           "except Exception as e:\n    print('refused:', str(e)[:160])"
    for what, target in (("a run whose newest checkpoint has a 16 GiB sparse tail", run),
                         ("a checkpoint whose config asks for 32 GB", big)):
        mib, said = peak(read.format(str(target)))
        print(f"{what}: {mib:.0f} MiB peak ({said})")


if __name__ == "__main__":
    main()
