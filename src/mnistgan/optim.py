"""Optimisers. PyTorch's Adam is used as it is; TensorFlow 1's Adam is written here because
PyTorch has no switch for where epsilon goes, and the seed preset must be exact.

TF1 (tf.train.AdamOptimizer, following Kingma & Ba 2015, section 2, last paragraph):
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);   p -= lr_t * m / (sqrt(v) + eps)
PyTorch:
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
They differ only in epsilon: TF's is PyTorch's times sqrt(1 - b2^t), i.e. ~31.6x smaller
at step 1 and equal in the long run; it matters when v is tiny, as with the seed's
0.01-scale initial weights.
"""
from __future__ import annotations

import math

import torch


class AdamTF1(torch.optim.Optimizer):
    """Adam with TensorFlow 1's epsilon placement; multi-tensor (foreach) update, no syncs."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            b1, b2 = group["betas"]
            ms, vs = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    # The step count is a CPU tensor so the state dict round-trips like PyTorch's.
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
            t = int(self.state[params[0]]["step"])  # a CPU tensor: no device sync
            grads = [p.grad for p in params]
            torch._foreach_lerp_(ms, grads, 1 - b1)                  # m = b1 m + (1 - b1) g
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)  # v = b2 v + (1 - b2) g^2
            lr_t = group["lr"] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, ms, denom, value=-lr_t)
        return loss


def build(name: str, params, lr: float, betas: tuple[float, float], eps: float) -> torch.optim.Optimizer:
    if name == "adam-tf1":
        return AdamTF1(params, lr=lr, betas=betas, eps=eps)
    if name == "adam":
        # foreach: one multi-tensor kernel per op instead of one per parameter.
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, foreach=True)
    raise KeyError(name)
