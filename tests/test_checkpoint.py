import os
import pickle

import pytest
import torch

from mnistgan import checkpoint as ckpt
from mnistgan.errors import CheckpointError


def test_round_trip(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    path = ckpt.save(tmp_path / ckpt.filename(100), t, {"images_seen": 100, "x": [1, 2]})
    tensors, meta = ckpt.load(path)
    assert meta == {"images_seen": 100, "x": [1, 2]}
    assert torch.equal(tensors["a"], t["a"]) and torch.equal(tensors["b"], t["b"])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_truncated_file_is_refused(tmp_path):
    path = ckpt.save(tmp_path / "c.safetensors", {"a": torch.randn(100)}, {"k": 1})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match=r"c.safetensors: corrupt or truncated checkpoint"):
        ckpt.load(path)


def test_empty_and_foreign_files_are_refused(tmp_path):
    empty = tmp_path / "e.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="e.safetensors: not a checkpoint"):
        ckpt.load(empty)
    from safetensors.torch import save_file

    foreign = tmp_path / "f.safetensors"
    save_file({"w": torch.zeros(2)}, foreign, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="f.safetensors: not an mnistgan checkpoint"):
        ckpt.load(foreign)


def test_future_version_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "v.safetensors"
    save_file({"w": torch.zeros(2)}, path, metadata={"format": ckpt.FORMAT, "version": "99", "meta": "{}"})
    with pytest.raises(CheckpointError, match="format version '99'; this mnistgan reads version 1"):
        ckpt.load(path)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"G.net.0.weight": Exploit()}))
    with pytest.raises(CheckpointError, match="evil.safetensors: not a checkpoint"):
        ckpt.load(path)
    torch_file = tmp_path / "evil2.safetensors"
    torch.save({"x": Exploit()}, torch_file)
    with pytest.raises(CheckpointError, match="evil2.safetensors: not a checkpoint"):
        ckpt.load(torch_file)
    assert not (tmp_path / "PWNED").exists()


def test_prune_keeps_the_newest(tmp_path):
    for n in (100, 200, 300, 400):
        ckpt.save(tmp_path / ckpt.filename(n), {"a": torch.zeros(1)}, {})
    ckpt.prune(tmp_path, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [ckpt.filename(300), ckpt.filename(400)]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = ckpt.save(tmp_path / "c.safetensors", {"a": torch.ones(2)}, {"v": 1})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*No space left on device"):
        ckpt.save(path, {"a": torch.zeros(2)}, {"v": 2})
    monkeypatch.undo()
    tensors, meta = ckpt.load(path)
    assert meta == {"v": 1} and torch.equal(tensors["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_wrong_architecture_is_refused(tmp_path):
    from torch import nn

    m = nn.Linear(3, 4)
    path = ckpt.save(tmp_path / "c.safetensors", ckpt.module_tensors("G", m), {})
    tensors, _ = ckpt.load(path)
    with pytest.raises(CheckpointError, match=r"G.weight has shape \(4, 3\); this architecture needs \(5, 3\)"):
        ckpt.load_module("G", nn.Linear(3, 5), tensors, path)
    with pytest.raises(CheckpointError, match="G does not match this architecture"):
        ckpt.load_module("G", nn.Sequential(nn.Linear(3, 4)), tensors, path)
