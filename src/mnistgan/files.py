"""Files that must survive a crash: atomic writes, JSON lines, and the cache folder.

An atomic write goes to a temporary file in the same folder, is flushed and fsynced, and is
renamed over the target: a crash at any moment leaves either the old content or the new.
A JSON-lines file is appended one fsynced row at a time; a torn last row (a crash while
appending) is ignored on reading. This module knows nothing about models or runs.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .errors import CheckpointError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes data to path so that path holds either its old content or all of data."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename is still atomic


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2, sort_keys: bool = False) -> None:
    """One JSON document, written atomically, with a final newline."""
    atomic_write_bytes(path, (json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n").encode())


def write_npy(path: str | os.PathLike, array) -> None:
    """A .npy file, written atomically."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def append_jsonl(path: str | os.PathLike, row: dict[str, Any]) -> None:
    """Appends one row and makes it durable before returning."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Replaces a JSON-lines file with rows, atomically."""
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file ([] when it does not exist). A torn last line (a crash
    while appending) is ignored; damage anywhere else is an error naming the line."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                break
            raise CheckpointError(f"{path}: line {i + 1} is not valid JSON") from None
    return rows


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Deletes the temporary files that interrupted atomic writes left in folder."""
    for stale in Path(folder).glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def cache_dir() -> Path:
    """$MNISTGAN_CACHE, else $XDG_CACHE_HOME/mnistgan, else ~/.cache/mnistgan."""
    if os.environ.get("MNISTGAN_CACHE"):
        return Path(os.environ["MNISTGAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mnistgan"
