"""A whole training run's wall clock alone and beside `mnistgan serve` on the same folder of
runs, with the run's page open in a real browser (Chromium through Playwright), which
polls it every 1.5 s while the run trains, as a user watching the run would.

    python benchmarks/beside_serve.py [--preset seed] [--epochs 100] [--data-dir DIR]
                                      [--threads auto|N] [--full-priority] [--order alone,beside]

Each run is `mnistgan train` in a fresh process; the figure is the wall clock from its start
to its exit (pictures and checkpoints included), and the training seconds its log.jsonl
counts. Beside the page, the CPU seconds the server and the browser took are printed too.
`--threads 2 --full-priority` gives what training and the page did before the thread count
followed the load and the page yielded the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds() -> float:
    """CPU seconds of every live Chromium process (the one browser this script started)."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            exe = cmdline.read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if Path(exe).name.startswith("chrom"):
            total += cpu_seconds(int(cmdline.parent.name))
    return total


def train(args, out: Path) -> tuple[float, float]:
    """(wall seconds, training seconds of log.jsonl) of one `mnistgan train`."""
    cmd = [sys.executable, "-m", "mnistgan", "train", "--preset", args.preset, "--epochs", str(args.epochs),
           "--data-dir", args.data_dir, "--no-download", "--no-progress", "--threads", args.threads, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"training failed: {proc.stderr[-2000:]}")
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if l.strip()]
    return wall, sum(r.get("seconds", 0.0) for r in rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beside_page(args, runs: Path) -> tuple[float, float, float, float, list[int]]:
    """(wall, training seconds, server CPU seconds, browser CPU seconds, [status polls, page refreshes])."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    cmd = [sys.executable, "-m", "mnistgan", "serve", str(runs), "--port", str(port)]
    server = subprocess.Popen(cmd + (["--full-priority"] if args.full_priority else []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polls = [0, 0]  # status polls, page refreshes (a new epoch's fragment)
    result: dict = {}
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        out = runs / "beside"
        trainer = threading.Thread(target=lambda: result.update(zip(("wall", "train"), train(args, out))))
        trainer.start()
        while not (out / "config.json").exists() and trainer.is_alive():
            time.sleep(0.1)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            def seen(response):
                polls[0] += response.url.endswith("/status")
                polls[1] += response.url.endswith("/fragment")
            page.on("response", seen)
            page.goto(f"http://127.0.0.1:{port}/runs/beside")
            while trainer.is_alive():
                page.wait_for_timeout(500)
            browser_cpu = browser_cpu_seconds()
            browser.close()
        server_cpu = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.wait()
    return result["wall"], result["train"], server_cpu, browser_cpu, polls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="seed")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--data-dir", default=os.environ.get("MNISTGAN_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "mnist")))
    p.add_argument("--threads", default="auto")
    p.add_argument("--full-priority", action="store_true", help="serve at the same priority as training")
    p.add_argument("--order", default="alone,beside")
    args = p.parse_args()
    print(f"{describe()}; {args.preset} for {args.epochs} epochs, threads {args.threads}, "
          f"serve {'at full priority' if args.full_priority else 'yielding (the default)'}", flush=True)
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        for what in args.order.split(","):
            if what == "alone":
                wall, trained = train(args, Path(tmp) / "alone")
                print(f"alone: {wall:.0f} s wall clock ({trained:.0f} s training)", flush=True)
            else:
                wall, trained, server_cpu, browser_cpu, polls = beside_page(args, runs)
                print(f"beside serve with the page open: {wall:.0f} s wall clock ({trained:.0f} s training); "
                      f"the server used {server_cpu:.0f} CPU-s, the browser {browser_cpu:.0f} CPU-s, "
                      f"{polls[0]} status polls, {polls[1]} page refreshes", flush=True)
            walls[what] = wall
    if {"alone", "beside"} <= walls.keys():
        print(f"beside / alone: {walls['beside'] / walls['alone']:.2f}x wall clock")


if __name__ == "__main__":
    main()
