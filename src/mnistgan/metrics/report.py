"""What an evaluation leaves: metrics.json, the novelty figure, and the table a person reads
(each number beside the calibration references shipped with the feature network)."""
from __future__ import annotations

import os
from pathlib import Path

from ..store import files
from .. import images
from . import Context, calibration, flatten


def outputs(out: str | os.PathLike, metrics: list[str] | None = None) -> list[Path]:
    """The files an evaluation writes: out, and beside it, when memorization runs, the
    novelty figure (novelty.png beside metrics.json, else NAME-novelty.png beside NAME.json)."""
    out = Path(out)
    figure = out.with_name("novelty.png" if out.name == "metrics.json" else f"{out.stem}-novelty.png")
    return [out] + ([figure] if metrics is None or "memorization" in metrics else [])


def write(result: dict, ctx: Context, out: str | os.PathLike, force: bool = False,
          run: str | os.PathLike | None = None) -> list[Path]:
    """Writes result as JSON to out and, when the memorization metric ran, novelty.png beside
    it; returns the paths written. Existing files are replaced only with force. Given run
    (out is inside that run folder, written under its lock): never through a link there
    (files.write_inside)."""
    out = Path(out)
    paths = outputs(out, list(result["metrics"]))
    files.refuse_existing(paths, force)
    files.write_json(out, result, overwrite=force, root=run)
    if "nearest" in ctx.extras:
        with (files.write_inside(run, paths[1]) if run is not None else files.atomic_file(paths[1], overwrite=force)) as f:
            images.save_novelty(f, ctx.images, ctx.train[0], *ctx.extras["nearest"])
    return paths


def table(result: dict, calib: dict | None = None) -> str:
    """One line a number, with the calibration references (default: the dataset's) beside it."""
    calib = calibration(result["dataset"]) if calib is None else calib
    net = result["feature_network"]
    lines = [f"{result['n']} images vs {result['dataset']} test split; features: {net['name']} "
             f"(sha256 {net['sha256'][:12]}, test accuracy {net['test_accuracy']:.4f})"]
    refs = [(name, flatten(r)) for name, r in calib.get("references", {}).items()]
    header = f"{'metric':<26}{'value':>12}" + "".join(f"{name:>18}" for name, _ in refs)
    lines += [header, "-" * len(header)]
    for key, value in flatten(result).items():
        row = f"{key:<26}{value:>12.4g}"
        for _, ref in refs:
            row += f"{ref[key]:>18.4g}" if key in ref else f"{'':>18}"
        lines.append(row)
    return "\n".join(lines)
