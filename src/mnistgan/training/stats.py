"""Running statistics of training, by name: each step's values wait on the device and are
read back every REFRESH_STEPS steps (the loop's only sync), then summed per epoch in step
order; and the checks that stop a diverged run, naming the network and the step."""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from ..errors import DivergenceError

REFRESH_STEPS = 50  # read running statistics back from the device every N steps
# One step's statistics, in the order of a row of the device window: D loss, G loss (0 on
# steps without a G update), mean D(x), mean D(G(z)) in the D phase, 1 if G was updated.
NAMES = ("d_loss", "g_loss", "d_real", "d_fake", "g_steps")
_ADVICE = "the run stopped and its last checkpoint is kept as it was. Try a lower --lr."


_NAME_SET = frozenset(NAMES)


def pack(**values: torch.Tensor) -> torch.Tensor:
    """One step's statistics, given by name (each a 0-d device tensor), as the row the window
    keeps: the one place that knows the order of NAMES."""
    if values.keys() != _NAME_SET:
        raise KeyError(f"a step's statistics are {', '.join(NAMES)}; got {', '.join(values)}")
    return torch.stack([values[name] for name in NAMES])


class EpochStats:
    """This epoch's sums of the step statistics, and the steps and seconds they cover."""

    def __init__(self, device: torch.device, steps_per_epoch: int, combine=None):
        self.window = torch.zeros(REFRESH_STEPS, len(NAMES), device=device)
        self.pending = 0
        self.steps_per_epoch = steps_per_epoch
        self.combine = combine  # e.g. the mean over processes, applied to the rows before they are read
        self.reset()

    def reset(self) -> None:
        self.sums = dict.fromkeys(NAMES, 0.0)
        self.steps = 0          # steps summed in self.sums
        self.seconds = 0.0      # training time of this epoch

    def push(self, step_stats: torch.Tensor) -> bool:
        """Keeps one step's statistics (what pack made); True when the window is full."""
        self.window[self.pending].copy_(step_stats)
        self.pending += 1
        return self.pending == REFRESH_STEPS

    def epoch_at(self, step: int) -> int:
        """The 1-based epoch that a 1-based step belongs to."""
        return (step - 1) // self.steps_per_epoch + 1

    def flush(self, last_step: int) -> dict[str, float]:
        """Reads the pending rows (the last of them is 1-based step last_step), adds them to the
        sums in step order and returns the means; stops at the first non-finite loss."""
        pending = self.window[:self.pending]
        if self.combine is not None:
            self.combine(pending)
        rows = pending.tolist()
        first_step = last_step - self.pending + 1
        for i, row in enumerate(rows):
            for value, name, net in zip(row[:2], ("D loss", "G loss"), ("discriminator", "generator")):
                if not math.isfinite(value):
                    raise DivergenceError(
                        f"training diverged: the {net}'s loss ({name}) became {value} at step "
                        f"{first_step + i} (epoch {self.epoch_at(first_step + i)}); {_ADVICE}")
            for name, value in zip(NAMES, row):
                self.sums[name] += value
        self.steps += self.pending
        self.pending = 0
        return self.means()

    def means(self) -> dict[str, float]:
        """Mean D loss, D(x) and D(G(z)) over this epoch's steps, and G loss over its G steps."""
        n, s = max(self.steps, 1), self.sums
        return {"d_loss": s["d_loss"] / n, "g_loss": s["g_loss"] / max(s["g_steps"], 1),
                "d_real": s["d_real"] / n, "d_fake": s["d_fake"] / n}

    def row(self, epoch: int, images_seen: int, images_per_epoch: int, batch_size: int, partial: bool,
            costs: tuple[bool, bool]) -> dict[str, Any]:
        """The epoch's log row; costs: whether cost_d / cost_g (the tutorial's -losses) apply."""
        m, seconds = self.means(), self.seconds
        return {
            "epoch": epoch,                            # 1-based, as the tutorial printed it
            "images_seen": images_seen,
            "images_per_epoch": images_per_epoch,
            "partial": partial,                        # the run stopped inside this epoch
            "d_loss": m["d_loss"], "g_loss": m["g_loss"],
            "cost_d": -m["d_loss"] if costs[0] else None,
            "cost_g": -m["g_loss"] if costs[1] else None,
            "d_real": m["d_real"], "d_fake": m["d_fake"],  # mean D(x) and D(G(z)) in the D phase
            "seconds": round(seconds, 4),              # training time of this epoch, artifacts excluded
            "images_per_s": round(self.steps * batch_size / max(seconds, 1e-9), 1),
        }

    def check_weights(self, networks: Iterable[tuple[str, torch.nn.Module]], step: int) -> None:
        """Stops the run if any weight is not finite (one sync for each network)."""
        for net, module in networks:
            sums = torch.stack([p.detach().float().sum() for p in module.parameters()])
            if not bool(torch.isfinite(sums).all()):
                raise DivergenceError(f"training diverged: the {net}'s weights are not finite after step {step} "
                                      f"(epoch {self.epoch_at(step)}); {_ADVICE}")

    def to_meta(self) -> dict[str, Any]:
        return {"acc": [self.sums[k] for k in NAMES], "acc_steps": self.steps, "epoch_seconds": self.seconds}

    def load_meta(self, meta: dict[str, Any]) -> None:
        sums = [float(a) for a in meta["acc"]]
        if len(sums) != len(NAMES):
            raise ValueError(f"acc holds {len(sums)} sums, expected {len(NAMES)}")
        self.sums = dict(zip(NAMES, sums))
        self.steps = int(meta["acc_steps"])
        self.seconds = float(meta["epoch_seconds"])
        self.pending = 0
