"""Optimisers: PyTorch's fused Adam, and TensorFlow 1's form of Adam built on it.

TF1 (tf.train.AdamOptimizer, following Kingma & Ba 2015, section 2, last paragraph):
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);   p -= lr_t * m / (sqrt(v) + eps)
PyTorch:
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
The two differ only in epsilon: TF1's update is PyTorch's with eps replaced by
eps / sqrt(1 - b2^t), which is ~31.6x larger at step 1 and tends to eps. So TF1's Adam is
PyTorch's Adam with that epsilon set before each step, and it keeps PyTorch's single fused
kernel (one pass over all parameters, no per-tensor Python), which the seed's tiny networks
need: a hand-written version cost them a visible share of the step (docs/MEASUREMENTS.md).
"""
from __future__ import annotations

import math

import torch
import torch.optim.optimizer as _optimizer


def _fused_ok(params: list[torch.Tensor]) -> bool:
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


class AdamTF1(torch.optim.Adam):
    """Adam with TensorFlow 1's epsilon placement (see the module docstring).

    Two entry points: `step()` (torch.optim's, hooks and profiler record included) and
    `update()`, the same update for a caller that runs it every training step (the seed's
    hand-derived step). Behind them, one of two forms of the update:
    - host-side epsilon (the default): eps / sqrt(1 - b2^t) set before each step, then
      PyTorch's fused kernel, called directly where that is the same computation;
    - on the device (capturable, for a step recorded in a CUDA graph, where a host-side
      epsilon would be frozen at its capture-time value): TF1's update written out with the
      step count on the device; the same maths in another order of float operations, so
      equal to the fused form within rounding, not bit for bit.

    Private torch APIs, and why: `torch._fused_adam_` (the fused kernel without
    torch.optim.Adam.step's Python re-collecting its state every call, which at the seed's
    sizes takes as long as the kernel itself), `torch.optim.optimizer._global_optimizer_pre_hooks`
    and `_post_hooks` (update() must run the hooks step() would, and torch has no public
    way to ask whether any are registered), and `torch._foreach_*` in the device form (the
    multi-tensor kernels torch.optim itself is built on)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, capturable=False):
        params = list(params)
        fused = _fused_ok(params) and not capturable
        # (capturable also tells torch.optim.Adam.load_state_dict to keep the step counts on the
        # parameters' device, where the device form reads them)
        super().__init__(params, lr=lr, betas=betas, eps=eps, fused=fused or None, foreach=None if fused else True,
                         capturable=capturable)
        for group in self.param_groups:
            group["tf_eps"] = eps  # saved with the state; group["eps"] is rewritten every step
        self._t = 0                # step count as a Python int: no device read per step
        self._capturable = capturable

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            self._next_eps()
            return super().step(closure)
        self._update()
        return None

    def update(self) -> None:
        """step() without torch.optim's per-call wrapper (a profiler record and hook checks:
        at the seed's sizes half the fused kernel's own time). Hooks, where
        any are registered, still run: through step()."""
        if self._capturable:
            self._device_update()
            return
        if not (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or
                _optimizer._global_optimizer_pre_hooks or _optimizer._global_optimizer_post_hooks):
            self._next_eps()
            if self._fused_update():
                return
            self._t -= 1  # step() counts it again
        self.step()  # hooks to run, or a step the fused kernel cannot take alone (the first)

    def _update(self) -> None:
        if self._capturable:
            self._device_update()
            return
        self._next_eps()
        if not self._fused_update():
            super().step()

    def _next_eps(self) -> None:
        """Counts the step and sets TF1's epsilon for it: eps / sqrt(1 - b2^t)."""
        self._t += 1
        for group in self.param_groups:
            group["eps"] = group["tf_eps"] / math.sqrt(1.0 - group["betas"][1] ** self._t)

    @torch.no_grad()
    def _device_update(self) -> None:
        """TF1's update with no host value that changes between steps:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1 (on the device);
        p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            b1, b2 = group["betas"]
            for p in params:
                state = self.state[p]
                if not state:  # as torch.optim.Adam lays it out, so checkpoints read the same
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            states = [self.state[p] for p in params]
            grads = [p.grad for p in params]
            m, v = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, 1 - b2)
            t = steps[0]
            rate = group["lr"] * torch.sqrt(1 - b2 ** t) / (1 - b1 ** t)  # a device scalar
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, group["tf_eps"])
            update = torch._foreach_div(m, denom)
            torch._foreach_mul_(update, rate)
            torch._foreach_sub_(params, update)

    def _fused_update(self) -> bool:
        """The fused kernel called directly with lists built once (see the class docstring).
        Used only where it is the same computation as torch.optim.Adam.step: fused, every
        parameter has a gradient, and the state exists (the first step goes through Adam)."""
        if not self.defaults.get("fused") or not self.state:
            return False
        if getattr(self, "_lists", None) is None:
            self._lists = []
            for group in self.param_groups:
                params = group["params"]
                states = [self.state[p] for p in params]
                if any("exp_avg" not in s for s in states) or group["amsgrad"] or group["weight_decay"] \
                        or group["maximize"] or group["differentiable"]:
                    self._lists = None
                    return False
                self._lists.append((group, params, [s["exp_avg"] for s in states],
                                    [s["exp_avg_sq"] for s in states], [s["step"] for s in states]))
        for group, params, exp_avgs, exp_avg_sqs, steps in self._lists:
            grads = [p.grad for p in params]
            if any(g is None for g in grads):
                return False
            torch._foreach_add_(steps, 1)
            b1, b2 = group["betas"]
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                               lr=group["lr"], beta1=b1, beta2=b2, weight_decay=0.0, eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)
        return True

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._lists = None  # the state tensors were replaced
        steps = [s["step"] for s in self.state.values() if "step" in s]
        self._t = int(steps[0]) if steps else 0  # one read, at load time


def lr_factor(schedule: str, done: int, horizon: int, end: float) -> float:
    """The learning rate's multiplier after `done` of `horizon` images: 1 throughout
    (constant), or falling from 1 to `end` at the horizon along a straight line (linear) or a
    half cosine (cosine, Loshchilov & Hutter 2017, without restarts), and `end` after it.
    Written here rather than as a torch.optim.lr_scheduler: those count their own steps and
    keep that count in the checkpoint; this one is a function of the images seen, which a
    resume already restores, so a resumed run falls exactly as an uninterrupted one."""
    if schedule == "constant":
        return 1.0
    t = min(done / horizon, 1.0)
    if schedule == "linear":
        return 1.0 - (1.0 - end) * t
    if schedule == "cosine":
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    raise KeyError(schedule)


def set_lr(optimizers, rates) -> None:
    """Sets each optimiser's learning rate (every parameter group's)."""
    for opt, rate in zip(optimizers, rates):
        for group in opt.param_groups:
            group["lr"] = rate


def build(name: str, params, lr: float, betas: tuple[float, float], eps: float,
          capturable: bool = False) -> torch.optim.Optimizer:
    """capturable: the optimiser will run inside a CUDA graph (its step count on the device)."""
    if name == "adam-tf1":
        return AdamTF1(params, lr=lr, betas=betas, eps=eps, capturable=capturable)
    if name == "adam":
        params = list(params)
        fused = _fused_ok(params)
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=fused or None,
                                foreach=None if fused else True, capturable=capturable)
    raise KeyError(name)
