"""Builds the package's zoo (src/mnistgan/zoo/NAME/): trains each model with its command,
exports it as a model folder in float16, measures that folder with `mnistgan evaluate` (and,
for conditional models, how often `--digit k` is read as k by the shipped classifier), and
writes the folder with those figures in its card. Also prints what float16 changes: the FID of
the float32 weights beside the float16 ones.

    python benchmarks/build_zoo.py --runs /tmp/zoo-runs [--only best-mnist,seed-mnist]
                                   [--data-dir ../shared/data/mnist] [--fashion-dir DIR]
    python benchmarks/build_zoo.py --picture docs/zoo.png   # the README's picture, from the zoo as it is
    python benchmarks/build_zoo.py --recard [--only NAME]   # the cards again from their figures

A model whose run already has a checkpoint is not trained again (delete its run to retrain).
Budgets are epochs, not seconds, so two builders may run side by side (`--only` each) and
make the same models, only slower.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import cpu, describe  # noqa: E402

ZOO = HERE.parent / "src" / "mnistgan" / "zoo"

# name -> (the training command's arguments after `mnistgan train`, its budget in words)
MODELS = {
    "seed-mnist": (["--preset", "seed"], "the tutorial's 100 epochs of 55,000 digits"),
    # (the best models were trained before the preset moved to Adam 5e-4, batch 32 and lazy R1:
    # their commands pin the values they were trained with; the conv models were trained in
    # float32, which precision=auto no longer is on CPUs with native bf16, so it is pinned too)
    "best-mnist": (["--preset", "best", "--precision", "fp32", "--lr", "2e-4", "--batch-size", "64", "--set", "r1_gamma=0", "--set", "reg_every=1",
                    "--epochs", "20"],
                   "20 epochs of 60,000 digits"),
    "cdcgan-mnist": (["--preset", "cdcgan", "--precision", "fp32", "--epochs", "10"], "10 epochs of 60,000 digits"),
    "best-fashion-mnist": (["--preset", "best", "--precision", "fp32", "--lr", "2e-4", "--batch-size", "64", "--set", "r1_gamma=0",
                            "--set", "reg_every=1", "--dataset", "fashion-mnist", "--epochs", "8"],
                           "8 epochs of 60,000 images"),
    # (5 epochs covered fewer modes than 300 s: 941 / KL 1.04 against 963 / 0.71; docs/MEASUREMENTS.md)
    "r3gan-stacked-mnist": (["--preset", "r3gan", "--precision", "fp32", "--dataset", "stacked-mnist", "--epochs", "1000",
                             "--set", "max_seconds=300"], "300 s of training: 85,568 stacks, 1.4 epochs"),
    # the mode-coverage preset at the default precision (bf16 where the CPU has it natively);
    # its card's machine and image count say what 600 s meant there
    "pacgan-stacked-mnist": (["--preset", "pacgan", "--dataset", "stacked-mnist", "--epochs", "1000",
                              "--set", "max_seconds=600"], "600 s of training: 684,000 stacks, 11.4 epochs"),
}
HEADLINE = {"fid": "FID", "recall": "recall", "digit_worst": "worst --digit k", "modes": "modes", "kl": "KL"}


def headline(metrics: dict) -> dict:
    """The few figures `mnistgan zoo` shows: modes and KL for Stacked-MNIST (its FID and recall
    are in the three channels' feature space, not comparable), else FID, recall, --digit."""
    keys = ["modes", "kl"] if "modes" in metrics else ["fid", "recall", "digit_worst"]
    return {HEADLINE[k]: metrics[k] for k in keys if k in metrics}


def mnistgan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mnistgan", *args], check=True)


def dataset_of(args: list[str]) -> str:
    return args[args.index("--dataset") + 1] if "--dataset" in args else "mnist"


def data_dir(dataset: str, a) -> str | None:
    return a.fashion_dir if dataset == "fashion-mnist" else a.data_dir


def flat(result: dict) -> dict[str, float]:
    """metrics.json's numbers, one level deep (as the card lists them), and Parzen's estimate."""
    from mnistgan.export import flat_metrics

    out = flat_metrics(result)
    parzen = (result["metrics"].get("parzen") or {}).get("parzen")
    if isinstance(parzen, dict) and isinstance(parzen.get("mean"), (int, float)):
        out["parzen"] = parzen["mean"]
    return out


def recard(name: str) -> None:
    """The card of a zoo model written again from the figures it holds (after the card's
    template changed): no training, no measuring; the float16 weights pass through unchanged."""
    from mnistgan import export
    from mnistgan.store import modelfolder

    card = modelfolder.metadata(ZOO / name)["card"]
    card["headline"] = headline(card["metrics"])
    # (the command as MODELS spells it now: when a preset's values move, MODELS pins the values
    # the shipped weights were trained with, and the card must say so to stay reproducible)
    card["command"], card["budget"] = "mnistgan train " + shlex.join(MODELS[name][0]), MODELS[name][1]
    with tempfile.TemporaryDirectory() as tmp:
        export.hub(ZOO / name, Path(tmp) / name, dtype="float16", card=card, name=name, load_as=f"pretrained:{name}")
        for f in (modelfolder.CONFIG, modelfolder.WEIGHTS, modelfolder.CARD):
            os.replace(Path(tmp) / name / f, ZOO / name / f)
    print(f"{name}: card written again")


def measure(folder: Path, where: str | None, metrics: str | None, out: Path) -> dict:
    extra = ["--data-dir", where] if where else []
    mnistgan("evaluate", str(folder), "--out", str(out), "--force", *extra, *(["--metrics", metrics] if metrics else []))
    return json.loads(out.read_text())


def digit_accuracy(folder: Path, dataset: str) -> list[float]:
    """How often 1,000 forgeries of each class k are read as k by the shipped classifier."""
    from mnistgan.generation import sample
    from mnistgan.metrics.classifier import FeatureNet

    net = FeatureNet(dataset)
    out = []
    for k in range(10):
        _, probs = net(sample(folder, n=1000, seed=1, digit=k))
        out.append(float((probs.argmax(1) == k).double().mean()))
    return out


def real_floor(dataset: str, where: str | None) -> float:
    """FID of 10,000 real training images against the test split: the floor a forger meets."""
    from mnistgan.data import load_split
    from mnistgan.metrics import evaluate

    train, _ = load_split(dataset, "train", where, download=False, progress=False)
    result, _ = evaluate(train[:10000], dataset, ["fid"], where, progress=False)
    return result["metrics"]["fid"]["fid"]


def build(name: str, a, floors: dict) -> dict:
    from mnistgan import export

    args, budget = MODELS[name]
    dataset = dataset_of(args)
    where = data_dir(dataset, a)
    run = Path(a.runs) / name
    command = ["train", *args, "--out", str(run), "--no-progress"] + (["--data-dir", where] if where else [])
    if not (run / "checkpoints").is_dir() or not any((run / "checkpoints").iterdir()):
        mnistgan(*command)
    shown = "mnistgan train " + shlex.join(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for dtype in ("float32", "float16"):
            export.hub(run, tmp / dtype, dtype=dtype, card={}, name=name)
        result = measure(tmp / "float16", where, None, tmp / "float16.json")
        metrics = flat(result)
        notes = [f"n = {result['n']:,} forgeries, seed 0, from the float16 weights of this folder"]
        if "fid" in metrics:
            fid32 = flat(measure(tmp / "float32", where, "fid", tmp / "float32.json"))["fid"]
            notes.append(f"the same forgeries from the float32 weights: FID {fid32:.3f} (float16: {metrics['fid']:.3f})")
            if dataset not in floors:
                floors[dataset] = real_floor(dataset, where)
            notes.append(f"real floor: FID of 10,000 real training images against the test split {floors[dataset]:.3f}"
                         f" (twice it: {2 * floors[dataset]:.3f})")
        config = json.loads((tmp / "float16" / "config.json").read_text())
        if config["conditional"]:
            acc = digit_accuracy(tmp / "float16", dataset)
            metrics["digit_worst"] = min(acc)
            notes.append("`--digit k` read as k by the shipped classifier (1,000 each): "
                         + ", ".join(f"{k}: {x:.3f}" for k, x in enumerate(acc)))
    card = {"metrics": metrics, "headline": headline(metrics),
            "command": shown, "budget": budget, "machine": cpu(), "date": datetime.date.today().isoformat(),
            "notes": notes}
    export.hub(run, ZOO / name, dtype="float16", card=card, name=name, load_as=f"pretrained:{name}", force=True)
    print(f"{name}: {json.dumps(card['headline'])}", flush=True)
    return card


def picture(path: str) -> None:
    """Two rows of 10 forgeries per zoo model (conditional ones: classes 0-9 in order), seed 0,
    grey models drawn in grey inside a colour picture."""
    import numpy as np

    import mnistgan
    from mnistgan import images, zoo

    rows = []
    for name in zoo.names():
        g = mnistgan.load(f"pretrained:{name}")
        if g.config.conditional:
            x = np.concatenate([g.sample(1, digit=k, seed=s) for s in (0, 1) for k in range(10)])
        else:
            x = g.sample(20, seed=0)
        x = x[:, None] if x.ndim == 3 else x
        rows.append(np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x)
    images.save_grid(path, np.concatenate(rows), nrow=10, scale=2)
    print(f"wrote {path}: rows, two per model: {', '.join(zoo.names())}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", help="where the training runs are kept (reused when finished)")
    p.add_argument("--picture", help="write the zoo's picture here instead (no training)")
    p.add_argument("--recard", action="store_true", help="write the zoo's cards again from their figures (no training)")
    p.add_argument("--only", help="comma-separated names (default: all)")
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--fashion-dir", default=None, help="Fashion-MNIST's folder (default: where mnistgan finds it)")
    a = p.parse_args()
    if a.picture:
        return picture(a.picture)
    if a.recard:
        from mnistgan import zoo

        for name in (a.only.split(",") if a.only else zoo.names()):
            recard(name)
        return None
    if not a.runs:
        p.error("--runs is needed to build the zoo")
    names = a.only.split(",") if a.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    print(describe(), flush=True)
    floors: dict = {}
    for name in names:
        build(name, a, floors)


if __name__ == "__main__":
    main()
