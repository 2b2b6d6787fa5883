"""The Trainer: the order of the phases, the EMA generator, running statistics kept on the
device, and the state a checkpoint holds. The maths of each phase lives in objectives.py;
everything a user sees (bars, logs, pictures, checkpoints) is done by callbacks.

Progress is counted in images seen; epochs are derived from it. Every random draw comes
from an explicit generator seeded from the config, so a run is a pure function of its
config, and the loop's whole state fits in a checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import time
from typing import TYPE_CHECKING, Any, Sequence

import torch

from . import distributed, fastpath, generation, graphs, models, objectives, optim, runtime
from .config import TrainConfig
from .data import DeviceData
from .errors import CheckpointError, ConfigError
from .stats import EpochStats

if TYPE_CHECKING:
    from .callbacks import Callback


class TrainingInterrupted(Exception):
    """The loop stopped on request after a complete step; a checkpoint has been written."""

    def __init__(self, images_seen: int, signum: int | None = None):
        super().__init__(f"stopped after {images_seen:,} images")
        self.images_seen = images_seen
        self.signum = signum


class FiguresInterrupted(TrainingInterrupted):
    """A stop was requested while the end-of-run figures were drawn: training is complete
    and checkpointed; resuming the run draws them again."""


class Trainer:
    """Owns the networks, their optimisers, the noise stream and progress."""

    def __init__(self, config: TrainConfig, device: torch.device | str | None = None,
                 dist: distributed.Dist | None = None):
        c = self.config = config
        # Under torchrun: this process's place; batch_size stays the global batch, and each
        # process takes its contiguous slice of every batch (and of every random draw).
        self.dist = dist or distributed.current()
        self._part = distributed.batch_part(c.batch_size, self.dist)
        self.device = torch.device(device) if device is not None else runtime.resolve_device(c.device)
        runtime.prepare_device(self.device, c.tf32, c.flush_denormals)
        # Weights are drawn on the CPU from their own seed, so they do not depend on the device
        # or on the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(runtime.derived_seed(c.seed, runtime.WEIGHTS))
            G, D = models.build(c)
        self.G, self.D = G.to(self.device), D.to(self.device)
        runtime.seed_global_rngs(c.seed)
        # An exponential moving average of G's weights (Karras et al. 2018), used for every
        # picture and sample when enabled. Batch-norm statistics are not averaged: they are
        # recomputed for the averaged weights before use (generation.recalibrate_batch_norm).
        self.G_ema = None
        if c.ema_half_life:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
            self._ema_beta = 0.5 ** (c.batch_size * c.d_steps / c.ema_half_life)
        self._ema_stale = True
        # The step calls these; checkpoints and sampling use the plain modules. Under torchrun
        # (distributed.parallel) D's wrapper is used in the D phase only.
        (self._g, synced), d = distributed.parallel(self.G, self.D, self.device, self.dist), self.D
        if c.compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs on GPU
            self._g, d = torch.compile(self._g, mode=mode), torch.compile(self.D, mode=mode)
            synced = torch.compile(synced, mode=mode) if synced is not None else None
        # The whole step captured as CUDA graphs (graphs.py); on other devices the option does nothing.
        graphing = c.cuda_graph and self.device.type == "cuda"
        # (autocast's cache of cast weights would hold tensors of one replay in the next)
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not graphing)) \
            if c.precision == "bf16" else contextlib.nullcontext
        joint = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
        self.loss = objectives.GANLoss(c, objectives.Critic(d, c.d_head, joint, self._autocast, synced))
        betas = (c.beta1, c.beta2)
        refused = graphs.refusal(self.device, self.dist.active) if c.cuda_graph else None
        if refused:
            raise ConfigError(refused)
        self.opt_g = optim.build(c.optimizer, self.G.parameters(), c.lr, betas, c.eps, capturable=graphing)
        self.opt_d = optim.build(c.optimizer, self.D.parameters(), c.lr if c.lr_d is None else c.lr_d, betas, c.eps,
                                 capturable=graphing)
        # Hand-derived gradients for the seed's exact case (see fastpath.py), else autograd.
        # (Under a graph, kernel launches cost nothing, and autograd's step is the one captured.)
        self._fast = fastpath.SeedStep(self.G, self.D, self.opt_g, self.opt_d) \
            if fastpath.applies(c, self.G, self.D) and not self.dist.active and not graphing else None
        self.noise = torch.Generator(self.device).manual_seed(runtime.derived_seed(c.seed, runtime.NOISE))
        self._graphed = graphs.GraphedStep(self._step, self.noise, c.d_steps, self.device) if graphing else None
        fixed_seed = runtime.derived_seed(c.seed, runtime.FIXED_NOISE)
        if c.takes_labels:  # ten rows, one per class (or code), each row the same ten noise vectors
            k = c.label_count
            if k == 10:
                self.fixed_noise = self.make_noise(10, fixed_seed).repeat(10, 1)
            else:  # rows cycle through the K classes; each cycle of rows has ten noise vectors of its own
                self.fixed_noise = self.make_noise(10 * -(-10 // k), fixed_seed).view(-1, 10, c.z_dim) \
                    .repeat_interleave(k, 0)[:10].reshape(100, c.z_dim)
            self.fixed_labels = (torch.arange(10, device=self.device) % k).repeat_interleave(10)
        else:
            self.fixed_noise, self.fixed_labels = self.make_noise(100, fixed_seed), None
        self.images_seen = 0
        self.stats = EpochStats(self.device, c.steps_per_epoch,  # this epoch's, by name, over all processes
                                distributed.mean_over_processes if self.dist.active else None)
        self.train_seconds = 0.0     # all training time so far (pictures and checkpoints excluded)
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.finishing = False

    # ------------------------------------------------------------------ sampling
    def make_noise(self, n: int, seed: int) -> torch.Tensor:
        """n noise vectors drawn on the CPU from seed (identical on every device)."""
        return generation.noise(n, self.config.z_dim, seed).to(self.device)

    def sampler(self) -> torch.nn.Module:
        """The generator pictures and samples come from: the EMA generator when there is one
        (its batch-norm statistics recomputed for the averaged weights), else G."""
        if self.G_ema is None:
            return self.G
        if self._ema_stale:
            generation.recalibrate_batch_norm(self.G_ema, self.config, self.device)
            self._ema_stale = False
        return self.G_ema

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Forgeries (B x 1 x 28 x 28 in [0, 1]) for noise z (conditional: labels, else 0..K-1 in turn)."""
        return generation.generate(self.sampler(), z, labels, self.config.label_count)

    def generate_fixed(self) -> torch.Tensor:
        """The fixed-noise batch behind every epoch's grid."""
        return self.generate(self.fixed_noise, self.fixed_labels)

    # ------------------------------------------------------------------ one step
    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One D phase, then a G phase on every d_steps-th call, on a batch of real images.
        Returns the step's statistics (stats.NAMES) as a device tensor (no sync)."""
        c = self.config
        g_step = (self.images_seen // c.batch_size + 1) % c.d_steps == 0
        stats = (self._graphed or self._step)(real, labels, g_step)
        if g_step and self.G_ema is not None:
            self._ema_stale = True
        return stats

    def _step(self, real: torch.Tensor, labels: torch.Tensor | None, g_step: bool) -> torch.Tensor:
        """The step itself: reads no device value on the host, so it can be captured (graphs.py)."""
        c = self.config
        B, part = c.batch_size, self._part  # every draw is the global batch's, sliced for this process
        z = torch.randn(B, c.z_dim, generator=self.noise, device=self.device)[part]
        if self._fast is not None:
            return self._fast(real, z)
        # Classes (conditional) or InfoGAN codes (info_code) for G; D is told classes only.
        codes = torch.randint(0, c.label_count, (B,), generator=self.noise, device=self.device)[part] if c.takes_labels else None
        # G(z) is computed once: the D phase does not change G, so the G phase reuses it.
        with self._autocast(), torch.set_grad_enabled(g_step):
            fake = self._g(z, codes)
        batch = objectives.Batch(real, fake, labels if c.conditional else None, codes if c.conditional else None,
                                 codes, self.noise, B, part, z)

        d_loss, d_out = self.loss.d_phase(batch)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        g_loss = torch.zeros((), device=self.device)
        if g_step:  # through the updated D, whose parameters get no gradient
            self.D.requires_grad_(False)
            g_loss, _ = self.loss.g_phase(batch)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            self.D.requires_grad_(True)
            if self.G_ema is not None:
                self._update_ema()

        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(d_out.real_logits.detach()).mean(),
                                torch.sigmoid(d_out.fake_logits).mean(), torch.ones((), device=self.device) if g_step
                                else torch.zeros((), device=self.device)])

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema, raw = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema, raw, 1.0 - self._ema_beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ the loop
    def fit(self, data: DeviceData, callbacks: Sequence["Callback"] = ()) -> None:
        """Trains until config.total_images images have been seen (resumes where it is).

        If request_stop() is called (by a signal handler), the current step finishes, the
        callbacks' on_interrupt runs (a checkpoint is written) and TrainingInterrupted is raised.
        """
        c = self.config
        B, spe, total = c.batch_size, c.steps_per_epoch, c.total_images
        if len(data) < c.train_images:
            raise ConfigError(f"train_images is {c.train_images} but the data holds {len(data)} images")
        out_of_time = False
        while self.images_seen < total and not out_of_time:
            epoch = self.images_seen // c.images_per_epoch           # 0-based
            first = (self.images_seen % c.images_per_epoch) // B     # step to start from
            last = min(spe, first + (total - self.images_seen) // B)
            order = data.epoch_order(c.seed, epoch)
            for cb in callbacks:
                cb.on_epoch_start(self, epoch + 1, first)
            t0 = time.perf_counter()
            try:
                for step in range(first, last):
                    real, labels = data.batch(order, step, B, self._part)
                    full = self.stats.push(self.train_step(real, labels))
                    self.images_seen += B
                    for cb in callbacks:
                        cb.on_step(self)
                    # (several processes read and decide together, at the same steps)
                    if full or step + 1 == last or (self.stop_requested and not self.dist.active):
                        means = self.stats.flush(self.images_seen // B)
                        spent = self.train_seconds + time.perf_counter() - t0
                        out_of_time = c.max_seconds is not None and spent >= c.max_seconds
                        if self.dist.active:
                            out_of_time, self.stop_requested, signum = distributed.agree(
                                out_of_time, self.stop_requested, self.stop_signal, device=self.device)
                            self.stop_signal = self.stop_signal or signum
                        rate = (step + 1 - first) * B / max(time.perf_counter() - t0, 1e-9)
                        for cb in callbacks:
                            cb.on_refresh(self, means, rate)
                    if out_of_time:
                        last = step + 1
                        break
                    if self.stop_requested:
                        self.stats.seconds += time.perf_counter() - t0
                        self.train_seconds += time.perf_counter() - t0
                        for cb in callbacks:
                            cb.on_interrupt(self)
                        raise TrainingInterrupted(self.images_seen, self.stop_signal)
            finally:
                for cb in callbacks:
                    cb.on_steps_end(self)
            self.stats.seconds += time.perf_counter() - t0
            self.train_seconds += time.perf_counter() - t0
            self.stats.check_weights((("generator", self.G), ("discriminator", self.D)), self.images_seen // B)
            objective = self.loss.objective
            row = self.stats.row(epoch + 1, self.images_seen, c.images_per_epoch, c.batch_size, partial=last < spe,
                                 costs=(objective.reports_cost_d, objective.reports_cost_g))
            if last == spe:  # a new epoch starts from zero sums (before any checkpoint is taken)
                self.stats.reset()
            for cb in callbacks:
                cb.on_epoch_end(self, row)
        self.finishing = True  # the end-of-run figures: a stop now cannot wait for a step
        for cb in callbacks:
            cb.on_train_end(self)
        self.finishing = False

    def request_stop(self) -> None:
        """Asks the loop to stop after the current step (safe to call from a signal handler)."""
        self.stop_requested = True

    # ------------------------------------------------------------------ state
    @property
    def epoch(self) -> float:
        return self.images_seen / self.config.images_per_epoch

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to continue exactly: (tensors, JSON metadata)."""
        from . import checkpoint as ckpt

        tensors = {**ckpt.module_tensors("G", self.G), **ckpt.module_tensors("D", self.D)}
        if self.G_ema is not None:
            tensors.update(ckpt.module_tensors("G_ema", self.G_ema))
        og, og_info = ckpt.optimizer_state("opt_g", self.opt_g)
        od, od_info = ckpt.optimizer_state("opt_d", self.opt_d)
        rng, rng_info = runtime.capture_rng(self.noise)
        tensors.update({**og, **od, **rng})
        meta = {
            **self.stats.to_meta(),
            "world_size": self.dist.world,
            "config": self.config.to_dict(),
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
            "opt_g": og_info,
            "opt_d": od_info,
            "torch_version": torch.__version__,
            **rng_info,
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], path="checkpoint") -> None:
        """Restores what state() saved (the config must already match)."""
        from . import checkpoint as ckpt

        try:
            ckpt.load_module("G", self.G, tensors, path)
            ckpt.load_module("D", self.D, tensors, path)
            if self.G_ema is not None:
                ckpt.load_module("G_ema", self.G_ema, tensors, path)
                self._ema_stale = True  # batch-norm statistics are recomputed before use
            ckpt.load_optimizer("opt_g", self.opt_g, tensors, meta["opt_g"], path)
            ckpt.load_optimizer("opt_d", self.opt_d, tensors, meta["opt_d"], path)
            runtime.restore_rng(self.noise, tensors, meta)
            self.stats.load_meta(meta)
            self.images_seen = int(meta["images_seen"])
            if self.images_seen < 0 or self.images_seen % self.config.batch_size:
                raise ValueError(f"images_seen {self.images_seen} is not a whole number of batches")
            self.train_seconds = float(meta["train_seconds"])
        # Whatever a damaged or crafted file holds ends here, as the project's own error.
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, ArithmeticError) as e:
            raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint ({e!r})") from None
