"""The `mnistgan` command: parses arguments and calls the library, nothing more."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import PRESETS, TrainConfig, from_preset
from .errors import MnistganError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mnistgan", description="Train GANs that forge handwritten digits.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a GAN (default: the seed preset on MNIST)")
    t.add_argument("--preset", help=f"one of: {', '.join(PRESETS)} (default: seed)")
    t.add_argument("--resume", metavar="RUN", help="continue RUN exactly from its latest checkpoint")
    t.add_argument("--out", help="run folder (default: runs/PRESET, or runs/PRESET-N if taken)")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_float)
    t.add_argument("--seed", type=_nonneg_int)
    t.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:N")
    t.add_argument("--dataset", help="mnist or fashion-mnist")
    t.add_argument("--data-dir", help="folder with the four IDX files (else $MNISTGAN_DATA_DIR, cache, download)")
    t.add_argument("--max-images", type=_positive_int, help="stop after this many images (short runs)")
    t.add_argument("--precision", choices=["fp32", "bf16"], help="fp32 (default) or bf16 autocast")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks")
    t.add_argument("--no-download", action="store_true", help="never download; fail if no local copy")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set hidden=512 (repeatable; see config.json)")

    s = sub.add_parser("sample", help="draw forgeries from a trained run")
    s.add_argument("run", help="run folder (its latest checkpoint) or a checkpoint file")
    s.add_argument("--n", type=_positive_int, default=64, help="number of forgeries (default 64)")
    s.add_argument("--seed", type=_nonneg_int, default=0, help="noise seed (default 0)")
    s.add_argument("--out", default="digits.png", help="a .png grid or a .npy uint8 array N x 28 x 28")
    s.add_argument("--device", default="cpu")

    d = sub.add_parser("data", help="fetch or check a dataset")
    d.add_argument("action", choices=["fetch", "check"], help="fetch: find or download; check: validate")
    d.add_argument("--dataset", default="mnist")
    d.add_argument("--data-dir")
    return p


def cmd_train(a: argparse.Namespace) -> int:
    from .run import free_run_dir, resume, train
    from .training import TrainingInterrupted

    overrides = {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
                 "device": a.device, "dataset": a.dataset, "data_dir": a.data_dir,
                 "max_images": a.max_images, "precision": a.precision, "compile": a.compile}
    if a.no_download:
        overrides["download"] = False
    if a.no_progress:
        overrides["progress"] = False
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MnistganError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value.strip()
    try:
        if a.resume:
            if a.preset or a.out:
                raise MnistganError("--resume continues a run with its own config and folder; "
                                    "--preset and --out do not apply")
            trainer = resume(a.resume, overrides)
            out = a.resume
        else:
            preset = a.preset or "seed"
            overrides["out"] = a.out or str(free_run_dir(Path("runs") / preset))
            config = from_preset(preset, overrides)
            print(f"mnistgan: training preset {config.preset!r} on {config.dataset} into {config.out}",
                  file=sys.stderr)
            trainer = train(config)
            out = config.out
    except TrainingInterrupted as e:
        run = a.resume or overrides["out"]
        print(f"mnistgan: interrupted after {e.images_seen:,} images; a checkpoint was written. "
              f"Resume with: mnistgan train --resume {run}", file=sys.stderr)
        return 143 if getattr(e, "signum", None) == 15 else 130
    print(f"mnistgan: done ({trainer.images_seen:,} images seen). Pictures and checkpoints are in "
          f"{out}/; draw new forgeries with: mnistgan sample {out} --out digits.png", file=sys.stderr)
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    import numpy as np

    from . import images
    from .checkpoint import atomic_write_bytes
    from .run import sample

    out = Path(a.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise MnistganError(f"--out must end in .png or .npy, got {a.out!r}")
    if not out.parent.is_dir():
        raise MnistganError(f"--out {a.out}: folder {out.parent} does not exist")
    digits = sample(a.run, n=a.n, seed=a.seed, device=a.device)
    try:
        if out.suffix.lower() == ".npy":
            import io

            buf = io.BytesIO()
            np.save(buf, digits)
            atomic_write_bytes(out, buf.getvalue())
        else:
            images.save_grid(out, digits, nrow=min(10, int(np.ceil(np.sqrt(a.n)))), scale=2)
    except OSError as e:
        raise MnistganError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"mnistgan: wrote {a.n} forgeries to {out}", file=sys.stderr)
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from .data import get_spec, load_split, locate

    spec = get_spec(a.dataset)
    folder = locate(spec, a.data_dir, download=(a.action == "fetch"))
    for split in spec.counts:
        imgs, labels = load_split(a.dataset, split, folder, download=False)
        print(f"{a.dataset} {split}: {len(imgs)} images, {len(labels)} labels, valid ({folder})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "sample": cmd_sample, "data": cmd_data}[args.command](args)
    except MnistganError as e:
        print(f"mnistgan: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a folder that vanished, ...: say which file and why
        where = f"{e.filename}: " if e.filename else ""
        print(f"mnistgan: error: {where}{e.strerror or e}; the run's last checkpoint is intact",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnistgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
