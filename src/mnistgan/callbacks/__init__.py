"""What a user sees of a run, hooked into the Trainer's loop, one module a concern: the hooks
and the view of the Trainer they get (base), the terminal (console), the quality probe
(probe), the run folder (folder) and TensorBoard (board)."""
from .base import Callback, TrainerView
from .board import TensorBoardLog
from .console import ConsoleReport, ProgressBar, progress_bar, say
from .folder import RunFolder
from .probe import QualityProbe

__all__ = ["Callback", "TrainerView", "ConsoleReport", "ProgressBar", "QualityProbe", "RunFolder", "TensorBoardLog",
           "progress_bar", "say"]
