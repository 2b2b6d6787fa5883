"""What a user sees of a run, hooked into the Trainer's loop: the progress bar, the console
report, the quality probe, and the run folder (log rows, pictures, checkpoints).

The only code below the CLI that writes to the terminal lives here (ProgressBar,
ConsoleReport, and `progress_bar`, the bar factory that data downloads and the classifier's
training are given). Callbacks run in list order; one may add keys to an epoch's row for
those after it (QualityProbe adds "fid" before RunFolder logs the row).

    RUN/config.json          the full resolved config (written by runs.py)
    RUN/log.jsonl            one row per epoch
    RUN/samples/NNN.png      the seed's strip of 10 new forgeries (epoch 1, every 10th, last)
    RUN/samples/grid-NNN.png 10 x 10 forgeries of one fixed noise batch, every epoch
    RUN/progress.gif         the fixed-noise grid over the epochs
    RUN/progress.png         one row per strip epoch: the forging process on one sheet
    RUN/losses.png           D and G loss, D(x) and D(G(z)) over training
    RUN/real_vs_fake.png     real digits beside forgeries
    RUN/checkpoints/         ckpt-<images seen>.safetensors, the last K
    RUN/tensorboard/         scalars, grids and hparams for TensorBoard (--tensorboard)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import checkpoint as ckpt
from . import files, images, runtime

if TYPE_CHECKING:
    from .training import Trainer


def progress_bar(iterable=None, **kwargs):
    """A progress bar on stderr, over iterable or counted by hand (tqdm's arguments: total,
    desc, unit, ...)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def say(message: str, err: bool = False) -> None:
    """Prints without breaking a progress bar; status and warnings go to stderr."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr if err else sys.stdout)


class Callback:
    """The hooks of Trainer.fit and of the run functions, each a no-op here."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int, first_step: int) -> None:
        """Epoch `epoch` (1-based) starts, or resumes, at step `first_step` (0-based)."""

    def on_step(self, trainer: "Trainer") -> None:
        """After every step (keep it cheap)."""

    def on_refresh(self, trainer: "Trainer", means: dict[str, float], images_per_s: float) -> None:
        """After each read of the statistics from the device (every REFRESH_STEPS steps)."""

    def on_steps_end(self, trainer: "Trainer") -> None:
        """The steps of an epoch ended: completed, interrupted or failed."""

    def on_epoch_end(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        """An epoch ended (or the run stopped inside it: row["partial"]); row is its log row."""

    def on_interrupt(self, trainer: "Trainer") -> None:
        """A stop was requested (a signal): the loop stopped after a complete step."""

    def on_train_end(self, trainer: "Trainer") -> None:
        """The run reached its end."""

    def on_message(self, message: str) -> None:
        """A notice for the user (a resume, a skipped damaged checkpoint, a stop request)."""


class ProgressBar(Callback):
    """One tqdm bar per epoch, with the running losses and the speed."""

    def __init__(self):
        self.bar = None

    def on_epoch_start(self, trainer, epoch, first_step):
        c = trainer.config
        self.bar = progress_bar(total=c.steps_per_epoch, initial=first_step, desc=f"epoch {epoch}/{c.epochs}",
                                unit="step", leave=True, mininterval=0.5)

    def on_step(self, trainer):
        self.bar.update(1)

    def on_refresh(self, trainer, means, images_per_s):
        self.bar.set_postfix_str(f"D loss {means['d_loss']:.3f}  G loss {means['g_loss']:.3f}  "
                                 f"D(x) {means['d_real']:.3f}  D(G(z)) {means['d_fake']:.3f}  "
                                 f"{images_per_s:,.0f} img/s", refresh=False)

    def on_steps_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    on_interrupt = on_steps_end


class ConsoleReport(Callback):
    """The tutorial's report of Cost_D and Cost_G every report_every epochs (and epoch 1),
    and the run's notices on stderr."""

    def on_epoch_end(self, trainer, row):
        c = trainer.config
        e = row["epoch"]
        if e == 1 or e % c.report_every == 0 or row["images_seen"] >= c.total_images:
            cost_d = row["cost_d"] if row["cost_d"] is not None else -row["d_loss"]
            cost_g = row["cost_g"] if row["cost_g"] is not None else -row["g_loss"]
            fid = f"  FID({c.eval_n}): {row['fid']:.3f}" if "fid" in row else ""
            say(f"Epoch: {e:04d} Cost_D: {cost_d:.4f}\nEpoch: {e:04d} Cost_G: {cost_g:.4f}{fid}")

    def on_message(self, message):
        say(f"mnistgan: {message}", err=True)


class QualityProbe(Callback):
    """Every eval_every epochs (and at the end): FID of eval_n forgeries (fixed noise) against
    the real test split, added to the epoch's log row as "fid", so that curves show quality
    and not only losses. The feature network and real features are loaded once."""

    def __init__(self):
        self.reference = None

    def on_epoch_end(self, trainer, row):
        c = trainer.config
        if not c.eval_every or (row["epoch"] % c.eval_every and row["images_seen"] < c.total_images):
            return
        from . import distributed
        from .metrics import Context, Reference, fid

        if self.reference is None:
            self.reference = Reference(c.dataset, c.data_dir, c.download, device=str(trainer.device), invert=c.invert)
        z = trainer.make_noise(c.eval_n, runtime.derived_seed(c.seed, runtime.EVAL_NOISE)).split(1000)
        d = trainer.dist
        mine = z[distributed.share(len(z), d)] if d.active else z  # under torchrun: a share each
        fakes = images.to_uint8(torch.cat([trainer.generate(chunk) for chunk in mine])) if mine else \
            np.zeros((0, 28, 28), np.uint8)  # classes cycle; a process may have no share of a small eval_n
        if not d.active:
            row["fid"] = fid(Context(fakes, self.reference))["fid"]
            return
        feats, probs = self.reference.net(fakes)
        gathered = [distributed.gather(t.to(trainer.device)).cpu() for t in (torch.from_numpy(fakes), feats, probs)]
        if d.main:
            row["fid"] = fid(Context(gathered[0].numpy(), self.reference, (gathered[1], gathered[2])))["fid"]


class RunFolder(Callback):
    """Writes log rows, pictures and checkpoints as the run goes, and the summary figures at
    its end. Everything is derived from files on disk, so a resumed run's figures cover the
    whole run."""

    def __init__(self, path: str | os.PathLike, real_examples: np.ndarray):
        self.path = Path(path)
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.real_examples = real_examples  # 100 x 28 x 28 uint8 for real_vs_fake.png

    def on_epoch_end(self, trainer, row):
        c, e = trainer.config, row["epoch"]
        files.append_jsonl(self.path / "log.jsonl", row)
        images.save_grid(self.samples / f"grid-{e:03d}.png", images.to_uint8(trainer.generate_fixed()))
        if e == 1 or e % c.strip_every == 0 or row["images_seen"] >= c.total_images or row["partial"]:
            z = trainer.make_noise(10, runtime.derived_seed(c.seed, runtime.STRIP_NOISE, e))  # conditional: 0..9
            images.save_strip(self.samples / f"{e:03d}.png", images.to_uint8(trainer.generate(z)))
        self.save_checkpoint(trainer)

    def on_interrupt(self, trainer):
        self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer) -> Path:
        tensors, meta = trainer.state()
        path = ckpt.save(self.checkpoints / ckpt.filename(trainer.images_seen), tensors, meta)
        ckpt.prune(self.checkpoints, trainer.config.keep_checkpoints)
        return path

    def on_train_end(self, trainer):
        c = trainer.config
        rows = read_log(self.path)
        grids = sorted(self.samples.glob("grid-*.png"))
        if grids:
            images.save_gif(self.path / "progress.gif", [images.read_gray(p) for p in grids])
            last = int(grids[-1].stem.split("-")[1])
            wanted = sorted({1, last, *range(c.strip_every, last + 1, c.strip_every)})
            sheet = [(e, images.grid_row(images.read_gray(self.samples / f"grid-{e:03d}.png"), c.takes_labels))
                     for e in wanted if (self.samples / f"grid-{e:03d}.png").exists()]
            images.save_progress_sheet(self.path / "progress.png", sheet)
        if rows:
            images.save_losses(self.path / "losses.png", rows)
        images.save_real_vs_fake(self.path / "real_vs_fake.png", self.real_examples,
                                 images.to_uint8(trainer.generate_fixed()))


class TensorBoardLog(Callback):
    """RUN/tensorboard/ for TensorBoard (`--tensorboard`; needs the tensorboard package): per
    epoch row, at step = images seen, the scalars below and the fixed-noise grid; at the end
    the config as hparams with the final row's numbers as its metrics. A resumed run appends
    to the same folder; `purge_step` (one past the last row kept in log.jsonl) hides what the
    interrupted session logged after it, so no step appears twice."""

    SCALARS = {"d_loss": "loss/D", "g_loss": "loss/G", "d_real": "D(x)", "d_fake": "D(G(z))",
               "images_per_s": "speed/images_per_s", "fid": "quality/fid"}

    def __init__(self, path: str | os.PathLike, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(path) / "tensorboard"), purge_step=purge_step)
        self.last: dict[str, Any] = {}

    @staticmethod
    def check_installed() -> None:
        """Fails in one line, before any work, when the tensorboard package is missing."""
        import importlib.util

        from .errors import ConfigError

        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError('--tensorboard needs the tensorboard package: pip install "mnistgan[tensorboard]"')

    def on_epoch_end(self, trainer, row):
        step = row["images_seen"]
        for key, tag in self.SCALARS.items():
            if isinstance(row.get(key), (int, float)):
                self.writer.add_scalar(tag, row[key], step)
        grid = images.grid(images.to_uint8(trainer.generate_fixed()))
        self.writer.add_image("forgeries/fixed_noise", grid, step, dataformats="HW")
        self.writer.flush()
        self.last = row

    def on_train_end(self, trainer):
        from torch.utils.tensorboard.summary import hparams

        config = {k: ("none" if v is None else v) for k, v in trainer.config.to_dict().items()
                  if v is None or isinstance(v, (bool, int, float, str))}
        final = {f"final/{k}": float(self.last[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake", "fid")
                 if isinstance(self.last.get(k), (int, float))}
        for summary in hparams(config, final):  # in this run's own folder (add_hparams would make another)
            self.writer.file_writer.add_summary(summary)
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, self.last.get("images_seen", 0))
        self.writer.close()


def read_log(run: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a run's log.jsonl (a torn last line, from a crash while appending, is ignored)."""
    return files.read_jsonl(Path(run) / "log.jsonl")
