"""Measuring instruments for forgeries: each metric is a registered function of an
evaluation context, returning a dict. Real-data features are cached on disk per dataset
and feature network.

    result, ctx = evaluate(images_uint8_Nx28x28, dataset="mnist")   # all metrics
    report.write(result, ctx, "metrics.json")                       # + novelty.png, table
"""
from __future__ import annotations

import json
import time
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import MnistganError
from . import measures
from .classifier import FeatureNet

METRICS: dict[str, Callable[["Context"], dict]] = {}
CALIBRATION = Path(__file__).resolve().parent / "weights"


def register(name: str):
    def deco(fn):
        METRICS[name] = fn
        return fn
    return deco


class Reference:
    """The real side of every comparison, each part loaded once on first use: the dataset's
    feature network, its real splits, and the features of its test split (cached on disk per
    dataset and network). A probe that measures many times keeps one Reference."""

    def __init__(self, dataset: str = "mnist", data_dir=None, download: bool = True, progress=None,
                 device: str = "cpu", invert: str = "auto"):
        self.dataset, self.data_dir, self.download, self.progress = dataset, data_dir, download, progress
        self.device, self.invert = device, invert

    @cached_property
    def source(self):
        """The data.Dataset (a registered one reads its files only when a split is asked for)."""
        from ..data import open_dataset

        return open_dataset(self.dataset, self.data_dir, self.download, self.invert, self.progress)

    @cached_property
    def net(self) -> FeatureNet:
        return FeatureNet(self.source.key, self.device, name=self.dataset)

    def _split(self, split: str):
        return self.source.split(split)

    @cached_property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self._split("test")

    @cached_property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self._split("train")

    @cached_property
    def real(self) -> torch.Tensor:
        """Features of the real test split, cached on disk per dataset and network."""
        from safetensors.torch import load_file, save

        from ..files import atomic_write_bytes, cache_dir

        path = cache_dir() / "stats" / f"{self.source.key}-test-{self.net.sha256[:16]}.safetensors"
        if path.exists():
            try:
                feats = load_file(path)["features"]
                if feats.shape == (len(self.test[0]), 128):
                    return feats
            except Exception:  # a damaged cache is recomputed, never trusted
                pass
        feats, _ = self.net(self.test[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file of its own: evaluations running side by side each write one whole file.
        atomic_write_bytes(path, save({"features": feats.contiguous().cpu()}))
        return feats


class Context:
    """What the metrics share for one set of forgeries: the images, their features (computed
    once, on first use), and the Reference they are compared with."""

    def __init__(self, images: np.ndarray, reference: Reference, fake: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.images = as_uint8_images(images)
        if fake is not None:  # features computed elsewhere (by several processes, gathered)
            self.__dict__["fake"] = fake
        self.reference = reference
        self.dataset = reference.dataset
        self.extras: dict = {}  # figures' material (e.g. nearest neighbours)

    @property
    def net(self) -> FeatureNet:
        return self.reference.net

    @property
    def real(self) -> torch.Tensor:
        return self.reference.real

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference.test

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference.train

    @cached_property
    def fake(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.images)


@register("fid")
def fid(ctx: Context) -> dict:
    mu1, c1 = measures.mean_cov(ctx.fake[0])
    mu2, c2 = measures.mean_cov(ctx.real)
    return {"fid": measures.frechet_distance(mu1, c1, mu2, c2)}


@register("kid")
def kid(ctx: Context) -> dict:
    m, s = measures.kid(ctx.fake[0], ctx.real, subsets=100, subset_size=min(1000, len(ctx.images)))
    return {"kid": m, "kid_std": s}


@register("classifier_score")
def classifier_score(ctx: Context) -> dict:
    return {"classifier_score": measures.classifier_score(ctx.fake[1])}


@register("coverage")
def coverage(ctx: Context) -> dict:
    return measures.class_coverage(ctx.fake[1])


@register("prdc")
def prdc(ctx: Context) -> dict:
    return measures.prdc(ctx.real, ctx.fake[0])


@register("diversity")
def diversity(ctx: Context) -> dict:
    """Within-class variety of the forgeries against the real test images (measures.within_class_diversity)."""
    return measures.within_class_diversity(ctx.real, torch.from_numpy(ctx.test[1].astype(np.int64)),
                                           ctx.fake[0], ctx.fake[1].argmax(1))


@register("memorization")
def memorization(ctx: Context) -> dict:
    """Pixel distance (images in [0, 1], 784 dimensions) from each forgery to its nearest
    training image, against the same for unseen real test images. A near-copy is a forgery
    closer to a training image than 99% of test images are."""
    train = torch.from_numpy(ctx.train[0].reshape(len(ctx.train[0]), -1)).float() / 255
    fake = torch.from_numpy(ctx.images.reshape(len(ctx.images), -1)).float() / 255
    test = torch.from_numpy(ctx.test[0].reshape(len(ctx.test[0]), -1)).float() / 255
    fd, fi = measures.nearest(fake, train, k=3)
    td, _ = measures.nearest(test, train, k=1)
    threshold = float(torch.quantile(td[:, 0], 0.01))
    ctx.extras["nearest"] = (fd, fi)
    med_f, med_t = float(fd[:, 0].median()), float(td[:, 0].median())
    return {"median_nn_forgery": med_f, "median_nn_test": med_t, "ratio": med_f / med_t,
            "near_copy_threshold": threshold, "near_copy_share": float((fd[:, 0] < threshold).double().mean()),
            "exact_copies": int((fd[:, 0] < 1e-3).sum())}


@register("parzen")
def parzen(ctx: Context) -> dict:
    """Goodfellow et al. 2014's Parzen-window estimate (their GAN: 225 +- 2 nats on MNIST),
    beside the same estimate with real training images as the samples: the metric is known
    to mislead (Theis et al. 2016), and the baseline shows by how much."""
    train = ctx.train[0]
    # Bandwidth chosen on 1,000 training images: MNIST's 50,000th to 51,000th (as the GAN
    # paper's validation split); a smaller set's last fifth, at most 1,000.
    val = train[50000:51000] if len(train) >= 51000 else train[-max(1, min(1000, len(train) // 5)):]
    val = torch.from_numpy(val.reshape(len(val), -1)).double() / 255
    test = torch.from_numpy(ctx.test[0].reshape(len(ctx.test[0]), -1)).double() / 255
    fake = torch.from_numpy(ctx.images.reshape(len(ctx.images), -1)).double() / 255
    baseline = train[:len(ctx.images)]  # as many real images as forgeries (all, for a smaller set)
    baseline = torch.from_numpy(baseline.reshape(len(baseline), -1)).double() / 255
    return {"parzen": measures.parzen(fake, val, test),
            "parzen_train_baseline": measures.parzen(baseline, val, test)}


def evaluate(images: np.ndarray, dataset: str = "mnist", metrics: list[str] | None = None, data_dir=None,
             download: bool = True, progress=None, device: str = "cpu",
             fake: tuple[torch.Tensor, torch.Tensor] | None = None, invert: str = "auto") -> tuple[dict, Context]:
    """Runs the chosen metrics (default: all); returns (result dict, context). `progress`:
    a progress-bar factory for a download of the real data (callbacks.progress_bar), or None;
    `fake`: the images' (features, probabilities), when already computed; `invert`: for a
    folder:PATH dataset, as the run was trained (config.invert)."""
    names = list(metrics or METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise MnistganError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    ctx = Context(images, Reference(dataset, data_dir, download, progress, device, invert), fake)
    out = {"dataset": dataset, "n": len(ctx.images), "feature_network": ctx.net.identity, "metrics": {},
           "seconds": {}}
    for name in names:
        t0 = time.perf_counter()
        out["metrics"][name] = METRICS[name](ctx)
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
    return out, ctx


MAX_IMAGES = 100_000  # images one evaluation takes: their features (N x 128 float64) stay in memory


def as_uint8_images(images, what: str = "images", chunk: int = 10_000) -> np.ndarray:
    """N x 28 x 28 uint8 images from uint8 images or floats in [0, 1] (N x 28 x 28 or
    N x 1 x 28 x 28; a memory-mapped array is converted chunk by chunk). Refuses other
    dtypes (bool, complex, other integers, objects), non-finite values and out-of-range
    floats, naming the first bad image."""
    images = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MnistganError(f"{what} must be N x 28 x 28, got shape {images.shape}")
    n = len(images)
    if n < 10:
        raise MnistganError(f"at least 10 images are needed to evaluate, got {n}")
    if n > MAX_IMAGES:
        raise MnistganError(f"{what} holds {n:,} images; an evaluation takes at most {MAX_IMAGES:,}")
    if images.dtype == np.uint8:  # a writable copy of a memory map (torch needs writable arrays)
        return np.array(images) if not images.flags.writeable else np.ascontiguousarray(images)
    if images.dtype.kind != "f":
        raise MnistganError(f"{what} holds {images.dtype} values; expected uint8 (0..255) or floats in [0, 1]")
    out = np.empty((n, 28, 28), np.uint8)
    for start in range(0, n, chunk):
        part = np.asarray(images[start:start + chunk], dtype=np.float64)
        bad = ~np.isfinite(part)
        if bad.any():
            i = start + int(np.argmax(bad.reshape(len(part), -1).any(1)))
            raise MnistganError(f"{what}: image {i} holds a non-finite value ({part.flat[np.argmax(bad)]})")
        if part.min() < 0 or part.max() > 1:
            raise MnistganError(f"{what}: float images must lie in [0, 1] (uint8 images in 0..255); "
                                f"found values from {part.min():g} to {part.max():g}")
        out[start:start + len(part)] = (part * 255).round().astype(np.uint8)
    return out


def read_images(path) -> np.ndarray:
    """The forgeries of a .npy file (N x 28 x 28: uint8, or floats in [0, 1]), never
    unpickled, read through a memory map and checked before use (see as_uint8_images)."""
    what = f"--images {path}"
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise MnistganError(f"{what} is not a .npy file (no NumPy header)")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise MnistganError(f"cannot read {what}: {e.strerror or e}") from None
    except ValueError as e:  # a damaged header, object arrays, a file shorter than its header says
        raise MnistganError(f"cannot read {what}: {e}") from None
    return as_uint8_images(arr, what)


def calibration(dataset: str) -> dict:
    """Reference values shipped beside the feature network (benchmarks/calibrate_metrics.py)."""
    path = CALIBRATION / f"{dataset}-calibration.json"
    return json.loads(path.read_text()) if path.exists() else {}


def flatten(result: dict) -> dict[str, float]:
    """{'fid': .., 'precision': .., 'parzen.mean': ..}: the scalar numbers of a result."""
    flat = {}
    for metric in result["metrics"].values():
        for k, v in metric.items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    if isinstance(v2, (int, float)):
                        flat[f"{k}.{k2}"] = v2
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                flat[k] = v
    return flat
