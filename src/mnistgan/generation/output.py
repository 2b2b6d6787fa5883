"""Forgeries written for the user: a .npy array (a grey image's channel axis dropped) or a
PNG grid, atomically, never over an existing file unless asked."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import images
from ..errors import ConfigError
from ..store import files


def check_output(out: str | os.PathLike, force: bool = False) -> Path:
    """out as a Path if forgeries can be written there: .png or .npy, in a folder that
    exists, and no file there yet (unless force)."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png or .npy, got {str(out)!r}")
    files.check_outputs([out], force)
    return out


def write(out: str | os.PathLike, forgeries: np.ndarray, nrow: int | None = None, force: bool = False,
          walks: bool = False) -> Path:
    """Writes uint8 forgeries (N x C x 28 x 28; with walks, rows x steps x C x 28 x 28) as a
    .npy array (a grey image's channel axis dropped: images.public) or a .png grid (nrow images a row: default about square, at most 10;
    walks: a row per walk), atomically; an existing file is replaced only with force."""
    out = check_output(out, force)
    try:
        if out.suffix.lower() == ".npy":
            files.write_npy(out, images.public(forgeries), overwrite=force)
        else:
            if walks:
                nrow = nrow or forgeries.shape[1]
            flat = forgeries.reshape(-1, *forgeries.shape[2 if walks else 1:])
            with files.atomic_file(out, overwrite=force) as f:
                images.save_grid(f, flat, nrow=nrow or min(10, int(np.ceil(np.sqrt(len(flat))))), scale=2)
    except FileExistsError:
        raise ConfigError(f"{out} already exists; nothing was overwritten (--force replaces it)") from None
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    return out
