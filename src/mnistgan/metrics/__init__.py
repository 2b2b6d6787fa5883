"""Measuring instruments for forgeries: each metric is a registered function of an
evaluation context, returning a dict. Real-data features are cached on disk per dataset
and feature network.

    result, ctx = evaluate(images_uint8, dataset="mnist")   # N x 28 x 28 or N x C x 28 x 28; all metrics
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
                 device: str = "cpu", invert: str = "auto", channels: int = 1):
        self.dataset, self.data_dir, self.download, self.progress = dataset, data_dir, download, progress
        self.device, self.invert, self.channels = device, invert, channels

    @cached_property
    def source(self):
        """The data.Dataset (a registered one reads its files only when a split is asked for)."""
        from ..data import open_dataset

        return open_dataset(self.dataset, self.data_dir, self.download, self.invert, self.progress, self.channels)

    @cached_property
    def net(self) -> FeatureNet:
        # (name: how the error names the dataset, and so the command it suggests)
        return FeatureNet(self.source.key, self.device,
                          name=self.dataset + (f" --channels {self.channels}" if self.source.kind == "folder" and self.channels > 1 else ""))

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
        return self._read[0]

    @cached_property
    def real_classes(self) -> torch.Tensor:
        """The feature network's reading (most likely class) of each real test image, cached with the features."""
        return self._read[1]

    @cached_property
    def _read(self) -> tuple[torch.Tensor, torch.Tensor]:
        from safetensors.torch import load_file, save

        from ..store.files import atomic_write_bytes, cache_dir

        path = cache_dir() / "stats" / f"{self.source.key}-test-{self.net.sha256[:16]}.safetensors"
        if path.exists():
            try:
                stored = load_file(path)
                feats, classes = stored["features"], stored.get("classes")
                if feats.shape == (len(self.test[0]), self.net.features) and classes is not None \
                        and classes.shape == (len(feats),):
                    return feats, classes
            except Exception:  # a damaged cache is recomputed, never trusted
                pass
        feats, probs = self.net(self.test[0])
        classes = probs.argmax(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file of its own: evaluations running side by side each write one whole file.
        atomic_write_bytes(path, save({"features": feats.contiguous().cpu(), "classes": classes.contiguous().cpu()}))
        return feats, classes


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

    @property
    def colour(self) -> bool:
        return self.images.shape[1] > 1


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
    """Pixel distance (images in [0, 1], 784 dimensions a channel) from each forgery to its nearest
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


# Stacked-MNIST's modes: the floor of the reverse KL that sampling alone leaves, estimated
# from DRAWS multinomial draws of n uniform modes (numpy's default generator, seed 0).
MODES, DRAWS = 1000, 200


def mode_histogram(modes: torch.Tensor | np.ndarray, k: int = MODES) -> tuple[int, float]:
    """(modes covered: those read at least once; reverse KL of the modes' histogram q against
    uniform, sum q log(k q), in nats) of a sequence of mode numbers 0..k-1."""
    hist = np.bincount(np.asarray(modes, dtype=np.int64), minlength=k)[:k].astype(np.float64)
    q = hist / max(1.0, hist.sum())
    nz = q[q > 0]
    return int((hist > 0).sum()), float((nz * np.log(k * nz)).sum())


def sampling_floor(n: int, k: int = MODES, draws: int = DRAWS) -> dict:
    """What a perfect generator scores at n samples: the mean (and spread) of modes covered and
    reverse KL over `draws` multinomial draws of n uniformly chosen modes."""
    rng = np.random.default_rng(0)
    found = [mode_histogram(rng.integers(0, k, n), k) for _ in range(draws)]
    covered, kl = np.array([f[0] for f in found]), np.array([f[1] for f in found])
    return {"modes": float(covered.mean()), "kl": float(kl.mean()), "kl_std": float(kl.std()), "draws": draws}


@register("modes")
def modes(ctx: Context) -> dict:
    """Stacked-MNIST's mode count (Metz et al. 2017; VEEGAN, PacGAN, R3GAN): each channel of a
    forgery is read by the MNIST classifier, its mode is the triple 100 r + 10 g + b; reported
    are the modes covered (of 1,000; a mode counts once one forgery is read as it) and the
    reverse KL of the modes' histogram against uniform. Beside them, the same two numbers for
    as many stacks of real test digits (the classifier's own error shows there) and for
    perfect uniform sampling at that count (the floor that the count alone leaves)."""
    n = len(ctx.images)
    covered, kl = mode_histogram(ctx.fake[1].argmax(1))
    real_labels = ctx.test[1]
    take = min(n, len(real_labels))
    real_read = ctx.reference.real_classes[:take].numpy()
    real_covered, real_kl = mode_histogram(real_read)
    return {"modes": covered, "kl": kl, "n": n,
            "real_stacks": {"modes": real_covered, "kl": real_kl, "n": take,
                            "read_right": float((real_read == real_labels[:take]).mean())},
            "sampling_floor": sampling_floor(n),
            "feature_space": "each channel read by the MNIST classifier (lenet-mnist); FID, KID and PRDC "
                             "in its three channels' 128 features side by side (384 dimensions)"}


# Metrics that are meaningful for some datasets only (by default the others are not run):
# modes for Stacked-MNIST; the GAN paper's Parzen estimate for grey digits (784 pixels).
APPLIES: dict[str, Callable[["Context"], bool]] = {
    "modes": lambda ctx: ctx.net.per_channel > 1,
    "parzen": lambda ctx: not ctx.colour,
}


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
    """Runs the chosen metrics (default: all that apply to the dataset, APPLIES); returns
    (result dict, context). `progress`: a progress-bar factory for a download of the real
    data (callbacks.progress_bar), or None; `fake`: the images' (features, probabilities),
    when already computed; `invert`: for a folder:PATH dataset, as the run was trained
    (config.invert). Colour images (N x 3 x 28 x 28) are measured against a colour dataset."""
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise MnistganError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    checked = as_uint8_images(images)
    channels = checked.shape[1]
    ctx = Context(checked, Reference(dataset, data_dir, download, progress, device, invert, channels), fake)
    if ctx.net.channels != channels:
        raise MnistganError(f"the images have {channels} channel(s); {dataset}'s images and its classifier have "
                            f"{ctx.net.channels}")
    names = list(metrics or [m for m in METRICS if APPLIES.get(m, lambda c: True)(ctx)])
    for name in names:  # every metric says what it needs before any is computed
        check_needs(name, ctx)
    out = {"dataset": dataset, "n": len(ctx.images), "feature_network": ctx.net.identity, "metrics": {},
           "seconds": {}}
    for name in names:
        t0 = time.perf_counter()
        out["metrics"][name] = finite(METRICS[name](ctx))
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
    return out, ctx


# What each metric needs: (real test images, training images) at least, beyond the 10
# forgeries every evaluation needs. FID and KID need two of each for a covariance or an
# unbiased MMD; PRDC a k-th neighbour among the real images (k = 5 for density and
# coverage); memorization three training neighbours and a test quantile; Parzen a spread.
NEEDS: dict[str, tuple[int, int]] = {"fid": (2, 0), "kid": (2, 0), "prdc": (6, 0), "diversity": (2, 0),
                                     "memorization": (1, 3), "parzen": (2, 2), "coverage": (0, 0),
                                     "classifier_score": (0, 0), "modes": (1, 0)}
WHERE = {"modes": "stacked-mnist (three digits as colour channels)", "parzen": "grey images (784 pixels)"}


def check_needs(name: str, ctx: Context) -> None:
    """One line saying what `name` needs, when the data cannot give it: a dataset it applies
    to (APPLIES), and enough real test and training images (NEEDS)."""
    if not APPLIES.get(name, lambda c: True)(ctx):
        raise MnistganError(f"metric {name} applies to {WHERE[name]} only; {ctx.dataset} is not")
    real, train = NEEDS[name]
    have_real, have_train = len(ctx.test[0]), (len(ctx.train[0]) if train else 0)
    if have_real < real or have_train < train:
        raise MnistganError(f"metric {name} needs at least {real} real test images"
                            + (f" and {train} training images" if train else "")
                            + f"; {ctx.dataset} has {have_real} test" + (f" and {have_train} training" if train else "")
                            + " (choose other metrics with --metrics)")


def finite(value):
    """value with every non-finite float replaced by None (JSON null): metrics.json stays
    valid JSON, and a number that could not be measured reads as absent."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


MAX_IMAGES = 100_000  # images one evaluation takes: their features (N x 128 float64) stay in memory


def as_uint8_images(images, what: str = "images", chunk: int = 10_000) -> np.ndarray:
    """N x C x 28 x 28 uint8 images (the package's layout) from what a user gives: uint8
    images or floats in [0, 1], N x 28 x 28, N x 1 x 28 x 28 or N x 3 x 28 x 28 (a
    memory-mapped array is converted chunk by chunk). Refuses other dtypes (bool, complex,
    other integers, objects), non-finite values and out-of-range floats, naming the first
    bad image."""
    images = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if images.ndim == 3 and images.shape[1:] == (28, 28):  # a grey user's layout (images.public)
        images = images[:, None]
    if not (images.ndim == 4 and images.shape[1:] in ((1, 28, 28), (3, 28, 28))):
        raise MnistganError(f"{what} must be N x 28 x 28 (grey) or N x 3 x 28 x 28 (colour), got shape {images.shape}")
    n = len(images)
    if n < 10:
        raise MnistganError(f"at least 10 images are needed to evaluate, got {n}")
    if n > MAX_IMAGES:
        raise MnistganError(f"{what} holds {n:,} images; an evaluation takes at most {MAX_IMAGES:,}")
    if images.dtype == np.uint8:  # a writable copy of a memory map (torch needs writable arrays)
        return np.array(images) if not images.flags.writeable else np.ascontiguousarray(images)
    if images.dtype.kind != "f":
        raise MnistganError(f"{what} holds {images.dtype} values; expected uint8 (0..255) or floats in [0, 1]")
    out = np.empty(images.shape, np.uint8)
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
    """The forgeries of a .npy file (N x 28 x 28 or N x 3 x 28 x 28: uint8, or floats in [0, 1]), never
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


def calibration(dataset) -> dict:
    """Reference values shipped beside the feature network (benchmarks/calibrate_metrics.py)
    for a dataset known by name; {} for any other value. The name often comes from a run's
    metrics.json, so it is matched against the files shipped, never joined into a path."""
    shipped = {p.name.removesuffix("-calibration.json"): p for p in CALIBRATION.glob("*-calibration.json")}
    path = shipped.get(dataset) if isinstance(dataset, str) else None
    return json.loads(path.read_text()) if path is not None else {}


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
