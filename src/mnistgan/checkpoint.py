"""Checkpoints: one safetensors file each, tensors as tensors and everything else as JSON in
the file's header metadata. Loading never unpickles, so a checkpoint cannot execute code.

Writes are atomic (files.atomic_write_bytes): a crash at any moment leaves either the old
set of checkpoints or the new one.
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import CheckpointError
from .files import atomic_write_bytes, remove_stale_temporaries

FORMAT = "mnistgan-checkpoint"
VERSION = 1
NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")
MAX_HEADER = 100_000_000  # bytes of JSON header a checkpoint may have


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Writes one checkpoint file atomically."""
    from safetensors.torch import save as st_save

    path = Path(path)
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta, sort_keys=True)}
    try:
        atomic_write_bytes(path, st_save(cpu, metadata=header))
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    return path


def _parse_json(raw: bytes | str, path: Path, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: crafted, deeply nested JSON
        raise CheckpointError(f"{path}: not a checkpoint ({what} is not valid JSON)") from None


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The validated JSON metadata of a checkpoint, without loading its tensors. Any damage,
    whatever its kind, is a CheckpointError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a checkpoint ({len(head)} bytes; truncated or empty)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise CheckpointError(f"{path}: not a checkpoint (not a safetensors file)")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    header = _parse_json(raw, path, "its header")
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a checkpoint (no safetensors header with metadata)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mnistgan checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != str(VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')!r}; "
                              f"this mnistgan reads version {VERSION}")
    if not isinstance(meta.get("meta"), str):
        raise CheckpointError(f"{path}: checkpoint metadata is corrupt (no 'meta' text)")
    values = _parse_json(meta["meta"], path, "its metadata")
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is corrupt (not a JSON object)")
    return values


def load(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors on CPU, metadata) of a checkpoint; any damage is a CheckpointError naming it."""
    from safetensors.torch import load as st_load

    path = Path(path)
    meta = read_header(path)
    try:
        tensors = st_load(path.read_bytes())
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as e:  # the parser's own errors, and a Rust panic (a BaseException)
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from None
    return tensors, meta


def config_of(path: str | os.PathLike, meta: dict[str, Any]):
    """The validated TrainConfig a checkpoint's metadata holds."""
    from .config import TrainConfig
    from .errors import ConfigError

    values = meta.get("config")
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: its config is missing or not a JSON object")
    try:
        return TrainConfig.from_dict(values)
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its config is invalid ({e})") from None


def filename(images_seen: int) -> str:
    return f"ckpt-{images_seen:012d}.safetensors"


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoint files in folder, oldest first (by images seen)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NAME.match(p.name))


def newest_loadable(run: str | os.PathLike, restore: Callable[[Path, dict, dict], Any] | None = None,
                    on_skip: Callable[[str], None] | None = None) -> tuple[Path, Any]:
    """The one choice of checkpoint, for resuming, sampling, exporting, evaluating and the
    page: the newest of the run's checkpoints that loads (and, given `restore`, that
    restore(path, tensors, meta) accepts). Returns (path, what restore made of it; default
    (tensors, meta)). A damaged one is skipped for the one before it, never deleted;
    on_skip(message) hears of each."""
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} does not exist")
    found = list_checkpoints(run / "checkpoints")
    if not found:
        raise CheckpointError(f"{run} has no checkpoint to resume from or sample (no checkpoints/ckpt-*.safetensors)")
    errors = []
    for path in reversed(found):
        try:
            tensors, meta = load(path)
            return path, (restore(path, tensors, meta) if restore else (tensors, meta))
        except CheckpointError as e:
            errors.append(str(e))
            if on_skip is not None:
                on_skip(f"warning: skipping damaged checkpoint: {e}")
    raise CheckpointError("no checkpoint of this run can be loaded:\n  " + "\n  ".join(errors))


def open_checkpoint(run_or_checkpoint: str | os.PathLike) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """(path, tensors, metadata): a checkpoint file as given, or a run folder's newest
    loadable one (newest_loadable)."""
    path = Path(run_or_checkpoint)
    if path.is_file():
        return (path, *load(path))
    path, (tensors, meta) = newest_loadable(path)
    return path, tensors, meta


def prune(folder: str | os.PathLike, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints, and temporary files that a killed
    write left behind (only this run's one process writes here)."""
    folder = Path(folder)
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    remove_stale_temporaries(folder)


# --------------------------------------------------------------- module and optimiser state
# The networks' tensors in a checkpoint: G.*, D.* and, when the run keeps an EMA of G, G_ema.*.
G, D, G_EMA = "G", "D", "G_ema"


def network_tensors(G_: torch.nn.Module, D_: torch.nn.Module, G_ema: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    """The networks' tensors under their checkpoint names."""
    tensors = {**module_tensors(G, G_), **module_tensors(D, D_)}
    if G_ema is not None:
        tensors.update(module_tensors(G_EMA, G_ema))
    return tensors


def sampled_generator(tensors: dict[str, torch.Tensor]) -> str:
    """Which generator pictures and samples come from: the EMA generator when the run kept one."""
    return G_EMA if any(k.startswith(G_EMA + ".") for k in tensors) else G


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor], path) -> None:
    """Loads module weights from tensors[prefix.*], checking names and shapes."""
    own = module.state_dict()
    found = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing, extra = sorted(set(own) - set(found)), sorted(set(found) - set(own))
    if missing or extra:
        raise CheckpointError(f"{path}: {prefix} does not match this architecture "
                              f"(missing {missing[:4]}, unexpected {extra[:4]})")
    for k, v in own.items():
        if found[k].shape != v.shape:
            raise CheckpointError(f"{path}: {prefix}.{k} has shape {tuple(found[k].shape)}; "
                                  f"this architecture needs {tuple(v.shape)}")
    module.load_state_dict(found)


def optimizer_state(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Splits an optimiser's state dict into tensors and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   info: dict, path) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in info.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in info["param_groups"]]
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path}: {prefix} optimiser state does not fit this model ({e})") from None
    params = [p for group in opt.param_groups for p in group["params"]]
    keys = [frozenset(st) for st in opt.state.values()]
    if opt.state and (len(opt.state) != len(params) or len(set(keys)) != 1):
        raise CheckpointError(f"{path}: {prefix} optimiser state is incomplete (some parameters lack "
                              f"{', '.join(sorted(set().union(*keys) - set.intersection(*map(set, keys))))})")
    for p, st in opt.state.items():
        for key, value in st.items():
            if torch.is_tensor(value) and value.dim() and value.shape != p.shape:
                raise CheckpointError(f"{path}: {prefix} optimiser state {key} has shape {tuple(value.shape)}; "
                                      f"its parameter has {tuple(p.shape)}")
    match_layouts(opt)


def match_layouts(opt: torch.optim.Optimizer) -> None:
    """Gives each per-parameter state tensor its parameter's memory layout. Checkpoints hold
    contiguous tensors, and the fused Adam kernel walks parameter, gradient and moments as
    flat memory: a channels-last weight with contiguous moments would be updated with the
    wrong elements, silently."""
    for p, st in opt.state.items():
        for key, value in st.items():
            if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
