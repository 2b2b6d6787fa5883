"""Whole runs against stopped-and-resumed ones, for the tests that check a run is exact across
a resume (through the in-memory state; test_resume.py goes through files and the CLI)."""
from __future__ import annotations

import torch


def weights(trainer) -> torch.Tensor:
    """G's and D's parameters, flattened into one tensor."""
    return torch.cat([p.detach().flatten() for p in [*trainer.G.parameters(), *trainer.D.parameters()]])


def whole_and_resumed(cfg, data, stop_at: int):
    """(a run trained straight through, the same run stopped after stop_at images and resumed
    from its state): two finished Trainers."""
    from mnistgan.config import apply_overrides
    from mnistgan.training.trainer import Trainer

    whole = Trainer(cfg)
    whole.fit(data)
    first = Trainer(apply_overrides(cfg, {"max_images": stop_at}))
    first.fit(data)
    tensors, meta = first.state()
    resumed = Trainer(cfg)
    resumed.load_state({k: v.clone() for k, v in tensors.items()}, meta)
    resumed.fit(data)
    return whole, resumed
