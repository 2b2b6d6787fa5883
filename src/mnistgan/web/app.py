"""`mnistgan serve`: a local web app over a folder of runs (FastAPI, served by uvicorn).

FastAPI + a static page rather than Gradio: the pages are a run's own story (one template
shared with `mnistgan report`), every asset is served from the package (no CDN: it works
offline), and the dependency is two small packages instead of Gradio's large tree.

Pages: / (the runs, and the package's pretrained models: all there is before you train),
/runs/NAME (a run's story, following it while it trains; for pretrained:NAME its card),
/runs/NAME/forge (new forgeries, a digit picker, a latent walk), /runs/NAME/police (draw or
drop an image, get D's verdict and the classifier's guess). JSON and images under /api/.

Safe by default: only direct sub-folders of RUNS_DIR that are runs are served, and only
their pictures; any path that resolves outside (.., %2e%2e, absolute paths, symlinks) is a
404, and a run's files are read only as regular files inside it, up to a size (story.py).
Every request has limits (a 4xx with a message beyond them). Checkpoints are read with
safetensors (nothing is unpickled); a damaged one is an error for that run alone. Requests
whose Host header is not this machine's loopback name (or the --host given, or an
--allow-host name) are refused, so a page elsewhere cannot reach the server through DNS
rebinding. The event loop does no CPU work: forging, walks and verdicts run one at a time
on a worker thread (`Work`), at most QUEUE in hand; more is a 503 that says so.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request  # the serve extra: this module is imported by serve only
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..store import checkpoint as ckpt
from ..store import files
from .. import generation, images
from ..errors import MnistganError
from ..models import each_logit
from ..store import modelfolder
from .. import zoo
from . import story

MAX_FORGE = 256              # forgeries one request may ask for
MAX_WALK = 32                # steps of a latent walk
MAX_UPLOAD = 2 * 1024 * 1024  # bytes of an image sent to the police officer
UPLOAD_TYPES = {"image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp"}
SERVED = {".png", ".gif"}    # the only files of a run the server hands out
WORKERS, QUEUE = 1, 32       # computations at once (forge, walk, verdict), and how many may be in hand (computing or waiting)
MAX_UPLOAD_PIXELS = 4_000_000  # pixels an uploaded image may decode to (read from its header first)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
HOST_NAME = re.compile(r"\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?", re.ASCII)
STATIC = Path(__file__).parent / "static"


class Loaded:
    """A run's networks, loaded once and reused until a newer checkpoint appears: from the
    newest checkpoint that loads (checkpoint.open_checkpoint), so a damaged newest one falls
    back to the one before, as sample and --resume do. (A pretrained model: its folder's
    weights, which never change.)"""

    def __init__(self, newest: Path, source: Path | str | None = None):
        self.newest, self.mtime = newest, newest.stat().st_mtime_ns
        nets = generation.load_networks(newest.parent.parent if source is None else source, "cpu")
        self.path, self.G, self.D, self.config = nets.path, nets.G, nets.D, nets.config
        self.net = None  # the dataset's classifier, loaded on the first verdict
        self.lock = threading.Lock()


class Work:
    """The server's CPU work, off the event loop: at most WORKERS computations at once on
    worker threads, at most QUEUE requests in hand (computing or waiting; a waiting one holds
    only its request), and a 503 with a message beyond that. So pages stay answered while
    forgeries are drawn, and memory and work stay bounded however many requests arrive
    together (docs/MEASUREMENTS.md, "The web page under load")."""

    def __init__(self, workers: int = WORKERS, queue: int = QUEUE):
        self.slots = asyncio.Semaphore(workers)  # (bound to the server's loop on first use)
        self.queue, self.waiting = queue, 0

    async def run(self, fn, *args):
        if self.waiting >= self.queue:
            raise HTTPException(503, f"the server is busy ({self.waiting} requests in hand): try again shortly")
        self.waiting += 1
        try:
            async with self.slots:
                return await run_in_threadpool(fn, *args)
        finally:
            self.waiting -= 1


class Site:
    """What every page shares: the runs folder, its rules, and the networks loaded so far."""

    def __init__(self, runs_dir: str | Path):
        self.root = Path(runs_dir).resolve()
        self.cache: dict[str, Loaded] = {}
        self.cache_lock = threading.Lock()
        self.work = Work()

    def run_dir(self, name: str) -> Path:
        """The run NAME: a direct sub-folder of RUNS_DIR holding config.json, or a 404; for
        pretrained:NAME the zoo's model folder."""
        if zoo.is_pretrained(name):
            try:
                return zoo.resolve(name)
            except MnistganError:
                raise HTTPException(404, "no such pretrained model") from None
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
            raise HTTPException(404, "no such run")
        path = (self.root / name).resolve()
        if path.parent != self.root or not (path / "config.json").is_file():
            raise HTTPException(404, "no such run")
        return path

    def loaded(self, name: str) -> Loaded:
        """The run's networks, from its newest loadable checkpoint, loaded once until a newer one appears."""
        run = self.run_dir(name)
        if zoo.is_pretrained(name):
            with self.cache_lock:
                if name not in self.cache:
                    self.cache[name] = Loaded(run / modelfolder.WEIGHTS, name)
                return self.cache[name]
        found = ckpt.list_checkpoints(run / "checkpoints")
        if not found:
            raise HTTPException(409, f"run {name} has no checkpoint yet")
        newest = found[-1]
        with self.cache_lock:
            have = self.cache.get(name)
            if have is None or have.newest != newest or have.mtime != newest.stat().st_mtime_ns:
                try:
                    self.cache[name] = Loaded(newest)
                except MnistganError as e:  # nothing loads: an error for this run, the server goes on
                    raise HTTPException(409, f"run {name}: {e}") from None
            return self.cache[name]

    def runs(self) -> list[dict[str, Any]]:
        out = []
        if not self.root.is_dir():  # (serve with no runs yet: the pretrained models alone)
            return out
        for path in sorted(p for p in self.root.iterdir() if p.is_dir() and (p / "config.json").is_file()):
            if path.resolve().parent == self.root:  # a symlink leading out is not a run here
                out.append(story.describe(path, story.INDEX_LOG_LIMIT))  # (bounded: its last rows)
        return out


def picture_url(name: str, rel: str) -> str:
    """Where the server hands out picture rel (a path inside run NAME), both URL-encoded."""
    return f"/files/{story.url(name)}/{urllib.parse.quote(rel)}"


def nav(name: str | None = None) -> str:
    links = ['<a href="/">runs</a>']
    if name:
        q = story.esc(story.url(name))
        links += [f'<a href="/runs/{q}">story</a>', f'<a href="/runs/{q}/forge">forge</a>',
                  f'<a href="/runs/{q}/police">police officer</a>']
    return "<nav>" + " · ".join(links) + "</nav>"


def allowed_hosts(host: str = "127.0.0.1", extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The Host header values the server answers: the loopback names, the address it listens
    on, and `extra` (--allow-host; '*' answers any). Listening on every address (0.0.0.0, ::),
    this machine's own names and addresses too."""
    import socket

    for name in extra:  # (Starlette takes '*' or '*.domain'; any other '*' fails each request)
        if not HOST_NAME.fullmatch(name):
            raise MnistganError(f"--allow-host {name!r}: give a host name or address, '*.domain' for its "
                                "sub-domains, or '*' for any")
    hosts = {*LOOPBACK, *extra}
    if host in ("0.0.0.0", "::", ""):
        names = {socket.gethostname(), socket.getfqdn()}
        with contextlib.suppress(OSError):
            names |= {info[4][0] for name in list(names) for info in socket.getaddrinfo(name, None)}
        hosts |= names
    else:
        hosts.add(host)
    # (the middleware compares the Host header's name, lower-case, IPv6 addresses in brackets)
    return sorted({(f"[{h}]" if ":" in h and not h.startswith("[") else h).lower() for h in hosts})


# Requests that cost CPU (forge, walk, verdict) must come from the page itself: a browser
# says where a request comes from (Sec-Fetch-Site; Origin on a POST), so that another site
# cannot make the local server forge with <img src="http://127.0.0.1:8000/api/...">. Tools
# that send neither (curl, scripts) are served as before.
SAME = ("same-origin", "none")


def check_same_origin(request: Request) -> None:
    """A 403 for a CPU-costly request that a browser says comes from another site."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    foreign_origin = origin is not None and urllib.parse.urlsplit(origin).netloc.lower() != host.lower()
    if (site is not None and site.lower() not in SAME) or foreign_origin:
        raise HTTPException(403, "this request comes from another site; forge, walk and verdict answer the "
                                 "mnistgan page itself (open it at this address)")


def create_app(runs_dir: str | Path, hosts: list[str] | None = None):
    """The FastAPI app serving RUNS_DIR: the runs page, each run's story, forge and police
    pages; answering only the Host header values in `hosts` (default: allowed_hosts())."""
    site = Site(runs_dir)
    app = FastAPI(title="mnistgan", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or allowed_hosts())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def _message(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return HTMLResponse(story.page("mnistgan: error", f"<p class=error>{story.esc(exc.detail)}</p>", nav()),
                            status_code=exc.status_code)

    for pages in (_runs_pages, _story_pages, _forge_pages, _police_pages):
        pages(app, site)
    return app


def _runs_pages(app: FastAPI, site: Site) -> None:
    """/ : the runs, one row each (a damaged run shows its error)."""
    root = site.root

    @app.get("/", response_class=HTMLResponse)
    def index():
        rows = []
        for d in site.runs():
            name, link = story.esc(d["name"]), story.esc(story.url(d["name"]))
            if d["error"]:
                rows.append(f"<tr><td>{name}</td><td colspan=6 class=error>{story.esc(d['error'])}</td></tr>")
                continue
            thumb = (f'<img class="thumb pixel" alt="" src="{story.esc(picture_url(d["name"], d["thumbnail"]))}">'
                     if d["thumbnail"] else "")
            fid = f"{d['fid']:.2f}" if isinstance(d["fid"], (int, float)) else "—"
            rows.append(f'<tr><td><a href="/runs/{link}">{name}</a></td><td>{thumb}</td><td>{story.esc(d["preset"])}</td>'
                        f"<td>{story.esc(d['dataset'])}</td><td>{d['epochs_done']} / {d['epochs']}</td>"
                        f"<td>{story.esc(d['state'])}</td><td>{fid}</td></tr>")
        table = ("<table class=runs><tr><th>run</th><th></th><th>preset</th><th>dataset</th><th>epochs</th>"
                 "<th>state</th><th>FID</th></tr>" + "".join(rows) + "</table>") if rows else \
            f"<p class=muted>No runs in {story.esc(root)} yet: <code>mnistgan train --out {story.esc(root)}/NAME</code>.</p>"
        runs = f"<h2>Runs in {story.esc(root)}</h2>{table}"
        pretrained = f"<h2>Pretrained models</h2>{_zoo_table()}"
        # before any run of yours, the models that need no training come first
        return story.page("mnistgan: runs", pretrained + runs if not rows else runs + pretrained, nav())


def _zoo_table() -> str:
    """The package's pretrained models, each with its forge and police-officer pages."""
    rows = []
    for r in zoo.entries():
        q = story.esc(story.url(zoo.PREFIX + r["name"]))
        shown = ", ".join(f"{story.esc(k)} {v:.4g}" for k, v in r.get("headline", {}).items())
        rows.append(f'<tr><td><a href="/runs/{q}">{story.esc(r["name"])}</a></td><td>{story.esc(r["preset"])}</td>'
                    f'<td>{story.esc(r["dataset"])}</td><td>{shown}</td>'
                    f'<td><a href="/runs/{q}/forge">forge</a> · <a href="/runs/{q}/police">police officer</a></td></tr>')
    if not rows:
        return "<p class=muted>This installation has no pretrained models.</p>"
    return ("<table class=runs><tr><th>model</th><th>preset</th><th>dataset</th><th>measured</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _describe(site: "Site", name: str) -> dict[str, Any]:
    """story.describe's fields the forge page reads, for a run or a pretrained model."""
    if zoo.is_pretrained(name):
        config = modelfolder.metadata(site.run_dir(name))["config"]
        return {"error": None, "conditional": bool(config["conditional"]), "num_classes": config["num_classes"]}
    return story.describe(site.run_dir(name))


def _story_pages(app: FastAPI, site: Site) -> None:
    """/runs/NAME (the run's story, following it while it trains), its fragment and status, its pictures."""

    def src(name: str):
        return lambda rel: picture_url(name, rel)

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_page(name: str):
        run = site.run_dir(name)
        if zoo.is_pretrained(name):  # no story to tell: the model's card
            card = files.read_inside(run, run / modelfolder.CARD, story.PICTURE_LIMIT).decode("utf-8", "replace")
            body = f"<h2>{story.esc(name)}</h2><pre class=card>{story.esc(card)}</pre>"
            return story.page(f"mnistgan: {name}", body, nav(name))
        return story.page(f"mnistgan: {name}", story.story(run, src(name), live=True), nav(name))

    @app.get("/runs/{name}/fragment", response_class=HTMLResponse)
    def fragment(name: str):
        run = site.run_dir(name)
        return story.story(run, src(name), live=True)

    @app.get("/api/runs/{name}/status")
    def status(name: str):
        run = site.run_dir(name)
        d = story.describe(run)
        return {"epochs": len(story.grids(run)), "images_seen": d.get("images_seen", 0), "state": d.get("state")}

    @app.get("/files/{name}/{rel:path}")
    def files_of(name: str, rel: str):
        run = site.run_dir(name)
        if "\x00" in rel or Path(rel).suffix.lower() not in SERVED:
            raise HTTPException(404, "no such file")
        try:  # a regular file inside the run, up to its size limit (story.PICTURE_LIMIT)
            data = files.read_inside(run, run / rel, story.PICTURE_LIMIT)
        except OSError:
            raise HTTPException(404, "no such file") from None
        kind = "image/gif" if Path(rel).suffix.lower() == ".gif" else "image/png"
        return Response(data, media_type=kind, headers={"Cache-Control": "no-cache"})


def _labels_check(config, digit: int | None):
    try:
        generation.class_labels(config, 1, digit)
    except MnistganError as e:
        raise HTTPException(422, str(e).replace("--digit", "digit")) from None


def _forge_pages(app: FastAPI, site: Site) -> None:
    """/runs/NAME/forge: new forgeries, a digit picker, a latent walk (images under /api/)."""

    @app.get("/runs/{name}/forge", response_class=HTMLResponse)
    def forge_page(name: str):
        d = _describe(site, name)
        if d["error"]:
            raise HTTPException(409, d["error"])
        classes = d["num_classes"] if d["conditional"] else 0
        picker = ("<label>class <select id=digit><option value=''>all in turn</option>"
                  + "".join(f"<option>{k}</option>" for k in range(classes)) + "</select></label>") if classes else ""
        body = (f"<section class=forge data-run='{story.esc(name)}'><h2>Forge from {story.esc(name)}</h2>"
                f"<form id=forge-form><label>forgeries <input id=n type=number min=1 max={MAX_FORGE} value=64></label>"
                f"<label>seed <input id=seed type=number min=0 value=0></label>{picker}"
                "<button type=submit>Forge</button> <a id=download-png download=forgeries.png href='#'>PNG</a> "
                "<a id=download-npy download=forgeries.npy href='#'>.npy</a></form>"
                "<p id=forge-error class=error></p><img id=forged class=pixel alt='forgeries'>"
                "<h3>A walk through the noise</h3><p class=muted>Between two noise vectors drawn from the seed: "
                "slide to move from one forgery to the other.</p>"
                "<label>position <input id=t type=range min=0 max=100 value=0 aria-label='position on the walk'></label>"
                "<img id=between class=pixel alt='the forgery at this point of the walk'>"
                f"<p><label>steps <input id=steps type=range min=2 max={MAX_WALK} value=12></label></p>"
                "<img id=walk class=pixel alt='latent walk'></section>")
        return story.page(f"mnistgan: forge from {name}", body, nav(name))

    @app.get("/api/runs/{name}/forge", dependencies=[Depends(check_same_origin)])
    async def forge(name: str, n: int = 64, seed: int = 0, digit: int | None = None, format: str = "png"):
        if not 1 <= n <= MAX_FORGE:
            raise HTTPException(422, f"n must be 1..{MAX_FORGE} forgeries a request, got {n}")
        if seed < 0 or seed >= 2**63:
            raise HTTPException(422, f"seed must be 0..2**63-1, got {seed}")
        if format not in ("png", "npy"):
            raise HTTPException(422, f"format must be png or npy, got {format!r}")

        def draw() -> Response:
            m = site.loaded(name)
            _labels_check(m.config, digit)
            with m.lock:
                x = generation.forge(m.G, m.config, n, seed, digit)
            buf = io.BytesIO()
            if format == "npy":
                np.save(buf, images.public(x), allow_pickle=False)  # (as `sample` writes them)
                return Response(buf.getvalue(), media_type="application/octet-stream",
                                headers={"Content-Disposition": "attachment; filename=forgeries.npy"})
            images.save_grid(buf, x, nrow=min(16, int(np.ceil(np.sqrt(n)))), scale=2)
            return Response(buf.getvalue(), media_type="image/png")
        return await site.work.run(draw)

    @app.get("/api/runs/{name}/walk", dependencies=[Depends(check_same_origin)])
    async def walk(name: str, steps: int = 12, seed: int = 0, t: float | None = None, digit: int | None = None):
        """The walk between two noise vectors (and, conditional, across classes) as rows of
        `steps` images; with t in [0, 1], the one forgery at that point of the noise walk."""
        if not 2 <= steps <= MAX_WALK:
            raise HTTPException(422, f"steps must be 2..{MAX_WALK}, got {steps}")
        if t is not None and not 0 <= t <= 1:
            raise HTTPException(422, f"t must be in [0, 1], got {t}")
        if seed < 0 or seed >= 2**63:
            raise HTTPException(422, f"seed must be 0..2**63-1, got {seed}")

        def draw() -> Response:
            m = site.loaded(name)
            _labels_check(m.config, digit)
            buf = io.BytesIO()
            with m.lock:
                if t is None:
                    rows = generation.walk(m.G, m.config, steps, seed, digit)
                    images.save_grid(buf, rows.reshape(-1, *rows.shape[2:]), nrow=steps, scale=2)
                else:
                    import torch

                    a, b = generation.noise(2, m.config.z_dim, seed)
                    z = generation.slerp(a, b, torch.tensor([float(t)]))
                    x = images.to_uint8(generation.generate(m.G, z, generation.class_labels(m.config, 1, digit)))
                    images.save_grid(buf, x, nrow=1, scale=6)
            return Response(buf.getvalue(), media_type="image/png")
        return await site.work.run(draw)


def _police_pages(app: FastAPI, site: Site) -> None:
    """/runs/NAME/police: draw or drop an image; D's verdict and the classifier's guess."""

    @app.get("/runs/{name}/police", response_class=HTMLResponse)
    def police_page(name: str):
        site.run_dir(name)
        body = (f"<section class=police data-run='{story.esc(name)}'><h2>The police officer of {story.esc(name)}</h2>"
                "<p>Draw a digit (white on black, as MNIST) or drop an image; the discriminator says how real it "
                "looks, the classifier what it is.</p>"
                "<canvas id=pad width=280 height=280 aria-label='drawing pad'></canvas>"
                "<div><button id=judge>Judge</button> <button id=clear>Clear</button> "
                "<input id=upload type=file accept='image/png,image/jpeg,image/bmp,image/gif,image/webp'></div>"
                "<p id=verdict aria-live=polite></p><p id=police-error class=error></p></section>")
        return story.page(f"mnistgan: police officer of {name}", body, nav(name))

    @app.post("/api/runs/{name}/verdict", dependencies=[Depends(check_same_origin)])
    async def verdict(name: str, request: Request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in UPLOAD_TYPES:
            raise HTTPException(415, f"send an image ({', '.join(sorted(UPLOAD_TYPES))}), got {kind or 'no type'}")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_UPLOAD):
            raise HTTPException(413, f"images up to {MAX_UPLOAD // 1024} KiB, got {length} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD:
                raise HTTPException(413, f"images up to {MAX_UPLOAD // 1024} KiB")
        site.run_dir(name)
        return await site.work.run(_judge, site, name, bytes(body))


def _judge(site: Site, name: str, body: bytes) -> dict[str, Any]:
    """D's verdict and the classifier's guess on an uploaded image (on a worker thread)."""
    import torch

    from ..data import open_dataset
    from ..data.folder import to_frame
    from ..metrics.classifier import FeatureNet

    m = site.loaded(name)
    try:
        frame = to_frame(io.BytesIO(body), max_pixels=MAX_UPLOAD_PIXELS, channels=m.config.channels)
    except Exception as e:
        raise HTTPException(422, f"not a readable image: {e}") from None
    x = torch.from_numpy(np.array(frame)).float().div(255).view(1, m.config.channels, 28, 28)
    with m.lock:
        if m.net is None:
            try:
                key = open_dataset(m.config.dataset, m.config.data_dir, download=False, invert=m.config.invert,
                                   channels=m.config.channels).key
                m.net = FeatureNet(key, name=m.config.dataset)
            except MnistganError as e:
                m.net = e
        guess = None
        if not isinstance(m.net, Exception):
            _, probs = m.net(x)
            guess = {"class": int(probs[0].argmax()), "probability": float(probs[0].max()),
                     "probabilities": [round(float(p), 4) for p in probs[0]]}
        label = None
        if m.config.conditional:
            label = torch.tensor([guess["class"] if guess else 0])
        with torch.no_grad():
            logit = float(each_logit(m.D, x, label).reshape(-1)[0])
    probability = m.config.objective not in ("wgan-gp", "hinge")
    real = 1 / (1 + np.exp(-logit)) if probability else None
    return {"real_probability": real, "critic_score": None if probability else logit, "classifier": guess,
            "classifier_error": str(m.net) if isinstance(m.net, Exception) else None}


NICE = 10  # serve's priority below a training run's (Linux: 0 is the default, 19 the lowest)


def lower_priority(nice: int) -> None:
    """This process's priority, `nice` below the default, on every thread it has and will
    have: Linux keeps a priority per thread, and new threads take their creator's, so the
    threads that exist already (torch's, from its import) are lowered one by one."""
    with contextlib.suppress(OSError, AttributeError):  # (not on Windows; refused in a few sandboxes)
        for task in [0, *(t.name for t in Path("/proc/self/task").iterdir())]:
            with contextlib.suppress(OSError, ValueError):
                # Only ever lower: `nice -n 19 mnistgan serve` stays at 19 (as root, setting 10
                # would raise its priority).
                now = os.getpriority(os.PRIO_PROCESS, int(task))
                if now < nice:
                    os.setpriority(os.PRIO_PROCESS, int(task), nice)


def serve(runs_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, log: bool = True,
          yield_cpu: bool = True, allow_hosts: list[str] | tuple[str, ...] = ()) -> None:
    """Runs the app until Ctrl-C. yield_cpu: the page's work (forging, the police officer's
    verdict, reading runs) runs on one torch thread, at a priority 10 below a training run's,
    so that a run training beside it keeps its cores: the kernel gives the page the CPU time
    the run leaves, and all of it when nothing else runs (on 2 cores, a training run beside a
    page at the same priority lost most of its speed: docs/MEASUREMENTS.md, "Beside a busy
    process"). Before any thread starts, so that every thread of the server inherits both.
    allow_hosts: Host header names answered besides the loopback ones and `host` (allowed_hosts)."""
    import errno
    import socket

    import uvicorn

    if not 1 <= port <= 65535:
        raise MnistganError(f"--port must be 1..65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # (uvicorn's own message for this is a log line, not an error the CLI can report)
            probe.bind((host, port))
        except OSError as e:
            taken = e.errno == errno.EADDRINUSE
            raise MnistganError(f"cannot listen on {host}:{port}: "
                                + ("another program uses that port (--port N picks another)" if taken
                                   else e.strerror or str(e))) from None
        except socket.gaierror as e:
            raise MnistganError(f"cannot listen on {host}:{port}: {e}") from None
    if yield_cpu:
        import torch

        torch.set_num_threads(1)
        lower_priority(NICE)

    uvicorn.run(create_app(runs_dir, allowed_hosts(host, allow_hosts)), host=host, port=port,
                log_level="info" if log else "warning")


def serve_in_thread(runs_dir: str | Path, host: str = "127.0.0.1", timeout: float = 30.0):
    """Serves RUNS_DIR from a background thread on a free port of host (for a notebook beside
    a training run, a script or a test): returns (its base URL, a function that stops it)."""
    import socket
    import time

    import uvicorn

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs_dir, allowed_hosts(host)), host=host, port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise MnistganError(f"the page did not start on {host}:{port}")

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}", stop
