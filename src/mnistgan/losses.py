"""Objectives: each owns the maths of the discriminator (D) phase and the generator (G) phase.

Every objective works on logits, D(x) = sigmoid(logit), because log(sigmoid(l)) computed
as -softplus(-l) stays finite where log(D) of a saturated sigmoid would be -inf.
Adding an objective touches this file (and its name in registry.py) only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Objective:
    """D minimises d_loss(real_logits, fake_logits) (+ a penalty, see training.py);
    G minimises g_loss(fake_logits)."""

    gradient_penalty = False  # WGAN-GP: the loop adds lambda * E[(|grad D(x_hat)| - 1)^2]

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NonSaturating(Objective):
    """Goodfellow et al. 2014, section 3, the seed's objective.
    D: maximise mean(log D(x) + log(1 - D(G(z))));  G: maximise mean(log D(G(z))).
    With one-sided label smoothing s (Salimans et al. 2016) the real target is 1 - s."""

    def __init__(self, label_smoothing: float = 0.0):
        self.s = label_smoothing

    def d_loss(self, real, fake):
        # -log D(x) = softplus(-l);  -log(1 - D(G(z))) = softplus(l)
        real_term = F.softplus(-real) if not self.s else (1 - self.s) * F.softplus(-real) + self.s * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()

    def g_loss(self, fake):
        return F.softplus(-fake).mean()


class Minimax(NonSaturating):
    """Goodfellow et al. 2014, eq. 1, as written: G minimises mean(log(1 - D(G(z)))),
    which saturates (vanishing gradient) while D wins easily."""

    def g_loss(self, fake):
        return -F.softplus(fake).mean()


class LeastSquares(Objective):
    """Mao et al. 2017 (LSGAN), targets a=0, b=c=1, on the raw logit."""

    def d_loss(self, real, fake):
        return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()

    def g_loss(self, fake):
        return 0.5 * (fake - 1).square().mean()


class Hinge(Objective):
    """Lim & Ye 2017; Miyato et al. 2018 (SNGAN)."""

    def d_loss(self, real, fake):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


class Wasserstein(Objective):
    """Arjovsky et al. 2017 with the gradient penalty of Gulrajani et al. 2017 (added by the
    loop, which owns D and the interpolates): the critic maximises E D(x) - E D(G(z))."""

    gradient_penalty = True

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()

    def g_loss(self, fake):
        return -fake.mean()


OBJECTIVES: dict[str, type[Objective]] = {
    "minimax": Minimax,
    "nonsaturating": NonSaturating,
    "lsgan": LeastSquares,
    "hinge": Hinge,
    "wgan-gp": Wasserstein,
}


def build(name: str, label_smoothing: float = 0.0) -> Objective:
    if label_smoothing and name in ("nonsaturating", "minimax"):
        return OBJECTIVES[name](label_smoothing)
    return OBJECTIVES[name]()
