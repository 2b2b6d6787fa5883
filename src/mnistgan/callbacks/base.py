"""The hooks of a training run, and the narrow view of the Trainer that callbacks are given.

Callbacks run in list order; one may add keys to an epoch's row for those after it
(QualityProbe adds "fid" before RunFolder logs the row). A callback sees the run through
`TrainerView` alone (tests/unit/test_architecture.py checks that the callbacks here use nothing
else of it), so that nothing in this package imports the Trainer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from ..config import TrainConfig
    from ..system.distributed import Dist


class TrainerView(Protocol):
    """What a callback may read of the run (the Trainer provides it)."""

    config: "TrainConfig"      # the run's resolved config
    images_seen: int           # progress; epochs are derived from it
    device: "torch.device"
    dist: "Dist"               # this process's place under torchrun (rank 0 of 1 alone)

    def make_noise(self, n: int, seed: int) -> "torch.Tensor":
        """n noise vectors drawn from seed (on the CPU, so the same on every device), on the run's device."""

    def generate(self, z: "torch.Tensor", labels: "torch.Tensor | None" = None) -> "torch.Tensor":
        """Forgeries (B x 1 x 28 x 28 in [0, 1]) of the generator pictures come from (EMA when kept)."""

    def generate_fixed(self) -> "torch.Tensor":
        """The fixed-noise batch behind every epoch's grid."""

    def state(self) -> "tuple[dict[str, torch.Tensor], dict[str, Any]]":
        """Everything a checkpoint holds: (tensors, JSON metadata)."""

    def request_stop(self) -> None:
        """Asks the loop to stop after the current step."""


class Callback:
    """The hooks of Trainer.fit and of the run functions, each a no-op here."""

    def on_epoch_start(self, trainer: TrainerView, epoch: int, first_step: int) -> None:
        """Epoch `epoch` (1-based) starts, or resumes, at step `first_step` (0-based)."""

    def on_step(self, trainer: TrainerView) -> None:
        """After every step (keep it cheap)."""

    def on_refresh(self, trainer: TrainerView, means: dict[str, float], images_per_s: float) -> None:
        """After each read of the statistics from the device (every REFRESH_STEPS steps)."""

    def on_steps_end(self, trainer: TrainerView) -> None:
        """The steps of an epoch ended: completed, interrupted or failed."""

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        """An epoch ended (or the run stopped inside it: row["partial"]); row is its log row."""

    def on_interrupt(self, trainer: TrainerView) -> None:
        """A stop was requested (a signal): the loop stopped after a complete step. The run
        folder writes its checkpoint here."""

    def on_train_end(self, trainer: TrainerView) -> None:
        """The run reached its end."""

    def on_message(self, message: str) -> None:
        """A notice for the user (a resume, a skipped damaged checkpoint, a stop request)."""
