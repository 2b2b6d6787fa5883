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

from . import stats


# Fields of the run's maths whose value the hand-derived step takes as it comes (sizes,
# learning rates, seeds; the data's identity; and fields the mlp family ignores). Every other such field must have
# the seed's value, so that an option added later turns this path off by itself.
FREE = {"invert", "train_images", "num_classes", "z_dim", "hidden", "init_std", "lr", "lr_d", "beta1", "beta2",
        "eps", "batch_size", "seed", "width", "spectral_norm", "gp_lambda", "tf32", "flush_denormals", "optimizer",
        "data_key", "reg_every", "lr_schedule", "lr_end", "lr_horizon", "precision"}


def applies(config, G, D) -> bool:
    from ..config import TrainConfig, fixed_fields
    from ..models.mlp import MLPDiscriminator, MLPGenerator

    seed = TrainConfig()  # the seed preset is the defaults
    # (precision: auto is fp32 for the mlp family on every device, see runtime.bf16_autocast)
    return (all(getattr(config, f) == getattr(seed, f) for f in fixed_fields() - FREE) and not config.compile
            and config.precision != "bf16"
            and type(G) is MLPGenerator and type(D) is MLPDiscriminator
            and len(G.net) == 4 and len(D.net) == 4 and G.embed is None and D.embed is None)


class SeedStep:
    """Callable: (real B x 1 x 28 x 28, z B x z_dim) -> the step's statistics (stats.pack).

    Every intermediate and every gradient lives in a buffer made once per batch size and
    written with out= / in-place operations. At these sizes a fresh output per product is not
    free: the allocator hands out other blocks each step, so results land in memory that is
    not in cache, and the allocator's own work adds up over ~40 tensors (the measured gain is
    in docs/MEASUREMENTS.md, beside benchmarks/seed_breakdown.py's figures). The products and their order
    are those of the autograd step, so the results are bit-identical to the
    unbuffered form (the golden hashes hold)."""

    def __init__(self, G, D, opt_g, opt_d):
        self.g1, self.g2 = G.net[0], G.net[2]   # Linear(z, h), Linear(h, 784)
        self.d1, self.d2 = D.net[1], D.net[3]   # Linear(784, h), Linear(h, 1)
        # TF1's Adam without torch.optim's per-call wrapper (optim.AdamTF1.update); PyTorch's Adam as it is.
        self.step_g, self.step_d = (getattr(o, "update", o.step) for o in (opt_g, opt_d))
        self.params = [self.g1.weight, self.g1.bias, self.g2.weight, self.g2.bias,
                       self.d1.weight, self.d1.bias, self.d2.weight, self.d2.bias]
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.one = torch.ones((), device=G.net[0].weight.device)  # "G updated" for the statistics
        self._buffers_for = None

    def _buffers(self, B: int, z: torch.Tensor) -> None:
        hg, n_pix, hd = self.g1.out_features, self.g2.out_features, self.d1.out_features
        new = lambda *shape: torch.empty(*shape, device=z.device, dtype=z.dtype)  # noqa: E731
        self.hg, self.x, self.hd, self.logit = new(B, hg), new(2 * B, n_pix), new(2 * B, hd), new(2 * B, 1)
        self.dl, self.dhd = new(2 * B, 1), new(2 * B, hd)
        self.hd2, self.logit2, self.dl2, self.dhd2 = new(B, hd), new(B, 1), new(B, 1), new(B, hd)
        self.on_d, self.on_d2, self.on_g = new(2 * B, hd), new(B, hd), new(B, hg)  # ReLU slopes, 1 or 0
        self.dfake, self.slope, self.dhg = new(B, n_pix), new(B, n_pix), new(B, hg)
        self.target = torch.cat([torch.ones(B, 1), torch.zeros(B, 1)]).to(z.device, z.dtype)  # 1: real rows
        self._buffers_for = B

    @torch.no_grad()
    def __call__(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g1, g2, d1, d2 = self.g1, self.g2, self.d1, self.d2
        B = real.shape[0]
        if self._buffers_for != B:
            self._buffers(B, z)
        for p, g in zip(self.params, self.grads):
            p.grad = g
        gw1, gb1, gw2, gb2, dw1, db1, dw2, db2 = self.grads
        x, hd, logit, dl, dhd = self.x, self.hd, self.logit, self.dl, self.dhd
        fake = x[B:]
        # ---- G forward: fake = sigmoid(W2 relu(W1 z + b1) + b2), written beside the real rows
        hg = torch.addmm(g1.bias, z, g1.weight.t(), out=self.hg).relu_()                # B x h
        torch.addmm(g2.bias, hg, g2.weight.t(), out=fake).sigmoid_()                    # B x 784
        x[:B].copy_(real.reshape(B, -1))

        # ---- D step: maximise mean(log D(x) + log(1 - D(G(z)))), D on real and forged rows at once
        torch.addmm(d1.bias, x, d1.weight.t(), out=hd).relu_()                          # 2B x h
        torch.addmm(d2.bias, hd, d2.weight.t(), out=logit)                              # 2B x 1
        p = torch.sigmoid(logit)
        d_loss = F.softplus(-logit[:B]).mean() + F.softplus(logit[B:]).mean()
        stats_d = p.view(2, B).mean(1)                                                  # D(x), D(G(z))
        # d loss / d logit: (sigmoid(l) - 1)/B for real rows, sigmoid(l)/B for forged rows
        torch.sub(p, self.target, out=dl).div_(B)
        torch.mm(dl.t(), hd, out=dw2)                                                   # 1 x h
        torch.sum(dl, 0, out=db2)
        torch.mm(dl, d2.weight, out=dhd).mul_(torch.gt(hd, 0, out=self.on_d))  # 2B x h
        torch.mm(dhd.t(), x, out=dw1)                                                   # h x 784
        torch.sum(dhd, 0, out=db1)
        self.step_d()

        # ---- G step: maximise mean(log D(G(z))), same G(z), through the updated D
        hd2 = torch.addmm(d1.bias, fake, d1.weight.t(), out=self.hd2).relu_()          # B x h
        logit2 = torch.addmm(d2.bias, hd2, d2.weight.t(), out=self.logit2)             # B x 1
        g_loss = F.softplus(-logit2).mean()
        dl2 = torch.sigmoid(logit2, out=self.dl2).sub_(1.0).div_(B)                    # d g_loss / d logit
        dhd2 = torch.mm(dl2, d2.weight, out=self.dhd2).mul_(torch.gt(hd2, 0, out=self.on_d2))  # B x h
        dog = torch.mm(dhd2, d1.weight, out=self.dfake)                                # B x 784
        dog.mul_(torch.neg(fake, out=self.slope).add_(1.0).mul_(fake))    # through the sigmoid: (1 - f) f
        torch.mm(dog.t(), hg, out=gw2)                                                 # 784 x h
        torch.sum(dog, 0, out=gb2)
        dhg = torch.mm(dog, g2.weight, out=self.dhg).mul_(torch.gt(hg, 0, out=self.on_g))  # B x h
        torch.mm(dhg.t(), z, out=gw1)                                                  # h x z
        torch.sum(dhg, 0, out=gb1)
        self.step_g()
        return stats.pack(d_loss=d_loss, g_loss=g_loss, d_real=stats_d[0], d_fake=stats_d[1], g_steps=self.one)
