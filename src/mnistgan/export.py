"""A trained generator for other runtimes: ONNX, TorchScript or a torch.export program,
with a model card beside it; or the whole model (G and D) as a folder in the Hugging Face
Hub's convention ("hub": store/modelfolder.py), which mnistgan itself loads back.

The exported network is the generator as `mnistgan sample` uses it: the EMA weights when
the run kept them, batch-norm statistics recomputed for them, eval mode. Inputs: `noise`
(batch x z_dim float32, N(0, 1)) and, for conditional runs, `labels` (batch int64, class
0..K-1); the batch axis is dynamic. Output: `images`, batch x C x 28 x 28 float32 in [0, 1]
(C, the run's channels: 1 grey, 3 colour as red, green, blue).

ONNX goes through torch.onnx's dynamo exporter (torch.export, then onnxscript), the path
PyTorch maintains; TorchScript through torch.jit.trace, which PyTorch 2.13 marks deprecated
(still loadable by `torch.jit.load` and libtorch; its warning is silenced here); "pt2"
is torch.export's own archive, the successor (`torch.export.load`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .store import files, rundir
from . import generation
from .errors import ConfigError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2", "hub": ""}  # format -> the default out's suffix
MAX_BATCH = 1 << 20


class Sampler(nn.Module):
    """G as exported: (noise[, labels]) -> images in [0, 1], nothing else."""

    def __init__(self, G: nn.Module, conditional: bool):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.G(noise, labels if self.conditional else None).float()


def example_inputs(config, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(noise,) or (noise, labels) for n samples, as the exported network takes them."""
    z = generation.noise(n, config.z_dim, seed)
    return (z, generation.cycle_labels(n, config.label_count)) if config.takes_labels else (z,)


def card_path(out: Path) -> Path:
    return out.with_name(out.name + ".card.md")


def export(run: str | os.PathLike, out: str | os.PathLike, format: str = "onnx", force: bool = False,
           dtype: str = "float32") -> tuple[Path, Path]:
    """Writes the run's generator to out in `format` and its model card to out + .card.md;
    returns both paths. Refuses to replace either unless force. format "hub": out is a
    folder (hub(): its weights and its card README.md are returned); dtype is for it only."""
    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "hub":
        paths = hub(run, out, dtype=dtype, force=force)
        return paths[1], paths[2]
    if dtype != "float32":
        raise ConfigError(f"--dtype is for --format hub; {format} exports float32")
    out = Path(out)
    card = card_path(out)
    files.check_outputs([out, card], force)
    if format == "onnx":
        _need_onnx()
    nets = generation.load_networks(run, "cpu", discriminator=False)
    path, config = nets.path, nets.config
    model = Sampler(nets.G, config.takes_labels).eval()
    blob = _serialise(model, config, format)
    files.atomic_write_bytes(out, blob, overwrite=force)
    text = model_card(run, path, config, out, format, hashlib.sha256(blob).hexdigest())
    files.atomic_write_bytes(card, text.encode(), overwrite=force)
    return out, card


def hub(run: str | os.PathLike, out: str | os.PathLike, dtype: str = "float32", force: bool = False,
        card: dict | None = None, name: str | None = None, load_as: str | None = None) -> list[Path]:
    """Writes RUN (a run, checkpoint, model folder or pretrained:NAME) as a model folder in
    the Hub's convention (store/modelfolder.py) and returns its three paths. card: the
    figures and provenance for the card ({"metrics": {name: value}, "command", "budget",
    "machine", "date"}); default: the run's metrics.json, or the model folder's own card."""
    from .store import modelfolder
    from . import zoo

    if dtype not in modelfolder.DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(modelfolder.DTYPES)}, got {dtype!r}")
    out = Path(out)
    modelfolder.check_out(out, force)  # before any work
    nets = generation.load_networks(run, "cpu")
    if card is None:
        where = zoo.resolve(run)
        card = (modelfolder.metadata(where).get("card", {}) if modelfolder.is_model_folder(where)
                else {"metrics": run_metrics(run)})
    name = name or out.name
    text = hub_card(name, nets.config, card, dtype, load_as or out.name)
    return modelfolder.save(out, nets.G, nets.D, nets.config, text, info={"card": card, "name": name},
                            dtype=dtype, force=force)


# The figures the card's metadata lists for the Hub (its table lists every number measured).
HUB_METRICS = {"fid", "kid", "precision", "recall", "density", "coverage", "classifier_score", "max_class_share",
               "near_copy_share", "digit_worst", "modes", "kl", "parzen"}
# The Hub's dataset ids for the registered datasets (the card's `datasets:` metadata).
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}


def hub_card(name: str, config, card: dict, dtype: str, load_as: str) -> str:
    """The model card of a model folder: YAML metadata the Hub reads (library, tags,
    datasets, metrics in its model-index form), then what it is, how it was made and measured,
    and how to use it. JSON strings are valid YAML scalars, so the metadata is written with
    json.dumps and no YAML library."""
    q = json.dumps
    metrics = {k: v for k, v in (card.get("metrics") or {}).items()  # (n: how many were drawn, not a metric)
               if k != "n" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    task = "image-generation" if config.conditional else "unconditional-image-generation"
    tags = ["gan", "generative-adversarial-network", "mnistgan", config.dataset, config.preset, task]
    yaml = ["---", "library_name: mnistgan", "license: mit", f"pipeline_tag: {task}", "tags:"]
    yaml += [f"- {q(t)}" for t in dict.fromkeys(tags)]
    if config.dataset in HUB_DATASETS:
        yaml += ["datasets:", f"- {q(HUB_DATASETS[config.dataset])}"]
    listed = {k: v for k, v in metrics.items() if k in HUB_METRICS}
    if listed:
        yaml += ["model-index:", f"- name: {q(name)}", "  results:", "  - task:", f"      type: {task}",
                 "    dataset:", f"      name: {q(config.dataset)}", f"      type: {q(HUB_DATASETS.get(config.dataset, config.dataset))}",
                 "    metrics:"]
        for k, v in sorted(listed.items()):
            yaml += [f"    - type: {q(k)}", f"      value: {v:.6g}"]
    yaml += ["---", ""]
    draw = (f"mnistgan sample {load_as} --digit 7 --out sevens.png" if config.conditional
            else f"mnistgan sample {load_as} --out forgeries.png")
    lines = [
        f"# {name}",
        "",
        f"A GAN trained with mnistgan: preset `{config.preset}` (model `{config.model}`, objective "
        f"`{config.objective}`{', sampled from an EMA of its weights' if config.ema_half_life else ''}) on "
        f"`{config.dataset}`" + (", class-conditional" if config.conditional else "") + ". The folder holds the "
        f"generator as it samples and its discriminator (the police officer of `mnistgan serve`), weights in {dtype}.",
        "",
        "## How it was made",
        "",
    ]
    made = [(k, card.get(k)) for k in ("command", "budget", "machine", "date")]
    lines += [f"- {k}: {'`' + v + '`' if k == 'command' else v}" for k, v in made if v] or ["- from a run of mnistgan"]
    lines += ["", "## Quality", ""]
    if metrics:
        lines += ["Measured on this folder by `mnistgan evaluate`:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
        lines += [""] + [f"- {note}" for note in card.get("notes", [])] if card.get("notes") else []
    else:
        lines += [f"Not measured: `mnistgan evaluate {load_as} --out metrics.json`."]
    lines += ["", "## Use", "", "```sh", draw, "```", "", "```python", "import mnistgan",
              f"g = mnistgan.load({q(load_as)})",
              "digits = g.sample(16" + (", digit=7" if config.conditional else "") + ")  # uint8 images",
              "```", "",
              "Upload it as it is: `huggingface-cli upload USER/NAME .` (config.json, model.safetensors, README.md).",
              ""]
    return "\n".join(yaml + lines)


def run_metrics(run) -> dict[str, float]:
    """The numbers of a run's metrics.json, flat (metric's field -> value); {} when none."""
    from .store import modelfolder

    ours = Path(run).is_dir() and rundir.is_run(run) and not modelfolder.is_model_folder(run)
    return flat_metrics(rundir.read_metrics(run) if ours else None)  # (bounded, and its shape checked there)


def flat_metrics(result: dict | None) -> dict[str, float]:
    """A metrics.json's finite numbers, one level deep (metric's field -> value); {} for none."""
    listed = result.get("metrics") if result else None
    return {k: v for m in (listed.values() if isinstance(listed, dict) else ()) if isinstance(m, dict)
            for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _serialise(model: Sampler, config, format: str) -> bytes:
    inputs = example_inputs(config)
    names = ["noise", "labels"][:len(inputs)]
    buffer = io.BytesIO()
    with torch.no_grad():
        if format == "torchscript":
            with warnings.catch_warnings():  # "torch.jit.trace is deprecated": see the module doc
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(model, inputs, check_inputs=[example_inputs(config, 5, 1)])
                torch.jit.save(traced, buffer)
            return buffer.getvalue()
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        shapes = {name: {0: batch} for name in names}
        if format == "pt2":
            program = torch.export.export(model, inputs, dynamic_shapes=shapes)
            torch.export.save(program, buffer)
            return buffer.getvalue()
        with _quiet():
            program = torch.onnx.export(model, inputs, dynamo=True, dynamic_shapes=shapes, input_names=names,
                                        output_names=["images"], verbose=False)
            with _scratch_file(".onnx") as tmp:
                program.save(tmp)
                return Path(tmp).read_bytes()


def _need_onnx() -> None:
    """One line saying what to install, before any work, when the ONNX packages are missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {' and '.join(missing)}: pip install \"mnistgan[export]\"")


@contextlib.contextmanager
def _quiet():
    """The ONNX exporter logs its steps and warns about optional packages (torchvision)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _scratch_file(suffix: str):
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        yield tmp
    finally:
        os.unlink(tmp)


def model_card(run, checkpoint: Path, config, out: Path, format: str, sha256: str) -> str:
    """Markdown: what the network is, what it was trained on, how well it did, how to call it."""
    metrics = run_metrics(run)
    conditional = config.takes_labels
    shape = f"(16, {config.channels}, 28, 28)"
    if config.conditional:
        labels_text = (f"`labels`: int64, shape (batch,), the class to draw, 0..{config.num_classes - 1}"
                       + (" (the digit)" if config.dataset == "mnist" else
                          " (the stack's digits 100 r + 10 g + b)" if config.dataset == "stacked-mnist" else
                          " (class folders in sorted name order)" if config.dataset.startswith("folder:") else ""))
    elif config.info_code:
        labels_text = "`labels`: int64, shape (batch,), the InfoGAN code 0..9 (learned without labels)"
    else:
        labels_text = ""
    call = {
        "onnx": ("import numpy as np, onnxruntime as ort\n"
                 f"session = ort.InferenceSession({out.name!r})\n"
                 f"noise = np.random.default_rng(0).standard_normal((16, {config.z_dim}), dtype=np.float32)\n"
                 + ("labels = np.full(16, 7, dtype=np.int64)\n"
                    "images = session.run(None, {'noise': noise, 'labels': labels})[0]"
                    if conditional else "images = session.run(None, {'noise': noise})[0]")
                 + f"  # {shape} in [0, 1]"),
        "torchscript": ("import torch\n"
                        f"g = torch.jit.load({out.name!r})\n"
                        f"images = g(torch.randn(16, {config.z_dim})"
                        + (", torch.full((16,), 7))" if conditional else ")") + f"  # {shape} in [0, 1]"),
        "pt2": ("import torch\n"
                f"g = torch.export.load({out.name!r}).module()\n"
                f"images = g(torch.randn(16, {config.z_dim})"
                + (", torch.full((16,), 7))" if conditional else ")") + f"  # {shape} in [0, 1]"),
    }[format]
    lines = [
        f"# {out.name}: the generator of an mnistgan run",
        "",
        f"- **What**: a GAN generator (preset `{config.preset}`, model `{config.model}`, objective "
        f"`{config.objective}`{', EMA weights' if config.ema_half_life else ''}) that forges 28 x 28 "
        + ("grey images." if config.channels == 1 else f"colour images ({config.channels} channels: red, green, blue)."),
        f"- **Trained on**: `{config.dataset}`, {config.train_images:,} training images"
        + (f", {config.num_classes} classes" if config.num_classes else ", no labels")
        + f"; from checkpoint `{checkpoint.name}` of run `{Path(run)}`.",
        f"- **Format**: {format} (`{out.name}`, sha256 `{sha256}`), exported with torch {torch.__version__}.",
        f"- **Inputs**: `noise`: float32, shape (batch, {config.z_dim}), drawn from N(0, 1)"
        + (f"; {labels_text}" if labels_text else "") + ". The batch size is free.",
        f"- **Output**: `images`: float32, shape (batch, {config.channels}, 28, 28), in [0, 1]"
        + (" (white strokes on black)." if config.channels == 1 else " (channels red, green, blue; light strokes on black)."),
        "",
        "## Quality",
        "",
    ]
    if metrics:
        lines += ["From the run's `metrics.json` (`mnistgan evaluate`):", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    else:
        lines += [f"Not measured yet: `mnistgan evaluate {Path(run)}` writes metrics.json; export again to include it."]
    lines += ["", "## How to call it", "", "```python", call, "```", "",
              "## Config", "", "```json", json.dumps(config.to_dict(), indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
