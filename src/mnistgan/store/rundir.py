"""A run folder: its layout, where one may be made, and its log.

    RUN/config.json          the full resolved config (rewritten on resume with what changed)
    RUN/resumes.jsonl        one row per resume: the checkpoint it continued from, what changed
    RUN/log.jsonl            one row per epoch (training time, losses, D(x), D(G(z)), fid, ...)
    RUN/samples/NNN.png      the seed's strip of 10 new forgeries (epoch 1, every 10th, last)
    RUN/samples/grid-NNN.png 10 x 10 forgeries of one fixed noise batch, every epoch
    RUN/progress.gif         the fixed-noise grid over the epochs
    RUN/progress.png         one row per strip epoch: the forging process on one sheet
    RUN/losses.png           D and G loss, D(x) and D(G(z)) over training
    RUN/real_vs_fake.png     real digits beside forgeries
    RUN/checkpoints/         ckpt-<images seen>.safetensors, the last K
    RUN/tensorboard/         scalars, grids and hparams for TensorBoard (--tensorboard)
    RUN/.lock                held while a process trains or writes into the run

callbacks.RunFolder fills it as the run trains; runs.py makes it and resumes it.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from . import files
from ..errors import ConfigError
from .files import RunLock

CONFIG, LOG, RESUMES, METRICS = "config.json", "log.jsonl", "resumes.jsonl", "metrics.json"
SAMPLES, CHECKPOINTS, TENSORBOARD = "samples", "checkpoints", "tensorboard"


def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG).is_file()


def free_run_dir(base: str | os.PathLike) -> Path:
    """base if it holds no run, else base-2, base-3, ... (for the default --out)."""
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists() and _contents(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _contents(path: Path) -> list[Path]:
    """What a folder holds besides its lock file (a `.lock` that is a link, a FIFO or a
    folder is not a lock file: it counts as content)."""
    return [p for p in path.iterdir() if not (p.name == RunLock.NAME and p.is_file() and not p.is_symlink())]


def check_run_dir(path: Path) -> None:
    """Refuses an --out that holds anything: nothing is ever overwritten."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder")
    if path.exists() and _contents(path):
        what = "a run" if is_run(path) else "files"
        raise ConfigError(f"--out {path} already holds {what}; choose another --out "
                          "(nothing was changed)")


def make(path: Path) -> RunLock:
    """Creates the run folder, takes its lock, checks again that it holds nothing (another
    process may have started a run there meanwhile) and makes its sub-folders. Returns the
    lock, held."""
    check_run_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(path).acquire()
    except OSError as e:
        raise ConfigError(f"cannot write to --out {path}: {e.strerror or e}") from None
    try:
        check_run_dir(path)
        (path / SAMPLES).mkdir()
        (path / CHECKPOINTS).mkdir()
    except OSError as e:
        lock.release()
        raise ConfigError(f"cannot write to --out {path}: {e.strerror or e}") from None
    except BaseException:
        lock.release()
        raise
    return lock


def remove_unstarted(path: Path, lock: RunLock) -> None:
    """Removes what a run that failed before its first checkpoint made, so that the same
    command can simply be run again; the folder itself only if it is then empty."""
    for item in _contents(path):  # (a link is removed itself, never what it leads to)
        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink(missing_ok=True)
    lock.path.unlink(missing_ok=True)
    lock.release()
    with contextlib.suppress(OSError):
        path.rmdir()


# What a run writes at its top level (pictures are listed where they are drawn): each must be
# a regular file or absent, and SAMPLES, CHECKPOINTS and TENSORBOARD real folders inside the run.
FILES = (CONFIG, LOG, RESUMES, METRICS, "novelty.png", "progress.gif", "progress.png", "losses.png",
         "real_vs_fake.png")


def check_layout(run: Path) -> None:
    """Refuses (files.RunFileError, one line naming it) a run folder where a file the run
    writes is a link, a FIFO or a folder, or where samples/ or checkpoints/ is not a real
    folder inside the run: checked before a resume or an evaluation writes anything."""
    files.check_run_file(run, run / RunLock.NAME)
    for name in FILES:
        files.check_run_file(run, run / name)
    for sub in (SAMPLES, CHECKPOINTS, TENSORBOARD):
        try:
            with files.dir_inside(run, run / sub):
                pass
        except FileNotFoundError:
            pass


def writing(run: Path, rel: str, durable: bool = True):
    """A binary file to write as the run's file rel (files.write_inside)."""
    return files.write_inside(run, run / rel, durable)


def write_config(run: Path, config: dict[str, Any]) -> None:
    files.write_json(run / CONFIG, config, sort_keys=True, root=run)


GRID = re.compile(r"grid-([0-9]{1,9})\.png")  # an epoch's grid; any other name is not one


def grids(run: Path, usable: Callable[[Path], bool] | None = None) -> list[tuple[int, Path]]:
    """(epoch, path) of the run's fixed-noise grids (only grid-<epoch>.png names) that
    usable(path) accepts (default: regular files, not links), by epoch as a number
    (grid-1000 after grid-999, not before grid-101)."""
    usable = usable or (lambda p: p.is_file() and not p.is_symlink())
    found = [(int(m.group(1)), p) for p in (Path(run) / SAMPLES).glob("grid-*.png")
             if (m := GRID.fullmatch(p.name)) and usable(p)]
    return sorted(found)


METRICS_LIMIT = 4 << 20  # bytes of metrics.json a reader takes


def read_metrics(run: str | os.PathLike) -> dict[str, Any] | None:
    """The run's metrics.json as a dict, read as every run file is (files.read_inside: a
    regular file inside the run, at most METRICS_LIMIT bytes); None when it is absent,
    refused, damaged or not a JSON object. Readers check the shape of what they take."""
    try:
        result = files.loads(files.read_inside(run, Path(run) / METRICS, METRICS_LIMIT))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def read_log(run: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a run's log.jsonl (a torn last line, from a crash while appending, is ignored)."""
    return files.read_jsonl(Path(run) / LOG)


def append_row(run: Path, row: dict[str, Any]) -> None:
    files.append_jsonl(run / LOG, row, root=run)


def keep_rows_before(run: Path, images_seen: int, finished: bool) -> list[dict[str, Any]]:
    """Drops the log rows past a checkpoint at images_seen (work about to be redone; a row of a
    stop inside an epoch at the checkpoint too, unless the run is finished there); returns the
    rows kept."""
    rows = [r for r in read_log(run) if r["images_seen"] < images_seen or
            (r["images_seen"] == images_seen and not (r["partial"] and not finished))]
    files.write_jsonl(run / LOG, rows, root=run)
    return rows


def record_resume(run: Path, checkpoint: str, images_seen: int, changes: dict[str, Any]) -> None:
    files.append_jsonl(run / RESUMES, root=run, row={"checkpoint": checkpoint, "images_seen": images_seen,
                                       "changes": {k: changes[k] for k in sorted(changes)}})
