"""Files that must survive a crash: atomic writes, JSON lines, and the cache folder.

An atomic write goes to a temporary file in the same folder, is flushed and fsynced, and is
renamed over the target: a crash at any moment leaves either the old content or the new.
A JSON-lines file is appended one fsynced row at a time; a torn last row (a crash while
appending) is ignored on reading. This module knows nothing about models or runs.
"""
from __future__ import annotations

import errno
import fcntl
import io
import json
import math
import os
import socket
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from .errors import CheckpointError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | os.PathLike, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write that appears at path only once complete (flushed, fsynced,
    renamed, the rename made durable). With overwrite=False an existing path is never
    replaced, even by a process racing this one: FileExistsError instead."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, overwrite)
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


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    exists = FileExistsError(errno.EEXIST, "already exists; nothing was overwritten (--force replaces it)", str(path))
    try:
        os.link(tmp, path)  # fails if path exists: atomic, unlike a check before a rename
    except FileExistsError:
        raise exists from None
    except OSError:          # a filesystem without hard links
        if path.exists():
            raise exists from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Writes data to path so that path holds either its old content or all of data."""
    with atomic_file(path, overwrite) as f:
        f.write(data)


def check_outputs(paths: Iterable[str | os.PathLike], force: bool = False) -> None:
    """Fails before any work unless every output can be written: its folder exists, and no
    file is there yet (unless force). The first path is the one the user named (--out)."""
    from .errors import ConfigError

    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.parent.is_dir():
            raise ConfigError(f"--out {paths[0]}: folder {p.parent} does not exist")
    refuse_existing(paths, force)


def refuse_existing(paths: Iterable[str | os.PathLike], force: bool = False) -> None:
    """Fails before any work if an output would replace an existing file (unless force)."""
    from .errors import ConfigError

    for p in paths:
        if os.path.lexists(p) and not (os.path.isfile(p) or os.path.islink(p) and not os.path.exists(p)):
            raise ConfigError(f"{p} exists and is not a regular file (a folder, a device or a FIFO); "
                              "nothing was replaced, --force or not")
        if not force and os.path.lexists(p):
            raise ConfigError(f"{p} already exists; nothing was overwritten (--force replaces it)")


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2, sort_keys: bool = False,
               overwrite: bool = True) -> None:
    """One JSON document, written atomically, with a final newline."""
    atomic_write_bytes(path, (json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n").encode(), overwrite)


def write_npy(path: str | os.PathLike, array, overwrite: bool = True) -> None:
    """A .npy file, written atomically."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue(), overwrite)


def write_npy_chunks(path: str | os.PathLike, shape: tuple[int, ...], chunks: Iterable, overwrite: bool = True) -> None:
    """A uint8 .npy file of the given shape written chunk by chunk (each a uint8 array whose
    rows continue the last), atomically: memory holds one chunk, not the array."""
    import numpy as np

    with atomic_file(path, overwrite) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
        written = 0
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk, dtype=np.uint8)
            f.write(chunk.tobytes())
            written += chunk.size
        if written != math.prod(shape):
            raise ValueError(f"wrote {written} values for shape {shape}")


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


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """path with every link resolved, when that lies inside root; else OSError (a path that
    leads out, a NUL byte, a symlink loop)."""
    root = Path(root).resolve()
    try:
        real = Path(path).resolve()
    except (ValueError, RuntimeError):  # a NUL byte; a symlink loop
        raise OSError(errno.EINVAL, f"{path}: not a usable file name") from None
    if not real.is_relative_to(root):
        raise OSError(errno.EACCES, f"{path} leads outside {root}")
    return real


def read_inside(root: str | os.PathLike, path: str | os.PathLike, limit: int, tail: bool = False) -> bytes:
    """The bytes of `path` when it is a regular file inside `root` once every link is
    resolved: at most `limit` bytes (tail: its last `limit` bytes, from the start of a line;
    else a larger file is refused). A FIFO, a device, a socket, a link leading out of root or
    a name with a NUL byte is refused without being opened for reading (a FIFO is opened
    non-blocking, to be told apart), so a hostile file can neither block the reader nor feed
    it without end. Raises FileNotFoundError when absent, OSError with the reason otherwise."""
    real = inside(root, path)
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        if info.st_size > limit and not tail:
            raise OSError(errno.EFBIG, f"{path} holds {info.st_size:,} bytes, more than the {limit:,} read")
        cut = info.st_size > limit  # (tail only: the first line read is then a part of one)
        os.lseek(fd, max(0, info.st_size - limit), os.SEEK_SET)
        chunks, left = [], limit + 1  # (a file that grows meanwhile is still read only so far)
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        if not tail:
            raise OSError(errno.EFBIG, f"{path} grew past the {limit:,} bytes read")
        data, cut = data[-limit:], True
    if cut:
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    return data


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


class RunLock:
    """An exclusive lock on a run folder (flock on RUN/.lock), held by the one process that
    writes there: train, resume, and evaluate while it writes the run's metrics. The
    operating system releases it when the process ends, however it ends (SIGKILL too), so a
    crash never leaves a stale lock. The file stays; it names the last holder."""

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / self.NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise CheckpointError(f"{self.path.parent} is in use by another mnistgan process ({holder}); "
                                  "wait for it to finish or stop it (nothing was changed)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:500]}\n".encode(), 0)
        self.fd = fd
        return self

    @classmethod
    def held(cls, folder: str | os.PathLike) -> bool:
        """Whether a process holds the folder's lock now (without taking or changing it)."""
        try:  # (non-blocking and regular only: a FIFO named .lock must not hold up a reader)
            fd = os.open(Path(folder) / cls.NAME, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
