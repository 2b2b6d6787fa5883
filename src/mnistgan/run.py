"""A run folder and what fills it; `train()` and `sample()`, the library's entry points.

    RUN/config.json          the full resolved config
    RUN/log.jsonl            one row per epoch
    RUN/samples/NNN.png      the seed's strip of 10 new forgeries (epoch 1, every 10th, last)
    RUN/samples/grid-NNN.png 10 x 10 forgeries of one fixed noise batch, every epoch
    RUN/progress.gif         the fixed-noise grid over the epochs
    RUN/progress.png         one row per strip epoch: the forging process on one sheet
    RUN/losses.png           D and G loss, D(x) and D(G(z)) over training
    RUN/real_vs_fake.png     real digits beside forgeries
    RUN/checkpoints/         ckpt-<images seen>.safetensors, the last K
"""
from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from . import images
from .config import TrainConfig, apply_overrides, fixed_fields
from .data import DeviceData, load_split
from .errors import CheckpointError, ConfigError
from .training import EVAL_NOISE, STRIP_NOISE, Trainer, derived_seed, resolve_device


def _say(message: str, err: bool = False) -> None:
    """Prints without breaking a progress bar; status and warnings go to stderr."""
    import sys

    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr if err else sys.stdout)


class ConsoleReport:
    """The tutorial's report of Cost_D and Cost_G every report_every epochs (and epoch 1)."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        c = trainer.config
        e = row["epoch"]
        if e == 1 or e % c.report_every == 0 or row["images_seen"] >= c.total_images:
            cost_d = row["cost_d"] if row["cost_d"] is not None else -row["d_loss"]
            cost_g = row["cost_g"] if row["cost_g"] is not None else -row["g_loss"]
            fid = f"  FID({c.eval_n}): {row['fid']:.3f}" if "fid" in row else ""
            _say(f"Epoch: {e:04d} Cost_D: {cost_d:.4f}\nEpoch: {e:04d} Cost_G: {cost_g:.4f}{fid}")

    def on_train_end(self, trainer: Trainer) -> None:
        pass


class QualityProbe:
    """Every eval_every epochs: FID of eval_n forgeries (fixed noise) against the real test
    split, added to the epoch's log row, so curves show quality and not only losses."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.ctx = None

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        c = self.config
        if not c.eval_every or (row["epoch"] % c.eval_every and row["images_seen"] < c.total_images):
            return
        from .metrics import Context, fid

        z = trainer.make_noise(c.eval_n, derived_seed(c.seed, EVAL_NOISE))
        fakes = images.to_uint8(torch.cat([trainer.generate(chunk) for chunk in z.split(1000)]))  # classes cycle 0..9
        ctx = Context(fakes, c.dataset, c.data_dir, c.download, progress=False, device=str(trainer.device))
        if self.ctx is not None:  # reuse the loaded network and real features
            ctx.net, ctx.real = self.ctx.net, self.ctx.real
        row["fid"] = fid(ctx)["fid"]
        self.ctx = ctx

    def on_train_end(self, trainer: Trainer) -> None:
        pass


class RunFolder:
    """Writes log rows, pictures and checkpoints as the run goes, and the summary figures
    at its end. Everything is derived from files on disk, so a resumed run's figures cover
    the whole run."""

    def __init__(self, path: str | os.PathLike, real_examples: np.ndarray):
        self.path = Path(path)
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.real_examples = real_examples  # 100 x 28 x 28 uint8 for real_vs_fake.png

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        c, e = trainer.config, row["epoch"]
        with open(self.path / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        images.save_grid(self.samples / f"grid-{e:03d}.png", images.to_uint8(trainer.generate_fixed()))
        if e == 1 or e % c.strip_every == 0 or row["images_seen"] >= c.total_images or row["partial"]:
            z = trainer.make_noise(10, derived_seed(c.seed, STRIP_NOISE, e))  # conditional: digits 0..9
            images.save_strip(self.samples / f"{e:03d}.png", images.to_uint8(trainer.generate(z)))
        self.save_checkpoint(trainer)

    def on_interrupt(self, trainer: Trainer) -> None:
        self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer: Trainer) -> Path:
        tensors, meta = trainer.state()
        path = ckpt.save(self.checkpoints / ckpt.filename(trainer.images_seen), tensors, meta)
        ckpt.prune(self.checkpoints, trainer.config.keep_checkpoints)
        return path

    def on_train_end(self, trainer: Trainer) -> None:
        rows = read_log(self.path)
        grids = sorted(self.samples.glob("grid-*.png"))
        frames = [np.asarray(_open_gray(p)) for p in grids]
        if frames:
            images.save_gif(self.path / "progress.gif", frames)
            c = trainer.config
            last = int(grids[-1].stem.split("-")[1])
            wanted = sorted({1, last, *range(c.strip_every, last + 1, c.strip_every)})
            sheet = [(e, _first_row(self.samples / f"grid-{e:03d}.png", c.takes_labels)) for e in wanted
                     if (self.samples / f"grid-{e:03d}.png").exists()]
            images.save_progress_sheet(self.path / "progress.png", sheet)
        if rows:
            images.save_losses(self.path / "losses.png", rows)
        fake = images.to_uint8(trainer.generate_fixed())
        images.save_real_vs_fake(self.path / "real_vs_fake.png", self.real_examples, fake)


def _open_gray(path: Path):
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("L").copy()


def _first_row(path: Path, diagonal: bool = False) -> np.ndarray:
    """Ten 28 x 28 images of a saved 10 x 10 grid (2-pixel padding): its first row, or its
    diagonal (a conditional grid's rows are classes, so the diagonal shows every class)."""
    g = np.asarray(_open_gray(path))
    return np.stack([g[2 + 30 * (i if diagonal else 0):30 + 30 * (i if diagonal else 0), 2 + 30 * i:30 + 30 * i]
                     for i in range(10)])


def read_log(run: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of log.jsonl. A torn last line (a crash while appending) is ignored; damage
    anywhere else is an error."""
    path = Path(run) / "log.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                break
            raise CheckpointError(f"{path}: line {i + 1} is not valid JSON") from None
    return rows


# ----------------------------------------------------------------------------- entry points
def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / "config.json").is_file()


def free_run_dir(base: str | os.PathLike) -> Path:
    """base if it holds no run, else base-2, base-3, ... (for the default --out)."""
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_run_dir(path: Path) -> None:
    """Refuses an --out that holds anything: nothing is ever overwritten."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder")
    if path.exists() and any(path.iterdir()):
        what = "a run" if is_run(path) else "files"
        raise ConfigError(f"--out {path} already holds {what}; choose another --out "
                          "(nothing was changed)")


def prepare_run_dir(path: Path) -> None:
    """Creates an empty run folder and checks that it can be written."""
    check_run_dir(path)
    try:
        (path / "samples").mkdir(parents=True, exist_ok=True)
        (path / "checkpoints").mkdir(exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write to --out {path}: {e.strerror or e}") from None


def load_training_data(config: TrainConfig, device: torch.device) -> DeviceData:
    imgs, labels = load_split(config.dataset, "train", config.data_dir, download=config.download,
                              progress=config.progress)
    return DeviceData(imgs[:config.train_images], labels[:config.train_images], device)


@contextmanager
def stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM: finish the current step, write a checkpoint, stop. A second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_signal = signum
        trainer.request_stop()
        _say("mnistgan: stopping after this step and writing a checkpoint (Ctrl-C again aborts at once)", err=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _fit(trainer: Trainer, data: DeviceData, out: Path, callbacks: list | None) -> Trainer:
    real = data.images[:100, 0].cpu().numpy()
    with stop_on_signals(trainer):
        trainer.fit(data, [QualityProbe(trainer.config), ConsoleReport(), RunFolder(out, real), *(callbacks or [])])
    return trainer


def train(config: TrainConfig, callbacks: list | None = None) -> Trainer:
    """Trains a new run into config.out; returns the trainer (its networks are trained).
    Raises TrainingInterrupted after a signal, once a checkpoint is written."""
    device = resolve_device(config.device)
    out = Path(config.out)
    check_run_dir(out)
    data = load_training_data(config, device)  # fails on missing data before any folder is made
    prepare_run_dir(out)
    ckpt.atomic_write_bytes(out / "config.json", (config.to_json() + "\n").encode())
    return _fit(Trainer(config, device), data, out, callbacks)


def load_latest_good(run: Path) -> tuple[Path, dict, dict]:
    """(path, tensors, meta) of the newest checkpoint that loads; damaged newer ones are
    reported and skipped, never deleted."""
    found = ckpt.list_checkpoints(run / "checkpoints")
    if not found:
        raise CheckpointError(f"{run} has no checkpoint to resume from (checkpoints/ is empty)")
    errors = []
    for path in reversed(found):
        try:
            tensors, meta = ckpt.load(path)
            return path, tensors, meta
        except CheckpointError as e:
            errors.append(str(e))
            _say(f"mnistgan: warning: skipping damaged checkpoint: {e}", err=True)
    raise CheckpointError("no checkpoint of this run can be loaded:\n  " + "\n  ".join(errors))


def resume(run: str | os.PathLike, overrides: dict[str, Any] | None = None,
           callbacks: list | None = None) -> Trainer:
    """Continues a run exactly from its latest checkpoint. Overrides that change the maths
    are refused; harmless ones (epochs, device, ...) are applied and recorded."""
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    if not is_run(run):
        raise CheckpointError(f"{run} is not a run folder (no config.json)")
    path, tensors, meta = load_latest_good(run)
    for folder in (run, run / "checkpoints"):
        ckpt.remove_stale_temporaries(folder)
    try:
        saved = TrainConfig.from_dict(meta["config"])
    except (KeyError, ConfigError) as e:
        raise CheckpointError(f"{path}: its config is invalid ({e})") from None
    wanted = apply_overrides(saved, {k: v for k, v in (overrides or {}).items() if v is not None})
    changes = {k: v for k, v in wanted.to_dict().items() if v != getattr(saved, k)}
    refused = sorted(set(changes) & fixed_fields())
    if refused:
        detail = ", ".join(f"{k} (run: {getattr(saved, k)!r}, asked: {changes[k]!r})" for k in refused)
        raise ConfigError(f"cannot change {detail} when resuming: it changes the run's maths. "
                          "Start a new run with --out instead (nothing was changed).")
    config = apply_overrides(wanted, {"out": str(run)})
    device = resolve_device(config.device)
    data = load_training_data(config, device)
    trainer = Trainer(config, device)
    trainer.load_state(tensors, meta, path)
    # Rows past the checkpoint belong to work that is about to be redone.
    rows = [r for r in read_log(run) if r["images_seen"] < trainer.images_seen or
            (r["images_seen"] == trainer.images_seen and not (r["partial"] and trainer.images_seen < config.total_images))]
    ckpt.atomic_write_bytes(run / "log.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    ckpt.atomic_write_bytes(run / "config.json", (config.to_json() + "\n").encode())
    with open(run / "resumes.jsonl", "a") as f:
        f.write(json.dumps({"checkpoint": path.name, "images_seen": trainer.images_seen,
                            "changes": {k: changes[k] for k in sorted(changes)}}) + "\n")
    _say(f"mnistgan: resuming {run} from {path.name} ({trainer.images_seen:,} images seen, "
         f"epoch {trainer.epoch:.2f} of {config.epochs})", err=True)
    return _fit(trainer, data, run, callbacks)


def latest_checkpoint(run: str | os.PathLike) -> Path:
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    found = ckpt.list_checkpoints(run / "checkpoints")
    if not found:
        raise CheckpointError(f"{run} is not a run with a checkpoint (no checkpoints/ckpt-*.safetensors)")
    return found[-1]


def load_generator(run_or_checkpoint: str | os.PathLike, device: str = "cpu"):
    """(generator in eval mode, config) from a run folder's latest checkpoint or a checkpoint
    file: the EMA generator when the run kept one (its batch-norm statistics recomputed)."""
    from . import models
    from .training import recalibrate_batch_norm

    path = Path(run_or_checkpoint)
    path = path if path.is_file() else latest_checkpoint(path)
    tensors, meta = ckpt.load(path)
    try:
        config = TrainConfig.from_dict(meta["config"])
    except (KeyError, ConfigError) as e:
        raise CheckpointError(f"{path}: its config is invalid ({e})") from None
    G, _ = models.build(config)
    ema = any(k.startswith("G_ema.") for k in tensors)
    ckpt.load_module("G_ema" if ema else "G", G, tensors, path)
    dev = resolve_device(device)
    G = G.to(dev)
    if ema:
        recalibrate_batch_norm(G, config, dev)
    return G.eval(), config


def _labels(config: TrainConfig, n: int, digit: int | None) -> torch.Tensor | None:
    if digit is None:
        return torch.arange(n) % 10 if config.takes_labels else None
    if config.info_code:
        raise ConfigError("--digit needs a conditional model; this run's codes (info_code) are learned "
                          "without labels, so code k is not digit k")
    if not config.conditional:
        raise ConfigError("--digit needs a conditional model (e.g. --preset cdcgan); this run is unconditional")
    if not 0 <= digit <= 9:
        raise ConfigError(f"--digit must be 0..9, got {digit}")
    return torch.full((n,), digit, dtype=torch.long)


@torch.no_grad()
def sample(run_or_checkpoint: str | os.PathLike, n: int = 64, seed: int = 0, device: str = "cpu",
           digit: int | None = None) -> np.ndarray:
    """n forgeries as an N x 28 x 28 uint8 array; the same (checkpoint, n, seed, digit) gives
    the same images. Conditional models draw `digit`, or classes 0..9 in turn."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    G, config = load_generator(run_or_checkpoint, device)
    labels = _labels(config, n, digit)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, config.z_dim, generator=gen)
    dev = next(G.parameters()).device
    out = []
    for i, chunk in enumerate(z.split(1000)):
        lab = None if labels is None else labels[i * 1000:(i + 1) * 1000].to(dev)
        out.append(G(chunk.to(dev), lab).float())
    return images.to_uint8(torch.cat(out))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors (Shoemake 1985; White 2016 for GANs)."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so


@torch.no_grad()
def interpolate(run_or_checkpoint: str | os.PathLike, steps: int = 10, seed: int = 0, device: str = "cpu",
                digit: int | None = None) -> np.ndarray:
    """Latent walks, as rows of `steps` images (rows x steps x 28 x 28 uint8): a spherical walk
    between two noise vectors; for a conditional model also a walk across the ten classes
    with the noise fixed (the label embedding interpolated linearly, 0 -> 1 -> ... -> 9)."""
    if steps < 2:
        raise ConfigError(f"--n must be at least 2 for an interpolation, got {steps}")
    G, config = load_generator(run_or_checkpoint, device)
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, config.z_dim, generator=gen)
    z = slerp(a, b, torch.linspace(0, 1, steps))
    labels = _labels(config, steps, digit)
    rows = [G(z.to(dev), None if labels is None else labels.to(dev)).float()]
    if config.takes_labels:
        emb = G.embed.weight                                   # 10 x embed_dim
        t = torch.linspace(0, 9, steps, device=dev)
        lo = t.floor().long().clamp(max=8)
        w = (t - lo)[:, None]
        walk = (1 - w) * emb[lo] + w * emb[lo + 1]
        rows.append(G(a.to(dev).expand(steps, -1), class_embedding=walk).float())
    return np.stack([images.to_uint8(r) for r in rows])
