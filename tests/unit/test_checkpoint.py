import json
import os
import pickle
import random
import struct

import pytest
import torch

from mnistgan.store import checkpoint as ckpt
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


# ------------------------------------------------------------------ crafted headers and fuzzing
def _with_header(header: dict | str, body: bytes = b"") -> bytes:
    raw = (header if isinstance(header, str) else json.dumps(header)).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize("header, message", [
    ('{"__metadata__": ' + "[" * 100000 + "]" * 100000 + "}", "its header is not valid JSON"),
    ("[" * 50000 + "]" * 50000, "its header is not valid JSON"),
    ({"__metadata__": {"format": ckpt.FORMAT, "version": "1", "meta": "[" * 100000 + "]" * 100000}},
     "its metadata is not valid JSON"),
    ({"__metadata__": {"format": ckpt.FORMAT, "version": "1", "meta": "[1, 2]"}}, "not a JSON object"),
    ({"__metadata__": {"format": ckpt.FORMAT, "version": "1", "meta": 5}}, "no 'meta' text"),
    ({"__metadata__": [1, 2]}, "no safetensors header with metadata"),
    ({"__metadata__": {"format": ["x"], "version": "1"}}, "not an mnistgan checkpoint"),
])
def test_crafted_headers_are_the_projects_error(tmp_path, header, message):
    path = tmp_path / "c.safetensors"
    path.write_bytes(_with_header(header))
    with pytest.raises(CheckpointError, match=message):
        ckpt.load(path)


@pytest.mark.parametrize("config", ["[1]", '"text"', "null", '{"hidden": [1]}', '{"preset": {"a": 1}}'])
def test_a_config_of_the_wrong_type_is_the_projects_error(tmp_path, config):
    path = ckpt.save(tmp_path / "c.safetensors", {"a": torch.zeros(1)}, {"config": json.loads(config)})
    tensors, meta = ckpt.load(path)
    with pytest.raises(CheckpointError, match="c.safetensors: its config"):
        ckpt.config_of(path, meta)


def _mutations(good: bytes, rng: random.Random):
    """Seeded damage of a real checkpoint: bytes flipped (header and anywhere), truncation,
    length prefixes changed, JSON values swapped for other types, nesting deepened."""
    n = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + n])
    body = good[8 + n:]
    kind = rng.randrange(7)
    if kind == 0:                                     # flip bytes in the header
        b = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(8, 8 + n)] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 1:                                     # flip bytes anywhere
        b = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:                                     # truncate
        return good[:rng.randrange(len(good))]
    if kind == 3:                                     # the length prefix
        return struct.pack("<Q", rng.choice([0, 1, n - 8, n + 8, rng.randrange(2**63), 2**64 - 1])) + good[8:]
    swaps = [None, True, -1, 2**70, 1e308, "x", [], {}, [[[]]], {"a": {"b": []}}, "[" * 5000 + "]" * 5000]
    if kind == 4:                                     # a value of the run's metadata swapped
        meta = json.loads(header["__metadata__"]["meta"])
        target = meta["config"] if rng.random() < 0.5 else meta
        key = rng.choice(sorted(target))
        target[key] = rng.choice(swaps)
        header["__metadata__"]["meta"] = json.dumps(meta)
    elif kind == 5:                                   # a tensor's dtype, shape or offsets swapped
        name = rng.choice(sorted(k for k in header if k != "__metadata__"))
        field = rng.choice(["dtype", "shape", "data_offsets"])
        header[name][field] = rng.choice(swaps + ["F64", "BOOL", [10**12], [0, 10**12], [-1, 4]])
    else:                                             # nesting
        depth = rng.choice([10, 1000, 200000])
        header["__metadata__"]["meta"] = "[" * depth + "]" * depth
    return _with_header(header, body)


def test_fuzzed_checkpoints_load_or_raise_the_projects_error(tmp_path):
    """A few thousand seeded mutations of a real checkpoint: each loads and restores, or
    raises CheckpointError; never another exception, never a hang (the test's time)."""
    import time

    from mnistgan.config import from_preset
    from mnistgan.training.trainer import Trainer

    config = from_preset("seed", {"z_dim": 8, "hidden": 16, "train_images": 200, "device": "cpu"})
    trainer = Trainer(config)
    good = ckpt.save(tmp_path / "good.safetensors", *trainer.state()).read_bytes()
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "refused": 0}
    path = tmp_path / "m.safetensors"
    t0 = time.perf_counter()
    for i in range(3000):
        path.write_bytes(_mutations(good, rng))
        try:
            tensors, meta = ckpt.load(path)
            ckpt.config_of(path, meta)
            Trainer.load_state(trainer, tensors, meta, path)
            outcomes["loaded"] += 1
        except CheckpointError as e:
            assert str(path) in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 2000 and outcomes["loaded"] > 50, outcomes
    assert time.perf_counter() - t0 < 120
