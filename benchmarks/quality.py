"""Quality per CPU time: each preset trained on MNIST (or Fashion-MNIST) for a fixed
wall-clock budget on this machine, then measured with `mnistgan evaluate`'s metrics
(n = 10,000, seed 0).

    python benchmarks/quality.py [--budget seed=600,best=600,dcgan=600,...] [--epochs cdcgan=5]
                                 [--dataset mnist|fashion-mnist] [--parzen]
                                 [--set KEY=VALUE ...] [--data-dir DIR] [--out DIR] [--device cpu]

Each entry trains one preset (`--budget`: seconds of training, pictures and checkpoints
excluded; `--epochs`: whole epochs instead). Prints one row per preset and then the
quality bars, each with PASS or FAIL:
  - the best preset's FID at most 1/8 of the seed preset's after the same budget, and at
    most 5x the real-vs-real FID (train[:10000] against the test split);
  - the conditional preset (cdcgan): at least 97% of `--digit k` samples classified as k, for
    every k (also shown, as "info", for other conditional rows such as best);
  - every preset but seed covers all 10 classes, none above 15% of samples.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnistgan.config import from_preset
from mnistgan.data import load_split
from mnistgan.metrics import evaluate
from mnistgan.metrics.classifier import FeatureNet
from mnistgan.generation import sample
from mnistgan.runs import read_log, train

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402  (the machine line every table carries)

METRICS = ["fid", "kid", "classifier_score", "coverage", "prdc", "memorization", "diversity"]


def parse(spec: str) -> dict[str, float]:
    out = {}
    for item in filter(None, spec.split(",")):
        k, _, v = item.partition("=")
        out[k.strip()] = float(v)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="seed=600,best=600,dcgan=600,wgan-gp=600",
                   help="preset=seconds of training, comma-separated")
    p.add_argument("--epochs", default="cdcgan=5", help="preset=whole epochs, comma-separated")
    p.add_argument("--data-dir", default=None, help="the dataset's folder (default for mnist: "
                   "$MNISTGAN_DATA_DIR or ../shared/data/mnist; for others: the dataset's usual place)")
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (the bars are MNIST's)")
    p.add_argument("--parzen", action="store_true", help="also the Parzen-window log-likelihood (slow: ~1 min a row)")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every preset of this invocation (repeatable); rows are "
                        "labelled with it, e.g. to measure a variant before making it a preset")
    p.add_argument("--device", default="cpu", help="train, sample and evaluate here (the bars are for the CPU; "
                   "a GPU serves to screen variants by --epochs quickly)")
    a = p.parse_args()
    if any("=" not in item for item in a.set):
        p.error(f"--set takes KEY=VALUE, got {[i for i in a.set if '=' not in i]}")
    if a.data_dir is None and a.dataset == "mnist":
        a.data_dir = os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist"))
    metrics = METRICS + (["parzen"] if a.parzen else [])
    extra = dict(item.split("=", 1) for item in a.set)
    tag = "".join(f" +{k}={v}" for k, v in extra.items())
    root = Path(a.out or tempfile.mkdtemp(prefix="mnistgan-quality-"))
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(k, {"max_seconds": v, "epochs": 1000}) for k, v in parse(a.budget).items()]
    jobs += [(k, {"epochs": int(v)}) for k, v in parse(a.epochs).items()]
    print(f"{describe()}; dataset {a.dataset}", flush=True)
    train_imgs, _ = load_split(a.dataset, "train", a.data_dir, download=False, progress=False)
    real, _ = evaluate(train_imgs[:10000], a.dataset, ["fid"], a.data_dir, progress=False, device=a.device)
    real_fid = real["metrics"]["fid"]["fid"]
    print(f"real-vs-real FID (train[:10000] vs test): {real_fid:.3f}", flush=True)
    net = FeatureNet(a.dataset)
    rows = {}
    for preset, overrides in jobs:
        label = f"{preset}{tag} ({overrides.get('max_seconds', 0):.0f} s)" if "max_seconds" in overrides \
            else f"{preset}{tag} ({overrides['epochs']} epochs)"
        folder = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        cfg = from_preset(preset, {"progress": False, "device": a.device, "data_dir": a.data_dir, "download": False,
                                   "dataset": a.dataset,
                                   "out": str(root / folder), "keep_checkpoints": 1, **extra, **overrides})
        t0 = time.time()
        trainer = train(cfg)
        log = read_log(cfg.out)
        digits = sample(cfg.out, n=10000, seed=0, device=a.device)
        result, _ = evaluate(digits, a.dataset, metrics, a.data_dir, progress=False, device=a.device)
        m = result["metrics"]
        row = {"epochs": trainer.epoch, "train_s": trainer.train_seconds, "wall_s": time.time() - t0,
               "fid": m["fid"]["fid"], "kid": m["kid"]["kid"], "cs": m["classifier_score"]["classifier_score"],
               "classes": m["coverage"]["classes_present"], "max_share": m["coverage"]["max_class_share"],
               "precision": m["prdc"]["precision"], "recall": m["prdc"]["recall"],
               "near_copy": m["memorization"]["near_copy_share"], "images_s": np.mean([r["images_per_s"] for r in log]),
               "near_dup": m["diversity"]["near_duplicate_share"], "within": m["diversity"]["within_class_ratio"],
               "config": {k: v for k, v in cfg.to_dict().items() if k in extra or k in ("precision", "model", "objective")}}
        if a.parzen:
            row["parzen"], row["parzen_real"] = m["parzen"]["parzen"]["mean"], m["parzen"]["parzen_train_baseline"]["mean"]
        if cfg.conditional:
            acc = []
            for k in range(10):
                _, probs = net(sample(cfg.out, n=1000, seed=1, digit=k, device=a.device))
                acc.append(float((probs.argmax(1) == k).double().mean()))
            row["digit_accuracy"] = acc
        rows[label] = row
        print(f"{label:<30} epochs {row['epochs']:6.2f}  FID {row['fid']:8.3f}  KID {row['kid']:8.3f}  "
              f"CS {row['cs']:5.2f}  classes {row['classes']:2d}  max share {row['max_share']:.3f}  "
              f"P {row['precision']:.3f} R {row['recall']:.3f}  near-copies {row['near_copy']:.4f}  "
              f"near-dup {row['near_dup']:.3f} within {row['within']:.2f}  "
              + (f"Parzen {row['parzen']:.0f} (real {row['parzen_real']:.0f})  " if "parzen" in row else "") +
              f"{row['images_s']:,.0f} img/s" + (f"  digit acc min {min(row['digit_accuracy']):.3f}"
                                                  if "digit_accuracy" in row else ""), flush=True)
    (root / "quality.json").write_text(json.dumps({"real_fid": real_fid, "rows": rows}, indent=1))
    if a.dataset != "mnist":
        print(f"runs kept in {root} (the bars below are MNIST's: not checked for {a.dataset})")
        return
    print("\nBars:")
    seed = next((r for k, r in rows.items() if k.startswith("seed")), None)
    best = next(((k, r) for k, r in rows.items() if k.startswith("best")), None)
    if seed and best:
        k, r = best
        print(f"{'PASS' if r['fid'] <= seed['fid'] / 8 else 'FAIL'}  {k} FID {r['fid']:.3f} <= seed FID / 8 = {seed['fid'] / 8:.3f}")
        print(f"{'PASS' if r['fid'] <= 5 * real_fid else 'FAIL'}  {k} FID {r['fid']:.3f} <= 5 x real-vs-real = {5 * real_fid:.3f}")
    for k, r in rows.items():
        if "digit_accuracy" in r:  # the bar is the cdcgan preset's; other conditional rows are shown
            ok = min(r["digit_accuracy"]) >= 0.97
            verdict = ("PASS" if ok else "FAIL") if k.startswith("cdcgan") else "info"
            print(f"{verdict}  {k}: --digit k classified as k: min {min(r['digit_accuracy']):.3f} "
                  f"({', '.join(f'{x:.3f}' for x in r['digit_accuracy'])})")
        if not k.startswith("seed"):
            ok = r["classes"] == 10 and r["max_share"] <= 0.15
            print(f"{'PASS' if ok else 'FAIL'}  {k}: {r['classes']} classes present, max share {r['max_share']:.3f} <= 0.15")
    print(f"runs kept in {root}")


if __name__ == "__main__":
    main()
