"""The `mnistgan` command: parses arguments and calls the library, nothing more."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import PRESETS
from .registry import NAMES
from .errors import MnistganError


def _int_at_least(low: int):
    """An argparse type: a whole number of at least `low`."""
    def parse(text: str) -> int:
        from .system.numbers import whole

        try:
            value = whole(text, "value")
        except MnistganError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number of at least {low}, got {value}")
        return value
    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {value}")
    return value


def _threads(text: str) -> str:
    from .system.threads import parse
    try:
        return str(parse(text))
    except MnistganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported as the one `mnistgan: error:` line every other
    error is (not the usage block); `mnistgan COMMAND --help` shows the usage."""

    def error(self, message: str):
        self.exit(2, f"mnistgan: error: {self.prog.removeprefix('mnistgan ') + ': ' if ' ' in self.prog else ''}"
                     f"{message} (see: {self.prog} --help)\n")


def _invert_flag(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """--invert for commands that may read a folder:PATH dataset; `default` as the help says it
    ("auto" is also the value; any other default leaves it unset for the command to decide)."""
    parser.add_argument("--invert", choices=NAMES["invert"], default="auto" if default == "auto" else None,
                        help="folder:PATH datasets: invert dark-on-light images "
                             f"(default: {default or 'auto'}; auto decides per image from its border)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mnistgan", description="Train GANs that forge handwritten digits.")
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
    t.add_argument("--dataset", help="mnist, fashion-mnist, stacked-mnist (three digits as colour channels, 1,000 "
                                     "modes), folder:PATH (your own images, class sub-folders; --set channels=3 keeps "
                                     "their colour) or idx:PATH (four IDX files in MNIST's layout)")
    _invert_flag(t)
    t.add_argument("--data-dir", help="folder with the four IDX files (else $MNISTGAN_DATA_DIR, cache, download)")
    t.add_argument("--max-images", type=_positive_int, help="stop after this many images (short runs)")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="auto (default: bf16 autocast for the conv presets on CPUs with native bf16, "
                        "fp32 elsewhere), fp32, or bf16 autocast")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks")
    t.add_argument("--threads", type=_threads,
                   help="CPU threads: auto (default: one a core, fewer while other work takes cores) or a count")
    t.add_argument("--cuda-graph", action="store_true", default=None,
                   help="CUDA: capture the whole training step as CUDA graphs (ignored elsewhere)")
    t.add_argument("--no-download", action="store_true", help="never download; fail if no local copy")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--tensorboard", action="store_true", default=None,
                   help='also log to RUN/tensorboard/ (pip install "mnistgan[tensorboard]")')
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set hidden=512 (repeatable; see config.json)")

    s = sub.add_parser("sample", help="draw forgeries from a trained run")
    s.add_argument("run", help="run folder (its latest checkpoint), a checkpoint file, a model folder "
                               "(export --format hub) or pretrained:NAME (mnistgan zoo lists them)")
    s.add_argument("--n", "--count", dest="n", type=_positive_int, default=64, help="number of forgeries (default 64)")
    s.add_argument("--seed", type=_nonneg_int, default=0, help="noise seed (default 0)")
    s.add_argument("--out", default="digits.png", help="a .png grid or a .npy uint8 array N x 28 x 28")
    s.add_argument("--device", default="cpu")
    s.add_argument("--digit", type=int, help="conditional models: draw only this digit (0-9; or class 0..K-1 of the run's dataset)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.add_argument("--interpolate", action="store_true",
                   help="latent walk: --n images between two noise vectors (conditional: also across digits)")

    e = sub.add_parser("evaluate", help="measure forgeries: FID, KID, coverage, precision/recall, memorization, Parzen")
    e.add_argument("run", nargs="?", help="run folder (samples its latest checkpoint), a model folder or pretrained:NAME")
    e.add_argument("--images", help="score a .npy of N x 28 x 28 images (colour: N x 3 x 28 x 28; uint8, or floats "
                                    "in [0, 1]) instead")
    e.add_argument("--n", "--count", dest="n", type=_positive_int, default=None,
                   help="forgeries to draw from RUN (default 10000; 26000, the field's count, for stacked-mnist; "
                        "at most 100000; --count under torchrun, which takes --n for its own options)")
    e.add_argument("--seed", type=_nonneg_int, default=0, help="noise seed for drawing them (default 0)")
    e.add_argument("--metrics", help="comma-separated subset (default: all that apply to the dataset)")
    e.add_argument("--dataset", help="real data to compare with (default: the run's, else mnist)")
    e.add_argument("--data-dir")
    _invert_flag(e, "the run's, else auto")
    e.add_argument("--out", help="metrics JSON path (default: RUN/metrics.json; for a model folder, pretrained:NAME "
                                 "or --images: metrics.json)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--force", action="store_true", help="replace metrics.json and novelty.png if they exist")
    e.add_argument("--threads", type=_threads, default="auto",
                   help="CPU threads: auto (default: one a core, fewer while other work takes cores) or a count")

    k = sub.add_parser("classifier", help="train the feature network the metrics use")
    k.add_argument("action", choices=["train"])
    k.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, folder:PATH or idx:PATH")
    k.add_argument("--channels", type=int, choices=[1, 3], default=1,
                   help="folder:PATH: 3 for a run that kept its colour (--set channels=3); default 1")
    k.add_argument("--data-dir")
    _invert_flag(k, "auto")
    k.add_argument("--epochs", type=_positive_int, default=4)
    k.add_argument("--seed", type=_nonneg_int, default=0)
    k.add_argument("--out", help="folder for <dataset>.safetensors and .json (default: where evaluate looks: the "
                                 "package's weights/, or the user cache for folder:/idx: datasets)")
    k.add_argument("--force", action="store_true", help="replace existing weights (the shipped ones too)")

    x = sub.add_parser("export", help="write a run's generator as ONNX, TorchScript or torch.export, with a model "
                                      "card; or the model as a Hugging Face Hub folder")
    x.add_argument("run", help="run folder (its latest checkpoint), a checkpoint file, a model folder or pretrained:NAME")
    x.add_argument("--format", choices=["onnx", "torchscript", "pt2", "hub"], default="onnx",
                   help="hub: a folder (config.json, model.safetensors with G and D, README.md the card) that "
                        "huggingface-cli uploads as it is and mnistgan loads back")
    x.add_argument("--out", help="file to write (default: generator.onnx, generator.pt or generator.pt2; the model "
                                 "card goes beside it as OUT.card.md); for hub a folder (default: model)")
    x.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32",
                   help="hub: the weights' type (float16 halves the folder)")
    x.add_argument("--force", action="store_true", help="replace --out and its card if they exist")

    z = sub.add_parser("zoo", help="list the pretrained models inside the package (pretrained:NAME)")
    z.add_argument("--card", metavar="NAME", help="also print this model's card")

    w = sub.add_parser("serve", help="a local web page over a folder of runs and the pretrained models: stories, "
                                     "forging, the police officer")
    w.add_argument("runs", nargs="?", default="runs", help="folder of runs (default: runs; missing or empty: the "
                                                         "pretrained models alone)")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=_port, default=8000)
    w.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="answer requests for this host name too (repeatable; the loopback names and --host "
                        "are answered; others are refused, against DNS rebinding; '*' answers any)")
    w.add_argument("--full-priority", action="store_true",
                   help="compete for the CPU as an equal (default: one torch thread and a lower priority, "
                        "so that a run training beside the page keeps its cores)")

    r = sub.add_parser("report", help="a run's story as one self-contained HTML file")
    r.add_argument("run", help="run folder")
    r.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    r.add_argument("--force", action="store_true", help="replace --out if it exists")

    d = sub.add_parser("data", help="fetch or check a dataset")
    d.add_argument("action", choices=["fetch", "check"], help="fetch: find or download; check: validate")
    d.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, folder:PATH (converted and cached) or idx:PATH")
    d.add_argument("--data-dir")
    _invert_flag(d, "auto")
    return p


def cmd_train(a: argparse.Namespace) -> int:
    from . import api
    from .config import merge_settings, parse_sets
    from .system.distributed import launch_rank
    from .training.trainer import FiguresInterrupted, TrainingInterrupted

    flags = {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed, "device": a.device,
             "dataset": a.dataset, "data_dir": a.data_dir, "max_images": a.max_images, "precision": a.precision,
             "compile": a.compile, "threads": a.threads, "cuda_graph": a.cuda_graph, "invert": a.invert, "tensorboard": a.tensorboard,
             "out": a.out, "download": False if a.no_download else None, "progress": False if a.no_progress else None}
    settings = merge_settings(flags, parse_sets(a.set))
    try:
        run = api.train(a.preset, resume=a.resume, settings=settings)
    except TrainingInterrupted as e:
        if launch_rank() == 0:
            where = e.run or a.resume
            print(f"mnistgan: interrupted while drawing the final figures; training is complete and its last "
                  f"checkpoint is written. Draw them with: mnistgan train --resume {where}"
                  if isinstance(e, FiguresInterrupted) else
                  f"mnistgan: interrupted after {e.images_seen:,} images; a checkpoint was written. "
                  f"Resume with: mnistgan train --resume {where}", file=sys.stderr)
        return 143 if e.signum == 15 else 130
    if launch_rank() == 0:
        print(f"mnistgan: done ({run.images_seen:,} images seen). Pictures and checkpoints are in {run.path}/; "
              f"draw new forgeries with: mnistgan sample {run.path} --out digits.png", file=sys.stderr)
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    from . import generation

    if a.interpolate:
        generation.check_output(a.out, a.force)  # before any work
        walks = generation.interpolate(a.run, steps=a.n, seed=a.seed, device=a.device, digit=a.digit)
        out = generation.write(a.out, walks, force=a.force, walks=True)
    else:
        out = generation.sample_to_file(a.run, a.out, n=a.n, seed=a.seed, device=a.device, digit=a.digit,
                                        force=a.force)
    print(f"mnistgan: wrote {a.n} forgeries to {out}", file=sys.stderr)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .system import distributed
    from . import evaluation
    from .callbacks import progress_bar
    from .metrics import report

    if bool(a.run) == bool(a.images):
        raise MnistganError("give either a RUN folder or --images FILE.npy")
    metrics = [m.strip() for m in a.metrics.split(",")] if a.metrics else None
    place = distributed.init(a.device)  # under torchrun: sampling and features shared out
    ended_well = False
    try:
        if place.active and not a.run:
            raise MnistganError("under torchrun, evaluate samples a RUN; score --images in one process")
        common = {"out": a.out, "metrics": metrics, "dataset": a.dataset, "data_dir": a.data_dir,
                  "invert": a.invert, "device": a.device, "force": a.force, "progress": progress_bar,
                  "threads": a.threads}
        done = evaluation.run(a.run, a.n, a.seed, **common) if a.run else evaluation.images_file(a.images, **common)
        ended_well = True
    finally:
        # (together: the other ranks wait until rank 0 has measured and written; one leaving
        # the group while rank 0 still worked aborted in gloo's teardown, about one run in five)
        distributed.shutdown(together=ended_well)
    if done is None:  # another process of torchrun's group: rank 0 reports
        return 0
    print(report.table(done.result))
    for path in done.written[1:]:
        print(f"novelty figure: {path}")
    print(f"metrics written to {done.written[0]}", file=sys.stderr)
    return 0


def cmd_classifier(a: argparse.Namespace) -> int:
    from .callbacks import progress_bar
    from .metrics.classifier import train_classifier

    info = train_classifier(a.dataset, a.data_dir, epochs=a.epochs, seed=a.seed, out=a.out, progress=progress_bar,
                            force=a.force, invert=a.invert, channels=a.channels)
    print(f"{a.dataset} classifier: test accuracy {info['test_accuracy']:.4f}, sha256 {info['sha256']}, "
          f"{info['train_seconds']} s")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from .export import FORMATS, export

    default = "model" if a.format == "hub" else f"generator{FORMATS[a.format]}"
    out, card = export(a.run, a.out or default, a.format, a.force, dtype=a.dtype)
    print(f"mnistgan: wrote {out} ({a.format}) and its model card {card}", file=sys.stderr)
    return 0


def cmd_zoo(a: argparse.Namespace) -> int:
    from . import zoo

    if a.card:
        print((zoo.folder(a.card) / "README.md").read_text())
        return 0
    rows = zoo.entries()
    for r in rows:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in r.get("headline", {}).items())
        print(f"pretrained:{r['name']:<22} {r['preset']:<8} {r['dataset']:<14} "
              f"{'conditional' if r['conditional'] else 'unconditional':<14} {shown}")
    if not rows:
        print("the zoo is empty in this installation")
    else:
        print(f"\ndraw from one: mnistgan sample pretrained:{rows[0]['name']} --out digits.png "
              "(each model's card: mnistgan zoo --card NAME)")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise MnistganError(f"serve needs {' and '.join(missing)}: pip install \"mnistgan[serve]\"")
    if Path(a.runs).exists() and not Path(a.runs).is_dir():
        raise MnistganError(f"{a.runs}: not a folder of runs")
    if not Path(a.runs).is_dir():
        print(f"mnistgan: no folder {a.runs} yet: the page shows the pretrained models (its runs appear once "
              "you train into it)", file=sys.stderr)
    from .web.app import serve

    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"mnistgan: warning: listening on {a.host}: the page is reachable from other machines", file=sys.stderr)
    print(f"mnistgan: serving {a.runs} at http://{'[' + a.host + ']' if ':' in a.host else a.host}:{a.port}/ "
          "(Ctrl-C stops)", file=sys.stderr)
    serve(a.runs, a.host, a.port, yield_cpu=not a.full_priority, allow_hosts=a.allow_host)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .web.story import write_report

    print(f"mnistgan: wrote {write_report(a.run, a.out, a.force)}", file=sys.stderr)
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from .callbacks import progress_bar
    from .data import describe

    for line in describe(a.dataset, a.data_dir, fetch=(a.action == "fetch"), invert=a.invert, progress=progress_bar):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "sample": cmd_sample, "data": cmd_data, "evaluate": cmd_evaluate,
                "classifier": cmd_classifier, "export": cmd_export, "serve": cmd_serve, "zoo": cmd_zoo,
                "report": cmd_report}[args.command](args)
    except MnistganError as e:
        print(f"mnistgan: error: {_rank()}{e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a folder that vanished, ...: say which file and why
        where = f"{e.filename}: " if e.filename else ""
        after = "; the run's last checkpoint is intact" if args.command == "train" else ""
        print(f"mnistgan: error: {where}{e.strerror or e}{after}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnistgan: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # under torchrun: one line per failing process, not N tracebacks
        from .system.distributed import launched

        if not launched():
            raise
        print(f"mnistgan: error: {_rank()}{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 1


def _rank() -> str:
    """'rank R: ' under torchrun, so that each process's one line says whose it is."""
    return f"rank {os.environ['RANK']}: " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


if __name__ == "__main__":
    sys.exit(main())
