"""Where the registered datasets come from: their files, checksums and mirrors
(`DatasetSpec`, `DATASETS`), finding a local copy (`locate`: --data-dir, $MNISTGAN_DATA_DIR,
the user cache, system folders) and downloading one (checksums, retries over mirrors, no
half-written file). Checksums guard downloads only."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import DataError
from ..store.files import cache_dir

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
# A progress-bar factory (tqdm's keyword arguments; callbacks.progress_bar), or None for no
# bar: this module never writes to the terminal itself.
Progress = Optional[Callable[..., Any]]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, str]          # role -> canonical file name
    md5: dict[str, str]            # canonical file name -> md5 of the canonical download
    mirrors: tuple[str, ...]       # base URLs, tried in order
    system_dirs: tuple[str, ...]   # folders a system package installs to
    classes: tuple[str, ...]       # class names, index = label
    counts: dict[str, int]         # split -> number of items
    labels_sha256: dict[str, str]  # split -> sha256 of its label bytes: tells the datasets apart


_MNIST_FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
                "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=_MNIST_FILES,
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        system_dirs=("/usr/share/datasets/mnist",),
        classes=tuple(str(d) for d in range(10)),
        counts={"train": 60000, "test": 10000},
        labels_sha256={"train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
                       "test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"},
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=_MNIST_FILES,
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian's dataset-fashion-mnist
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        counts={"train": 60000, "test": 10000},
        labels_sha256={"train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
                       "test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"},
    ),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]


def find_file(folder: Path, filename: str) -> Path | None:
    """The file in folder, compressed (canonical name) or not (name without .gz)."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    return [f for f in spec.files.values() if find_file(folder, f) is None]


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None, download: bool = True,
           progress: Progress = None) -> Path:
    """The folder holding the dataset's four files.

    Order: data_dir, else $MNISTGAN_DATA_DIR; else the user cache; else known system folders;
    else download (into data_dir when one was given, else into the cache).
    """
    explicit = data_dir or os.environ.get("MNISTGAN_DATA_DIR")
    cache = cache_dir() / spec.name
    candidates = [Path(explicit)] if explicit else [cache, *map(Path, spec.system_dirs)]
    for folder in candidates:
        if folder.is_dir() and not missing_files(spec, folder):
            return folder
    target = candidates[0]
    missing = missing_files(spec, target)
    if not download:
        searched = "\n  ".join(str(c) for c in candidates)
        raise DataError(
            f"{spec.name} not found and downloading is off. Searched:\n  {searched}\n"
            f"Put these files into {target} (or pass --data-dir DIR):\n  " + "\n  ".join(missing))
    download_dataset(spec, target, progress=progress)
    return target


# ----------------------------------------------------------------------------- download
class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def _fetch(url: str, dest: Path, md5: str, timeout: float, progress: Progress) -> None:
    """Downloads url to dest via a temporary file in dest's folder; renames only when verified."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        os.fchmod(fd, 0o644)
        h = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            bar = progress(total=length, unit="B", unit_scale=True, desc=dest.name, leave=False) \
                if callable(progress) else _NoBar()
            with bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if length is not None and received != length:
            raise DataError(f"transfer truncated: {received} of {length} bytes")
        if h.hexdigest() != md5:
            raise DataError(f"checksum mismatch: md5 {h.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_file(urls: list[str] | tuple[str, ...], dest: str | os.PathLike, md5: str,
                  timeout: float = 30.0, attempts: int = 2, progress: Progress = None) -> Path:
    """Fetches one file, trying each URL in order (each up to `attempts` times), verifying md5.

    Nothing is left at dest unless it passed the checksum; no partial file remains on failure.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        for attempt in range(attempts):
            try:
                _fetch(url, dest, md5, timeout, progress)
                return dest
            except DataError as e:  # corrupt content: another try at the same mirror may help
                failures.append(f"{url}: {e}")
            except (urllib.error.URLError, OSError, ValueError) as e:  # includes HTTPError, timeouts
                failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
                if isinstance(e, urllib.error.HTTPError) and e.code == 404:
                    break  # the file is not there; retrying will not change that
    raise DataError(f"could not download {dest.name}; tried:\n  " + "\n  ".join(failures) +
                    f"\nDownload it by hand into {dest.parent} (or pass --data-dir DIR).")


def download_dataset(spec: DatasetSpec, folder: str | os.PathLike, progress: Progress = None,
                     timeout: float = 30.0) -> Path:
    """Downloads the dataset's missing files into folder, verifying each against its md5."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create data folder {folder}: {e.strerror or e}") from None
    for filename in missing_files(spec, folder):
        download_file([m + filename for m in spec.mirrors], folder / filename, spec.md5[filename],
                      timeout=timeout, progress=progress)
    return folder


