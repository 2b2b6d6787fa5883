"""The maths of each metric, on tensors; float64 throughout for statistics.

FID, KID and the rest are written here rather than taken from torchmetrics because our
features are precomputed by our own network and the real-data statistics are cached on
disk between runs, which torchmetrics' stateful image metrics do not support; each
function is tested against a reference (scipy's sqrtm, brute force, toy data with known
answers).
"""
from __future__ import annotations

import math

import numpy as np
import torch


def mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.t().mm(xc) / (len(x) - 1)


def _sqrt_psd(c: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(c)
    return (v * w.clamp_min(0).sqrt()) @ v.t()


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) (Heusel et al. 2017).
    tr((C1 C2)^(1/2)) = tr((S C2 S)^(1/2)) with S = C1^(1/2): a symmetric PSD matrix, so
    eigh gives it stably, without the complex parts a general sqrtm produces."""
    s = _sqrt_psd(cov1.double())
    m = s @ cov2.double() @ s
    tr_covmean = torch.linalg.eigvalsh((m + m.t()) / 2).clamp_min(0).sqrt().sum()
    diff = (mu1.double() - mu2.double()).square().sum()
    return float(diff + cov1.double().trace() + cov2.double().trace() - 2 * tr_covmean)


def kid(x: torch.Tensor, y: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 with the kernel
    k(a, b) = (a.b / d + 1)^3, averaged over random subsets; (mean, std over subsets)."""
    x, y = x.double(), y.double()
    m = min(subset_size, len(x), len(y))
    d = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        a = x[torch.randperm(len(x), generator=gen)[:m]]
        b = y[torch.randperm(len(y), generator=gen)[:m]]
        kxx = (a @ a.t() / d + 1) ** 3
        kyy = (b @ b.t() / d + 1) ** 3
        kxy = (a @ b.t() / d + 1) ** 3
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
               - 2 * kxy.mean())
        values.append(float(mmd))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def classifier_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception Score's analogue (Salimans et al. 2016);
    at most the number of classes."""
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


def class_coverage(probs: torch.Tensor, present_share: float | None = None, confident: float = 0.9) -> dict:
    """Histogram of predicted classes, its KL divergence to uniform, the number of classes
    drawn at least `present_share` of the time (default a tenth of a uniform share, 0.1 / k:
    1% for ten classes, 0.01% for Stacked-MNIST's 1,000), and the share classified with max
    p >= `confident`."""
    k = probs.shape[1]
    present_share = 0.1 / k if present_share is None else present_share
    hist = torch.bincount(probs.argmax(1), minlength=k).double() / len(probs)
    nz = hist[hist > 0]
    return {
        "histogram": [round(float(h), 4) for h in hist],
        "kl_to_uniform": float((nz * (nz * k).log()).sum()),
        "classes_present": int((hist >= present_share).sum()),
        "max_class_share": float(hist.max()),
        "confident_share": float((probs.max(1).values >= confident).double().mean()),
    }


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())


# PRDC compares distances with k-NN radii, so a tie (a forgery at exactly a radius; identical
# sets) must be decided as the reference does. cdist's fast form (|a|^2 + |b|^2 - 2 a.b) is
# off by rounding, so the comparisons within BAND of a radius are made again on distances
# computed directly; the direct form everywhere would be about 4x slower.
BAND = 1e-6


def _exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row i of a to row i of b, computed directly (no cancellation)."""
    return (a.double() - b.double()).square().sum(-1).sqrt()


def _near_exact(d: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *radii: torch.Tensor) -> torch.Tensor:
    """d (a x b, the fast form) with every entry within BAND of one of the radii (each
    broadcast against d) computed directly."""
    near = torch.zeros_like(d, dtype=torch.bool)
    for r in radii:
        near |= (d - r).abs() <= BAND * (1 + r)
    i, j = near.nonzero(as_tuple=True)
    if len(i):
        d = d.clone()
        d[i, j] = _exact(a[i], b[j])
    return d


def kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 2000, spare: int = 4) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (the point itself, at 0,
    is the 0-th): chosen among the k + 1 + spare nearest by the fast form, computed directly."""
    out = []
    take = min(k + 1 + spare, len(x))
    for start in range(0, len(x), chunk):
        c = x[start:start + chunk]
        cand = _pairwise(c, x).topk(take, dim=1, largest=False).indices          # chunk x take
        exact = _exact(c[:, None, :], x[cand])
        out.append(exact.sort(1).values[:, k])
    return torch.cat(out)


def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5, chunk: int = 2000) -> dict:
    """Precision and recall (Kynkaanniemi et al. 2019, k = k_pr) and density and coverage
    (Naeem et al. 2020, k = k_dc) of fake against real, with k-NN balls in feature space.
    Density and coverage count a point strictly inside a ball, as Naeem et al.'s own `prdc`
    package does (a tie on the radius is outside): identical sets give density 1 exactly."""
    r_pr, r_dc = kth_nn_radius(real, k_pr), kth_nn_radius(real, k_dc)
    f_pr = kth_nn_radius(fake, k_pr)
    precision_hits, density_sum = 0, 0.0
    real_covered = torch.zeros(len(real), dtype=torch.bool)
    real_recalled = torch.zeros(len(real), dtype=torch.bool)
    for start in range(0, len(fake), chunk):
        f = fake[start:start + chunk]
        d = _near_exact(_pairwise(f, real), f, real, r_pr[None, :], r_dc[None, :],
                        f_pr[start:start + chunk, None])                        # F x R
        precision_hits += int((d <= r_pr[None, :]).any(1).sum())
        density_sum += float((d < r_dc[None, :]).sum())
        nearest_fake = d.min(0).values                                          # R
        real_covered |= nearest_fake < r_dc
        real_recalled |= (d <= f_pr[start:start + chunk, None]).any(0)
    n_f = len(fake)
    return {"precision": precision_hits / n_f, "recall": float(real_recalled.double().mean()),
            "density": density_sum / (k_dc * n_f), "coverage": float(real_covered.double().mean()),
            "k_precision_recall": k_pr, "k_density_coverage": k_dc}


def nearest(x: torch.Tensor, ref: torch.Tensor, k: int = 1, chunk: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) of the k nearest rows of ref for each row of x (Euclidean).
    Candidates come from the fast float32 form |a|^2 + |b|^2 - 2 a.b; their distances are
    then recomputed directly in float64, since that form cancels catastrophically for
    near-copies (a distance of 0 can come out as 0.005)."""
    ref = ref.float()
    ref_sq = ref.square().sum(1)
    dists, idxs = [], []
    for c in x.float().split(chunk):
        d2 = (c.square().sum(1, keepdim=True) + ref_sq[None, :] - 2 * c @ ref.t())
        _, i = d2.topk(k, dim=1, largest=False)
        exact = _exact(c[:, None, :], ref[i])   # chunk x k (only the candidates in float64)
        order = exact.argsort(1)
        dists.append(exact.gather(1, order))
        idxs.append(i.gather(1, order))
    return torch.cat(dists), torch.cat(idxs)


def parzen_log_likelihood(samples: torch.Tensor, test: torch.Tensor, sigma: float, chunk: int = 500) -> torch.Tensor:
    """log p(x) for each test row under a Gaussian Parzen window of width sigma centred on
    each sample (Goodfellow et al. 2014, following Breuleux et al. 2011)."""
    n, d = samples.shape
    s = samples.double()
    s_sq = s.square().sum(1)
    out = []
    const = math.log(n) + d / 2 * math.log(2 * math.pi * sigma ** 2)
    for c in test.double().split(chunk):
        d2 = (c.square().sum(1, keepdim=True) + s_sq[None, :] - 2 * c @ s.t()).clamp_min_(0)
        out.append(torch.logsumexp(-d2 / (2 * sigma ** 2), dim=1) - const)
    return torch.cat(out)


def parzen(samples: torch.Tensor, validation: torch.Tensor, test: torch.Tensor,
           sigmas=None) -> dict:
    """Chooses sigma on the validation rows, then mean +- standard error over the test rows."""
    sigmas = sigmas if sigmas is not None else torch.logspace(-1, 0, 10).tolist()
    scores = [float(parzen_log_likelihood(samples, validation, s).mean()) for s in sigmas]
    best = sigmas[max(range(len(sigmas)), key=scores.__getitem__)]
    ll = parzen_log_likelihood(samples, test, best)
    return {"mean": float(ll.mean()), "std_error": float(ll.std() / math.sqrt(len(ll))), "sigma": best}


def within_class_diversity(real: torch.Tensor, real_classes: torch.Tensor, fake: torch.Tensor,
                           fake_classes: torch.Tensor, per_class: int = 500, quantile: float = 0.01) -> dict:
    """How varied the forgeries of each class are, against real images of that class, in
    feature space (classes: the real labels, and the classifier's reading of each forgery):
    ratio = mean pairwise distance among forgeries of class k / the same among real images of
    class k (1: as varied as real; near 0: one image drawn many times), and the share of
    forgery pairs closer than the `quantile` of real same-class pair distances (near-duplicates).
    Averaged over the classes with at least two forgeries; at most `per_class` images a class."""
    ratios, dup_share, counted = [], [], []
    for k in torch.unique(real_classes).tolist():
        r = real[real_classes == k][:per_class].double()
        f = fake[fake_classes == k][:per_class].double()
        if len(r) < 2 or len(f) < 2:
            continue
        upper_r = torch.ones(len(r), len(r), dtype=torch.bool).triu(1)
        upper_f = torch.ones(len(f), len(f), dtype=torch.bool).triu(1)
        dr = torch.cdist(r, r)[upper_r]
        df = torch.cdist(f, f)[upper_f]
        ratios.append(float(df.mean() / dr.mean()))
        dup_share.append(float((df < torch.quantile(dr, quantile)).double().mean()))
        counted.append(k)
    if not ratios:
        return {"within_class_ratio": float("nan"), "near_duplicate_share": float("nan"), "classes_counted": 0}
    return {"within_class_ratio": sum(ratios) / len(ratios), "worst_class_ratio": min(ratios),
            "near_duplicate_share": sum(dup_share) / len(dup_share), "classes_counted": len(counted)}


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
