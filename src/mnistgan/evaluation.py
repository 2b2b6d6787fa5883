"""Evaluating a run or a file of images end to end: draw the forgeries (a run), measure them
(metrics), and write metrics.json and the novelty figure, never over existing files unless
asked. Under torchrun each process draws and measures its share of a run's forgeries and
rank 0 gathers them: the same numbers as one process. The CLI and the API call this."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .system import distributed
from .store import files, rundir
from . import generation
from .system import threads as threads_
from .errors import MnistganError
from .metrics import MAX_IMAGES, Reference, evaluate, read_images, report


@dataclass
class Evaluation:
    result: dict          # metrics.evaluate's result (what metrics.json holds)
    written: list[Path]   # metrics.json, and the novelty figure when memorization ran


def check_count(n: int) -> None:
    if n > MAX_IMAGES:
        raise MnistganError(f"--n must be at most {MAX_IMAGES:,} for an evaluation, got {n:,}")


def _outputs(out: Path, metrics: list[str] | None, force: bool) -> Path:
    files.check_outputs(report.outputs(out, metrics), force)  # before any work
    return out


def images_file(path: str, out: str | None = None, metrics: list[str] | None = None, dataset: str | None = None,
                data_dir=None, invert: str | None = None, device: str = "cpu", force: bool = False,
                progress=None, threads: str | int = "auto") -> Evaluation:
    """Scores a .npy of N x 28 x 28 (or colour N x 3 x 28 x 28) images (uint8, or floats in [0, 1]) into out (default
    metrics.json). threads: the CPU thread count, or auto (threads.py)."""
    target = _outputs(Path(out or "metrics.json"), metrics, force)
    imgs = read_images(path)
    with threads_.governed(threads):
        result, ctx = evaluate(imgs, dataset or "mnist", metrics, data_dir, progress=progress, device=device,
                               invert=invert or "auto")
    return Evaluation(result, report.write(result, ctx, target, force))


FORGERIES = 10000          # forgeries an evaluation of a run draws by default
STACKED_FORGERIES = 26000  # ... of a Stacked-MNIST run: the count the field reads its modes at


def run(path: str, n: int | None = None, seed: int = 0, out: str | None = None, metrics: list[str] | None = None,
        dataset: str | None = None, data_dir=None, invert: str | None = None, device: str = "cpu",
        force: bool = False, progress=None, threads: str | int = "auto") -> Evaluation | None:
    """Draws n forgeries (default FORGERIES; STACKED_FORGERIES for Stacked-MNIST) from the
    run's newest checkpoint (or a model folder, or pretrained:NAME) and scores them into out
    (default RUN/metrics.json, written under the run's lock; for a model: metrics.json here). Under torchrun every process calls this; rank 0 returns the Evaluation,
    the others None. threads: the CPU thread count, or auto (threads.py)."""
    if n is not None:
        check_count(n)
    with threads_.governed(threads):
        return _run(path, n, seed, out, metrics, dataset, data_dir, invert, device, force, progress)


def _run(path, n, seed, out, metrics, dataset, data_dir, invert, device, force, progress) -> Evaluation | None:
    from . import zoo
    from .store import modelfolder

    place = distributed.current()
    model = zoo.resolve(path)
    own = model.is_dir() and not modelfolder.is_model_folder(model)  # a run folder keeps its metrics.json
    target = Path(out or (model / "metrics.json" if own else "metrics.json"))
    in_run = rundir.is_run(target.parent)  # a run folder: written under its lock, never through a link
    if in_run:
        rundir.check_layout(target.parent)
    _outputs(target, metrics, force)  # every process checks, so that all stop together
    if place.active:
        device = distributed.device_for(device, place)
    G, config = generation.load_generator(path, device)  # the one read of the checkpoint
    dataset = dataset or config.dataset
    if n is None:  # (the default depends on the dataset, known once the checkpoint is read)
        n = STACKED_FORGERIES if dataset == "stacked-mnist" else FORGERIES
    invert = invert or (config.invert if dataset == config.dataset else "auto")
    data_dir = data_dir or config.data_dir
    fake = None
    if place.active:
        net = Reference(dataset, data_dir, device=device, invert=invert, channels=config.channels).net

        def measured(share: slice):
            mine = generation.forge(G, config, n, seed, chunks=share)
            return (torch.from_numpy(mine), *net(mine))

        gathered = distributed.share_and_gather(-(-n // generation.CHUNK), measured, torch.device(device))
        if gathered is None:
            return None
        imgs, fake = gathered[0].numpy(), gathered[1:]
    else:
        imgs = generation.forge(G, config, n, seed)
    result, ctx = evaluate(np.asarray(imgs), dataset, metrics, data_dir, progress=progress, device=device,
                           fake=fake, invert=invert)
    with files.RunLock(target.parent) if in_run else contextlib.nullcontext():
        return Evaluation(result, report.write(result, ctx, target, force, target.parent if in_run else None))
