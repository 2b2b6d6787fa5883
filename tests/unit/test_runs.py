"""runs: where a run may be made, which checkpoint a resume takes, notices to callbacks."""
import pytest

from mnistgan import runs
from mnistgan.callbacks import Callback
from mnistgan.errors import CheckpointError, ConfigError


def test_free_run_dir_and_check_run_dir(tmp_path):
    base = tmp_path / "seed"
    assert runs.free_run_dir(base) == base
    base.mkdir()
    assert runs.free_run_dir(base) == base                     # empty: usable
    (base / "config.json").write_text("{}")
    assert runs.free_run_dir(base) == tmp_path / "seed-2"
    with pytest.raises(ConfigError, match="already holds a run"):
        runs.check_run_dir(base)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        runs.check_run_dir(tmp_path / "file")


class Notes(Callback):
    def __init__(self):
        self.messages = []

    def on_message(self, message):
        self.messages.append(message)


def test_newest_loadable_skips_damaged_and_says_so(tmp_path):
    from mnistgan.store import checkpoint as ckpt
    import torch

    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no checkpoints/ckpt"):
        ckpt.newest_loadable(run)
    ckpt.save(run / "checkpoints" / ckpt.filename(100), {"x": torch.ones(2)}, {"images_seen": 100})
    (run / "checkpoints" / ckpt.filename(200)).write_bytes(b"\0" * 40)
    notes = Notes()
    path, (tensors, meta) = ckpt.newest_loadable(run, on_skip=notes.on_message)
    assert path.name == ckpt.filename(100) and meta == {"images_seen": 100}
    assert len(notes.messages) == 1 and "skipping damaged checkpoint" in notes.messages[0]
    assert (run / "checkpoints" / ckpt.filename(200)).exists()  # never deleted


def test_a_run_says_when_precision_auto_chose_bf16():
    """The notice appears exactly when auto resolved to bf16 (a conv preset on a CPU with native
    bf16), and never for an explicit precision."""
    import numpy as np

    from mnistgan.config import from_preset
    from mnistgan.data import DeviceData
    from mnistgan.training.trainer import Trainer

    rng = np.random.default_rng(0)
    data = DeviceData(rng.integers(0, 256, (32, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 32), "cpu")
    for precision in ("auto", "fp32", "bf16"):
        notes = Notes()
        t = Trainer(from_preset("dcgan", {"precision": precision, "device": "cpu", "width": 8, "batch_size": 16,
                                          "train_images": 32, "max_images": 16, "progress": False}), "cpu")
        runs._fit(t, data, [notes], tune_malloc=False)
        said = any("run in bf16 (autocast)" in m for m in notes.messages)
        assert said == (precision == "auto" and t.bf16), (precision, notes.messages)
