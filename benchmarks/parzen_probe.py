"""What the Parzen-window estimate rewards: real digits and a run's forgeries, as they are,
slightly blurred, and (forgeries) drawn from noise scaled towards its mean.

    python benchmarks/parzen_probe.py --run pretrained:best-mnist [--blur 0,0.5] [--psi 1,0.8]

Every row is 10,000 images (real: train[:10000]; forgeries: seed 0) read by `mnistgan
evaluate`'s FID, precision/recall and Parzen (Goodfellow et al. 2014's protocol: bandwidth
chosen on train[50000:51000] from logspace(-1, 0, 10), mean over the 10,000 test digits).
The blur is a separable Gaussian of the given width in pixels (7 taps), applied to the
images in [0, 1] and rounded back to uint8; psi scales the noise vector (psi < 1 draws
nearer the noise's mean, a simple form of the truncation trick).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mnistgan import images
from mnistgan.data import load_split
from mnistgan.generation.draw import class_labels, generate
from mnistgan.generation.load import load_generator
from mnistgan.metrics import evaluate

HERE = Path(__file__).resolve().parent


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 N x 28 x 28 blurred by a separable Gaussian of width sigma pixels (0: unchanged)."""
    if sigma == 0:
        return x
    r = torch.arange(-3, 4, dtype=torch.float64)
    k = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    t = torch.from_numpy(x).double()[:, None] / 255
    t = F.conv2d(F.conv2d(t, k.view(1, 1, 1, 7), padding=(0, 3)), k.view(1, 1, 7, 1), padding=(3, 0))
    return (t[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()


@torch.no_grad()
def forgeries(run: str, n: int, psi: float) -> np.ndarray:
    """n forgeries of a grey model, seed 0, from noise scaled by psi."""
    G, config = load_generator(run)
    z = torch.randn(n, config.z_dim, generator=torch.Generator().manual_seed(0)) * psi
    labels = class_labels(config, n, None)
    parts = [images.to_uint8(generate(G, z[i:i + 1000], None if labels is None else labels[i:i + 1000]))
             for i in range(0, n, 1000)]
    return np.concatenate(parts)[:, 0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="pretrained:best-mnist", help="a run, checkpoint or pretrained:NAME (grey)")
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--blur", default="0,0.5", help="blur widths in pixels, applied to real digits and forgeries")
    p.add_argument("--psi", default="1,0.9,0.8,0.7", help="noise scales for the forgeries (unblurred)")
    p.add_argument("--n", type=int, default=10000)
    a = p.parse_args()
    torch.manual_seed(0)
    real = load_split("mnist", "train", a.data_dir, download=False, progress=False)[0][:a.n, 0]
    rows = [(f"real train, blur {s}", lambda s=s: blur(real, s)) for s in map(float, a.blur.split(","))]
    rows += [(f"{a.run}, blur {s}", lambda s=s: blur(forgeries(a.run, a.n, 1.0), s)) for s in map(float, a.blur.split(","))
             if s != 0]
    rows += [(f"{a.run}, psi {psi}", lambda psi=psi: forgeries(a.run, a.n, psi)) for psi in map(float, a.psi.split(","))]
    print(f"{'images':<44}{'FID':>8}{'precision':>11}{'recall':>8}{'Parzen':>16}{'sigma':>7}")
    for name, make in rows:
        t = time.time()
        result, _ = evaluate(make(), "mnist", ["fid", "prdc", "parzen"], a.data_dir, download=False, progress=False)
        m = result["metrics"]
        pz = m["parzen"]["parzen"]
        print(f"{name:<44}{m['fid']['fid']:>8.2f}{m['prdc']['precision']:>11.3f}{m['prdc']['recall']:>8.3f}"
              f"{pz['mean']:>10.1f} ± {pz['std_error']:.1f}{pz['sigma']:>7.3f}   ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
