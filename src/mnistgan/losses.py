"""Objectives: each owns the maths of the discriminator (D) phase and the generator (G) phase.

Every objective works on logits, D(x) = sigmoid(logit), because log(sigmoid(l)) computed
as -softplus(-l) stays finite where log(D) of a saturated sigmoid would be -inf.
Adding an objective touches this file (and its name in registry.py) only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Objective:
    """D minimises d_loss(real_logits, fake_logits); G minimises g_loss(fake_logits)."""

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NonSaturating(Objective):
    """Goodfellow et al. 2014, section 3, the seed's objective.
    D: maximise mean(log D(x) + log(1 - D(G(z))));  G: maximise mean(log D(G(z)))."""

    def d_loss(self, real, fake):
        # -log D(x) = softplus(-l);  -log(1 - D(G(z))) = softplus(l)
        return F.softplus(-real).mean() + F.softplus(fake).mean()

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


OBJECTIVES: dict[str, type[Objective]] = {
    "minimax": Minimax,
    "nonsaturating": NonSaturating,
    "lsgan": LeastSquares,
    "hinge": Hinge,
}


def build(name: str) -> Objective:
    return OBJECTIVES[name]()
