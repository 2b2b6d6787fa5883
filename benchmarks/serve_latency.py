"""`mnistgan serve` on this machine: warm latency of a 64-forgery Forge request and of a
police-officer verdict (median of 30 requests each, over HTTP on 127.0.0.1), and the
server's resident memory with five runs loaded (one per preset, full-size networks).

    python benchmarks/serve_latency.py --data-dir ../shared/data/mnist
"""
from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import machine  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(url: str, data: bytes | None = None, kind: str | None = None, n: int = 30) -> float:
    times = []
    for _ in range(n):
        req = urllib.request.Request(url, data=data, headers={"Content-Type": kind} if kind else {})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req) as r:
            r.read()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def parallel_load(base: str, pid: int, clients: int, requests: int) -> None:
    """`requests` 256-forgery cdcgan requests from `clients` threads at once, while one more
    client asks for the runs page every 0.2 s: how each ended (200, or 503 when the server's
    queue was full), the slowest answer, the runs page's slowest answer meanwhile, and the
    server's resident memory after."""
    import threading
    import urllib.error
    from concurrent.futures import ThreadPoolExecutor

    def forge(i: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{base}/api/runs/cdcgan/forge?n=256&seed={i}", timeout=120) as r:
                r.read()
                return r.status, time.perf_counter() - t0
        except urllib.error.HTTPError as e:
            return e.code, time.perf_counter() - t0

    index_times, done = [], threading.Event()

    def poll_index() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            urllib.request.urlopen(base + "/", timeout=60).read()
            index_times.append(time.perf_counter() - t0)
            time.sleep(0.2)

    poller = threading.Thread(target=poll_index)
    poller.start()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(forge, range(requests)))
    done.set()
    poller.join()
    codes = {c: sum(1 for r in results if r[0] == c) for c in sorted({r[0] for r in results})}
    print(f"{requests} 256-forgery requests from {clients} clients at once: "
          + ", ".join(f"{n} x {c}" for c, n in codes.items())
          + f"; slowest {max(t for _, t in results):.1f} s; the runs page meanwhile: slowest "
          f"{max(index_times) * 1000:.0f} ms, median {statistics.median(index_times) * 1000:.0f} ms; "
          f"server resident memory after: {rss_mib(pid):.0f} MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--parallel", type=int, default=50, help="clients at once in the load stage")
    p.add_argument("--requests", type=int, default=150, help="256-forgery requests in the load stage")
    a = p.parse_args()
    print(machine.describe())
    from PIL import Image
    import numpy as np

    from mnistgan import api

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        for preset in ("seed", "dcgan", "cdcgan", "wgan-gp", "best"):  # one step each: the size is what counts
            api.train(preset, out=str(runs / preset), max_images=128, data_dir=a.data_dir, progress=False, device="cpu")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "mnistgan", "serve", str(runs), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(base + "/").read()
                    break
                except OSError:
                    time.sleep(0.1)
            idle = rss_mib(server.pid)
            stroke = np.zeros((280, 280), np.uint8)
            stroke[40:240, 130:150] = 255
            buf = io.BytesIO()
            Image.fromarray(stroke).save(buf, "PNG")
            for preset in ("seed", "dcgan", "cdcgan", "wgan-gp", "best"):  # load every run's networks
                urllib.request.urlopen(f"{base}/api/runs/{preset}/forge?n=4").read()
                urllib.request.urlopen(urllib.request.Request(f"{base}/api/runs/{preset}/verdict", data=buf.getvalue(),
                                                              headers={"Content-Type": "image/png"})).read()
            loaded = rss_mib(server.pid)
            for preset in ("seed", "cdcgan"):
                forge = timed(f"{base}/api/runs/{preset}/forge?n=64&seed=1")
                verdict = timed(f"{base}/api/runs/{preset}/verdict", buf.getvalue(), "image/png")
                print(f"{preset}: 64-forgery Forge request {forge:.1f} ms, verdict {verdict:.1f} ms (warm, median of 30)")
            print(f"server resident memory: {idle:.0f} MiB serving, {loaded:.0f} MiB with 5 runs loaded "
                  "(seed, dcgan, cdcgan, wgan-gp, best; G, D and each dataset's classifier)")
            parallel_load(base, server.pid, a.parallel, a.requests)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
