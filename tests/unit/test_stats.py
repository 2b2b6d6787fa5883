"""stats: the named statistics window, epoch sums, divergence checks."""
import math

import pytest
import torch

from mnistgan.errors import DivergenceError
from mnistgan.training.stats import NAMES, REFRESH_STEPS, EpochStats


def test_sums_means_and_meta_round_trip():
    s = EpochStats(torch.device("cpu"), steps_per_epoch=10)
    rows = [[1.0, 0.0, 0.5, 0.25, 0.0], [3.0, 2.0, 0.7, 0.35, 1.0], [2.0, 4.0, 0.6, 0.3, 1.0]]
    assert [s.push(torch.tensor(r)) for r in rows] == [False, False, False]
    means = s.flush(last_step=3)
    assert means == pytest.approx({"d_loss": 2.0, "g_loss": 3.0, "d_real": 0.6, "d_fake": 0.3})
    assert s.steps == 3 and s.pending == 0 and s.sums["g_steps"] == 2.0
    s.seconds = 1.5
    t = EpochStats(torch.device("cpu"), steps_per_epoch=10)
    t.load_meta(s.to_meta())
    assert t.sums == s.sums and t.steps == 3 and t.seconds == 1.5 and t.means() == means
    assert s.to_meta()["acc"] == [s.sums[k] for k in NAMES]   # the checkpoint's list, in NAMES order
    with pytest.raises(ValueError, match="acc holds 4 sums"):
        t.load_meta({**s.to_meta(), "acc": [0.0] * 4})


def test_window_fills_every_refresh_steps():
    s = EpochStats(torch.device("cpu"), steps_per_epoch=1000)
    full = [s.push(torch.zeros(len(NAMES))) for _ in range(REFRESH_STEPS)]
    assert full == [False] * (REFRESH_STEPS - 1) + [True]


def test_non_finite_loss_names_network_step_and_epoch():
    s = EpochStats(torch.device("cpu"), steps_per_epoch=10)
    s.push(torch.tensor([1.0, 1.0, 0.5, 0.5, 1.0]))
    s.push(torch.tensor([1.0, math.nan, 0.5, 0.5, 1.0]))
    with pytest.raises(DivergenceError, match=r"generator's loss \(G loss\) became nan at step 12 \(epoch 2\)"):
        s.flush(last_step=12)


def test_non_finite_weights():
    s = EpochStats(torch.device("cpu"), steps_per_epoch=10)
    good, bad = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    s.check_weights([("generator", good)], step=5)
    with torch.no_grad():
        bad.weight[0, 0] = math.inf
    with pytest.raises(DivergenceError, match="discriminator's weights are not finite after step 25 \\(epoch 3\\)"):
        s.check_weights([("generator", good), ("discriminator", bad)], step=25)


def test_the_epoch_row():
    s = EpochStats(torch.device("cpu"), steps_per_epoch=10)
    s.push(torch.tensor([1.0, 2.0, 0.75, 0.25, 1.0]))
    s.flush(last_step=1)
    s.seconds = 0.5
    row = s.row(3, 2100, 1000, 100, partial=True, costs=(True, False))
    assert row == {"epoch": 3, "images_seen": 2100, "images_per_epoch": 1000, "partial": True, "d_loss": 1.0,
                   "g_loss": 2.0, "cost_d": -1.0, "cost_g": None, "d_real": 0.75, "d_fake": 0.25,
                   "seconds": 0.5, "images_per_s": 200.0}
