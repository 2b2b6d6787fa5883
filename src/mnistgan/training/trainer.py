"""The Trainer: the order of the phases, the EMA generator, running statistics kept on the
device, and the state a checkpoint holds. The maths of each phase lives in objectives.py;
everything a user sees (bars, logs, pictures, checkpoints) is done by callbacks.

Progress is counted in images seen; epochs are derived from it. Every random draw comes
from an explicit generator seeded from the config, so a run is a pure function of its
config, and the loop's whole state fits in a checkpoint.
"""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..store import checkpoint as ckpt
from ..system import threads
from ..system import distributed, runtime, seeds
from .. import generation, models
from . import objectives, optim, steps
from ..config import TrainConfig
from ..data import DeviceData
from ..errors import CheckpointError, ConfigError
from .stats import EpochStats

if TYPE_CHECKING:
    from ..callbacks import Callback


class TrainingInterrupted(Exception):
    """The loop stopped on request after a complete step, and the callbacks' on_interrupt has
    run (the run folder writes a checkpoint there). `run`: the run's folder."""

    def __init__(self, images_seen: int, signum: int | None = None, run: str | None = None):
        super().__init__(f"stopped after {images_seen:,} images")
        self.images_seen = images_seen
        self.signum = signum
        self.run = run


class FiguresInterrupted(TrainingInterrupted):
    """A stop was requested while the end-of-run figures were drawn: training is complete
    and checkpointed; resuming the run draws them again."""


class EMA:
    """An exponential moving average of G's weights (Karras et al. 2018), used for every
    picture and sample when enabled: half-life `ema_half_life` images. Batch-norm statistics
    are not averaged: they are recomputed for the averaged weights before use
    (generation.recalibrate_batch_norm), whenever G has been updated since (`stale`).

    The average is torch's own (swa_utils.get_ema_multi_avg_fn: one foreach lerp over the
    parameters). swa_utils.AveragedModel is not used around it: its first update copies G
    instead of averaging (which would change every EMA run), it reads its n_averaged counter
    back to the host every step (a sync per step, and not capturable in a CUDA graph), and it
    would rename the checkpoint's G_ema tensors (module.*, n_averaged)."""

    def __init__(self, G: torch.nn.Module, config: TrainConfig):
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        self.module = copy.deepcopy(G).eval().requires_grad_(False)
        self.beta = 0.5 ** (config.batch_size * config.d_steps / config.ema_half_life)  # kept per G update
        self._average = get_ema_multi_avg_fn(self.beta)
        self.stale = True

    @torch.no_grad()
    def update(self, G: torch.nn.Module) -> None:
        """After each update of G (inside the step: a CUDA graph records it)."""
        self._average(list(self.module.parameters()), list(G.parameters()), None)
        for b_ema, b in zip(self.module.buffers(), G.buffers()):
            b_ema.copy_(b)


class Trainer:
    """Owns the networks, their optimisers, the EMA generator, the noise stream, progress and
    the state a checkpoint holds; decides which phases each step runs, while the step itself
    is carried out by the engine steps.build picked (`self.engine`)."""

    def __init__(self, config: TrainConfig, device: torch.device | str | None = None,
                 dist: distributed.Dist | None = None):
        c = self.config = config
        # Under torchrun: this process's place; batch_size stays the global batch, and each
        # process takes its contiguous slice of every batch (and of every random draw).
        self.dist = dist or distributed.current()
        self._part = distributed.batch_part(c.batch_size, self.dist, c.pack)
        self.device = torch.device(device) if device is not None else runtime.resolve_device(c.device)
        # Weights are drawn on the CPU from their own seed, so they do not depend on the device
        # or on the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds.derived_seed(c.seed, seeds.WEIGHTS))
            G, D = models.build(c)
        self.G, self.D = G.to(self.device), D.to(self.device)
        layout = runtime.channels_last(c.memory_format, self.device, c.model)
        if layout is not None:  # (before the EMA copy and the optimisers' state, which follow the weights' layout)
            fmt = torch.channels_last if layout else torch.contiguous_format
            self.G, self.D = self.G.to(memory_format=fmt), self.D.to(memory_format=fmt)
        self.channels_last = bool(layout)  # (the batch is made channels-last to match; dcgan's own layout needs not)
        self.bf16 = runtime.bf16_autocast(c.precision, self.device, c.model)  # precision auto, decided once here
        seeds.seed_global_rngs(c.seed)
        self.ema = EMA(self.G, c) if c.ema_half_life else None
        graphing = c.cuda_graph and self.device.type == "cuda"
        self.lr_d = c.lr if c.lr_d is None else c.lr_d
        self.opt_g = optim.build(c.optimizer, self.G.parameters(), c.lr, (c.beta1, c.beta2), c.eps, capturable=graphing)
        self.opt_d = optim.build(c.optimizer, self.D.parameters(), self.lr_d, (c.beta1, c.beta2), c.eps,
                                 capturable=graphing)
        self.noise = torch.Generator(self.device).manual_seed(seeds.derived_seed(c.seed, seeds.NOISE))
        self.parts = steps.Parts(c, self.G, self.D, self.opt_g, self.opt_d, self.noise, self._part, self.device,
                                 self.dist, None if self.ema is None else lambda: self.ema.update(self.G), self.bf16)
        self.engine = steps.build(self.parts)
        self.fixed_noise, self.fixed_labels = self._fixed_batch()
        self.images_seen = 0
        self.stats = EpochStats(self.device, c.steps_per_epoch,  # this epoch's, by name, over all processes
                                distributed.mean_over_processes if self.dist.active else None)
        self.train_seconds = 0.0     # all training time so far (pictures and checkpoints excluded)
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.finishing = False
        self.threads: threads.Governor | None = None  # the thread count's governor while fit() runs

    def _fixed_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fixed noise (and labels) behind every epoch's grid: 100 forgeries; conditional,
        ten rows, one per class (or code), each row the same ten noise vectors."""
        c = self.config
        seed = seeds.derived_seed(c.seed, seeds.FIXED_NOISE)
        if not c.takes_labels:
            return self.make_noise(100, seed), None
        k = c.label_count
        if k == 10:
            z = self.make_noise(10, seed).repeat(10, 1)
        else:  # rows cycle through the K classes; each cycle of rows has ten noise vectors of its own
            z = self.make_noise(10 * -(-10 // k), seed).view(-1, 10, c.z_dim).repeat_interleave(k, 0)[:10] \
                .reshape(100, c.z_dim)
        return z, generation.cycle_labels(10, k, self.device).repeat_interleave(10)

    @property
    def G_ema(self) -> torch.nn.Module | None:
        return None if self.ema is None else self.ema.module

    def process_settings(self):
        """A context manager: this run's process-wide settings (denormals flushed on a CPU,
        TF32 on CUDA, as the config says) while it is open, the process's own after
        (runtime.process_settings). fit() trains inside it; a caller that runs train_step
        itself opens it around the steps."""
        return runtime.process_settings(self.device, self.config.tf32, self.config.flush_denormals,
                                        self.config.threads)

    # ------------------------------------------------------------------ sampling
    def make_noise(self, n: int, seed: int) -> torch.Tensor:
        """n noise vectors drawn on the CPU from seed (identical on every device)."""
        return generation.noise(n, self.config.z_dim, seed).to(self.device)

    def sampler(self) -> torch.nn.Module:
        """The generator pictures and samples come from: the EMA generator when there is one
        (its batch-norm statistics recomputed for the averaged weights), else G."""
        if self.ema is None:
            return self.G
        if self.ema.stale:
            generation.recalibrate_batch_norm(self.ema.module, self.config, self.device)
            self.ema.stale = False
        return self.ema.module

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Forgeries (B x 1 x 28 x 28 in [0, 1]) for noise z (conditional: labels, else 0..K-1 in turn)."""
        return generation.generate(self.sampler(), z, labels, self.config.label_count)

    def generate_fixed(self) -> torch.Tensor:
        """The fixed-noise batch behind every epoch's grid."""
        return self.generate(self.fixed_noise, self.fixed_labels)

    # ------------------------------------------------------------------ one step
    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One D phase (R1 and R2 on every reg_every-th), then a G phase on every d_steps-th
        call, on a batch of real images. Returns the step's statistics (stats.pack) as a
        device tensor (no sync)."""
        c = self.config
        n = self.images_seen // c.batch_size + 1  # this step's number, from 1: resumes keep the schedule
        if c.lr_schedule != "constant":
            factor = optim.lr_factor(c.lr_schedule, self.images_seen, c.lr_images, c.lr_end)
            optim.set_lr((self.opt_g, self.opt_d), (c.lr * factor, self.lr_d * factor))
        g_step = n % c.d_steps == 0
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        stats = self.engine(real, labels, g_step, n % c.reg_every == 0)
        if g_step and self.ema is not None:
            self.ema.stale = True
        return stats

    # ------------------------------------------------------------------ the loop
    def fit(self, data: DeviceData, callbacks: Sequence["Callback"] = ()) -> None:
        """Trains until config.total_images images have been seen (resumes where it is), with
        the run's process-wide settings in force (process_settings).

        If request_stop() is called (by a signal handler), the current step finishes, the
        callbacks' on_interrupt runs (a checkpoint is written) and TrainingInterrupted is raised.
        """
        c = self.config
        if len(data) < c.train_images:
            raise ConfigError(f"train_images is {c.train_images} but the data holds {len(data)} images")
        with self.process_settings() as self.threads:
            while self.images_seen < c.total_images:
                if self._epoch(data, callbacks):
                    break  # out of time (max_seconds)
            self.finishing = True  # the end-of-run figures: a stop now cannot wait for a step
            try:
                for cb in callbacks:
                    cb.on_train_end(self)
            finally:
                self.finishing = False

    def _epoch(self, data: DeviceData, callbacks: Sequence["Callback"]) -> bool:
        """The rest of the current epoch (or as much of it as the run has left); its row goes
        to the callbacks. Returns whether the run is out of time."""
        c = self.config
        B, spe = c.batch_size, c.steps_per_epoch
        epoch = self.images_seen // c.images_per_epoch           # 0-based
        first = (self.images_seen % c.images_per_epoch) // B     # step to start from
        last = min(spe, first + (c.total_images - self.images_seen) // B)
        for cb in callbacks:
            cb.on_epoch_start(self, epoch + 1, first)
        t0 = time.perf_counter()
        try:
            last, out_of_time = self._steps(data, data.epoch_order(c.seed, epoch), first, last, t0, callbacks)
        finally:
            for cb in callbacks:
                cb.on_steps_end(self)
        self._count_time(t0)
        self.stats.check_weights((("generator", self.G), ("discriminator", self.D)), self.images_seen // B)
        objective = objectives.OBJECTIVES[c.objective]  # (its class: what the epoch row reports)
        row = self.stats.row(epoch + 1, self.images_seen, c.images_per_epoch, B, partial=last < spe,
                             costs=(objective.reports_cost_d, objective.reports_cost_g))
        if last == spe:  # a new epoch starts from zero sums (before any checkpoint is taken)
            self.stats.reset()
        for cb in callbacks:
            cb.on_epoch_end(self, row)
        return out_of_time

    def _steps(self, data: DeviceData, order: torch.Tensor, first: int, last: int, t0: float,
               callbacks: Sequence["Callback"]) -> tuple[int, bool]:
        """Steps first..last-1 of an epoch: (the step it stopped before, out of time)."""
        B = self.config.batch_size
        follow_load = self.threads.tick if self.threads is not None else lambda: None
        for step in range(first, last):
            real, labels = data.batch(order, step, B, self._part)
            full = self.stats.push(self.train_step(real, labels))
            self.images_seen += B
            follow_load()  # (the thread count; a clock read on most steps: threads.py)
            for cb in callbacks:
                cb.on_step(self)
            # (several processes read and decide together, at the same steps)
            if full or step + 1 == last or (self.stop_requested and not self.dist.active):
                if self._refresh(step + 1 - first, t0, callbacks):
                    return step + 1, True
            if self.stop_requested:
                self._count_time(t0)
                for cb in callbacks:
                    cb.on_interrupt(self)
                raise TrainingInterrupted(self.images_seen, self.stop_signal, self.config.out)
        return last, False

    def _refresh(self, steps_done: int, t0: float, callbacks: Sequence["Callback"]) -> bool:
        """Reads the statistics back (the loop's one sync), tells the callbacks, and decides
        (with the other processes) whether to stop: returns whether the run is out of time."""
        c = self.config
        means = self.stats.flush(self.images_seen // c.batch_size)
        spent = self.train_seconds + time.perf_counter() - t0
        out_of_time = c.max_seconds is not None and spent >= c.max_seconds
        if self.dist.active:
            out_of_time, self.stop_requested, signum = distributed.agree(
                out_of_time, self.stop_requested, self.stop_signal, device=self.device)
            self.stop_signal = self.stop_signal or signum
        rate = steps_done * c.batch_size / max(time.perf_counter() - t0, 1e-9)
        for cb in callbacks:
            cb.on_refresh(self, means, rate)
        return out_of_time

    def _count_time(self, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        self.stats.seconds += elapsed
        self.train_seconds += elapsed

    def request_stop(self) -> None:
        """Asks the loop to stop after the current step (safe to call from a signal handler)."""
        self.stop_requested = True

    # ------------------------------------------------------------------ state
    @property
    def epoch(self) -> float:
        return self.images_seen / self.config.images_per_epoch

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to continue exactly: (tensors, JSON metadata)."""
        tensors = ckpt.network_tensors(self.G, self.D, self.G_ema)
        og, og_info = ckpt.optimizer_state("opt_g", self.opt_g)
        od, od_info = ckpt.optimizer_state("opt_d", self.opt_d)
        rng, rng_info = seeds.capture_rng(self.noise)
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
        try:
            ckpt.load_module(ckpt.G, self.G, tensors, path)
            ckpt.load_module(ckpt.D, self.D, tensors, path)
            if self.ema is not None:
                ckpt.load_module(ckpt.G_EMA, self.ema.module, tensors, path)
                self.ema.stale = True  # batch-norm statistics are recomputed before use
            ckpt.load_optimizer("opt_g", self.opt_g, tensors, meta["opt_g"], path)
            ckpt.load_optimizer("opt_d", self.opt_d, tensors, meta["opt_d"], path)
            seeds.restore_rng(self.noise, tensors, meta)
            self.stats.load_meta(meta)
            self.images_seen = int(meta["images_seen"])
            if self.images_seen < 0 or self.images_seen % self.config.batch_size:
                raise ValueError(f"images_seen {self.images_seen} is not a whole number of batches")
            self.train_seconds = float(meta["train_seconds"])
        # Whatever a damaged or crafted file holds ends here, as the project's own error.
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, ArithmeticError) as e:
            raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint ({e!r})") from None
