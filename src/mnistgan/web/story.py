"""A run as a story, in HTML: what the runs page lists of a run (`describe`), and the run
page itself (`story`), shared by the live page and the offline report. Images are named by
their path inside the run; `src` turns that into a URL (the server) or a data URI (the
report). Values are escaped (names in links URL-encoded too).

Nothing here reads outside the run folder, and a run's files are read only as regular files
inside it, up to a size (files.read_inside): a FIFO, a device or a link leading out is
treated as absent, so one hostile file cannot block the server or feed it without end.
Limits: config.json 1 MiB, metrics.json 4 MiB, a picture 64 MiB, and the last 8 MiB of
log.jsonl (a longer log shows its latest rows). Log rows that are not objects with a
whole, non-negative images_seen are skipped and counted, never an error for the page."""
from __future__ import annotations

import base64
import html
import json
import math
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from ..config import TrainConfig
from ..store import files, rundir
from ..store.rundir import LOG, read_metrics

STYLE = (Path(__file__).parent / "static" / "style.css")
SCRIPT = (Path(__file__).parent / "static" / "app.js")


CONFIG_LIMIT, PICTURE_LIMIT, LOG_LIMIT = 1 << 20, 64 << 20, 8 << 20  # (metrics.json: rundir.METRICS_LIMIT)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def url(name: str) -> str:
    """A run's name as one URL path segment (?, #, %, / and the rest encoded)."""
    return urllib.parse.quote(name, safe="")


def script_json(value: Any) -> str:
    """JSON for inside a <script> element: no '<', '>' or '&' that could end it or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def read(run: Path, rel: str, limit: int, tail: bool = False) -> bytes | None:
    """A file of the run as bytes (files.read_inside), or None when it is absent or refused."""
    try:
        return files.read_inside(run, run / rel, limit, tail)
    except OSError:
        return None


def readable(run: Path, rel: str) -> bool:
    """Whether rel names a regular file inside the run (checked without opening it)."""
    try:
        real = files.inside(run, run / rel)
        return real.is_file() and real.stat().st_size <= PICTURE_LIMIT
    except OSError:
        return False


def grids(run: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the run's fixed-noise grids the page may read (rundir.grids, each
    readable inside the run), by epoch."""
    return rundir.grids(run, lambda p: readable(run, str(p.relative_to(run))))


ROW_LIMIT = 4096  # bytes of one log row (a row the project writes is well under 1 KiB)
INDEX_LOG_LIMIT = 64 << 10  # the runs page reads this much of each run's log: its last rows


def _flat_object(line: str) -> bool:
    """Whether a log line can be a row (a flat JSON object of at most ROW_LIMIT bytes), told
    before it is parsed: so a crafted log costs memory in proportion to its bytes, never the
    many Python objects that nested brackets ask for."""
    return len(line) <= ROW_LIMIT and line.lstrip().startswith("{") and line.count("{") == 1 and "[" not in line


def log_rows(run: Path, limit: int = LOG_LIMIT) -> tuple[list[dict[str, Any]], int]:
    """(the log's rows the page can use, how many lines were skipped as damaged), from its
    last `limit` bytes."""
    data = read(run, LOG, limit, tail=True) or b""
    rows, skipped = [], 0
    lines = data.decode("utf-8", "replace").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            if not _flat_object(line):
                raise ValueError("not a row")
            row = files.loads(line)
        except ValueError:
            skipped += i != len(lines) - 1 or data.endswith(b"\n")  # (a torn last line is an append in progress)
            continue
        seen = row.get("images_seen") if isinstance(row, dict) else None
        if type(seen) is not int or seen < 0:
            skipped += 1
            continue
        rows.append(row)
    return rows, skipped


def describe(run: Path, log_limit: int = LOG_LIMIT) -> dict[str, Any]:
    """What the runs page shows of a run: preset, dataset, epochs, state, FID, thumbnail
    (from the last `log_limit` bytes of its log). A run whose config cannot be read is
    described with its error, not skipped."""
    info: dict[str, Any] = {"name": run.name, "error": None}
    raw = read(run, "config.json", CONFIG_LIMIT)
    try:
        if raw is None:
            raise ValueError("not a regular file of at most 1 MiB inside the run")
        config = TrainConfig.from_dict(files.loads(raw))
    except Exception as e:  # a damaged or foreign config.json: say so on the page
        return {**info, "error": f"config.json cannot be read: {e}", "state": "damaged"}
    rows, damaged = log_rows(run, log_limit)
    seen = rows[-1]["images_seen"] if rows else 0
    done = seen >= config.total_images
    fid = next((r["fid"] for r in reversed(rows) if _number(r.get("fid"))), None)
    try:
        value = (read_metrics(run) or {})["metrics"]["fid"]["fid"]
        fid = value if _number(value) else fid
    except (KeyError, TypeError):
        pass
    state = "training" if files.RunLock.held(run) else "finished" if done else "interrupted (resumable)"
    thumb = grids(run)
    return {**info, "preset": config.preset, "dataset": config.dataset, "config": config,
            "epochs_done": round(seen / max(config.images_per_epoch, 1), 2), "epochs": config.epochs,
            "images_seen": seen, "state": state, "fid": fid, "conditional": config.conditional,
            "num_classes": config.num_classes, "thumbnail": str(thumb[-1][1].relative_to(run)) if thumb else None,
            "rows": rows, "damaged_rows": damaged}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def data_uri(run: Path, rel: str) -> str:
    """The picture as a data URI, read as the server reads it (empty when refused)."""
    kind = {".png": "image/png", ".gif": "image/gif"}.get(Path(rel).suffix.lower())
    data = read(run, rel, PICTURE_LIMIT) if kind else None
    return f"data:{kind};base64,{base64.b64encode(data).decode()}" if data is not None else ""


def curves_svg(rows: list[dict], width: int = 640, height: int = 220) -> str:
    """D and G loss (left) and D(x), D(G(z)) (right) over images seen, as inline SVG."""
    if not rows:
        return "<p class=muted>No epoch has ended yet.</p>"
    xs = [r["images_seen"] for r in rows]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

    def panel(keys: list[tuple[str, str, str]], left: int, w: int, title: str) -> str:
        vals = [r[k] for r in rows for k, _, _ in keys if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
        lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1
        out = [f'<text x="{left + 4}" y="14" class=t>{esc(title)}</text>',
               f'<rect x="{left}" y="20" width="{w}" height="{height - 40}" class=frame />',
               f'<text x="{left + 2}" y="{height - 6}" class=ax>{lo:.3g} .. {hi:.3g}</text>']
        for n, (key, label, colour) in enumerate(keys):
            pts = [(left + (r["images_seen"] - x0) / (x1 - x0) * w, 20 + (1 - (r[key] - lo) / (hi - lo)) * (height - 40))
                   for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if len(pts) == 1:
                out.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="3" fill="{colour}" />')
            elif pts:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                           + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '" />')
            out.append(f'<text x="{left + w - 90}" y="{36 + 14 * n}" fill="{colour}" class=ax>{esc(label)}</text>')
        return "".join(out)

    half = width // 2 - 20
    body = (panel([("d_loss", "D loss", "#d62728"), ("g_loss", "G loss", "#1f77b4")], 10, half, "losses")
            + panel([("d_real", "D(x)", "#2ca02c"), ("d_fake", "D(G(z))", "#ff7f0e")], half + 30, half,
                    "the police officer's verdicts"))
    return (f'<svg class=curves viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="training curves">{body}</svg>')


def metrics_table(run: Path) -> str:
    from ..metrics import calibration, flatten

    result = read_metrics(run)
    try:
        values = {k: v for k, v in flatten(result).items() if _number(v)}
    except (KeyError, TypeError, AttributeError):
        return (f"<p class=muted>Not measured yet: <code>mnistgan evaluate {esc(run)}</code> writes "
                "metrics.json.</p>")
    refs = [(name, flatten(r)) for name, r in calibration(result.get("dataset")).get("references", {}).items()]
    head = "".join(f"<th>{esc(name)}</th>" for name, _ in refs)
    body = "".join(
        f"<tr><td>{esc(k)}</td><td>{v:.4g}</td>" + "".join(
            f"<td>{ref[k]:.4g}</td>" if k in ref else "<td></td>" for _, ref in refs) + "</tr>"
        for k, v in values.items())
    net = result.get("feature_network") if isinstance(result.get("feature_network"), dict) else {}
    return (f"<p class=muted>{esc(result.get('n'))} forgeries against the {esc(result.get('dataset'))} test split; "
            f"features: {esc(net.get('name'))}. Beside each number, the same metric for reference image sets "
            f"(calibration).</p><table class=metrics><tr><th>metric</th><th>this run</th>{head}</tr>{body}</table>")


def story(run: Path, src: Callable[[str], str], live: bool = False) -> str:
    """The run page's body: forgeries epoch by epoch (slider), the progress sheet, curves,
    real beside forged, the novelty figure and the metrics. `live`: the page follows the
    run (app.js polls and replaces this fragment)."""
    d = describe(run)
    if d["error"]:
        return f"<section><h2>{esc(run.name)}</h2><p class=error>{esc(d['error'])}</p></section>"
    listed = grids(run)
    epochs, found = [e for e, _ in listed], [p for _, p in listed]
    first = (f'<figure><img id=grid class=pixel alt="fixed-noise forgeries" src="{esc(src(str(found[-1].relative_to(run))))}">'
             f'<figcaption>Forgeries of one fixed noise batch at epoch <b id=grid-epoch>{epochs[-1]}</b>'
             f'{"; each row a class" if d["conditional"] else ""}.</figcaption></figure>'
             f'<input id=epoch type=range min=0 max={len(found) - 1} value={len(found) - 1} aria-label="epoch">'
             f'<script type="application/json" id=grid-sources>'
             + script_json([[e, src(str(p.relative_to(run)))] for e, p in zip(epochs, found)])
             + "</script>") if found else "<p class=muted>No epoch has ended yet.</p>"

    def figure(name: str, caption: str) -> str:
        if not readable(run, name):
            return ""
        return f'<figure><img alt="{esc(caption)}" src="{esc(src(name))}"><figcaption>{esc(caption)}</figcaption></figure>'

    c = d["config"]
    return (
        f'<section class=story data-run="{esc(run.name)}" data-epochs="{len(found)}" data-live="{int(live)}">'
        f"<h2>{esc(run.name)}</h2>"
        f"<p>Preset <b>{esc(c.preset)}</b> on <b>{esc(c.dataset)}</b>: {d['epochs_done']} of {c.epochs} epochs "
        f"({d['images_seen']:,} images seen), <span class=state>{esc(d['state'])}</span>"
        + (f", FID {d['fid']:.2f}" if isinstance(d["fid"], (int, float)) else "") + "."
        + (f" {d['damaged_rows']} damaged log rows were skipped." if d["damaged_rows"] else "") + "</p>"
        "<h3>The counterfeiter learns</h3>" + first
        + figure("progress.png", "The forging process on one sheet: one row per strip epoch")
        + "<h3>The contest</h3>" + curves_svg(d["rows"])
        + "<h3>Real beside forged</h3>" + figure("real_vs_fake.png", "Real images (left) beside forgeries (right)")
        + figure("novelty.png", "Forgeries beside their nearest training images")
        + "<h3>Measured</h3>" + metrics_table(run)
        + "</section>")


def page(title: str, body: str, nav: str = "", inline: bool = False) -> str:
    """A whole page; `inline` puts the style and script inside it (the offline report)."""
    style = f"<style>{STYLE.read_text()}</style>" if inline else '<link rel=stylesheet href="/static/style.css">'
    script = f"<script>{SCRIPT.read_text()}</script>" if inline else '<script src="/static/app.js" defer></script>'
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f'<meta name=viewport content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f'<link rel=icon href="data:,">{style}{script}</head>'
            f"<body><header><h1>mnistgan</h1><p class=tag>the counterfeiter and the police officer</p>{nav}</header>"
            f"<main>{body}</main></body></html>")


def write_report(run: str | Path, out: str | Path, force: bool = False) -> Path:
    """Writes report(run) to out (atomically; an existing file only with force)."""
    from ..errors import ConfigError

    run, out = Path(run), Path(out)
    if not (run / "config.json").is_file():
        raise ConfigError(f"{run} is not a run folder (no config.json)")
    files.check_outputs([out], force)
    files.atomic_write_bytes(out, report(run).encode(), overwrite=force)
    return out


def report(run: Path) -> str:
    """The run's story as one self-contained HTML file: images inlined, style and script too."""
    return page(f"mnistgan report: {run.name}", story(run, lambda rel: data_uri(run, rel)), inline=True)
