"""Comparing finished runs: their newest checkpoints and log rows, wall-clock figures aside."""
from pathlib import Path

import torch

TIMING = {"seconds", "images_per_s"}  # log columns that are wall-clock figures


def final_state(run: Path):
    """Everything in the newest checkpoint but wall-clock figures."""
    from mnistgan.store import checkpoint as ckpt

    tensors, meta = ckpt.load(ckpt.list_checkpoints(run / "checkpoints")[-1])
    meta = {k: v for k, v in meta.items() if k not in ("epoch_seconds", "train_seconds", "config")}
    return tensors, meta


def log_without_timing(run: Path):
    from mnistgan.runs import read_log

    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_log(run)]


def assert_same_run(a: Path, b: Path):
    """Two runs ended bit-identical: every tensor and metadata value of the newest checkpoint
    (but wall-clock figures and the config, which names the folder), and every log row."""
    ta, ma = final_state(a)
    tb, mb = final_state(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert ma == mb
    assert log_without_timing(a) == log_without_timing(b)
