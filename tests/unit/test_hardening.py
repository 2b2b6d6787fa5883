"""A hostile run folder, a thin image or a foreign Host must not take `serve` down; `report`
embeds nothing from outside the run; your own images and IDX files are bounded before work;
the Python API refuses wrong types with a message. Each test here failed on the code before
these rules."""
import gzip
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnistgan.config import from_preset
from mnistgan.errors import MnistganError

# The page's own tests need the serve extra; the rest of this file (data files, folders, the
# API, --force) does not, and runs without it.
serve_extra = pytest.mark.skipif(importlib.util.find_spec("fastapi") is None,
                                 reason="the serve extra (fastapi, uvicorn) is not installed")


def make_run(root: Path, name: str, rows=None) -> Path:
    """A run folder as training leaves it before its first checkpoint: config.json, a log,
    one grid picture."""
    from mnistgan import images

    run = root / name
    (run / "samples").mkdir(parents=True)
    config = from_preset("seed", {"out": str(run), "epochs": 2, "train_images": 1000, "device": "cpu"})
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    rows = rows if rows is not None else [{"epoch": 1, "images_seen": 1000, "d_loss": 1.0, "g_loss": 2.0,
                                           "d_real": 0.6, "d_fake": 0.3, "seconds": 1.0, "partial": False}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    images.save_grid(run / "samples" / "grid-001.png", np.zeros((4, 1, 28, 28), np.uint8), nrow=2)
    return run


@pytest.fixture
def site(tmp_path):
    pytest.importorskip("fastapi")
    from mnistgan.web.app import serve_in_thread

    root = tmp_path / "runs"
    root.mkdir()
    base, stop = serve_in_thread(root)
    yield root, base
    stop()


def get(base: str, path: str, host: str | None = None, timeout: float = 15.0, method="GET", body=None, headers=None):
    name, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(name, int(port), timeout=timeout)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host or f"{name}:{port}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


# ------------------------------------------------------------------ serve: the run's files
def test_a_fifo_in_a_run_blocks_no_page(site):
    root, base = site
    run = make_run(root, "fifo")
    (run / "log.jsonl").unlink()
    os.mkfifo(run / "log.jsonl")
    os.mkfifo(run / ".lock")
    os.mkfifo(run / "metrics.json")
    for _ in range(3):  # (each request used to hold a server thread for good)
        status, body = get(base, "/", timeout=10)
        assert status == 200 and b"fifo" in body
    assert get(base, "/runs/fifo", timeout=10)[0] == 200
    assert get(base, "/api/runs/fifo/status", timeout=10)[0] == 200


def test_an_endless_file_is_not_read_without_end(site):
    root, base = site
    run = make_run(root, "endless")
    for name in ("log.jsonl", "metrics.json"):
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to("/dev/zero")
    (run / "progress.png").symlink_to("/dev/zero")
    t0 = time.monotonic()
    assert get(base, "/", timeout=10)[0] == 200
    status, body = get(base, "/runs/endless", timeout=10)
    assert status == 200 and b"progress.png" not in body
    assert get(base, "/files/endless/progress.png", timeout=10)[0] == 404
    assert time.monotonic() - t0 < 10


def test_a_long_log_is_read_from_its_tail(tmp_path):
    from mnistgan.web import story

    run = make_run(tmp_path, "long", rows=[])
    row = {"epoch": 1, "images_seen": 0, "d_loss": 1.0, "pad": "x" * 1000}
    with open(run / "log.jsonl", "w") as f:
        for i in range(12_000):  # ~12 MB, past the page's 8 MiB
            f.write(json.dumps({**row, "images_seen": i}) + "\n")
    rows, damaged = story.log_rows(run)
    assert damaged == 0 and rows[-1]["images_seen"] == 11_999 and 7_000 < len(rows) < 9_000


@pytest.mark.parametrize("bad", ["not json at all", "[1, 2]", '{"epoch": 1}', '{"images_seen": "many"}',
                                 '{"images_seen": NaN}', '{"images_seen": -5}', '{"images_seen": true}'])
def test_a_damaged_log_row_is_skipped_not_a_500(site, bad):
    root, base = site
    run = make_run(root, "damaged")
    good = (run / "log.jsonl").read_text()
    (run / "log.jsonl").write_text(bad + "\n" + good)
    (run / "samples" / "grid-abc.png").write_bytes((run / "samples" / "grid-001.png").read_bytes())
    make_run(root, "healthy")
    status, body = get(base, "/")
    assert status == 200 and b"healthy" in body
    status, body = get(base, "/runs/damaged")
    assert status == 200 and b"1 damaged log rows were skipped" in body and b"grid-abc" not in body


def test_names_that_need_encoding_give_working_links(site):
    root, base = site
    for name in ("<!--<script>", "a?b#c%d"):
        make_run(root, name)
    status, body = get(base, "/")
    assert status == 200
    html = body.decode()
    assert 'href="/runs/%3C%21--%3Cscript%3E"' in html and 'href="/runs/a%3Fb%23c%25d"' in html
    status, body = get(base, "/runs/%3C%21--%3Cscript%3E")
    assert status == 200
    sources = body.decode().split('id=grid-sources>')[1].split("</script>")[0]
    assert "<" not in sources and json.loads(sources)[0][0] == 1  # the inline JSON cannot end its script
    assert get(base, "/runs/a%3Fb%23c%25d")[0] == 200
    assert get(base, "/files/a%3Fb%23c%25d/samples/grid-001.png")[0] == 200
    assert get(base, "/files/a%3Fb%23c%25d/samples/%00.png")[0] == 404


# ------------------------------------------------------------------ serve: who may ask, how much
def test_a_foreign_host_is_refused(site):
    root, base = site
    make_run(root, "mine")
    port = base.rsplit(":", 1)[1]
    assert get(base, "/", host=f"evil.example:{port}")[0] == 400
    assert get(base, "/api/runs/mine/status", host="rebind.attacker.test")[0] == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert get(base, "/", host=host)[0] == 200


@serve_extra
def test_the_allowed_hosts():
    from mnistgan.web.app import allowed_hosts

    assert set(allowed_hosts()) == {"127.0.0.1", "localhost", "[::1]"}
    assert "gan.example" in allowed_hosts("127.0.0.1", ["GAN.example"]) and "[::1]" in allowed_hosts("::1")
    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")


@serve_extra
def test_serve_port_errors_are_one_line(tmp_path):
    from mnistgan.cli import main

    (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit):
        main(["serve", str(tmp_path / "runs"), "--port", "70000"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = subprocess.run([sys.executable, "-m", "mnistgan", "serve", str(tmp_path / "runs"), "--port",
                               str(taken.getsockname()[1])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "another program uses that port" in proc.stderr
    assert "Traceback" not in proc.stderr


@serve_extra
def test_work_is_bounded_and_a_full_queue_is_a_503():
    import asyncio
    import threading

    from fastapi import HTTPException

    from mnistgan.web.app import Work

    async def scenario():
        work, gate, order = Work(workers=1, queue=2), threading.Event(), []
        first = asyncio.create_task(work.run(lambda: (gate.wait(10), order.append(1))))
        second = asyncio.create_task(work.run(lambda: order.append(2)))
        await asyncio.sleep(0.2)
        assert order == []  # one at a time: the second waits for the first
        with pytest.raises(HTTPException) as full:
            await work.run(lambda: order.append(3))
        assert full.value.status_code == 503 and "busy" in full.value.detail
        t0 = time.monotonic()
        await asyncio.sleep(0.05)  # the loop itself still runs while the work waits
        assert time.monotonic() - t0 < 1
        gate.set()
        await asyncio.gather(first, second)
        assert order == [1, 2] and work.waiting == 0
    asyncio.run(scenario())


def thin_png(w: int, h: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (w, h), 255).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@serve_extra
def test_a_thin_image_to_the_police_officer_is_refused_at_once(generator):
    from mnistgan.web.app import serve_in_thread

    base, stop = serve_in_thread(Path(generator.run).parent)
    try:
        png = thin_png(40_000, 1_250)
        assert len(png) < 200_000
        t0 = time.monotonic()
        status, body = get(base, f"/api/runs/{Path(generator.run).name}/verdict", method="POST", body=png,
                           headers={"Content-Type": "image/png"})
        assert status == 422 and b"too large" in body
        assert time.monotonic() - t0 < 3  # (padded to a square first, it took 9.7 s and the server meanwhile)
        status, body = get(base, "/")
        assert status == 200
    finally:
        stop()


# ------------------------------------------------------------------ report
def test_the_report_embeds_nothing_from_outside_the_run(tmp_path):
    from mnistgan.cli import main

    run = make_run(tmp_path, "report")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG-not-yours-" + os.urandom(16).hex().encode())
    (run / "progress.png").symlink_to(outside)
    (run / "real_vs_fake.png").symlink_to("/etc/passwd")
    (run / "samples" / "grid-002.png").symlink_to(outside)
    (run / "samples" / "grid-abc.png").write_bytes(b"junk")
    with open(run / "log.jsonl", "a") as f:
        f.write("[damaged]\n" + json.dumps({"epoch": 2, "images_seen": 2000}) + "\n")
    (run / "metrics.json").symlink_to("/dev/zero")
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    html = out.read_text()
    import base64

    for secret in (outside.read_bytes(), Path("/etc/passwd").read_bytes()[:30]):
        assert base64.b64encode(secret)[:24].decode() not in html
    assert "grid-abc" not in html


# ------------------------------------------------------------------ your own images and IDX files
# The child's own peak: VmHWM is kept per address space; ru_maxrss would carry the peak of
# the process that started it across exec (the whole test session's, under pytest).
PEAK_CODE = ("\nimport re\nwith open('/proc/self/status') as _status:\n"
             "    print('PEAK', int(re.search(r'VmHWM:\\s+(\\d+)', _status.read()).group(1)) / 1024)\n")


def peak_mib_of(code: str) -> tuple[float, str]:
    """(peak resident MiB, stdout) of running code in a fresh interpreter."""
    wrapper = code + PEAK_CODE
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak = float(next(l for l in proc.stdout.splitlines() if l.startswith("PEAK")).split()[1])
    return peak, proc.stdout


def test_a_thin_image_costs_bounded_memory(tmp_path):
    (tmp_path / "thin.png").write_bytes(thin_png(60_000, 833))
    peak, out = peak_mib_of(f"from mnistgan.data.folder import to_frame\n"
                            f"print('SHAPE', to_frame({str(tmp_path / 'thin.png')!r}).shape)")
    assert "SHAPE (28, 28)" in out and peak < 700, peak  # (it took 3.9 GB before)


def test_a_labels_bomb_is_refused_from_its_header(tmp_path):
    header = (0x00000801).to_bytes(4, "big") + (2**31 - 1).to_bytes(4, "big")
    bomb = tmp_path / "bomb-labels-idx1-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:  # 768 MiB of labels in under a megabyte
        f.write(header)
        zeros = bytes(16 << 20)
        for _ in range(48):
            f.write(zeros)
    assert bomb.stat().st_size < 8 << 20
    peak, out = peak_mib_of(f"from mnistgan.data import read_labels\nfrom mnistgan.errors import DataError\n"
                            f"try:\n    read_labels({str(bomb)!r})\nexcept DataError as e:\n    print('REFUSED', e)\n")
    assert "REFUSED" in out and "labels" in out
    assert peak < 600, peak  # (the labels were decompressed into memory before: 768 MiB and more here)


def test_an_idx_file_is_checked_before_it_is_hashed(tmp_path):
    from helpers.datasets import write_idx

    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 10)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress=False)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), compress=False)
    sparse = tmp_path / "train-images-idx3-ubyte"
    with open(sparse, "r+b") as f:  # a bad magic number at the head of a 2 GiB sparse file
        f.write(b"\x01\x02\x03\x04")
        f.truncate(2 << 30)
    peak, _ = peak_mib_of(f"from mnistgan.data import open_dataset\nfrom mnistgan.errors import DataError\n"
                          f"try:\n    open_dataset('idx:{tmp_path}')\nexcept DataError as e:\n    print('REFUSED', e)\n")
    assert peak < 600, peak


def test_a_name_that_is_not_utf8_is_read(tmp_path, isolated_env):
    from PIL import Image

    from mnistgan.data import open_dataset

    root = os.fsencode(tmp_path / "own")
    for k, cls in enumerate((b"caf\xe9", b"two")):
        os.makedirs(os.path.join(root, cls))
        for i in range(6):
            Image.new("L", (28, 28), 40 * k + i).save(os.fsdecode(os.path.join(root, cls, b"im\xff%d.png" % i)))
    d = open_dataset(f"folder:{os.fsdecode(root)}", invert="no")
    assert d.num_classes == 2 and len(d.split("train")[0]) == 10 and len(d.split("test")[0]) == 2


def test_a_folder_changed_mid_conversion_is_not_cached(tmp_path, isolated_env):
    from PIL import Image

    from mnistgan.data import folder as imagefolder

    root = tmp_path / "own"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (28, 28), 30 * i).save(root / cls / f"{i}.png")
    victim = root / "a" / "0.png"
    original = victim.read_bytes()

    class Meddler:
        def __init__(self, **kw):
            self.done = False

        def update(self, n=1):
            if not self.done:
                self.done = True
                Image.new("L", (28, 28), 255).save(victim)  # rewritten while the others convert
                os.utime(victim, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

        def close(self):
            pass

    with pytest.raises(MnistganError, match="changed while its images were converted"):
        imagefolder.load_folder(str(root), invert="no", progress=Meddler)
    victim.write_bytes(original)
    os.utime(victim, ns=(time.time_ns() - 10**10, time.time_ns() - 10**10))
    again = imagefolder.load_folder(str(root), invert="no")
    fresh_cache = tmp_path / "fresh"
    os.environ["MNISTGAN_CACHE"] = str(fresh_cache)
    try:
        fresh = imagefolder.load_folder(str(root), invert="no")
    finally:
        os.environ["MNISTGAN_CACHE"] = str(tmp_path / "cache")
    for split in ("train", "test"):
        assert np.array_equal(again.splits[split][0], fresh.splits[split][0])


def test_small_classes_still_hold_out_a_test_split(tmp_path, isolated_env):
    from PIL import Image

    from mnistgan.data import folder as imagefolder

    many = tmp_path / "many"
    for k in range(20):
        (many / f"c{k:02d}").mkdir(parents=True)
        for i in range(2):
            Image.new("L", (28, 28), 10 * i + k).save(many / f"c{k:02d}" / f"{i}.png")
    d = imagefolder.load_folder(str(many), invert="no")
    assert len(d.splits["test"][0]) > 0 and len(d.splits["train"][0]) + len(d.splits["test"][0]) == 40
    few = tmp_path / "few"
    for k in range(2):
        (few / f"c{k}").mkdir(parents=True)
        Image.new("L", (28, 28), 100).save(few / f"c{k}" / "0.png")
    with pytest.raises(MnistganError, match="too few to hold out a test split"):
        imagefolder.load_folder(str(few), invert="no")


def test_force_never_replaces_a_fifo(tmp_path):
    from mnistgan.errors import ConfigError
    from mnistgan.store.files import refuse_existing

    fifo = tmp_path / "out.npy"
    os.mkfifo(fifo)
    for force in (False, True):
        with pytest.raises(ConfigError, match="not a regular file"):
            refuse_existing([fifo], force)
    assert fifo.is_fifo()


# ------------------------------------------------------------------ the Python API's types
@pytest.fixture(scope="module")
def generator(tmp_path_factory, fake_mnist):
    import mnistgan

    out = tmp_path_factory.mktemp("api") / "run"
    mnistgan.train(preset="seed", out=str(out), epochs=1, train_images=200, batch_size=100, progress=False,
                   data_dir=str(fake_mnist), device="cpu")
    g = mnistgan.load(out)
    g.run = out
    return g


@pytest.mark.parametrize("kwargs, message", [
    ({"n": "3"}, "n must be a whole number"), ({"n": True}, "n must be a whole number"),
    ({"n": 2.0}, "n must be a whole number"), ({"digit": 7.5}, "digit must be a whole number"),
    ({"digit": True}, "digit must be a whole number"), ({"seed": -1}, "seed must be at least 0"),
    ({"seed": "0"}, "seed must be a whole number"),
])
def test_sample_refuses_wrong_types(generator, kwargs, message):
    with pytest.raises(MnistganError, match=message):
        generator.sample(**{"n": 4, **kwargs})


def test_load_and_train_refuse_wrong_types(tmp_path):
    import mnistgan

    with pytest.raises(MnistganError, match="load takes a run folder"):
        mnistgan.load(None)
    with pytest.raises(MnistganError, match="callbacks must be a list"):
        mnistgan.train(preset="seed", out=str(tmp_path / "r"), callbacks="x")
    with pytest.raises(MnistganError, match="callbacks must be a list"):
        mnistgan.train(preset="seed", out=str(tmp_path / "r"), callbacks=[print])


def test_a_classifier_needs_a_test_split(tmp_path, isolated_env):
    from helpers.datasets import write_idx

    from mnistgan.metrics.classifier import train_classifier

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 3, 50))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((0,)))
    with pytest.raises(MnistganError, match="empty test split"):
        train_classifier(f"idx:{tmp_path}", epochs=1, out=str(tmp_path / "net"))
    assert not (tmp_path / "net").exists() or not any((tmp_path / "net").iterdir())
