"""Pretrained models inside the package: one model folder (store/modelfolder.py) per name in
this package's folder, package data of the wheel. `pretrained:NAME` is accepted wherever a run
is (`sample`, `evaluate`, `export`, `mnistgan.load`); `mnistgan zoo` lists them and `serve`
shows them when it has no runs of yours. Each folder's README.md is its card: what trained it
(command, budget, machine kind, date) and what `mnistgan evaluate` measured on it.

How the zoo is made: `python benchmarks/build_zoo.py` (trains, exports, evaluates, writes the
folders here).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import RunError

PREFIX = "pretrained:"
HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """The zoo's model names, sorted."""
    from ..store import modelfolder

    return sorted(p.name for p in HERE.iterdir() if modelfolder.is_model_folder(p))


def folder(name: str) -> Path:
    """The model folder of a zoo name; RunError naming the zoo's names for any other."""
    if name not in names():
        raise RunError(f"no pretrained model {name!r}; the zoo has: {', '.join(names()) or 'none'} "
                       "(mnistgan zoo lists them)")
    return HERE / name


def resolve(run_or_model: str | os.PathLike) -> Path:
    """A path as given, or the zoo folder that "pretrained:NAME" names."""
    text = os.fspath(run_or_model)
    return folder(text[len(PREFIX):]) if text.startswith(PREFIX) else Path(run_or_model)


def is_pretrained(run_or_model: str | os.PathLike) -> bool:
    return os.fspath(run_or_model).startswith(PREFIX)


def entries() -> list[dict[str, Any]]:
    """One row per zoo model: its name, preset, dataset, whether it takes a class, and the
    card's figures (metric name -> value) with the command and machine that made them."""
    from ..store import modelfolder

    rows = []
    for name in names():
        meta = modelfolder.metadata(HERE / name)
        config = meta["config"]
        rows.append({"name": name, "preset": config["preset"], "dataset": config["dataset"],
                     "conditional": bool(config["conditional"]), **meta.get("card", {})})
    return rows
