"""Checkpoints: one safetensors file each, tensors as tensors and everything else as JSON in
the file's header metadata. Loading never unpickles, so a checkpoint cannot execute code.

Writes are atomic (files.atomic_write_bytes): a crash at any moment leaves either the old
set of checkpoints or the new one.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError, ConfigError, RunError
from . import files
from .files import atomic_write_bytes, remove_stale_temporaries

FORMAT = "mnistgan-checkpoint"
VERSION = 1
NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")
MAX_HEADER = 100_000_000  # bytes of JSON header a checkpoint may have


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
         root: str | os.PathLike | None = None) -> Path:
    """Writes one checkpoint file atomically (given root, the run folder: never through a
    link, files.write_inside)."""
    from safetensors.torch import save as st_save

    path = Path(path)
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta, sort_keys=True)}
    try:
        atomic_write_bytes(path, st_save(cpu, metadata=header), root=root)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    return path


def _parse_json(raw: bytes | str, path: Path, what: str) -> Any:
    try:
        return files.loads(raw)
    except ValueError:  # (also crafted, deeply nested JSON)
        raise CheckpointError(f"{path}: not a checkpoint ({what} is not valid JSON)") from None


# Bytes an element of each safetensors dtype takes (the dtypes a checkpoint may hold).
ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
SLACK = 64 << 20  # bytes a checkpoint may hold beyond 4 copies of its networks (RNG states, small tensors)


def _entries(header: dict, path: Path) -> tuple[dict[str, dict], int]:
    """The header's tensor entries, each checked (dtype, shape, offsets that fit its size),
    and the bytes of tensor data they declare together (contiguous, from 0, no gaps)."""
    entries, spans = {}, []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(e, dict) and isinstance(e.get("dtype"), str) and e["dtype"] in ITEM_BYTES and isinstance(e.get("shape"), list)
              and all(type(d) is int and 0 <= d < 2**40 for d in e["shape"]) and isinstance(e.get("data_offsets"), list)
              and len(e["data_offsets"]) == 2 and all(type(o) is int and o >= 0 for o in e["data_offsets"]))
        if not ok or e["data_offsets"][1] - e["data_offsets"][0] != math.prod(e["shape"]) * ITEM_BYTES[e["dtype"]]:
            raise CheckpointError(f"{path}: not a checkpoint (tensor {str(name)[:80]!r} is described wrongly)")
        entries[name] = e
        spans.append(tuple(e["data_offsets"]))
    spans.sort()
    if any(a[1] != b[0] for a, b in zip(spans, spans[1:])) or (spans and spans[0][0] != 0):
        raise CheckpointError(f"{path}: not a checkpoint (its tensors' data overlap or leave gaps)")
    return entries, (spans[-1][1] if spans else 0)


def _read(path: Path, root: str | os.PathLike | None, layout: Callable | None, tensors: bool):
    """(meta, file bytes or None): the header read and checked first (size declared against
    the file's size, the networks' shapes against layout(config)), the whole file only then,
    and only when `tensors`. The file is read as every run file is (files.open_inside)."""
    try:
        fd = files.open_inside(path.parent if root is None else root, path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        size = os.fstat(fd).st_size
        head = files.pread_exactly(fd, 8, 0)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a checkpoint ({len(head)} bytes; truncated or empty)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise CheckpointError(f"{path}: not a checkpoint (not a safetensors file, or truncated)")
        header = _parse_json(files.pread_exactly(fd, n, 8), path, "its header")
        meta = _metadata(header, path)
        entries, data_bytes = _entries(header, path)
        if 8 + n + data_bytes != size:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint (its header declares "
                                  f"{8 + n + data_bytes:,} bytes, the file holds {size:,})")
        if layout is not None:
            _check_layout(path, entries, data_bytes, layout, meta)
        return meta, (files.pread_exactly(fd, size, 0) if tensors else None)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _metadata(header: Any, path: Path) -> dict[str, Any]:
    """The checkpoint's own JSON metadata from a parsed safetensors header."""
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


def _check_layout(path: Path, entries: dict[str, dict], data_bytes: int, layout: Callable, meta: dict) -> None:
    """The networks' tensors the header lists against those its config builds (layout(config):
    {name: shape}, computed without allocating), and the data's size against theirs."""
    config = config_of(path, meta)
    try:
        wanted = layout(config)
    except ConfigError as e:  # (e.g. networks past the size bound)
        raise CheckpointError(f"{path}: its config cannot be built ({e})") from None
    nets = (G + ".", D + ".", G_EMA + ".")
    held = {k: tuple(e["shape"]) for k, e in entries.items() if k.startswith(nets)}
    if held != wanted:
        odd = sorted(set(held) ^ set(wanted)) or sorted(k for k in held if held[k] != wanted[k])
        raise CheckpointError(f"{path}: its networks do not match its config ({config.model}, channels "
                              f"{config.channels}): {len(odd)} tensor(s) differ, e.g. {odd[0]}")
    allowed = 4 * 4 * sum(math.prod(s) for s in wanted.values()) + SLACK  # (4 fp32 copies: Adam's moments are 2)
    if data_bytes > allowed:
        raise CheckpointError(f"{path}: holds {data_bytes:,} bytes of tensors; its networks need at most {allowed:,}")


def read_header(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The validated JSON metadata of a checkpoint, without loading its tensors. Any damage,
    whatever its kind, is a CheckpointError naming the file."""
    return _read(Path(path), root, None, tensors=False)[0]


def load(path: str | os.PathLike, layout: Callable | None = None,
         root: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors on CPU, metadata) of a checkpoint; any damage is a CheckpointError naming it.
    Read only as a regular file inside root (default: its folder), its size checked against
    what its header declares before the tensors are read; given layout (models.layout), its
    config's networks are sized and their shapes compared first, so that nothing is
    allocated for a file that does not fit them."""
    from safetensors.torch import load as st_load

    path = Path(path)
    meta, blob = _read(path, root, layout, tensors=True)
    try:
        tensors = st_load(blob)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as e:  # the parser's own errors, and a Rust panic (a BaseException)
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from None
    return tensors, meta


def config_of(path: str | os.PathLike, meta: dict[str, Any]):
    """The validated TrainConfig a checkpoint's metadata holds."""
    from ..config import TrainConfig

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
                    on_skip: Callable[[str], None] | None = None, layout: Callable | None = None) -> tuple[Path, Any]:
    """The one choice of checkpoint, for resuming, sampling, exporting, evaluating and the
    page: the newest of the run's checkpoints that loads (load(path, layout), read as a
    file inside the run) and, given `restore`, that restore(path, tensors, meta) accepts.
    Returns (path, what restore made of it; default (tensors, meta)). A damaged one is
    skipped for the one before it, never deleted; on_skip(message) hears of each."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"run folder {run} does not exist")
    found = list_checkpoints(run / "checkpoints")
    if not found:
        raise CheckpointError(f"{run} has no checkpoint to resume from or sample (no checkpoints/ckpt-*.safetensors)")
    errors = []
    for path in reversed(found):
        try:
            tensors, meta = load(path, layout, root=run)
            return path, (restore(path, tensors, meta) if restore else (tensors, meta))
        except RunError as e:  # (a damaged checkpoint, or a link or FIFO in its place)
            errors.append(str(e))
            if on_skip is not None:
                on_skip(f"warning: skipping damaged checkpoint: {e}")
    raise CheckpointError("no checkpoint of this run can be loaded:\n  " + "\n  ".join(errors))


def open_checkpoint(run_or_checkpoint: str | os.PathLike, layout: Callable | None = None,
                    restore: Callable[[Path, dict, dict], Any] | None = None) -> tuple[Path, Any]:
    """(path, restore(path, tensors, meta), default (tensors, metadata)): a checkpoint file
    as given, or a run folder's newest loadable one (newest_loadable)."""
    path = Path(run_or_checkpoint)
    if path.is_file():
        tensors, meta = load(path, layout)
        return path, (restore(path, tensors, meta) if restore else (tensors, meta))
    return newest_loadable(path, restore, layout=layout)


def prune(folder: str | os.PathLike, keep: int, root: str | os.PathLike | None = None) -> None:
    """Deletes all but the newest `keep` checkpoints, and temporary files that a killed
    write left behind (only this run's one process writes here). Names are removed through
    the folder's fd, checked to be a real folder inside root (files.dir_inside): a link is
    removed itself, never what it leads to, and nothing outside the run is touched."""
    folder = Path(folder)
    root = folder if root is None else root
    for old in list_checkpoints(folder)[:-keep]:
        files.unlink_inside(root, old)
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
