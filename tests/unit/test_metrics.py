import numpy as np
import pytest
import scipy.linalg
import torch

from mnistgan.metrics import measures


def gaussian_features(n, d, seed, shift=0.0):
    """n draws (seeded by seed) of one correlated Gaussian law per dimension d (plus shift)."""
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(1000 + d), dtype=torch.float64) / d ** 0.5
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ a + shift


def test_fid_matches_scipy_sqrtm():
    x, y = gaussian_features(2000, 32, 0), gaussian_features(1500, 32, 1, shift=0.3)
    mu1, c1 = measures.mean_cov(x)
    mu2, c2 = measures.mean_cov(y)
    covmean = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    reference = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(c1.numpy() + c2.numpy() - 2 * covmean))
    ours = measures.frechet_distance(mu1, c1, mu2, c2)
    assert abs(ours - reference) / reference < 1e-6


def test_fid_of_a_set_with_itself_is_zero():
    x = gaussian_features(3000, 64, 2)
    mu, c = measures.mean_cov(x)
    assert abs(measures.frechet_distance(mu, c, mu, c)) < 1e-8


def test_mean_cov_matches_numpy():
    x = gaussian_features(500, 8, 3)
    mu, c = measures.mean_cov(x)
    np.testing.assert_allclose(c.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0), rtol=1e-12)


def test_kid_is_unbiased_on_identical_distributions_and_positive_otherwise():
    x, y = gaussian_features(4000, 16, 4), gaussian_features(4000, 16, 5)  # same law, other draws
    m, s = measures.kid(x, y, subsets=50, subset_size=500)
    assert abs(m) < 3 * s / 50 ** 0.5 + 1e-12  # zero within its standard error
    shifted, _ = measures.kid(x, gaussian_features(4000, 16, 5, shift=0.5), subsets=50, subset_size=500)
    assert shifted > 10 * s


def test_classifier_score_bounds():
    eye = torch.eye(10, dtype=torch.float64).repeat(100, 1)
    assert abs(measures.classifier_score(eye) - 10.0) < 1e-6
    one_class = torch.zeros(1000, 10, dtype=torch.float64)
    one_class[:, 3] = 1
    assert abs(measures.classifier_score(one_class) - 1.0) < 1e-6
    assert abs(measures.classifier_score(torch.full((50, 10), 0.1, dtype=torch.float64)) - 1.0) < 1e-9


def test_class_coverage():
    probs = torch.zeros(100, 10, dtype=torch.float64)
    probs[:50, 1] = 1.0
    probs[50:, 7] = 0.6
    probs[50:, 2] = 0.4
    cov = measures.class_coverage(probs)
    assert cov["histogram"][1] == 0.5 and cov["histogram"][7] == 0.5
    assert cov["classes_present"] == 2 and cov["max_class_share"] == 0.5
    assert abs(cov["kl_to_uniform"] - np.log(5)) < 1e-12
    assert cov["confident_share"] == 0.5


def grid_points(n_side=20):
    a = torch.arange(n_side, dtype=torch.float64)
    return torch.cartesian_prod(a, a)


def prdc_by_hand(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict:
    """The `prdc` package's formulas (Naeem et al. 2020), written out with numpy: a point is
    inside a ball when strictly closer than its radius (the k-th neighbour, self excluded)."""
    def radius(x, k):
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]

    d = np.sqrt(((real[:, None, :] - fake[None, :, :]) ** 2).sum(-1))  # R x F
    r_pr, r_dc, f_pr = radius(real, k_pr), radius(real, k_dc), radius(fake, k_pr)
    return {"precision": (d < r_pr[:, None]).any(0).mean(), "recall": (d < f_pr[None, :]).any(1).mean(),
            "density": (d < r_dc[:, None]).sum(0).mean() / k_dc, "coverage": (d.min(1) < r_dc).mean()}


def test_prdc_identical_clouds():
    real = torch.rand(300, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = measures.prdc(real, real.clone())
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0
    assert r["density"] == 1.0  # each point is in its own ball and its k - 1 nearer neighbours' (a tie is outside)


@pytest.mark.parametrize("case", ["random", "identical", "lattice", "lattice-shifted"])
def test_prdc_matches_the_reference_formulas_ties_included(case):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(200, 6, generator=g, dtype=torch.float64) if case in ("random", "identical") else grid_points(15)
    fake = {"random": torch.rand(150, 6, generator=g, dtype=torch.float64), "identical": real.clone(),
            "lattice": grid_points(15), "lattice-shifted": grid_points(15) + torch.tensor([0.5, 0.0], dtype=torch.float64)}[case]
    ours, ref = measures.prdc(real, fake, chunk=64), prdc_by_hand(real.numpy(), fake.numpy())
    keys = ["density", "coverage"] + (["precision", "recall"] if case == "random" else [])  # (P/R: ties kept inside)
    for key in keys:
        assert abs(ours[key] - ref[key]) < 1e-11, (key, ours[key], ref[key])


def test_prdc_disjoint_clouds():
    real = grid_points()
    r = measures.prdc(real, real + 1000.0)
    assert r == {**r, "precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_collapsed_forgeries_are_precise_but_do_not_recall():
    real = grid_points()
    fake = real[:1].repeat(400, 1) + 1e-3 * torch.randn(400, 2, dtype=torch.float64)
    r = measures.prdc(real, fake)
    assert r["precision"] == 1.0 and r["recall"] < 0.05 and r["coverage"] < 0.05


def test_parzen_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    samples, test = torch.rand(30, 5, generator=g, dtype=torch.float64), torch.rand(7, 5, generator=g, dtype=torch.float64)
    sigma = 0.3
    ours = measures.parzen_log_likelihood(samples, test, sigma, chunk=3)
    for i, x in enumerate(test.numpy()):
        dens = np.mean([np.prod(np.exp(-(x - s) ** 2 / (2 * sigma ** 2)) / np.sqrt(2 * np.pi * sigma ** 2))
                        for s in samples.numpy()])
        assert abs(ours[i].item() - np.log(dens)) < 1e-9


def test_parzen_picks_the_best_sigma_on_validation():
    g = torch.Generator().manual_seed(1)
    samples = torch.randn(500, 3, generator=g, dtype=torch.float64) * 0.3
    val, test = torch.randn(200, 3, generator=g, dtype=torch.float64) * 0.3, torch.randn(300, 3, generator=g, dtype=torch.float64) * 0.3
    r = measures.parzen(samples, val, test, sigmas=[0.01, 0.1, 1.0, 10.0])
    assert r["sigma"] == 0.1
    assert r["std_error"] > 0


def test_nearest_matches_cdist():
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(50, 20, generator=g), torch.rand(300, 20, generator=g)
    d, i = measures.nearest(a, b, k=3, chunk=7)
    full = torch.cdist(a.double(), b.double())
    ref_d, ref_i = full.topk(3, dim=1, largest=False)
    torch.testing.assert_close(d, ref_d, rtol=1e-4, atol=1e-4)
    assert torch.equal(i, ref_i)


def test_memorization_flags_planted_copies(isolated_env, fake_mnist):
    from mnistgan.metrics import Context, Reference, memorization

    reference = Reference("mnist", fake_mnist, download=False)
    ctx = Context(np.zeros((10, 28, 28), np.uint8), reference)
    train = ctx.train[0]
    rng = np.random.default_rng(0)
    forgeries = rng.integers(0, 256, (200, 1, 28, 28), dtype=np.uint8)
    planted = rng.choice(60000, 20, replace=False)
    forgeries[:20] = train[planted]
    ctx = Context(forgeries, reference)
    r = memorization(ctx)
    assert r["exact_copies"] == 20 and r["near_copy_share"] == 0.1
    d, i = ctx.extras["nearest"]
    assert i[:20, 0].tolist() == planted.tolist() and float(d[:20, 0].max()) < 1e-3


def test_unknown_metric_and_bad_images():
    from mnistgan.errors import MnistganError
    from mnistgan.metrics import Context, Reference, evaluate

    with pytest.raises(MnistganError, match="unknown metric"):
        evaluate(np.zeros((20, 28, 28), np.uint8), metrics=["fid", "beauty"])
    with pytest.raises(MnistganError, match=r"images must be N x 28 x 28 \(grey\) or N x 3 x 28 x 28 \(colour\), got shape \(5, 32, 32\)"):
        Context(np.zeros((5, 32, 32), np.uint8), Reference())
    with pytest.raises(MnistganError, match="float images must lie in"):
        Context(np.full((20, 28, 28), 3.0), Reference())


def test_within_class_diversity_tells_collapse_from_variety():
    from mnistgan.metrics import measures

    g = torch.Generator().manual_seed(0)
    real = torch.randn(600, 16, generator=g) + torch.arange(3).repeat(200)[:, None] * 10.0
    labels = torch.arange(3).repeat(200)
    varied = torch.randn(300, 16, generator=g) + torch.arange(3).repeat(100)[:, None] * 10.0
    fake_labels = torch.arange(3).repeat(100)
    ok = measures.within_class_diversity(real, labels, varied, fake_labels)
    assert 0.9 < ok["within_class_ratio"] < 1.1 and ok["near_duplicate_share"] < 0.05 and ok["classes_counted"] == 3
    collapsed = torch.arange(3).repeat(100)[:, None] * 10.0 + 0.01 * torch.randn(300, 16, generator=g)  # one image a class
    bad = measures.within_class_diversity(real, labels, collapsed, fake_labels)
    assert bad["within_class_ratio"] < 0.05 and bad["near_duplicate_share"] > 0.95
