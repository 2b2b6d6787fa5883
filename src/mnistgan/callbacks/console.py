"""The terminal: the progress bar, the tutorial's console report, and the run's notices.
The only code below the CLI that writes to the terminal lives here (`progress_bar` is the
bar factory that data downloads and the classifier's training are given)."""
from __future__ import annotations

import sys

from .base import Callback


def progress_bar(iterable=None, **kwargs):
    """A progress bar on stderr, over iterable or counted by hand (tqdm's arguments: total,
    desc, unit, ...)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def say(message: str, err: bool = False) -> None:
    """Prints without breaking a progress bar; status and warnings go to stderr."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr if err else sys.stdout)


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
