"""One training step, and the one place that picks how it is carried out.

Every engine is a `Step`: called as step(real, labels, g_step, reg_step), it runs the D
phase (with the lazy regularisers R1 and R2 when reg_step is true), then the G phase when
g_step is true (the Trainer decides which steps update G), updates the
EMA generator after G's update, and returns the step's statistics as one device tensor
packed by name (`stats.pack`), with no host read of a device value.

The engines, and when `build` picks each:
- `AutogradStep`: the general step: G(z) once, the objective's D phase (GANLoss.d_phase)
  -> backward -> D's optimiser, then with D frozen the G phase -> backward -> G's optimiser.
  Under `compile` its G and D are torch.compile'd modules (CUDA: reduce-overhead mode).
- `SeedEngine`: the seed's exact case, with hand-derived gradients (fastpath.py): the same
  products as the autograd step, bit for bit, without the autograd engine's bookkeeping.
- `graphs.GraphedStep`: on CUDA with `cuda_graph`, the autograd step recorded once per kind
  of step as CUDA graphs and replayed.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..system import distributed
from . import fastpath, graphs, objectives, stats
from ..errors import ConfigError


class Step(Protocol):
    kind: str  # "autograd", "compiled", "hand-derived" or "cuda-graph": what the run's notices and tests read

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, g_step: bool,
                 reg_step: bool = True) -> torch.Tensor:
        """One step on a batch of real images (this process's part of the global batch):
        the statistics of stats.NAMES, packed on the device."""


@dataclass
class Parts:
    """What every engine works on; the Trainer owns each of them."""
    config: object                         # the run's TrainConfig
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator                 # the run's noise stream (every draw of a step)
    part: slice                            # this process's slice of every global batch and draw
    device: torch.device
    dist: distributed.Dist
    ema_update: Callable[[], None] | None  # after each G update (the Trainer's EMA), or None
    bf16: bool                             # forward passes under bf16 autocast (the run's precision, resolved)

    def draws(self) -> objectives.Draws:
        """The run's noise stream, drawn for the global batch, this process's part kept."""
        return objectives.Draws(self.noise, self.config.batch_size, self.part, self.device)


class AutogradStep:
    """The general step through autograd (see the module docstring)."""

    kind = "autograd"

    def __init__(self, p: Parts, g_call, d_call, synced, autocast):
        self.p, self._g, self._autocast, self.draw = p, g_call, autocast, p.draws()
        joint = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in p.D.modules())
        critic = objectives.Critic(d_call, p.config.d_head, joint, autocast, synced)
        self.loss = objectives.loss_for(p.config, critic, self.draw)
        self._zero = torch.zeros((), device=p.device)
        self._one = torch.ones((), device=p.device)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, g_step: bool,
                 reg_step: bool = True) -> torch.Tensor:
        p, c = self.p, self.p.config
        z = self.draw(torch.randn, c.z_dim)  # z ~ N(0, 1)
        # G is given classes (conditional) or InfoGAN codes, drawn uniformly; D is told classes only.
        codes = self.draw(lambda n, **kw: torch.randint(0, c.label_count, (n,), **kw)) if c.takes_labels else None
        # G(z) once: the D phase does not change G, so the G phase reuses it.
        with self._autocast(), torch.set_grad_enabled(g_step):
            fake = self._g(z, codes)
        batch = objectives.Batch(real, labels if c.conditional else None, z, codes, fake)

        # ---- D phase: D minimises the objective's D loss (+ its regularisers) on real and detached forgeries
        d_loss, d_out = self.loss.d_phase(batch, regularise=reg_step)
        p.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        p.opt_d.step()

        # ---- G phase: G minimises the G loss through the updated D, whose parameters get no gradient
        g_loss = self._zero
        if g_step:
            p.D.requires_grad_(False)
            g_loss, _ = self.loss.g_phase(batch)
            p.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            p.opt_g.step()
            p.D.requires_grad_(True)
            if p.ema_update is not None:
                p.ema_update()

        with torch.no_grad():
            return stats.pack(d_loss=d_loss.detach(), g_loss=g_loss.detach(),
                              d_real=torch.sigmoid(d_out.real_logits.detach()).mean(),
                              d_fake=torch.sigmoid(d_out.fake_logits).mean(),
                              g_steps=self._one if g_step else self._zero)


class SeedEngine:
    """The seed's step with hand-derived gradients (fastpath.SeedStep); it always updates G."""

    kind = "hand-derived"

    def __init__(self, p: Parts):
        self.p, self.draw = p, p.draws()
        self.seed_step = fastpath.SeedStep(p.G, p.D, p.opt_g, p.opt_d)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, g_step: bool,
                 reg_step: bool = True) -> torch.Tensor:
        return self.seed_step(real, self.draw(torch.randn, self.p.config.z_dim))


def build(p: Parts, hand_derived: bool = True) -> Step:
    """The engine for this run (see the module docstring); refuses, in one line, what cannot
    run where it is asked to. hand_derived=False: never the hand-derived step (tests compare
    it with the autograd step)."""
    c = p.config
    graphing = c.cuda_graph and p.device.type == "cuda"  # elsewhere the option does nothing (the run says so)
    refused = graphs.refusal(p.device, p.dist.active) if c.cuda_graph else None
    if refused:
        raise ConfigError(refused)
    if hand_derived and not graphing and not p.dist.active and fastpath.applies(c, p.G, p.D):
        return SeedEngine(p)
    # What the step calls; checkpoints and sampling use the plain modules. Under torchrun
    # (distributed.parallel) D's wrapper is used in the D phase only.
    (g_call, synced), d_call = distributed.parallel(p.G, p.D, p.device, p.dist), p.D
    if c.compile:
        mode = "reduce-overhead" if p.device.type == "cuda" else None  # CUDA graphs on GPU
        g_call, d_call = torch.compile(g_call, mode=mode), torch.compile(p.D, mode=mode)
        synced = torch.compile(synced, mode=mode) if synced is not None else None
    # (autocast's cache of cast weights would hold tensors of one replay in the next)
    autocast = (lambda: torch.autocast(p.device.type, dtype=torch.bfloat16, cache_enabled=not graphing)) \
        if p.bf16 else contextlib.nullcontext
    step = AutogradStep(p, g_call, d_call, synced, autocast)
    if c.compile:
        step.kind = "compiled"
    cycle = math.lcm(c.d_steps, c.reg_every)  # every kind of step once
    return graphs.GraphedStep(step, p.noise, cycle, p.device) if graphing else step
