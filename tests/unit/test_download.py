"""Downloads against a real HTTP server on 127.0.0.1 (no network needed)."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from mnistgan import data
from mnistgan.errors import DataError

PAYLOAD = bytes(range(256)) * 400
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        self.server.hits.append(self.path)
        kind, body = self.routes.get(self.path, ("missing", b""))
        if kind == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) if kind == "truncate" else len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "truncate" else body)
        self.wfile.flush()
        if kind == "truncate":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.hits = []
    Handler.routes = {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def test_success(server, tmp_path):
    srv, base = server
    Handler.routes = {"/a/f.gz": ("ok", PAYLOAD)}
    path = data.download_file([f"{base}/a/f.gz"], tmp_path / "f.gz", MD5, progress=False)
    assert path.read_bytes() == PAYLOAD and leftovers(tmp_path) == ["f.gz"]


def test_bad_checksum_on_first_mirror_then_second(server, tmp_path):
    srv, base = server
    Handler.routes = {"/bad/f.gz": ("ok", b"not the file"), "/good/f.gz": ("ok", PAYLOAD)}
    path = data.download_file([f"{base}/bad/f.gz", f"{base}/good/f.gz"], tmp_path / "f.gz", MD5, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert srv.hits == ["/bad/f.gz", "/bad/f.gz", "/good/f.gz"]  # retried once, then moved on
    assert leftovers(tmp_path) == ["f.gz"]


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    srv, base = server
    Handler.routes = {"/t/f.gz": ("truncate", PAYLOAD)}
    with pytest.raises(DataError) as e:
        data.download_file([f"{base}/t/f.gz"], tmp_path / "f.gz", MD5, progress=False, timeout=5)
    assert "could not download f.gz" in str(e.value)
    assert leftovers(tmp_path) == []


def test_no_mirror_reachable(server, tmp_path):
    srv, base = server
    # A port nobody listens on: bind, note it, close.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    with pytest.raises(DataError) as e:
        data.download_file([f"{dead}/f.gz", f"{base}/missing/f.gz"], tmp_path / "f.gz", MD5,
                           progress=False, timeout=5)
    msg = str(e.value)
    assert f"{dead}/f.gz" in msg and f"{base}/missing/f.gz" in msg and "Not Found" in msg
    assert "Download it by hand into" in msg
    assert srv.hits == ["/missing/f.gz"]  # a 404 is not retried
    assert leftovers(tmp_path) == []


def test_whole_dataset_download_then_load(server, tmp_path, isolated_env, fake_mnist):
    """The four files served by a local mirror land in the cache, verified, and load."""
    import dataclasses

    src = fake_mnist
    srv, base = server
    md5 = {}
    for f in src.iterdir():
        Handler.routes[f"/m/{f.name}"] = ("ok", f.read_bytes())
        md5[f.name] = hashlib.md5(f.read_bytes()).hexdigest()
    spec = dataclasses.replace(data.get_spec("mnist"), md5=md5, mirrors=(f"{base}/dead/", f"{base}/m/"))
    folder = data.locate(spec, None, download=True, progress=False)
    assert folder == tmp_path / "cache" / "mnist"
    assert sorted(leftovers(folder)) == sorted(md5)
    images = data.read_images(folder / "train-images-idx3-ubyte.gz", 60000)
    assert images.shape == (60000, 28, 28)
