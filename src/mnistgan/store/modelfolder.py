"""A trained model as a folder of three files, the Hugging Face Hub's convention:

    config.json        the run's settings, for people and the Hub's page (library_name: mnistgan)
    model.safetensors  G as sampled (the EMA weights when the run kept them, batch-norm
                       statistics recomputed for them) and D, with the same settings in its
                       header: a file in the checkpoint format (checkpoint.py), read with
                       every check a checkpoint gets, never unpickled
    README.md          the model card: YAML metadata (library, tags, datasets, metrics) and text

What `mnistgan export RUN --format hub` writes, what `huggingface-cli upload` takes as it is,
and what the package's own zoo ships (mnistgan.zoo). `sample`, `evaluate`, `export`, `serve`
and `mnistgan.load` read such a folder wherever they take a run. The weights' header is what
is loaded; config.json is its copy for readers (editing it changes nothing).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError
from . import checkpoint as ckpt
from . import files

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
KIND = "mnistgan-model"  # the weights' metadata says what the file is: a model folder's, not a run's checkpoint
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def is_model_folder(path: str | os.PathLike) -> bool:
    """A folder holding model.safetensors and no checkpoints/ (a run folder has those). Any
    kind of entry under that name counts (a link, a FIFO): the reader then refuses it by name,
    rather than the folder being taken for a run without checkpoints."""
    p = Path(path)
    return p.is_dir() and os.path.lexists(p / WEIGHTS) and not os.path.lexists(p / "checkpoints")


def without_ema(layout: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """The layout (models.layout: {tensor name: shape} of a config's networks) a model folder
    of that config holds: G.* and D.* (its G is the sampled one, so there is no G_ema.*)."""
    return lambda config: {k: v for k, v in layout(config).items() if not k.startswith(ckpt.G_EMA + ".")}


def shareable(config) -> dict[str, Any]:
    """The config as a model folder keeps it: the places of the machine it was trained on
    (its run folder, its data folder) reset to the defaults, so nothing local travels."""
    from ..config import TrainConfig

    values = config.to_dict()
    values.update(out=TrainConfig.out, data_dir=None)
    return values


def check_out(out: Path, force: bool = False) -> list[Path]:
    """The folder's three paths, once it is known they can be written: out is a folder (or
    will be made inside an existing one) and holds none of them yet (unless force)."""
    from ..errors import ConfigError

    paths = [out / CONFIG, out / WEIGHTS, out / CARD]
    if os.path.lexists(out) and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder (a model is a folder of three files)")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    files.refuse_existing(paths, force)
    return paths


def save(out: str | os.PathLike, G: torch.nn.Module, D: torch.nn.Module, config, card: str,
         info: dict[str, Any] | None = None, dtype: str = "float32", force: bool = False) -> list[Path]:
    """Writes the folder (each file atomically; existing files refused unless force) and
    returns its three paths. G as it samples (eval mode, statistics recomputed), D as
    trained; their floating tensors stored as `dtype` (float16 halves the size)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    paths = check_out(out, force)
    out.mkdir(exist_ok=True)
    tensors = {name: (t.to(DTYPES[dtype]) if t.is_floating_point() else t)
               for name, t in {**ckpt.module_tensors(ckpt.G, G), **ckpt.module_tensors(ckpt.D, D)}.items()}
    values = shareable(config)
    meta = {"config": values, "kind": KIND, "dtype": dtype, **(info or {})}
    ckpt.save(out / WEIGHTS, tensors, meta)
    readable = {"library_name": "mnistgan", "mnistgan_format": KIND, "dtype": dtype, **values}
    files.atomic_write_bytes(out / CONFIG, (json.dumps(readable, indent=2, sort_keys=True) + "\n").encode())
    files.atomic_write_bytes(out / CARD, card.encode())
    return paths


def load(folder: str | os.PathLike, layout: Callable[[Any], dict]) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """(weights path, tensors in float32, metadata) of a model folder; its header checked
    against the networks its config builds (layout: models.layout) before anything is allocated."""
    path = Path(folder) / WEIGHTS
    if ckpt.read_header(path).get("kind") != KIND:  # (first: a run's checkpoint fails the layout too, less clearly)
        raise CheckpointError(f"{path}: not a model folder's weights (a run's checkpoint belongs in RUN/checkpoints/)")
    tensors, meta = ckpt.load(path, without_ema(layout))
    return path, {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}, meta


def metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The weights' metadata (config, kind, dtype, and what the writer added: the card's
    figures for the zoo), without reading the tensors."""
    return ckpt.read_header(Path(folder) / WEIGHTS)
