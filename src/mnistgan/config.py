"""Run configuration: one flat dataclass read by concern, named presets (data, not code),
validated overrides.

A preset is a dict of overrides on top of the defaults; the command line overrides the
preset. Every resolved config is saved as ``config.json`` in the run folder and inside
every checkpoint. This module must stay light: it imports no torch.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .system import numbers
from .errors import ConfigError

# Fields marked FIXED change the maths of a run: a resumed run may not override them.
FIXED = {"resume": "fixed"}
INFO_CODES = 10  # the InfoGAN code's categories, whatever the dataset


@dataclass
class TrainConfig:
    # --- data: what it learns from -------------------------------------------------------
    dataset: str = "mnist"            # mnist, fashion-mnist, stacked-mnist (three digits as red, green, blue), folder:PATH (your images) or idx:PATH (four IDX files)
    data_dir: str | None = None       # folder holding the IDX files; None: search, then download
    download: bool = True             # allow downloading when no local copy is found
    invert: str = field(default="auto", metadata=FIXED)       # folder datasets: make dark-on-light images light-on-dark: auto (per image, from its border), yes, no
    train_images: int = field(default=55000, metadata=FIXED)  # train on the first N training images (the tutorial's reader held out the last 5,000); capped at the dataset's size
    num_classes: int = field(default=10, metadata=FIXED)      # the dataset's classes (0: no labels); set from the dataset when training starts
    channels: int = field(default=1, metadata=FIXED)          # image channels: 1 (grey) or 3 (colour); set from the dataset (stacked-mnist: 3); folder:PATH with 3 keeps your images' colour
    data_key: str | None = field(default=None, metadata=FIXED)  # the data's identity, set when training starts: the registered name, or folder-/idx- and the sha256 of its content; a resume on other data is refused
    # --- model: the networks -------------------------------------------------------------
    model: str = field(default="mlp", metadata=FIXED)         # registered model family: mlp, dcgan, resnet
    z_dim: int = field(default=128, metadata=FIXED)           # noise size; z ~ N(0, 1)
    hidden: int = field(default=256, metadata=FIXED)          # hidden width of the MLP networks
    init_std: float = field(default=0.01, metadata=FIXED)     # mlp: weights ~ N(0, init_std), biases 0
    layers: int = field(default=1, metadata=FIXED)            # mlp: hidden layers in each network; resnet: residual blocks at each resolution
    width: int = field(default=64, metadata=FIXED)            # dcgan, resnet: channels of G's last and D's first conv (resnet: 2x and 4x at 14 x 14 and 7 x 7)
    conditional: bool = field(default=False, metadata=FIXED)  # class-conditional G (label embedding) and D (projection)
    info_code: bool = field(default=False, metadata=FIXED)    # unconditional: G also takes a 10-way categorical code that D's head must recover from the forgery (InfoGAN, Chen et al. 2016); uses no labels
    spectral_norm: bool = field(default=False, metadata=FIXED)  # dcgan: spectral norm on D's layers
    g_conditioning: str = field(default="concat", metadata=FIXED)  # dcgan, conditional: how G takes the class: concat (embedding beside z) or cbn (class-conditional batch norm at every layer)
    # --- objective: the losses and their regularisers ------------------------------------
    objective: str = field(default="nonsaturating", metadata=FIXED)  # registered objective (see objectives.py): minimax, nonsaturating, lsgan, hinge, wgan-gp, relativistic, rpgan
    d_steps: int = field(default=1, metadata=FIXED)           # D steps per G step (each on its own real batch)
    label_smoothing: float = field(default=0.0, metadata=FIXED)  # one-sided: real target 1 - s (minimax, nonsaturating)
    mode_seeking: float = field(default=0.0, metadata=FIXED)  # MSGAN's mode-seeking term weight (Mao et al. 2019): G keeps same-class forgeries apart; 0: off
    diffaugment: str = field(default="", metadata=FIXED)     # differentiable augmentation of all D sees (Zhao et al. 2020): "", translation, cutout or translation,cutout
    r1_gamma: float = field(default=0.0, metadata=FIXED)      # R1 penalty gamma/2 E|grad_x D(x)|^2 on real images (Mescheder et al. 2018); 0: off
    r2_gamma: float = field(default=0.0, metadata=FIXED)      # R2 penalty gamma/2 E|grad_x D(G(z))|^2 on forgeries (R3GAN, Huang et al. 2024); 0: off
    pack: int = field(default=1, metadata=FIXED)              # PacGAN (Lin et al. 2018): D judges packs of m images (real with real, forged with forged) stacked on its channels; unconditional only; 1: single images
    reg_every: int = field(default=1, metadata=FIXED)         # R1 and R2 on every k-th D step only, k times as strong (StyleGAN2's lazy regularisation); 1: every step
    gp_lambda: float = field(default=10.0, metadata=FIXED)    # wgan-gp: gradient-penalty weight
    aux_weight: float = field(default=0.0, metadata=FIXED)    # conditional: auxiliary-classifier head on D (Odena et al. 2017), weight of its cross-entropy in both losses; 0: off
    aux_twin: bool = field(default=False, metadata=FIXED)     # with aux_weight: TAC-GAN's twin classifier (Gong et al. 2019): a second head learns the classes of forgeries and G's loss subtracts its cross-entropy, which removes AC-GAN's pull toward easily classified forgeries
    # --- optimiser: how the weights move, and for how long -------------------------------
    optimizer: str = field(default="adam-tf1", metadata=FIXED)      # adam-tf1 (TF1's epsilon placement) or adam (PyTorch's)
    lr: float = field(default=2e-4, metadata=FIXED)           # learning rate of both networks (of G when lr_d is set)
    lr_d: float | None = field(default=None, metadata=FIXED)  # D's own learning rate (two time-scale update rule, Heusel et al. 2017); None: lr
    beta1: float = field(default=0.9, metadata=FIXED)         # Adam beta1
    beta2: float = field(default=0.999, metadata=FIXED)       # Adam beta2
    eps: float = field(default=1e-8, metadata=FIXED)          # Adam epsilon
    batch_size: int = field(default=100, metadata=FIXED)      # images per step (last partial batch of an epoch is dropped, as the tutorial did)
    ema_half_life: int = field(default=0, metadata=FIXED)     # EMA of G's weights, half-life in images seen; 0: off
    lr_schedule: str = field(default="constant", metadata=FIXED)  # both learning rates over the run: constant, or falling to lr_end of their value at lr_horizon images along a straight line (linear) or a half cosine (cosine, Loshchilov & Hutter 2017)
    lr_end: float = field(default=0.0, metadata=FIXED)        # linear, cosine: the fraction of the learning rates left at lr_horizon (and after)
    lr_horizon: int | None = field(default=None, metadata=FIXED)  # linear, cosine: the images over which the learning rates fall; None: the run's epochs (a resume that changes epochs re-plans the fall)
    epochs: int = 100                 # passes over the training images
    max_images: int | None = None     # stop once this many images have been seen (short runs); None: no limit
    max_seconds: float | None = None  # stop once training (pictures and checkpoints excluded) took this long; None: no limit
    # --- runtime: where and how it runs (seeds included) ---------------------------------
    seed: int = field(default=0, metadata=FIXED)              # seeds weights, noise and epoch order
    device: str = "auto"              # auto (CUDA when present), cpu, cuda, cuda:N
    precision: str = field(default="auto", metadata=FIXED)  # fp32; bf16 (autocast for the networks' forward passes); or auto: bf16 for the convolutional families on CPUs with native bf16 (AVX512-BF16, AMX; measured faster at the same quality), fp32 elsewhere and for the mlp family
    tf32: bool = field(default=False, metadata=FIXED)       # allow TF32 matmuls on CUDA (off: exact fp32)
    flush_denormals: bool = field(default=True, metadata=FIXED)  # CPU: floats below 1.2e-38 become 0 (FTZ/DAZ, as in TensorFlow): keeps late training steps fast; off: IEEE gradual underflow
    compile: bool = False             # torch.compile the networks (CUDA: reduce-overhead mode, i.e. CUDA graphs)
    memory_format: str = "auto"       # the networks' memory layout: nchw, nhwc (channels-last), or auto: the family's own (dcgan: nhwc), and nhwc for the resnet family on CPUs with AVX-512 (measured faster there)
    threads: str = "auto"             # CPU threads: auto (one a core, fewer while other work takes cores; see threads.py) or a count; OMP_NUM_THREADS also fixes it
    cuda_graph: bool = False          # CUDA: capture the whole training step (both phases, optimisers, EMA, noise) as CUDA graphs and replay them; other devices: ignored
    # --- output: what it shows and leaves ------------------------------------------------
    preset: str = "seed"              # the preset these values started from (informational)
    out: str = "runs/seed"            # run folder
    strip_every: int = 10             # the seed's 10-forgery strip at epoch 1 and every N epochs
    report_every: int = 10            # the classic "Epoch / Cost_D Cost_G" report every N epochs
    keep_checkpoints: int = 3         # keep the last K checkpoints
    eval_every: int = 0               # every N epochs log a cheap FID (eval_n forgeries) in log.jsonl; 0: off
    eval_n: int = 2000                # forgeries for that FID
    progress: bool = True             # show progress bars
    tensorboard: bool = False         # also log to RUN/tensorboard/ (pip install "mnistgan[tensorboard]")

    # ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        return apply_overrides(cls(), values)

    def section(self, concern: str) -> dict[str, Any]:
        """The values of one concern (CONCERNS: data, model, objective, optimiser, runtime, output)."""
        if concern not in CONCERNS:
            raise ConfigError(f"unknown concern {concern!r}; one of: {', '.join(CONCERNS)}")
        return {name: getattr(self, name) for name in CONCERNS[concern]}

    @property
    def takes_labels(self) -> bool:
        """Whether G takes a label: a class (conditional) or a code (info_code)."""
        return self.conditional or self.info_code

    @property
    def label_count(self) -> int:
        """How many labels G takes: the dataset's classes (conditional), 10 InfoGAN codes, or 0."""
        return self.num_classes if self.conditional else INFO_CODES if self.info_code else 0

    @property
    def d_head(self) -> bool:
        """Whether D has a classifier head: classes (aux_weight) or codes (info_code)."""
        return self.aux_weight > 0 or self.info_code

    @property
    def head_count(self) -> int:
        """Outputs of D's classifier head: the classes (aux_weight; twice, real then forged, with
        aux_twin), 10 codes (info_code), or 0."""
        if self.aux_weight > 0:
            return self.num_classes * (2 if self.aux_twin else 1)
        return INFO_CODES if self.info_code else 0

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One image as the library's arrays hold it: channels x 28 x 28 (images.public drops a
        grey image's channel axis at the user's edge)."""
        return (self.channels, 28, 28)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_images // self.batch_size

    @property
    def images_per_epoch(self) -> int:
        return self.steps_per_epoch * self.batch_size

    @property
    def lr_images(self) -> int:
        """The images over which a falling learning rate falls (lr_horizon, else the run's epochs)."""
        return self.lr_horizon if self.lr_horizon is not None else self.epochs * self.images_per_epoch

    @property
    def total_images(self) -> int:
        """Images seen when the run ends: epochs, capped by max_images."""
        total = self.epochs * self.images_per_epoch
        if self.max_images is None:
            return total
        return min(total, self.max_images // self.batch_size * self.batch_size)


# The config read by concern (TrainConfig.section). The config stays one flat set of names:
# `--set KEY` and every saved config.json and checkpoint name a field by its name alone, and
# a key belongs to one concern only, so nesting would add a prefix to type and nothing else.
CONCERNS: dict[str, tuple[str, ...]] = {
    "data": ("dataset", "data_dir", "download", "invert", "train_images", "num_classes", "channels", "data_key",),
    "model": ("model", "z_dim", "hidden", "init_std", "layers", "width", "conditional", "info_code", "spectral_norm", "g_conditioning",),
    "objective": ("objective", "d_steps", "label_smoothing", "mode_seeking", "diffaugment", "r1_gamma", "r2_gamma", "pack", "reg_every", "gp_lambda", "aux_weight", "aux_twin",),
    "optimiser": ("optimizer", "lr", "lr_d", "beta1", "beta2", "eps", "batch_size", "ema_half_life", "lr_schedule",
                  "lr_end", "lr_horizon", "epochs", "max_images", "max_seconds",),
    "runtime": ("seed", "device", "precision", "tf32", "flush_denormals", "compile", "memory_format", "threads",
                "cuda_graph",),
    "output": ("preset", "out", "strip_every", "report_every", "keep_checkpoints", "eval_every", "eval_n", "progress", "tensorboard",),
}


_DCGAN = {"model": "dcgan", "optimizer": "adam", "lr": 2e-4, "beta1": 0.5, "batch_size": 64,
          "train_images": 60000, "epochs": 20}
# `best`'s networks and training without its class conditioning: shared by `best` and `pacgan`,
# so the mode-coverage preset stays the setting its board measured (best unconditional, packed).
_BEST_TRAINING = {**_DCGAN, "ema_half_life": 10000, "objective": "hinge", "lr": 5e-4, "batch_size": 32,
                  "r1_gamma": 0.03, "reg_every": 4}
PRESETS: dict[str, dict[str, Any]] = {
    # The classic vanilla GAN tutorial, exactly (see README "Presets").
    "seed": {},
    # Radford et al. 2016 for 28 x 28 (conv G with batch norm, conv D, Adam beta1 0.5), with a
    # spectrally normalised D (Miyato et al. 2018) and lr 5e-4 (why: docs/MEASUREMENTS.md).
    "dcgan": {**_DCGAN, "lr": 5e-4, "spectral_norm": True},
    # Radford's DCGAN, class-conditional: G takes the label through class-conditional batch
    # norm, D projects it (Miyato & Koyama 2018) and classifies real digits with an auxiliary
    # head whose cross-entropy G's forgeries must pass (Odena et al. 2017, weight 2); sampled
    # from an EMA of G's weights. (With the label concatenated to z instead, each class
    # collapsed to a few images on both datasets: docs/MEASUREMENTS.md.)
    "cdcgan": {**_DCGAN, "conditional": True, "aux_weight": 2.0, "ema_half_life": 10000, "g_conditioning": "cbn"},
    # Gulrajani et al. 2017's objective (Wasserstein loss, gradient penalty 10, no batch norm in
    # the critic) with 2 critic steps at Adam(4e-4, 0.5, 0.9) instead of their 5 at
    # Adam(1e-4, 0, 0.9), which learn too slowly for a CPU budget.
    "wgan-gp": {**_DCGAN, "objective": "wgan-gp", "d_steps": 2, "lr": 4e-4, "beta1": 0.5, "beta2": 0.9},
    # The conditional DCGAN with class-conditional batch norm in G and the hinge loss (Lim & Ye
    # 2017, as SNGAN/BigGAN), sampled from an EMA of its weights: the best FID per CPU minute,
    # and varied within each class on Fashion-MNIST (concatenating the class to z collapsed
    # each class there; the hinge loss beat the non-saturating one on both datasets), at
    # Adam(5e-4, 0.5) and batch 32: the time-to-quality board's winner, FID 11 after 150 s of
    # training where Radford's 2e-4 and 64 gave 30; and lazy R1 on real images (gamma 0.03,
    # every 4th D step, 4x as strong: StyleGAN2's form), which broke the plateau near FID 8 at
    # 600 s on both MNIST (6.0 and 6.5 over two seeds, against 8.3 and 9.0) and Fashion-MNIST
    # (docs/MEASUREMENTS.md; gamma 0.1 helped MNIST only, 0.3 neither); and Adam's beta1 = 0
    # (as StyleGAN2 and R3GAN), which took FID at 600 s further down on both sets (MNIST 5.3,
    # Fashion-MNIST 8.0 and 9.3 against 9.8, same sitting); and batch 128 (with beta1 0, larger
    # batches now win: more images a second, 684,000 against 515,000 in 600 s, and FID at 600 s
    # on Fashion-MNIST 6.4 and 7.0 over two seeds, 7.1 and 9.0 at batch 64, 8.0 and 9.3 at 32).
    # pacgan keeps beta1 0.5 and batch 32: its Stacked-MNIST figures were measured with them.
    "best": {**_BEST_TRAINING, "conditional": True, "g_conditioning": "cbn", "beta1": 0.0, "batch_size": 128},
    # Mode coverage without labels (Stacked-MNIST, your own unlabelled images): `best`'s
    # networks and training, unconditional, with D judging packs of 2 images on its channels
    # (PacGAN, Lin et al. 2018). On Stacked-MNIST after 300 s of training: 1,000 modes at
    # reverse KL 0.19, where r3gan covered 973 at 0.60 and the unpacked networks 998 at 0.23
    # (docs/MEASUREMENTS.md).
    "pacgan": {**_BEST_TRAINING, "pack": 2},
    # R3GAN's recipe (Huang et al. 2024) at a CPU's size: the relativistic pairing loss with
    # zero-centred penalties on real (R1) and forged (R2) images, residual networks with
    # grouped convolutions and no normalisation (models/resnet.py), Adam with beta1 = 0,
    # sampled from an EMA of G's weights. Unconditional; --set conditional=true projects the
    # class in D. Mode coverage's first preset; `pacgan` now covers more modes per CPU minute.
    "r3gan": {"model": "resnet", "objective": "rpgan", "r1_gamma": 0.1, "r2_gamma": 0.1, "width": 16,
              "optimizer": "adam", "lr": 2e-4, "beta1": 0.0, "beta2": 0.99, "batch_size": 64,
              "ema_half_life": 10000, "train_images": 60000, "epochs": 20},
}

FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def fixed_fields() -> set[str]:
    """Names of the fields that change a run's maths (refused as overrides on resume)."""
    return {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resume") == "fixed"}


def _coerce(name: str, value: Any) -> Any:
    """Converts a value (from JSON or the command line) to the field's type, or fails."""
    kind = FIELD_TYPES[name]
    optional = "None" in kind
    if value is None or (isinstance(value, str) and optional and value.lower() == "none"):
        if optional:
            return None
        raise ConfigError(f"{name} may not be empty")
    base = kind.replace(" | None", "")
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "int":
            return numbers.whole(value, name, what="an integer or none" if optional else "an integer")
        if base == "float":
            return numbers.real(value, name)
        if base == "str":
            if isinstance(value, os.PathLike):  # (out, data_dir: a Path is a folder's name too)
                value = os.fspath(value)
            if name == "threads" and not isinstance(value, str):
                return str(numbers.threads(value))  # (a count given as a number, as the API allows)
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {'an integer' if base == 'int' else 'a ' + base}"
                          f"{' or none' if optional else ''}, got {value!r}") from None
    raise AssertionError(f"unhandled field type {kind}")


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Returns a copy of config with overrides applied and validated. Unknown keys fail."""
    unknown = sorted(set(overrides) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}; "
                          f"known keys: {', '.join(sorted(FIELD_TYPES))}")
    values = config.to_dict()
    values.update({k: _coerce(k, v) for k, v in overrides.items()})
    resolved = TrainConfig(**values)
    validate(resolved)
    return resolved


def parse_sets(items: list[str]) -> dict[str, str]:
    """The command line's `--set KEY=VALUE` items as {key: value} (a '-' in a key reads as '_')."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip().replace("-", "_")] = value.strip()
    return values


def merge_settings(flags: dict[str, Any], sets: dict[str, Any]) -> dict[str, Any]:
    """Settings given by their own flags (None: not given) and by --set, as one dict; a key
    given both ways with different values is refused rather than one silently winning."""
    for key, value in sets.items():
        given = flags.get(key)
        if given is not None and key in FIELD_TYPES and _coerce(key, given) != _coerce(key, value):
            raise ConfigError(f"--{key.replace('_', '-')} {given} and --set {key}={value} disagree; give one")
    return {**{k: v for k, v in flags.items() if v is not None}, **sets}


def from_preset(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's config with overrides (None values are ignored) applied and validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if overrides.get("preset", name) != name:
        raise ConfigError(f"a preset is chosen by name (--preset {overrides['preset']}), not by setting "
                          f"preset={overrides['preset']}: that would only relabel preset {name!r}")
    merged = {**PRESETS[name], "preset": name, **overrides}
    return apply_overrides(TrainConfig(), merged)


# Every number's sensible range, inclusive, as (low, high); None in a bound: no bound.
# The upper bounds keep a config (also one read from a crafted checkpoint) from asking for
# absurd memory or time: hidden=10**9 would be 512 GB of weights.
INT_RANGES: dict[str, tuple[int, int]] = {
    "z_dim": (1, 4096), "hidden": (1, 16384), "layers": (1, 16), "width": (1, 1024),
    "batch_size": (1, 60000), "epochs": (1, 1_000_000), "train_images": (1, 1_000_000), "d_steps": (1, 100), "reg_every": (1, 1000), "pack": (1, 16),
    "num_classes": (0, 1000),
    "strip_every": (1, 1_000_000), "report_every": (1, 1_000_000), "keep_checkpoints": (1, 1000),
    "eval_every": (0, 1_000_000), "eval_n": (10, 100_000), "ema_half_life": (0, 10**12), "seed": (0, 2**63 - 1),
}
# Floats: (low, high, low inclusive, high inclusive); every float must also be finite.
FLOAT_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0, 1, False, False), "lr_d": (0, 1, False, False), "beta1": (0, 1, True, False),
    "beta2": (0, 1, True, False), "eps": (0, 1, False, True), "init_std": (0, 10, False, True),
    "label_smoothing": (0, 0.5, True, False), "r1_gamma": (0, 1e6, True, True), "r2_gamma": (0, 1e6, True, True), "mode_seeking": (0, 1e6, True, True), "gp_lambda": (0, 1e6, True, True),
    "aux_weight": (0, 1e6, True, True), "max_seconds": (0, 1e9, False, True), "lr_end": (0, 1, True, True),
}


CUSTOM = ("folder", "idx")  # dataset names "folder:PATH" (your images) and "idx:PATH" (four IDX files)


def dataset_parts(name: str) -> tuple[str, str | None]:
    """("mnist", None) for a registered name; ("folder", PATH) or ("idx", PATH) for a user's
    own: the one reading of a dataset's name."""
    kind, sep, path = name.partition(":")
    if sep and kind in CUSTOM:
        if not path:
            raise ConfigError(f"dataset {name!r}: give a path after '{kind}:'")
        return kind, path
    return name, None


def _interval(low, high, low_in, high_in) -> str:
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def validate(c: TrainConfig) -> None:
    """Fails with a ConfigError naming the first invalid value; starts no work."""
    from . import registry  # the registries of names; light, no torch

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    if dataset_parts(c.dataset)[1] is None:
        registry.check("dataset", c.dataset)
    need(c.invert in registry.NAMES["invert"], f"invert must be auto, yes or no, got {c.invert!r}")
    need(c.channels in (1, 3), f"channels must be 1 (grey) or 3 (colour), got {c.channels}")
    registry.check("model", c.model)
    registry.check("objective", c.objective)
    registry.check("optimizer", c.optimizer)
    need(c.preset in PRESETS, f"unknown preset {c.preset!r}; available: {', '.join(sorted(PRESETS))}")
    for name, (low, high) in INT_RANGES.items():
        numbers.bounded(getattr(c, name), name, low, high)
    for name, (low, high, low_in, high_in) in FLOAT_RANGES.items():
        value = getattr(c, name)
        if value is None:
            continue
        need(math.isfinite(value), f"{name} must be a finite number, got {value}")
        inside = (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
        need(inside, f"{name} must be in {_interval(low, high, low_in, high_in)}, got {value}")
    need(c.batch_size <= c.train_images,
         f"batch_size ({c.batch_size}) must not exceed train_images ({c.train_images})")
    need(c.max_images is None or c.batch_size <= c.max_images <= 10**15,
         f"max_images must be at least one batch ({c.batch_size}) and at most 10**15, got {c.max_images}")
    need(c.lr_horizon is None or 1 <= c.lr_horizon <= 10**15,
         f"lr_horizon must be a number of images from 1 to 10**15 (or none: the run's epochs), got {c.lr_horizon}")
    registry.check("lr_schedule", c.lr_schedule)
    need(c.lr_schedule == "constant" or not c.cuda_graph,
         f"cuda_graph records the learning rate once: lr_schedule={c.lr_schedule} needs cuda_graph off")
    numbers.threads(c.threads)
    need(bool(re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?|mps", c.device, re.ASCII)),
         f"device must be auto, cpu, cuda, cuda:N or mps, got {c.device!r}")
    need(bool(c.out), "out must name a folder")
    need(not (c.info_code and c.conditional), "info_code is for unconditional models; conditional=true already gives G the class")
    need(not c.conditional or c.num_classes >= 2,
         f"conditional models need a dataset with labels (2 or more classes); {c.dataset} has "
         f"{c.num_classes or 'none'}: give its images class sub-folders, or choose an unconditional preset "
         "(seed, dcgan, wgan-gp)")
    need(not c.aux_weight or c.conditional,
         "aux_weight needs a conditional model (--set conditional=true): the classifier learns the labels")
    need(not (c.cuda_graph and c.compile),
         "cuda_graph and compile both capture the step: choose one (cuda_graph records the whole step)")
    need(not (c.cuda_graph and c.mode_seeking),
         "cuda_graph cannot capture mode_seeking: its test for same-class pairs reads the device every step")
    need(c.pack == 1 or not (c.conditional or c.info_code),
         f"pack={c.pack} is for unconditional models: a pack of {c.pack} images has no single class or code "
         "(conditional and info_code are off with pack > 1)")
    need(c.batch_size % c.pack == 0, f"batch_size ({c.batch_size}) must be a multiple of pack ({c.pack}): D judges whole packs")
    need(not c.aux_twin or c.aux_weight > 0,
         "aux_twin needs the auxiliary classifier (--set aux_weight=W, W > 0): it is that classifier's twin")
    need(c.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {c.precision!r}")
    need(c.memory_format in ("auto", "nchw", "nhwc"), f"memory_format must be auto, nchw or nhwc, got {c.memory_format!r}")
    registry.check_list("augmentation", c.diffaugment)
    registry.check("g_conditioning", c.g_conditioning)
    need(c.g_conditioning == "concat" or c.model == "dcgan",
         f"g_conditioning=cbn is for the dcgan model family (its generator has batch norm); {c.model} has none")
