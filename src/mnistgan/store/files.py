"""Files that must survive a crash or a hostile folder: atomic writes, JSON lines, bounded
reads of regular files, the one rule for writing inside a run folder, the run lock, and the
cache folder.

An atomic write goes to a temporary file in the same folder, is flushed and fsynced, and is
renamed over the target: a crash at any moment leaves either the old content or the new.
A JSON-lines file is appended one fsynced row at a time; a torn last row (a crash while
appending) is ignored on reading. Inside a run folder (which may come from someone else)
every write goes through a directory fd reached without following links (`dir_inside`,
`write_inside`): a link or FIFO where a run file should be is refused, never written
through. This module knows nothing about models, and of a run only its folder.
"""
from __future__ import annotations

import contextlib
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

from ..errors import RunError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True,
                       root: str | os.PathLike | None = None) -> None:
    """Writes data to path so that path holds either its old content or all of data. Given
    root (a run folder), through write_inside: never through a link, and into a real folder
    of the run; there a file is replaced (the run's one writer holds its lock; a caller that
    must not replace checks first, as refuse_existing does)."""
    if root is not None:
        return write_bytes_inside(root, path, data)
    with atomic_file(path, overwrite) as f:
        f.write(data)


def check_outputs(paths: Iterable[str | os.PathLike], force: bool = False) -> None:
    """Fails before any work unless every output can be written: its folder exists, and no
    file is there yet (unless force). The first path is the one the user named (--out)."""
    from ..errors import ConfigError

    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.parent.is_dir():
            raise ConfigError(f"--out {paths[0]}: folder {p.parent} does not exist")
    refuse_existing(paths, force)


def refuse_existing(paths: Iterable[str | os.PathLike], force: bool = False) -> None:
    """Fails before any work if an output would replace an existing file (unless force)."""
    from ..errors import ConfigError

    for p in paths:
        if os.path.lexists(p) and not (os.path.isfile(p) or os.path.islink(p) and not os.path.exists(p)):
            raise ConfigError(f"{p} exists and is not a regular file (a folder, a device or a FIFO); "
                              "nothing was replaced, --force or not")
        if not force and os.path.lexists(p):
            raise ConfigError(f"{p} already exists; nothing was overwritten (--force replaces it)")


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2, sort_keys: bool = False,
               overwrite: bool = True, root: str | os.PathLike | None = None) -> None:
    """One JSON document, written atomically, with a final newline (root: atomic_write_bytes)."""
    atomic_write_bytes(path, (json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n").encode(), overwrite, root)


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


def append_jsonl(path: str | os.PathLike, row: dict[str, Any], root: str | os.PathLike | None = None) -> None:
    """Appends one row and makes it durable before returning. The file is opened without
    following a link and must be a regular file (a link or a FIFO in its place is refused,
    never written through); given root, path's folder must be a real folder inside it
    (dir_inside)."""
    path = Path(path)
    with dir_inside(root if root is not None else path.parent, path.parent) as folder:
        fd = _open_regular(path.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, folder, path)
        with os.fdopen(fd, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]], root: str | os.PathLike | None = None) -> None:
    """Replaces a JSON-lines file with rows, atomically (root: atomic_write_bytes)."""
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode(), root=root)


def loads(raw: bytes | str) -> Any:
    """json.loads, where a document nested too deeply for the parser (a crafted file: a
    RecursionError there) is a ValueError like any other damage."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


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
            rows.append(loads(line))
        except ValueError:
            if i == len(lines) - 1:
                break
            raise RunError(f"{path}: line {i + 1} is not valid JSON") from None
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


def open_inside(root: str | os.PathLike, path: str | os.PathLike) -> int:
    """A read-only fd of `path` when it is a regular file inside `root` once every link is
    resolved; a FIFO (opened non-blocking, to be told apart), a device, a socket, a link
    leading out or a NUL byte is refused (OSError) without a byte read. The caller closes it."""
    real = inside(root, path)
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_NOCTTY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def pread_exactly(fd: int, count: int, offset: int) -> bytes:
    """count bytes of fd from offset (fewer only at its end), read in pieces."""
    parts, done = [], 0
    while done < count and (piece := os.pread(fd, min(count - done, 1 << 24), offset + done)):
        parts.append(piece)
        done += len(piece)
    return b"".join(parts)


def read_inside(root: str | os.PathLike, path: str | os.PathLike, limit: int, tail: bool = False) -> bytes:
    """The bytes of `path` when it is a regular file inside `root` once every link is
    resolved: at most `limit` bytes (tail: its last `limit` bytes, from the start of a line;
    else a larger file is refused). A FIFO, a device, a socket, a link leading out of root or
    a name with a NUL byte is refused without being opened for reading (a FIFO is opened
    non-blocking, to be told apart), so a hostile file can neither block the reader nor feed
    it without end. Raises FileNotFoundError when absent, OSError with the reason otherwise."""
    fd = open_inside(root, path)
    try:
        info = os.fstat(fd)
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


# ------------------------------------------------------------------ writing inside a run
# A run folder may come from someone else (a zip, a shared disk): every file the project
# writes there is created through a directory fd opened without following links, so a link
# planted where a run file or sub-folder should be is refused, never written through.
class RunFileError(RunError):
    """A run folder holds a link or a non-regular file where a run file or folder should be."""


def _refused(path: str | os.PathLike, what: str) -> RunFileError:
    return RunFileError(f"{path} is {what} where the run keeps a regular file or folder; "
                        "nothing was written through it (remove it, or use another run folder)")


def _kind(mode: int) -> str:
    return ("a link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a folder"
            if stat.S_ISDIR(mode) else "a device or socket")


@contextmanager
def dir_inside(root: str | os.PathLike, folder: str | os.PathLike) -> Iterator[int]:
    """An fd of `folder`, a real folder at or below `root` reached without following any
    link past root (root itself may be a link: the user named it). RunFileError when a part
    of the way is a link or not a folder; FileNotFoundError when it does not exist."""
    root, folder = Path(root), Path(folder)
    rel = os.path.relpath(folder, root)
    if rel == ".":
        parts: tuple[str, ...] = ()
    elif rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise _refused(folder, f"outside {root}")
    else:
        parts = Path(rel).parts
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        here = root
        for part in parts:
            here = here / part
            try:
                nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused(here, _kind(os.lstat(part, dir_fd=fd).st_mode)) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _open_regular(name: str, flags: int, dir_fd: int, shown: str | os.PathLike) -> int:
    """name in dir_fd opened without following a link; refused unless a regular file."""
    try:
        fd = os.open(name, flags | _NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0), 0o666, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refused(shown, "a link") from None
        if e.errno in (errno.ENXIO, errno.EISDIR):
            raise _refused(shown, _kind(os.lstat(name, dir_fd=dir_fd).st_mode)) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refused(shown, _kind(mode))
    return fd


def _regular_or_absent(folder: int, path: Path) -> None:
    """Refuses (RunFileError) path's name in the folder fd unless absent or a regular file."""
    try:
        mode = os.lstat(path.name, dir_fd=folder).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise _refused(path, _kind(mode))


def check_run_file(root: str | os.PathLike, path: str | os.PathLike) -> None:
    """Refuses (RunFileError) a link or non-regular file at path, or a link or non-folder on
    the way to it from root; an absent file (or folder) is fine."""
    path = Path(path)
    try:
        with dir_inside(root, path.parent) as folder:
            _regular_or_absent(folder, path)
    except FileNotFoundError:
        return


@contextmanager
def write_inside(root: str | os.PathLike, path: str | os.PathLike, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write at path, a file of the run folder root: written to a temporary
    file beside it and renamed over it (atomic and, when durable, fsynced as atomic_file),
    all through the fd of its folder (dir_inside), so that neither a linked sub-folder nor a
    link or FIFO at path is followed: those are refused (RunFileError) before anything is
    written. Pictures, which a resume draws again, need not be durable."""
    path = Path(path)
    with dir_inside(root, path.parent) as folder:
        _regular_or_absent(folder, path)
        tmp = f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666 & ~_umask(), dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            if isinstance(e, OSError):  # (name the run's file, not an fd)
                raise OSError(e.errno, e.strerror or str(e), str(path)) from None
            raise
        if durable:
            with contextlib.suppress(OSError):  # make the rename durable
                os.fsync(folder)


def write_bytes_inside(root: str | os.PathLike, path: str | os.PathLike, data: bytes) -> None:
    with write_inside(root, path) as f:
        f.write(data)


def unlink_inside(root: str | os.PathLike, path: str | os.PathLike) -> None:
    """Removes the name path (never what a link there points at) through its folder's fd."""
    path = Path(path)
    with dir_inside(root, path.parent) as folder, contextlib.suppress(FileNotFoundError):
        os.unlink(path.name, dir_fd=folder)


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
        # Never through a link, never a FIFO: a .lock planted as a link to someone's file
        # would otherwise be truncated and overwritten with the holder's name.
        with dir_inside(self.path.parent, self.path.parent) as folder:
            fd = _open_regular(self.NAME, os.O_RDWR | os.O_CREAT, folder, self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise RunError(f"{self.path.parent} is in use by another mnistgan process ({holder}); "
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
