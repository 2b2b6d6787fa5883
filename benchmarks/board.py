"""The time-to-quality board: candidates trained to fixed CPU budgets, one after another in
one sitting, each measured at every budget on the way, so that every row is a curve of the
headline metric against seconds of training (pictures and checkpoints excluded).

    python benchmarks/board.py --dataset mnist --runs "best" "best lr=5e-4" --at 150,300,600
    python benchmarks/board.py --dataset stacked-mnist --runs "r3gan" --at 300,900,1800,3600
    python benchmarks/board.py --dataset mnist --plot docs/board-mnist.png --table   (no training: redraw)

Each run trains to the first budget (`mnistgan train ... --set max_seconds=T`), is evaluated
(`mnistgan evaluate`: MNIST and Fashion-MNIST FID, precision and recall on 10,000
forgeries; Stacked-MNIST modes and reverse KL on 26,000), then resumes to the next budget
(`--resume RUN --set max_seconds=T'`: the same run continued exactly, so the curve is one
run's) and is evaluated again. Results are added to --results (JSON, one row per run and
budget with its command, the machine line and the date), from which --table prints the
markdown table and --plot draws the curves of every row of the dataset. Nothing else may run
meanwhile: the budgets are wall-clock seconds of this machine's training.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402

from mnistgan.store import checkpoint  # noqa: E402

HEADLINE = {"stacked-mnist": ("modes", "kl"), "mnist": ("fid", "recall"), "fashion-mnist": ("fid", "recall")}


def measure(run: Path, dataset: str, data_dir: str | None, n: int | None, extra: tuple[str, ...] = ()) -> dict:
    """The headline metrics of the run's newest checkpoint, by `mnistgan evaluate`; with
    "parzen" in extra also the Parzen estimate (grey sets), with "digits" the worst share of
    `--digit k` forgeries read as k (conditional runs: build_zoo.digit_accuracy, the zoo
    cards' own measure, 1,000 a class)."""
    out = run / "board-metrics.json"
    metrics = "modes" if dataset == "stacked-mnist" else "fid,prdc" + (",parzen" if "parzen" in extra else "")
    cmd = [sys.executable, "-m", "mnistgan", "evaluate", str(run), "--metrics", metrics, "--out", str(out), "--force"]
    cmd += ["--data-dir", data_dir] if data_dir else []
    cmd += ["--n", str(n)] if n else []
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    m = json.loads(out.read_text())["metrics"]
    if dataset == "stacked-mnist":
        return {"modes": m["modes"]["modes"], "kl": m["modes"]["kl"]}
    found = {"fid": m["fid"]["fid"], "precision": m["prdc"]["precision"], "recall": m["prdc"]["recall"]}
    if "parzen" in m:
        found["parzen"] = m["parzen"]["parzen"]["mean"]
    if "digits" in extra and json.loads((run / "config.json").read_text()).get("conditional"):
        from build_zoo import digit_accuracy

        shares = digit_accuracy(run, dataset)
        found["digit_worst"], found["digit_worst_k"] = min(shares), shares.index(min(shares))
    return found


def trained_seconds(run: Path) -> float | None:
    """Seconds of training a kept run has behind its newest checkpoint, or None (no run)."""
    found = checkpoint.list_checkpoints(run / "checkpoints") if (run / "checkpoints").is_dir() else []
    return float(checkpoint.read_header(found[-1])["train_seconds"]) if found else None


def run_fields() -> set[str]:
    """What a run's own start sets beside its preset and settings: the data and its output
    (config's concerns of those names), the budget and the device. Not the candidate's values,
    so a kept run is not told apart from its candidate by them."""
    from mnistgan.config import CONCERNS

    return {*CONCERNS["data"], *CONCERNS["output"], "epochs", "max_images", "max_seconds", "device"}


def changed_values(run: Path, spec: str) -> dict[str, tuple]:
    """The values in which a kept run's config.json differs from what its candidate ("PRESET
    KEY=VALUE ...") gives now ({name: (then, now)}): a preset changed since the run began, so
    continuing it would add the old setting's figures to the new one's curve."""
    from mnistgan.config import TrainConfig, from_preset, parse_sets

    preset, *sets = spec.split()
    now = from_preset(preset, parse_sets(sets)).to_dict()
    then = TrainConfig.from_dict(json.loads((run / "config.json").read_text())).to_dict()
    ignored = run_fields()
    return {k: (then[k], now[k]) for k in now if k not in ignored and then[k] != now[k]}


def precision_of(run: Path) -> str:
    """The precision a run trained in here (its setting, auto resolved on this machine)."""
    import torch

    from mnistgan.system import runtime

    config = json.loads((run / "config.json").read_text())
    bf16 = runtime.bf16_autocast(config.get("precision", "fp32"), torch.device("cpu"), config["model"])
    return "bf16" if bf16 else "fp32"


def continued(rows: list[dict], spec: str, dataset: str, machine: str) -> dict:
    """The curve a kept run continues: the "curve" and "date" of the newest row of the same
    candidate, data and machine (so that its later budgets join its earlier ones, also past
    midnight and beside another sitting's row of the same candidate), or {} when there is none."""
    found = [r for r in rows if (r["run"], r["dataset"], r["machine"]) == (spec, dataset, machine)]
    return {k: found[-1][k] for k in ("curve", "date") if k in found[-1]} if found else {}


def curve(spec: str, dataset: str, budgets: list[float], folder: Path, data_dir: str | None,
          n: int | None, machine: str, extra: tuple[str, ...] = (), before: list[dict] | None = None,
          keep: Callable[[dict], None] | None = None) -> list[dict]:
    """One candidate ("PRESET KEY=VALUE ..."), trained and measured at each budget in turn;
    `before`: the rows already kept, where a continued run finds the curve it belongs to;
    `keep`: called with each row as soon as it is measured (so a crash or a stop during a
    later budget loses none of the earlier ones)."""
    preset, *sets = spec.split()
    run = folder / ("-".join(spec.split()).replace("=", "") + "-" + dataset)
    command = (f"python benchmarks/board.py --dataset {dataset} --runs \"{spec}\" "
               f"--at {','.join(f'{b:g}' for b in budgets)}" + "".join(f" --{e}" for e in extra))
    done = trained_seconds(run)
    if done is not None and (changed := changed_values(run, spec)):
        print(f"{spec}: {run} was trained with other values than the candidate has now "
              f"({', '.join(f'{k} {a} -> {b}' for k, (a, b) in changed.items())}): started afresh", flush=True)
        done = None
    if done is None and run.exists():
        shutil.rmtree(run)
    elif done is not None:  # a kept run continues: only the budgets beyond what it has trained
        print(f"{spec}: continuing {run} from {done:.0f} s of training", flush=True)
        budgets = [b for b in budgets if b > done]
        command += f" --keep {folder}"
    now = datetime.datetime.now().replace(microsecond=0)
    same = {"curve": now.isoformat(), "date": now.date().isoformat()}
    if done is not None:
        same.update(continued(before or [], spec, dataset, machine))
    mnistgan = [sys.executable, "-m", "mnistgan", "train", "--no-progress"]
    settings = [a for s in sets for a in ("--set", s)]
    rows = []
    for i, seconds in enumerate(budgets):
        if i == 0 and done is None:
            cmd = [*mnistgan, "--preset", preset, "--dataset", dataset, "--out", str(run), "--epochs", "1000", *settings]
            cmd += ["--data-dir", data_dir] if data_dir else []
        else:
            cmd = [*mnistgan, "--resume", str(run)]
        subprocess.run([*cmd, "--set", f"max_seconds={seconds}"], check=True, stdout=subprocess.DEVNULL)
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
        row = {"dataset": dataset, "run": spec, "seconds": seconds, "trained_s": round(trained_seconds(run), 1),
               "images": log[-1]["images_seen"],
               "epochs": log[-1]["images_seen"] / log[-1]["images_per_epoch"],
               "precision": precision_of(run), **measure(run, dataset, data_dir, n, extra), "machine": machine,
               **same, "command": command}
        rows.append(row)
        if keep is not None:
            keep(row)
        print(line(row), flush=True)
    return rows


def save(rows: list[dict], row: dict, results: Path) -> None:
    """Adds a measured row to the kept ones and writes them all, whole or not at all."""
    rows.append(row)
    results.parent.mkdir(parents=True, exist_ok=True)
    part = results.with_suffix(".part")
    part.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(part, results)


def line(row: dict) -> str:
    a, b = HEADLINE[row["dataset"]]
    fa = f"{row[a]:d}" if isinstance(row[a], int) else f"{row[a]:.3f}"
    more = (f"  parzen {row['parzen']:.1f}" if "parzen" in row else "") + \
        (f"  worst --digit k {row['digit_worst']:.3f} (k={row['digit_worst_k']})" if "digit_worst" in row else "")
    return (f"{row['run']:<36}{row['seconds']:>7g} s {row['images']:>10,} images {row['epochs']:>6.2f} ep  "
            f"{a} {fa}  {b} {row[b]:.3f}{more}")


def curves(rows: list[dict], dataset: str) -> dict[tuple[str, str, str, str], dict[float, dict]]:
    """One dataset's rows as curves: (run, machine line, date, curve) -> {budget: row}, budgets
    ascending. A row's "curve" (when its run began) tells apart two sittings' runs of one
    candidate on one day; rows written before it was kept have their date only."""
    out: dict[tuple[str, str, str, str], dict[float, dict]] = {}
    for r in sorted((r for r in rows if r["dataset"] == dataset), key=lambda r: r["seconds"]):
        out.setdefault((r["run"], r["machine"], r["date"], r.get("curve", "")), {})[r["seconds"]] = r
    return out


def extras(row: dict) -> str:
    """A cell's measures beyond the headline pair, when the row has them (--parzen, --digits)."""
    return ((f"; Parzen {row['parzen']:.0f}" if "parzen" in row else "") +
            (f"; worst `--digit k` {row['digit_worst']:.3f}" if "digit_worst" in row else ""))


def table(rows: list[dict], dataset: str) -> str:
    """The markdown table of one dataset's rows: one line a run, one column a budget."""
    a, b = HEADLINE[dataset]
    found = curves(rows, dataset)
    budgets = sorted({s for points in found.values() for s in points})
    head = "| run | machine, date | " + " | ".join(f"{s:g} s: {a} / {b}" for s in budgets) + " |"
    out = [head, "|" + "---|" * (2 + len(budgets))]
    for (run, machine, date, _), points in found.items():
        cells = [(f"{r[a]} / {r[b]:.3f}" if isinstance(r[a], int) else f"{r[a]:.2f} / {r[b]:.3f}") + extras(r)
                 if (r := points.get(s)) else "" for s in budgets]
        out.append(f"| `{run}` | {cpu_of(machine)}, {date} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def cpu_of(machine: str) -> str:
    """The CPU model and its vector units: the machine line up to its core count."""
    return machine.removeprefix("machine: ").split("; ")[0].rsplit(", ", 1)[0]


def kind_of(machine: str) -> str:
    """A short name for the machine's kind, for a plot's legend: the CPU model without its
    trademarks and its widest vector unit ("AMD EPYC avx512_bf16", "Intel Xeon avx512f")."""
    cpu = cpu_of(machine)
    name, _, units = cpu.partition(" (")
    name = name.replace("(R)", "").replace("(TM)", "").replace(" Processor", "").replace(" CPU", "")
    widest = units.rstrip(")").split(", ")[-1] if units else ""
    return " ".join(f"{name} {widest}".split())


def plot(rows: list[dict], dataset: str, path: Path) -> None:
    """The headline metrics against seconds of training, one line a run (matplotlib, headless)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    a, b = HEADLINE[dataset]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, ((run, machine, date, _), points) in enumerate(curves(rows, dataset).items()):
        label = f"{run} ({kind_of(machine)}, {date})"  # one candidate's runs on two kinds or days stay apart
        style = {"color": plt.cm.tab20(i % 20), "linestyle": ("-", "--", ":")[i // 20 % 3], "marker": "o"}
        for ax, metric in zip(axes, (a, b)):
            ax.plot(list(points), [r[metric] for r in points.values()], label=label, **style)
    for ax, metric in zip(axes, (a, b)):
        ax.set_xlabel("seconds of training (2-core CPU)")
        ax.set_ylabel({"fid": "FID (lower is better)", "recall": "recall", "modes": "modes (of 1,000)",
                       "kl": "reverse KL (lower is better)"}[metric])
        if metric in ("fid", "kl"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    # beside the plots, not over them: a board collects many curves
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{dataset}: quality against training time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=sorted(HEADLINE))
    p.add_argument("--runs", nargs="*", default=[], help='"PRESET KEY=VALUE ..." each; none: only --table/--plot')
    p.add_argument("--at", default="150,300,600", help="budgets in seconds of training, ascending")
    p.add_argument("--data-dir", default=None, help="the dataset's folder (default: mnistgan's own search)")
    p.add_argument("--n", type=int, help="forgeries per evaluation (default: evaluate's: 10,000; stacked 26,000)")
    p.add_argument("--digits", action="store_true", help="conditional runs: also the worst share of --digit k read as k")
    p.add_argument("--parzen", action="store_true", help="grey sets: also the Parzen estimate")
    p.add_argument("--results", default=str(HERE / "screens" / "board.json"), help="rows are added here")
    p.add_argument("--keep", help="keep the runs in this folder (default: a temporary one)")
    p.add_argument("--table", action="store_true", help="print the dataset's markdown table from --results")
    p.add_argument("--plot", help="draw the dataset's curves from --results into this PNG")
    a = p.parse_args()
    budgets = sorted(float(s) for s in a.at.split(","))
    if a.data_dir is None and a.dataset in ("mnist", "stacked-mnist"):
        a.data_dir = os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist"))
    results = Path(a.results)
    rows = json.loads(results.read_text()) if results.exists() else []
    machine = describe()
    if a.runs:
        print(machine, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(a.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        extra = tuple(e for e in ("parzen", "digits") if getattr(a, e))
        for spec in a.runs:
            curve(spec, a.dataset, budgets, folder, a.data_dir, a.n, machine, extra, rows,
                  keep=lambda row: save(rows, row, results))
    if a.table:
        print(table(rows, a.dataset))
    if a.plot:
        plot(rows, a.dataset, Path(a.plot))


if __name__ == "__main__":
    main()
