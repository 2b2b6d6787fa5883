import torch
import contextlib

import pytest
import torch.nn.functional as F

from mnistgan.training import objectives
from mnistgan.config import from_preset

from helpers.critics import Quadratic

losses = objectives


def test_nonsaturating_matches_the_tutorials_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(50, dtype=torch.float64) * 3, torch.randn(50, dtype=torch.float64) * 3
    obj = losses.NonSaturating()
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    cost_d = torch.mean(torch.log(d_real) + torch.log(1 - d_fake))  # maximised by D
    cost_g = torch.mean(torch.log(d_fake))                           # maximised by G
    torch.testing.assert_close(obj.d_loss(real, fake), -cost_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(obj.g_loss(fake), -cost_g, rtol=1e-12, atol=1e-12)


def test_logits_keep_saturated_losses_finite():
    obj = losses.NonSaturating()
    huge = torch.tensor([200.0, -200.0])
    assert torch.isfinite(obj.d_loss(huge, huge)) and torch.isfinite(obj.g_loss(huge))
    # log(sigmoid(-200)) would be -inf through the sigmoid; from the logit it is -200.
    torch.testing.assert_close(obj.g_loss(torch.tensor([-200.0])), torch.tensor(200.0))


def test_minimax_generator_loss_is_log_one_minus_d():
    fake = torch.randn(20, dtype=torch.float64)
    expected = torch.mean(torch.log(1 - torch.sigmoid(fake)))
    torch.testing.assert_close(losses.Minimax().g_loss(fake), expected)


def test_least_squares_and_hinge():
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.25])
    torch.testing.assert_close(losses.LeastSquares().d_loss(r, f),
                               0.5 * torch.tensor([0.25, 1.0]).mean() + 0.5 * torch.tensor([0.25, 0.0625]).mean())
    torch.testing.assert_close(losses.LeastSquares().g_loss(f), 0.5 * torch.tensor([2.25, 0.5625]).mean())
    torch.testing.assert_close(losses.Hinge().d_loss(r, f), torch.tensor([0.5, 0.0]).mean() + torch.tensor([0.5, 1.25]).mean())
    torch.testing.assert_close(losses.Hinge().g_loss(f), torch.tensor(0.125))


def test_wasserstein_critic_and_generator():
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.25])
    torch.testing.assert_close(objectives.Wasserstein().d_loss(r, f), torch.tensor(-0.125 - 1.25))
    torch.testing.assert_close(objectives.Wasserstein().g_loss(f), torch.tensor(0.125))


def test_label_smoothing_changes_only_the_real_target():
    r, f = torch.tensor([0.3, -1.0]), torch.tensor([0.2, 0.5])
    plain = objectives.objective_for(from_preset("seed"))
    smooth = objectives.objective_for(from_preset("seed", {"label_smoothing": 0.1}))
    bce = F.binary_cross_entropy_with_logits
    torch.testing.assert_close(smooth.d_loss(r, f), bce(r, torch.full_like(r, 0.9)) + bce(f, torch.zeros_like(f)))
    torch.testing.assert_close(plain.d_loss(r, f), bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    torch.testing.assert_close(plain.g_loss(f), smooth.g_loss(f))


def quadratic_batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    real, fake = torch.rand(n, 1, 28, 28, generator=g), torch.rand(n, 1, 28, 28, generator=g)
    return objectives.Batch(real, None, None, None, fake)


def critic(D, head=False):
    return objectives.Critic(D, head=head, joint=True, autocast=contextlib.nullcontext)


def test_gradient_penalty_against_hand_computation():
    b = quadratic_batch()
    draws = objectives.Draws(torch.Generator().manual_seed(1))
    state = draws.noise.get_state()
    gp = objectives.GradientPenalty(10.0).d(b, None, critic(Quadratic()), draws)
    draws.noise.set_state(state)
    e = torch.rand(8, 1, 1, 1, generator=draws.noise)
    x_hat = e * b.real + (1 - e) * b.fake
    by_hand = 10.0 * ((2 * 0.3 * x_hat).flatten(1).norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(gp, by_hand, rtol=1e-5, atol=1e-6)


def test_r1_against_hand_computation():
    config = from_preset("dcgan", {"r1_gamma": 4.0, "objective": "hinge"})
    loss = objectives.loss_for(config, critic(Quadratic()))
    b = quadratic_batch()
    d_loss, out = loss.d_phase(b)
    assert out.real.requires_grad and not b.real.requires_grad
    hinge = F.relu(1 - out.real_logits).mean() + F.relu(1 + out.fake_logits).mean()
    r1 = 4.0 / 2 * (2 * 0.3 * b.real).square().sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(d_loss, hinge + r1)


def test_terms_follow_the_config_in_order():
    names = lambda cfg: [type(t).__name__ for t in objectives.loss_for(cfg, critic(Quadratic())).terms]
    assert names(from_preset("seed")) == []
    assert names(from_preset("wgan-gp")) == ["GradientPenalty"]
    assert names(from_preset("cdcgan", {"r1_gamma": 1})) == ["AuxiliaryClassifier", "ZeroCentred"]
    assert names(from_preset("dcgan", {"info_code": True, "objective": "wgan-gp"})) == ["InfoCode", "GradientPenalty"]


class HeadD(torch.nn.Module):
    """A D with a fixed classifier head: logit = mean pixel, class logits = a linear map."""

    def __init__(self, outputs=10):
        super().__init__()
        self.head = torch.nn.Linear(784, outputs)

    def forward(self, x, labels=None, classes=False):
        logit = x.flatten(1).mean(1)
        return (logit, self.head(x.flatten(1))) if classes else logit


def test_auxiliary_and_info_terms_add_their_cross_entropy_to_both_phases():
    torch.manual_seed(0)
    D = HeadD()
    b = quadratic_batch()
    b.labels, b.codes = torch.arange(8) % 10, (torch.arange(8) + 3) % 10  # (conditional: fake_labels are the codes)
    base = objectives.objective_for(from_preset("seed"))
    ce = F.cross_entropy
    real_logits, fake_logits = b.real.flatten(1).mean(1), b.fake.flatten(1).mean(1)
    aux = objectives.loss_for(from_preset("cdcgan", {"aux_weight": 0.5}), critic(D, head=True))
    d_loss, _ = aux.d_phase(b)
    torch.testing.assert_close(d_loss, base.d_loss(real_logits, fake_logits) + 0.5 * ce(D.head(b.real.flatten(1)), b.labels))
    g_loss, _ = aux.g_phase(b)
    torch.testing.assert_close(g_loss, base.g_loss(fake_logits) + 0.5 * ce(D.head(b.fake.flatten(1)), b.fake_labels))
    info = objectives.loss_for(from_preset("dcgan", {"info_code": True, "objective": "nonsaturating"}), critic(D, head=True))
    d_loss, _ = info.d_phase(b)
    torch.testing.assert_close(d_loss, base.d_loss(real_logits, fake_logits) + ce(D.head(b.fake.flatten(1)), b.codes))
    g_loss, _ = info.g_phase(b)
    torch.testing.assert_close(g_loss, base.g_loss(fake_logits) + ce(D.head(b.fake.flatten(1)), b.codes))


def test_twin_classifier_learns_forgeries_and_g_subtracts_its_cross_entropy():
    """TAC-GAN (Gong et al. 2019): the head's first ten outputs classify real images, the
    other ten (the twin) learn the requested classes of forgeries; G's loss is the first
    classifier's cross-entropy on its forgeries minus the twin's."""
    torch.manual_seed(0)
    D = HeadD(20)
    b = quadratic_batch()
    b.labels, b.codes = torch.arange(8) % 10, (torch.arange(8) + 3) % 10
    config = from_preset("cdcgan", {"aux_weight": 0.5, "aux_twin": True})
    assert config.head_count == 20 and from_preset("cdcgan").head_count == 10
    loss = objectives.loss_for(config, critic(D, head=True))
    base = objectives.objective_for(config)
    ce = F.cross_entropy
    real_logits, fake_logits = b.real.flatten(1).mean(1), b.fake.flatten(1).mean(1)
    real_head, fake_head = D.head(b.real.flatten(1)), D.head(b.fake.flatten(1))
    d_loss, _ = loss.d_phase(b)
    torch.testing.assert_close(d_loss, base.d_loss(real_logits, fake_logits)
                               + 0.5 * (ce(real_head[:, :10], b.labels) + ce(fake_head[:, 10:], b.fake_labels)))
    g_loss, _ = loss.g_phase(b)
    torch.testing.assert_close(g_loss, base.g_loss(fake_logits)
                               + 0.5 * (ce(fake_head[:, :10], b.fake_labels) - ce(fake_head[:, 10:], b.fake_labels)))
    # The twin's cross-entropy is not in the plain auxiliary classifier's losses.
    plain = objectives.loss_for(from_preset("cdcgan", {"aux_weight": 0.5}), critic(HeadD(10), head=True))
    assert type(plain.terms[0]).__name__ == "AuxiliaryClassifier" and not plain.terms[0].twin


@pytest.mark.parametrize("joint", [True, False])
def test_critic_pair_is_the_same_with_and_without_the_joint_pass(joint):
    D = HeadD()
    b = quadratic_batch()
    r, f, rh, fh = objectives.Critic(D, True, joint, contextlib.nullcontext).judge_pair(b.real, b.fake, None, None)
    torch.testing.assert_close(r, b.real.flatten(1).mean(1))
    torch.testing.assert_close(f, b.fake.flatten(1).mean(1))
    torch.testing.assert_close(fh, D.head(b.fake.flatten(1)))


def test_relativistic_average_matches_its_definition():
    """Jolicoeur-Martineau 2018, RSGAN with the average: BCE on C(x) - E C(G(z)) (target 1)
    and C(G(z)) - E C(x) (target 0) for D; the targets swapped for G."""
    torch.manual_seed(1)
    r, f = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits
    ra = objectives.RelativisticAverage()
    torch.testing.assert_close(ra.d_loss(r, f), bce(r - f.mean(), torch.ones_like(r)) + bce(f - r.mean(), torch.zeros_like(f)))
    torch.testing.assert_close(ra.g_loss(f, r), bce(f - r.mean(), torch.ones_like(f)) + bce(r - f.mean(), torch.zeros_like(r)))
    # symmetric: G's loss is D's with real and forged swapped
    torch.testing.assert_close(ra.g_loss(f, r), ra.d_loss(f, r))


def test_relativistic_g_phase_sees_real_logits_and_trains():
    from mnistgan.training.trainer import Trainer

    config = from_preset("seed", {"objective": "relativistic", "train_images": 200})
    b = quadratic_batch()
    loss = objectives.loss_for(config, critic(Quadratic()))
    g_loss, out = loss.g_phase(b)
    real_logits = (0.3 * b.real.square()).sum(dim=(1, 2, 3))
    torch.testing.assert_close(out.real_logits, real_logits)
    torch.testing.assert_close(g_loss, objectives.RelativisticAverage().g_loss(out.fake_logits, real_logits))
    t = Trainer(config)
    real = torch.rand(100, 1, 28, 28)
    before = [p.detach().clone() for p in t.G.parameters()]
    stats = t.train_step(real)
    assert torch.isfinite(stats).all() and all(not torch.equal(a, p) for a, p in zip(before, t.G.parameters()))


def test_mode_seeking_against_hand_computation_same_class_pairs_only():
    torch.manual_seed(0)
    fake = torch.rand(4, 1, 28, 28, requires_grad=True)
    z = torch.randn(4, 8)
    labels = torch.tensor([1, 2, 1, 2])
    b = objectives.Batch(torch.rand(4, 1, 28, 28), labels, z, labels, fake)
    loss = objectives.ModeSeeking(2.0).g(b, None)
    ratios = [(fake[i] - fake[j]).abs().mean() / (z[i] - z[j]).abs().mean() for i, j in ((0, 2), (1, 3))]
    torch.testing.assert_close(loss, 2.0 / (torch.stack(ratios).mean() + 1e-5))
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0      # G is pushed to spread its forgeries
    unconditional = objectives.Batch(b.real, None, z, None, fake.detach())
    every = [(fake[i] - fake[j]).abs().mean() / (z[i] - z[j]).abs().mean() for i in range(4) for j in range(i + 1, 4)]
    torch.testing.assert_close(objectives.ModeSeeking(1.0).g(unconditional, None), 1.0 / (torch.stack(every).mean() + 1e-5))
    lonely = objectives.Batch(b.real, torch.tensor([0, 1, 2, 3]), z, torch.tensor([0, 1, 2, 3]), fake)
    assert objectives.ModeSeeking(1.0).g(lonely, None) is None      # no pair of one class: nothing to add
    names = [type(t).__name__ for t in objectives.loss_for(from_preset("best", {"mode_seeking": 1}), critic(Quadratic())).terms]
    assert sorted(names) == ["ModeSeeking", "ZeroCentred"]  # best's own lazy R1 beside it


def test_r2_and_r1_with_r2_against_hand_computation():
    """R2 is R1's penalty on the forgeries D is shown (detached from G); both together are the
    sum of the two, from one double-backward pass."""
    b = quadratic_batch()
    hinge = lambda out: F.relu(1 - out.real_logits).mean() + F.relu(1 + out.fake_logits).mean()  # noqa: E731
    penalty = lambda x, gamma: gamma / 2 * (2 * 0.3 * x).square().sum(dim=(1, 2, 3)).mean()  # noqa: E731
    r2_only = objectives.loss_for(from_preset("dcgan", {"r2_gamma": 3.0, "objective": "hinge"}), critic(Quadratic()))
    d_loss, out = r2_only.d_phase(b)
    assert out.fake.requires_grad and not out.real.requires_grad
    torch.testing.assert_close(d_loss, hinge(out) + penalty(b.fake, 3.0))
    both = objectives.loss_for(from_preset("dcgan", {"r1_gamma": 4.0, "r2_gamma": 3.0, "objective": "hinge"}),
                              critic(Quadratic()))
    d_loss, out = both.d_phase(b)
    torch.testing.assert_close(d_loss, hinge(out) + penalty(b.real, 4.0) + penalty(b.fake, 3.0))
    # the penalty's gradient reaches D's weights (it is a loss D minimises), not G's forgeries
    fake = b.fake.clone().requires_grad_(True)
    b2 = objectives.Batch(b.real, None, None, None, fake)
    D = Quadratic()
    d_loss, _ = objectives.loss_for(from_preset("dcgan", {"r2_gamma": 3.0, "objective": "hinge"}), critic(D)).d_phase(b2)
    d_loss.backward()
    assert D.w.grad is not None and fake.grad is None


def test_rpgan_pairs_real_and_forged_rows_against_hand_computation():
    """RpGAN: D's loss mean softplus(-(C(x_i) - C(G(z_i)))), G's the same with the roles
    swapped; row i of the real batch is paired with row i of the forgeries (not averaged, as
    the relativistic average loss does)."""
    r = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    f = torch.tensor([1.0, 1.0, -0.5], dtype=torch.float64)
    rp = objectives.RelativisticPairing()
    by_hand = lambda d: sum(torch.log1p(torch.exp(-torch.tensor(v, dtype=torch.float64))) for v in d) / len(d)  # noqa: E731
    torch.testing.assert_close(rp.d_loss(r, f), by_hand([1.0, -2.0, 1.0]))
    torch.testing.assert_close(rp.g_loss(f, r), by_hand([-1.0, 2.0, -1.0]))
    assert not torch.isclose(rp.d_loss(r, f), rp.d_loss(r, f.flip(0)))  # pairs, not averages
    assert objectives.OBJECTIVES["rpgan"] is objectives.RelativisticPairing and rp.g_uses_real


def test_lazy_regularisation_adds_r1_and_r2_k_times_as_strong_on_every_kth_step_only():
    """reg_every = k (StyleGAN2's lazy regularisation): the penalties' gammas are k times the
    config's, added on regularising steps only; on the others D's loss is the objective's
    alone and no input needs a gradient."""
    b = quadratic_batch()
    hinge = lambda out: F.relu(1 - out.real_logits).mean() + F.relu(1 + out.fake_logits).mean()  # noqa: E731
    penalty = lambda x, gamma: gamma / 2 * (2 * 0.3 * x).square().sum(dim=(1, 2, 3)).mean()  # noqa: E731
    lazy = objectives.loss_for(from_preset("dcgan", {"r1_gamma": 4.0, "r2_gamma": 3.0, "reg_every": 4,
                                                     "objective": "hinge"}), critic(Quadratic()))
    d_loss, out = lazy.d_phase(b, regularise=True)
    torch.testing.assert_close(d_loss, hinge(out) + penalty(b.real, 16.0) + penalty(b.fake, 12.0))
    d_loss, out = lazy.d_phase(b, regularise=False)
    assert not out.real.requires_grad and not out.fake.requires_grad
    torch.testing.assert_close(d_loss, hinge(out))


def test_the_trainer_regularises_on_every_kth_step_counted_from_the_images_seen():
    """The schedule is a function of images_seen, which a checkpoint holds: a resumed run keeps it."""
    from mnistgan.training.trainer import Trainer

    config = from_preset("dcgan", {"r1_gamma": 1.0, "reg_every": 3, "train_images": 64, "batch_size": 8, "width": 4})
    t = Trainer(config, "cpu")
    seen = []
    d_phase = t.engine.loss.d_phase
    t.engine.loss.d_phase = lambda b, regularise=True: (seen.append(regularise), d_phase(b, regularise))[1]
    real = torch.rand(8, 1, 28, 28)
    for _ in range(7):
        t.train_step(real)
        t.images_seen += 8
    assert seen == [False, False, True, False, False, True, False]
