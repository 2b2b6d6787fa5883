"""The seed step with hand-derived gradients: same maths as the autograd step, less work.

At the seed's sizes (batch 100, 128 -> 256 -> 784 and 784 -> 256 -> 1) each matrix product
takes tens of microseconds, so on a CPU the autograd engine's bookkeeping (graph nodes,
transposes, saved tensors, gradient accumulation) costs about as much as the arithmetic.
This module writes the two phases out as the products they are (Goodfellow et al. 2014,
with the non-saturating G loss), sets each parameter's .grad and lets the (fused)
optimiser step as usual. It applies only where it is exact: the `mlp` family with one
hidden layer, the non-saturating objective, fp32, not compiled. A test checks it against
the autograd step and against the tutorial's plain formulas.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def applies(config, G, D) -> bool:
    from .models.mlp import MLPDiscriminator, MLPGenerator

    return (config.model == "mlp" and config.objective == "nonsaturating" and config.precision == "fp32"
            and not config.compile and type(G) is MLPGenerator and type(D) is MLPDiscriminator
            and len(G.net) == 4 and len(D.net) == 4 and G.embed is None and D.embed is None
            and config.d_steps == 1 and not config.label_smoothing and not config.r1_gamma
            and not config.ema_half_life and not config.mode_seeking)


class SeedStep:
    """Callable: (real B x 1 x 28 x 28, z B x z_dim) -> [d_loss, g_loss, D(x), D(G(z))]."""

    def __init__(self, G, D, opt_g, opt_d):
        self.g1, self.g2 = G.net[0], G.net[2]   # Linear(z, h), Linear(h, 784)
        self.d1, self.d2 = D.net[1], D.net[3]   # Linear(784, h), Linear(h, 1)
        self.opt_g, self.opt_d = opt_g, opt_d
        self.one = torch.ones(1, device=G.net[0].weight.device)  # "G updated" for the statistics

    @torch.no_grad()
    def __call__(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g1, g2, d1, d2 = self.g1, self.g2, self.d1, self.d2
        B = real.shape[0]
        # ---- G forward: fake = sigmoid(W2 relu(W1 z + b1) + b2)
        hg = torch.addmm(g1.bias, z, g1.weight.t()).relu_()                # B x h
        fake = torch.addmm(g2.bias, hg, g2.weight.t()).sigmoid_()          # B x 784

        # ---- D step: maximise mean(log D(x) + log(1 - D(G(z)))), D on real and forged rows at once
        x = torch.cat([real.reshape(B, -1), fake])                        # 2B x 784
        hd = torch.addmm(d1.bias, x, d1.weight.t()).relu_()                # 2B x h
        logit = torch.addmm(d2.bias, hd, d2.weight.t())                    # 2B x 1
        p = torch.sigmoid(logit)
        d_loss = F.softplus(-logit[:B]).mean() + F.softplus(logit[B:]).mean()
        stats_d = p.view(2, B).mean(1)                                     # D(x), D(G(z))
        # d loss / d logit: (sigmoid(l) - 1)/B for real rows, sigmoid(l)/B for forged rows
        dl = p.clone()
        dl[:B] -= 1.0
        dl /= B
        d2.weight.grad = dl.t().mm(hd)                                     # 1 x h
        d2.bias.grad = dl.sum(0)
        dhd = dl.mm(d2.weight).mul_(hd > 0)                                # 2B x h
        d1.weight.grad = dhd.t().mm(x)                                     # h x 784
        d1.bias.grad = dhd.sum(0)
        self.opt_d.step()

        # ---- G step: maximise mean(log D(G(z))), same G(z), through the updated D
        hd2 = torch.addmm(d1.bias, fake, d1.weight.t()).relu_()            # B x h
        logit2 = torch.addmm(d2.bias, hd2, d2.weight.t())                  # B x 1
        g_loss = F.softplus(-logit2).mean()
        dl2 = torch.sigmoid(logit2).sub_(1.0).div_(B)                      # d g_loss / d logit
        dhd2 = dl2.mm(d2.weight).mul_(hd2 > 0)                             # B x h
        dfake = dhd2.mm(d1.weight)                                         # B x 784
        dog = dfake.mul_(fake * (1.0 - fake))                              # through the sigmoid
        g2.weight.grad = dog.t().mm(hg)                                    # 784 x h
        g2.bias.grad = dog.sum(0)
        dhg = dog.mm(g2.weight).mul_(hg > 0)                               # B x h
        g1.weight.grad = dhg.t().mm(z)                                     # h x z
        g1.bias.grad = dhg.sum(0)
        self.opt_g.step()
        return torch.cat([torch.stack([d_loss, g_loss]), stats_d, self.one])
