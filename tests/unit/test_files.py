"""files: atomic writes, JSON lines, the cache folder."""
import json
import os

import numpy as np
import pytest

from mnistgan.store import files
from mnistgan.errors import RunError


def test_atomic_write_replaces_whole_and_keeps_the_old_content_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a.json"
    files.write_json(p, {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1} and p.read_text().endswith("\n")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        files.write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 1}
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.json"]  # no temporary left


def test_jsonl_append_read_and_torn_last_line(tmp_path):
    p = tmp_path / "log.jsonl"
    assert files.read_jsonl(p) == []
    files.append_jsonl(p, {"epoch": 1})
    files.append_jsonl(p, {"epoch": 2})
    with open(p, "a") as f:
        f.write('{"epoch": 3, "d_lo')                     # a crash while appending
    assert files.read_jsonl(p) == [{"epoch": 1}, {"epoch": 2}]
    p.write_text('{"epoch": 1}\n{broken\n{"epoch": 3}\n')
    with pytest.raises(RunError, match="line 2 is not valid JSON"):
        files.read_jsonl(p)
    files.write_jsonl(p, [{"a": 1}, {"b": 2}])
    assert files.read_jsonl(p) == [{"a": 1}, {"b": 2}]


def test_npy_and_stale_temporaries(tmp_path):
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    files.write_npy(tmp_path / "x.npy", x)
    assert np.array_equal(np.load(tmp_path / "x.npy"), x)
    (tmp_path / ".ckpt.abc.tmp").write_bytes(b"half")
    (tmp_path / "keep.tmp").write_bytes(b"not ours")
    files.remove_stale_temporaries(tmp_path)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["keep.tmp", "x.npy"]


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path / "c"))
    assert files.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MNISTGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert files.cache_dir() == tmp_path / "x" / "mnistgan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert files.cache_dir() == tmp_path / "h" / ".cache" / "mnistgan"
