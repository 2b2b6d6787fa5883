"""Measuring instruments for forgeries: each metric is a registered function of an
evaluation context, returning a dict. Real-data features are cached on disk per dataset
and feature network.

    result, ctx = evaluate(images_uint8, dataset="mnist")   # N x 28 x 28 or N x C x 28 x 28; all metrics
    report.write(result, ctx, "metrics.json")               # + novelty.png, table

Its parts: `reference` (the real side and the forgeries' shared context), `inputs`
(forgeries as a user gives them, checked), `measures` (the numerical measures, each tested
against a reference implementation), `classifier` (the feature networks), `report`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import MnistganError
from . import measures
from .inputs import MAX_IMAGES, as_uint8_images, read_images
from .measures import MODES, mode_histogram, sampling_floor
from .reference import Context, Reference

__all__ = ["METRICS", "register", "evaluate", "check_needs", "finite", "calibration", "flatten", "APPLIES", "NEEDS",
           "Context", "Reference", "MAX_IMAGES", "as_uint8_images", "read_images", "MODES", "mode_histogram",
           "sampling_floor"]

METRICS: dict[str, Callable[["Context"], dict]] = {}
CALIBRATION = Path(__file__).resolve().parent / "weights"


def register(name: str):
    def deco(fn):
        METRICS[name] = fn
        return fn
    return deco


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
