"""The training loop: the order of the phases, running statistics kept on the device, and
callbacks for everything a user sees (logs, pictures, checkpoints).

Progress is counted in images seen; epochs are derived from it. Every random draw comes
from an explicit generator seeded from the config, so a run is a pure function of its
config, and the loop's whole state fits in a checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import math
import os
import time
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from . import fastpath, losses, models, optim
from .config import TrainConfig
from .data import DeviceData
from .errors import ConfigError, DivergenceError

REFRESH_STEPS = 50  # read running statistics back from the device every N steps


def resolve_device(name: str) -> torch.device:
    """The one place that decides the device ('auto': CUDA when present, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available here; use --device cpu")
    return dev


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Asks glibc's malloc to keep freed memory for reuse instead of returning it to the
    system after every step. A conv training step allocates and frees activations of up to
    ~6 MB; with glibc's defaults those are mapped afresh (or the heap top trimmed) each time,
    and the CPU spends ~10,000 page faults a step zeroing new pages: measured here, a dcgan
    step takes ~10,500 minor faults by default and ~13 with this, for ~20% more images/s.
    PyTorch's CPU tuning guide suggests preloading jemalloc or tcmalloc for the same reason;
    this does it without an extra library. Process-wide and glibc-only (elsewhere it does
    nothing); MNISTGAN_MALLOC_TUNING=0 turns it off. Peak memory is unchanged: the memory
    kept is what the step needs again. Returns whether the settings were applied."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("MNISTGAN_MALLOC_TUNING", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    # Both are needed: fixing only the trim threshold also freezes the mmap threshold at its
    # 128 KiB default, which maps every activation afresh (measured: 27,000 faults a step).
    # 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems.
    _MALLOC_TUNED = bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    return _MALLOC_TUNED


def derived_seed(*words: int) -> int:
    """A well-mixed 63-bit seed for one purpose (weights, noise, fixed noise, ...)."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0] >> np.uint64(1))


# Purposes of derived seeds.
WEIGHTS, NOISE, FIXED_NOISE, STRIP_NOISE, GLOBAL, EVAL_NOISE = 0, 1, 2, 3, 4, 5


def seed_global_rngs(seed: int) -> None:
    """Seeds torch's (CPU and CUDA), numpy's and Python's global generators. The loop draws
    from its own generators; this makes anything else that draws (a user's callback, a
    library) repeatable too, and the saved RNG states the same in every process."""
    import random

    s = derived_seed(seed, GLOBAL)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)


class TrainingInterrupted(Exception):
    """The loop stopped on request after a complete step; a checkpoint has been written."""

    def __init__(self, images_seen: int, signum: int | None = None):
        super().__init__(f"stopped after {images_seen:,} images")
        self.images_seen = images_seen
        self.signum = signum


class Callback(Protocol):
    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


class Trainer:
    """Owns the networks, their optimisers, the noise stream and progress."""

    def __init__(self, config: TrainConfig, device: torch.device | str | None = None):
        c = self.config = config
        self.device = torch.device(device) if device is not None else resolve_device(c.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        # Weights are drawn on the CPU from their own seed, so they do not depend on the device
        # or on the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(c.seed, WEIGHTS))
            G, D = models.build(c)
        self.G, self.D = G.to(self.device), D.to(self.device)
        seed_global_rngs(c.seed)
        self._joint_d = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
        # The training step calls these; checkpoints and sampling use the plain modules.
        self._g, self._d = self.G, self.D
        if c.compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs on GPU
            self._g, self._d = torch.compile(self.G, mode=mode), torch.compile(self.D, mode=mode)
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) \
            if c.precision == "bf16" else contextlib.nullcontext
        if self.device.type == "cuda":
            # TF32 rounds fp32 matmul inputs to 10 mantissa bits: off unless the config allows it
            # (the seed preset is exact).
            torch.backends.cuda.matmul.allow_tf32 = c.tf32
            torch.backends.cudnn.allow_tf32 = c.tf32
        self.objective = losses.build(c.objective, c.label_smoothing)
        betas = (c.beta1, c.beta2)
        self.opt_g = optim.build(c.optimizer, self.G.parameters(), c.lr, betas, c.eps)
        self.opt_d = optim.build(c.optimizer, self.D.parameters(), c.lr if c.lr_d is None else c.lr_d, betas, c.eps)
        # Hand-derived gradients for the seed's exact case (see fastpath.py), else autograd.
        self._fast = fastpath.SeedStep(self.G, self.D, self.opt_g, self.opt_d) \
            if fastpath.applies(c, self.G, self.D) else None
        self.noise = torch.Generator(self.device).manual_seed(derived_seed(c.seed, NOISE))
        if c.takes_labels:  # ten rows, one per class (or code), each row the same ten noise vectors
            self.fixed_noise = self.make_noise(10, derived_seed(c.seed, FIXED_NOISE)).repeat(10, 1)
            self.fixed_labels = torch.arange(10, device=self.device).repeat_interleave(10)
        else:
            self.fixed_noise = self.make_noise(100, derived_seed(c.seed, FIXED_NOISE))
            self.fixed_labels = None
        # An exponential moving average of G's weights (Karras et al. 2018), used for every
        # picture and sample when enabled. Batch-norm statistics are not averaged: they are
        # recomputed for the averaged weights before use (see recalibrate_batch_norm).
        self.G_ema = None
        if c.ema_half_life:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
            self._ema_beta = 0.5 ** (c.batch_size * c.d_steps / c.ema_half_life)
        self._ema_stale = True
        self.images_seen = 0
        # Per-step statistics [d_loss, g_loss, D(x), D(G(z))] wait on the device in a window
        # that is read every REFRESH_STEPS steps; this epoch's sums are Python floats.
        # Columns: d_loss, g_loss (0 on steps without a G update), D(x), D(G(z)), G updated (0/1).
        self._window = torch.zeros(REFRESH_STEPS, 5, device=self.device)
        self._pending = 0
        self.acc = [0.0] * 5
        self.acc_steps = 0
        self.epoch_seconds = 0.0
        self.train_seconds = 0.0  # all training time so far (pictures and checkpoints excluded)
        self.stop_requested = False
        self.stop_signal: int | None = None

    # ------------------------------------------------------------------ sampling
    def make_noise(self, n: int, seed: int) -> torch.Tensor:
        """n noise vectors drawn on the CPU from seed (identical on every device)."""
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.config.z_dim, generator=gen).to(self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Forgeries (B x 1 x 28 x 28 in [0, 1]) for noise z (and labels, for a conditional
        model), from the EMA generator when there is one, in eval mode."""
        if self.config.takes_labels and labels is None:
            labels = torch.arange(len(z), device=self.device) % 10
        G = self.G
        if self.G_ema is not None:
            if self._ema_stale:
                recalibrate_batch_norm(self.G_ema, self.config, self.device)
                self._ema_stale = False
            G = self.G_ema
        was_training = G.training
        G.eval()
        try:
            return G(z.to(self.device), None if labels is None else labels.to(self.device)).float()
        finally:
            G.train(was_training)

    def generate_fixed(self) -> torch.Tensor:
        """The fixed-noise batch behind every epoch's grid."""
        return self.generate(self.fixed_noise, self.fixed_labels)

    # ------------------------------------------------------------------ one step
    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One D step, then a G step on every d_steps-th call, on a batch of real images.
        Returns [d_loss, g_loss, D(x), D(G(z)), G updated] as a device tensor (no sync)."""
        c = self.config
        B = real.shape[0]
        z = torch.randn(B, c.z_dim, generator=self.noise, device=self.device)
        if self._fast is not None:
            return self._fast(real, z)
        # Classes (conditional) or InfoGAN codes (info_code) for G; D sees classes only.
        codes = torch.randint(0, 10, (B,), generator=self.noise, device=self.device) if c.takes_labels else None
        fake_labels = codes if c.conditional else None
        real_labels = labels if c.conditional else None
        g_step = (self.images_seen // B + 1) % c.d_steps == 0
        # G(z) is computed once: the D step does not change G, so the G step reuses it.
        with self._autocast(), torch.set_grad_enabled(g_step):
            fake = self._g(z, codes)

        # ---- D step: maximise log D(x) + log(1 - D(G(z))) (for the seed's objective)
        if c.r1_gamma:
            real = real.detach().requires_grad_(True)
        head = c.d_head  # D's classifier head is used too

        def d(x, y):
            """(float logits, head logits or None) of D on x."""
            out = self._d(x, y, classes=True) if head else (self._d(x, y), None)
            return out[0].float(), out[1]

        with self._autocast():
            if self._joint_d:  # one pass over real and forged rows: same maths, half the kernels
                both = None if fake_labels is None else torch.cat([real_labels, fake_labels])
                logits, classes = d(torch.cat([real, fake.detach().to(real.dtype)]), both)
                real_logits, fake_logits = logits[:B], logits[B:]
                real_classes, fake_classes = (classes[:B], classes[B:]) if head else (None, None)
            else:              # batch statistics must not mix real and forged images
                real_logits, real_classes = d(real, real_labels)
                fake_logits, fake_classes = d(fake.detach(), fake_labels)
        d_loss = self.objective.d_loss(real_logits, fake_logits)
        if c.aux_weight:
            # D's classifier learns from real images only, so that G is pulled toward digits a
            # classifier of real digits recognises (Odena et al. also train it on forgeries,
            # which rewards forgeries that are merely easy to classify).
            d_loss = d_loss + c.aux_weight * F.cross_entropy(real_classes.float(), real_labels)
        if c.info_code:
            # InfoGAN's mutual-information term (lambda = 1 for a categorical code, Chen et al.
            # 2016): D's head must recover the code from the forgery; G is trained below to make
            # it recoverable, so each code draws a distinct kind of image.
            d_loss = d_loss + F.cross_entropy(fake_classes.float(), codes)
        if self.objective.gradient_penalty:
            d_loss = d_loss + c.gp_lambda * self._gradient_penalty(real, fake.detach(), real_labels)
        if c.r1_gamma:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            d_loss = d_loss + c.r1_gamma / 2 * grad.square().sum(dim=(1, 2, 3)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        # ---- G step: maximise log D(G(z)), same z, through the updated D (no grads for D)
        g_loss = torch.zeros((), device=self.device)
        if g_step:
            self.D.requires_grad_(False)
            with self._autocast():
                fake_logits_g, fake_classes = d(fake, fake_labels)
            g_loss = self.objective.g_loss(fake_logits_g)
            if c.aux_weight:  # forgeries of class k should be classified as k
                g_loss = g_loss + c.aux_weight * F.cross_entropy(fake_classes.float(), fake_labels)
            if c.info_code:   # ... and forgeries of code k recognisably drawn from code k
                g_loss = g_loss + F.cross_entropy(fake_classes.float(), codes)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            self.D.requires_grad_(True)
            if self.G_ema is not None:
                self._update_ema()

        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                torch.sigmoid(fake_logits).mean(), torch.ones((), device=self.device) if g_step
                                else torch.zeros((), device=self.device)])

    def _gradient_penalty(self, real, fake, labels) -> torch.Tensor:
        """E[(|grad D(x_hat)|_2 - 1)^2], x_hat = e x + (1 - e) G(z), e ~ U(0, 1) per sample
        (Gulrajani et al. 2017, algorithm 1)."""
        e = torch.rand(real.shape[0], 1, 1, 1, generator=self.noise, device=self.device)
        x_hat = (e * real.detach() + (1 - e) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._d(x_hat, labels).float().sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).square().mean()

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema, raw = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema, raw, 1.0 - self._ema_beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)
        self._ema_stale = True

    # ------------------------------------------------------------------ the loop
    def fit(self, data: DeviceData, callbacks: list[Callback] = ()) -> None:
        """Trains until config.total_images images have been seen (resumes where it is).

        If request_stop() is called (by a signal handler), the current step finishes, the
        callbacks' on_interrupt runs (a checkpoint is written) and TrainingInterrupted is raised.
        """
        from tqdm.auto import tqdm

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
            bar = tqdm(total=spe, initial=first, desc=f"epoch {epoch + 1}/{c.epochs}", unit="step",
                       disable=not c.progress, dynamic_ncols=True, leave=True, mininterval=0.5)
            t0 = time.perf_counter()
            try:
                for step in range(first, last):
                    real, labels = data.batch(order, step, B)
                    self._window[self._pending].copy_(self.train_step(real, labels))
                    self._pending += 1
                    self.images_seen += B
                    bar.update(1)
                    if self._pending == REFRESH_STEPS or step + 1 == last or self.stop_requested:
                        means = self._flush()
                        spent = self.train_seconds + time.perf_counter() - t0
                        out_of_time = c.max_seconds is not None and spent >= c.max_seconds
                        rate = (step + 1 - first) * B / max(time.perf_counter() - t0, 1e-9)
                        bar.set_postfix_str(f"D loss {means[0]:.3f}  G loss {means[1]:.3f}  D(x) {means[2]:.3f}  "
                                            f"D(G(z)) {means[3]:.3f}  {rate:,.0f} img/s", refresh=False)
                    if out_of_time:
                        last = step + 1
                        break
                    if self.stop_requested:
                        self.epoch_seconds += time.perf_counter() - t0
                        self.train_seconds += time.perf_counter() - t0
                        bar.close()
                        for cb in callbacks:
                            getattr(cb, "on_interrupt", lambda t: None)(self)
                        raise TrainingInterrupted(self.images_seen, self.stop_signal)
            finally:
                bar.close()
            self.epoch_seconds += time.perf_counter() - t0
            self.train_seconds += time.perf_counter() - t0
            self._check_weights()
            row = self._epoch_row(epoch, partial=last < spe)
            if last == spe:  # a new epoch starts from zero sums (before any checkpoint is taken)
                self.acc = [0.0] * 5
                self.acc_steps = 0
                self.epoch_seconds = 0.0
            for cb in callbacks:
                cb.on_epoch_end(self, row)
        for cb in callbacks:
            cb.on_train_end(self)

    def request_stop(self) -> None:
        """Asks the loop to stop after the current step (safe to call from a signal handler)."""
        self.stop_requested = True

    def _flush(self) -> list[float]:
        """Reads the pending per-step statistics from the device (the only sync in the loop),
        adds them to this epoch's sums in step order, and stops the run at the first
        non-finite loss, naming the network and the step."""
        rows = self._window[:self._pending].tolist()
        first_step = self.images_seen // self.config.batch_size - self._pending + 1
        for i, row in enumerate(rows):
            for value, name, net in zip(row[:2], ("D loss", "G loss"), ("discriminator", "generator")):
                if not math.isfinite(value):
                    raise DivergenceError(
                        f"training diverged: the {net}'s loss ({name}) became {value} at step "
                        f"{first_step + i} (epoch {self.epoch_at(first_step + i)}); the run stopped "
                        "and its last checkpoint is kept as it was. Try a lower --lr.")
            for j in range(5):
                self.acc[j] += row[j]
        self.acc_steps += self._pending
        self._pending = 0
        return self._means()

    def epoch_at(self, step: int) -> int:
        """The 1-based epoch that a 1-based step belongs to."""
        return (step - 1) // self.config.steps_per_epoch + 1

    def _check_weights(self) -> None:
        """Stops the run if any weight is not finite (one sync, once an epoch)."""
        for net, module in (("generator", self.G), ("discriminator", self.D)):
            sums = torch.stack([p.detach().float().sum() for p in module.parameters()])
            if not bool(torch.isfinite(sums).all()):
                step = self.images_seen // self.config.batch_size
                raise DivergenceError(
                    f"training diverged: the {net}'s weights are not finite after step {step} "
                    f"(epoch {self.epoch_at(step)}); the run stopped and its last checkpoint is kept "
                    "as it was. Try a lower --lr.")

    def _means(self) -> list[float]:
        """[d_loss, g_loss, D(x), D(G(z))] means over this epoch's steps (g_loss over G steps)."""
        n = max(self.acc_steps, 1)
        return [self.acc[0] / n, self.acc[1] / max(self.acc[4], 1), self.acc[2] / n, self.acc[3] / n]

    def _epoch_row(self, epoch: int, partial: bool) -> dict[str, Any]:
        d_loss, g_loss, d_real, d_fake = self._means()
        images = self.acc_steps * self.config.batch_size
        return {
            "epoch": epoch + 1,                        # 1-based, as the tutorial printed it
            "images_seen": self.images_seen,
            "images_per_epoch": self.config.images_per_epoch,
            "partial": partial,                        # the run stopped inside this epoch
            "d_loss": d_loss, "g_loss": g_loss,
            "cost_d": -d_loss if self.config.objective in ("nonsaturating", "minimax") else None,
            "cost_g": -g_loss if self.config.objective == "nonsaturating" else None,
            "d_real": d_real, "d_fake": d_fake,        # mean D(x) and D(G(z)) in the D step
            "seconds": round(self.epoch_seconds, 4),   # training time of this epoch, artifacts excluded
            "images_per_s": round(images / max(self.epoch_seconds, 1e-9), 1),
        }

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
        tensors.update(og)
        tensors.update(od)
        tensors["rng.noise"] = self.noise.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            for i, st in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = st
        np_state = np.random.get_state()
        meta = {
            "acc": self.acc,
            "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "rng_python": _python_rng_state(),
            "config": self.config.to_dict(),
            "images_seen": self.images_seen,
            "acc_steps": self.acc_steps,
            "epoch_seconds": self.epoch_seconds,
            "train_seconds": self.train_seconds,
            "opt_g": og_info,
            "opt_d": od_info,
            "torch_version": torch.__version__,
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], path="checkpoint") -> None:
        """Restores what state() saved (the config must already match)."""
        from . import checkpoint as ckpt
        from .errors import CheckpointError

        try:
            ckpt.load_module("G", self.G, tensors, path)
            ckpt.load_module("D", self.D, tensors, path)
            if self.G_ema is not None:
                ckpt.load_module("G_ema", self.G_ema, tensors, path)
                self._ema_stale = True  # batch-norm statistics are recomputed before use
            ckpt.load_optimizer("opt_g", self.opt_g, tensors, meta["opt_g"], path)
            ckpt.load_optimizer("opt_d", self.opt_d, tensors, meta["opt_d"], path)
            self.noise.set_state(tensors["rng.noise"])
            torch.set_rng_state(tensors["rng.torch"])
            if torch.cuda.is_available():
                for i in range(torch.cuda.device_count()):
                    if f"rng.cuda.{i}" in tensors:
                        torch.cuda.set_rng_state(tensors[f"rng.cuda.{i}"], i)
            name, keys, *rest = meta["rng_numpy"]
            np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
            _set_python_rng_state(meta["rng_python"])
            self.acc = [float(a) for a in meta["acc"]]
            self._pending = 0
            self.images_seen = int(meta["images_seen"])
            self.acc_steps = int(meta["acc_steps"])
            self.epoch_seconds = float(meta["epoch_seconds"])
            self.train_seconds = float(meta["train_seconds"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint ({e!r})") from None


def _python_rng_state() -> list:
    import random

    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(state: list) -> None:
    import random

    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


@torch.no_grad()
def recalibrate_batch_norm(G: torch.nn.Module, config: TrainConfig, device, batches: int = 8, size: int = 256) -> None:
    """Recomputes G's batch-norm running statistics for its current weights: the exact
    average over `batches` fixed noise batches (momentum None). An EMA generator needs this:
    the raw G's statistics belong to other weights, and sampling with them was measured to
    score clearly worse. Deterministic, so resumed runs stay exact."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = G.training
    G.train()
    gen = torch.Generator().manual_seed(derived_seed(config.seed, EVAL_NOISE, 1))
    for _ in range(batches):
        z = torch.randn(size, config.z_dim, generator=gen).to(device)
        labels = torch.randint(0, 10, (size,), generator=gen).to(device) if config.takes_labels else None
        G(z, labels)
    for m, mom in zip(norms, momenta):
        m.momentum = mom
    G.train(was_training)
