"""MNIST-like data: IDX reading and validation, the dataset registry, locating and
downloading files, and the device-resident training set.

Local folders are validated by structure (magic number, dimensions, counts, label range),
never by checksum: a user's own copy may be re-encoded. Checksums guard downloads only.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import ConfigError, DataError
from ..store.files import cache_dir

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension
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


# ----------------------------------------------------------------------------- IDX files
# What an IDX file of each kind must be: its magic number and its shape after the count.
KINDS = {"images": (IMAGE_MAGIC, (28, 28), "N x 28 x 28 images"), "labels": (LABEL_MAGIC, (), "N labels")}
MAX_IDX_BYTES = 1 << 31  # data an IDX file may promise (2 GiB; MNIST's training images are 47 MB)
MAX_LABELS = MAX_IDX_BYTES // (28 * 28)  # labels a file may promise: one per image of a largest image file


def _describe(magic: int, dims: tuple[int, ...]) -> str:
    kind = next((k for k, (m, _, _) in KINDS.items() if m == magic), None)
    what = {"images": "an image file", "labels": "a label file"}.get(kind, "an IDX file")
    return f"{what} (magic 0x{magic:08x}, {' x '.join(map(str, dims)) or 'no dimensions'})"


def read_idx(path: str | os.PathLike, kind: str | None = None, count: int | None = None) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (gzip-compressed or raw), checking its header
    before its data: the magic number (and, given `kind`, that it is an image or a label
    file), the item count (given `count`), then exactly the bytes the header promises. Sizes
    are computed with Python integers and gzip data is decompressed as a stream that stops
    one byte past the promised size, so a crafted header or a decompression bomb costs
    nothing."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            return _read_idx_stream(f, path, kind, count)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e}); delete the file and fetch it again") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _read_idx_stream(f, path: Path, kind: str | None, count: int | None) -> np.ndarray:
    raw = f.read(4)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header (expected at least 4)")
    magic = int.from_bytes(raw, "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: bad magic number 0x{magic:08x}; expected 0x{IMAGE_MAGIC:08x} "
                        f"(images) or 0x{LABEL_MAGIC:08x} (labels): not an IDX file of unsigned bytes")
    ndim = raw[3]
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{path}: header truncated ({4 + len(raw)} bytes, expected {4 + 4 * ndim})")
    dims = tuple(int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    if kind is not None:
        want_magic, item, what = KINDS[kind]
        if magic != want_magic or dims[1:] != item:
            raise DataError(f"{path}: is {_describe(magic, dims)}; expected {kind[:-1]} data: "
                            f"magic 0x{want_magic:08x}, {what}")
        if count is not None and dims[0] != count:
            raise DataError(f"{path}: its header says it holds {dims[0]} {kind}; expected {count}")
    size = math.prod(dims)  # a Python integer: no overflow
    shape = " x ".join(map(str, dims))
    if ndim == 1 and dims[0] > MAX_LABELS:  # (a label per image: no more labels than images could be read)
        raise DataError(f"{path}: its header promises {dims[0]:,} labels, more than the {MAX_LABELS:,} images "
                        "this reader accepts")
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path}: its header ({shape}) promises {size:,} bytes of data, more than the "
                        f"{MAX_IDX_BYTES:,} this reader accepts")
    data = f.read(size + 1)
    if len(data) < size:
        raise DataError(f"{path}: holds {len(data)} bytes of data but its header ({shape}) promises {size} "
                        "(truncated?)")
    if len(data) > size:
        raise DataError(f"{path}: holds more data than the {size} bytes its header ({shape}) promises")
    return np.frombuffer(data, np.uint8).reshape(dims).copy()  # writable, owns its memory


def read_images(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """Reads an IDX image file: N x 28 x 28 unsigned bytes (N = count when given)."""
    return read_idx(path, "images", count)


def read_labels(path: str | os.PathLike, count: int | None = None, num_classes: int = 10) -> np.ndarray:
    """Reads an IDX label file: N unsigned bytes, each below num_classes."""
    arr = read_idx(path, "labels", count)
    if arr.size and int(arr.max()) >= num_classes:
        bad = int(np.argmax(arr >= num_classes))
        raise DataError(f"{path}: label {int(arr[bad])} at index {bad} is out of range; "
                        f"expected 0..{num_classes - 1}")
    return arr


# ----------------------------------------------------------------------------- locating
def _find(folder: Path, filename: str) -> Path | None:
    """The file in folder, compressed (canonical name) or not (name without .gz)."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    return [f for f in spec.files.values() if _find(folder, f) is None]


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


# ----------------------------------------------------------------------------- Stacked-MNIST
# Stacked-MNIST (Metz et al. 2017; VEEGAN, PacGAN and R3GAN measure mode collapse on it): an
# image is three MNIST digits as its red, green and blue channels, so its class (mode) is
# one of 1,000 digit triples, 100 r + 10 g + b. Made from the MNIST files, deterministically:
# stack i's three digits are drawn independently and uniformly (numpy's PCG64 from the
# split's seed below, integers(0, N, size=(count, 3)), columns red, green, blue) from the
# training digits for the training stacks and from the test digits for the test stacks.
# 26,000 test stacks: the count the field reads forgeries at, so the real stacks' own modes
# and KL are measured at the same count.
STACKED = "stacked-mnist"
STACKS = {"train": (60000, 0), "test": (26000, 1)}  # split -> (stacks, seed)
REGISTERED = (*DATASETS, STACKED)  # the names --dataset takes besides folder:PATH and idx:PATH


def stack_digits(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count x 3 x 28 x 28 uint8 stacks, count labels 100 r + 10 g + b) from N x 28 x 28
    digits and their labels: each stack's red, green and blue digit drawn uniformly with
    replacement, numpy's default generator seeded with seed."""
    which = np.random.default_rng(seed).integers(0, len(images), size=(count, 3))  # count x (r, g, b)
    triples = labels.astype(np.int64)[which]                                        # count x 3 digits
    return np.ascontiguousarray(images[which]), triples @ np.array([100, 10, 1])


# ----------------------------------------------------------------------------- loading
def parse_name(name: str) -> tuple[str, str | None]:
    """("mnist", None) for a registered name; ("folder", PATH) or ("idx", PATH) for a user's own."""
    from ..config import dataset_parts

    return dataset_parts(name)


class Dataset:
    """A dataset by the name a config gives it, its splits loaded on first use.

    `key` names it in file names (classifier weights, cached features): the registered name,
    or folder-/idx- and 16 hex digits of its content's sha256. `classes` are its class names
    (empty for a folder without labels); `skipped` lists unreadable images (folders)."""

    def __init__(self, name: str, data_dir=None, download: bool = True, invert: str = "auto",
                 progress: Progress = None, channels: int = 1):
        self.kind, path = parse_name(name)
        self.name = name
        self.skipped: list[str] = []
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._channels = channels  # (a folder's images are converted grey or in colour, as asked)
        if self.kind == "folder":
            from . import folder as imagefolder

            found = imagefolder.load_folder(path, invert, progress, channels)
            self.key, self.classes, self.skipped = f"folder-{found.key[:16]}", found.classes, found.skipped
            self._splits = found.splits
        elif self.kind == "idx":
            self._open_idx(Path(path).expanduser())
        elif name == STACKED:
            self.spec = get_spec("mnist")  # its stacks are made from MNIST's files
            self.key, self.classes = name, tuple(f"{k:03d}" for k in range(1000))
            self._where = (data_dir, download, progress)
        else:
            self.spec = get_spec(name)
            self.key, self.classes = name, self.spec.classes
            self._where = (data_dir, download, progress)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        """1 (grey: a split's images are N x 28 x 28) or 3 (colour: N x 3 x 28 x 28)."""
        if self.kind == "folder":
            return self._channels
        return 3 if self.name == STACKED else 1

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8, N x 28 x 28 grey or N x 3 x 28 x 28 colour; labels N int) of the
        split: train or test."""
        if split not in ("train", "test"):
            raise DataError(f"unknown split {split!r}; available: train, test")
        if split not in self._splits:
            data_dir, download, progress = self._where
            if self.name == STACKED:
                digits, labels = _load_registered(self.spec, split, data_dir, download, progress)
                self._splits[split] = stack_digits(digits, labels, *STACKS[split])
            else:
                self._splits[split] = _load_registered(self.spec, split, data_dir, download, progress)
        return self._splits[split]

    def _open_idx(self, folder: Path) -> None:
        """Four IDX files in MNIST's layout (KMNIST, EMNIST, ...): names holding train/test (or
        t10k) and images/labels (or idx3/idx1); as many classes as the labels use."""
        if not folder.is_dir():
            raise DataError(f"idx:{folder}: no such folder")
        roles: dict[str, list[Path]] = {r: [] for r in ROLES}
        for p in sorted(folder.iterdir()):
            n = p.name.lower()
            split = "train" if "train" in n else "test" if ("t10k" in n or "test" in n) else None
            kind = "images" if ("images" in n or "idx3" in n) else "labels" if ("labels" in n or "idx1" in n) else None
            if p.is_file() and split and kind:
                roles[f"{split}_{kind}"].append(p)
        for role, found in roles.items():
            if len(found) != 1:
                raise DataError(f"idx:{folder}: expected one {role.replace('_', ' ')} file (a name holding "
                                f"{'train' if role.startswith('train') else 't10k or test'} and "
                                f"{'images or idx3' if role.endswith('images') else 'labels or idx1'}), found "
                                f"{', '.join(p.name for p in found) or 'none'}")
        labels = {s: read_labels(roles[f"{s}_labels"][0], num_classes=256) for s in ("train", "test")}
        k = int(labels["train"].max()) + 1 if labels["train"].size else 0
        from .folder import MAX_CLASSES  # (one bound for every dataset of your own)

        if not 2 <= k <= MAX_CLASSES:
            raise DataError(f"idx:{folder}: its training labels use {k} classes; 2 to {MAX_CLASSES} are supported")
        if labels["test"].size and int(labels["test"].max()) >= k:
            raise DataError(f"idx:{folder}: test label {int(labels['test'].max())} is not among the "
                            f"training labels 0..{k - 1}")
        for s in ("train", "test"):
            imgs = read_images(roles[f"{s}_images"][0], len(labels[s]))
            self._splits[s] = (imgs, labels[s])
        h = hashlib.sha256()  # (after the reads: each file's header and size were checked; hashed as a stream)
        for role in ROLES:
            with open(roles[role][0], "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        self.key, self.classes = f"idx-{h.hexdigest()[:16]}", tuple(str(i) for i in range(k))


def open_dataset(name: str, data_dir=None, download: bool = True, invert: str = "auto",
                 progress: Progress = None, channels: int = 1) -> Dataset:
    """The dataset a config names: mnist, fashion-mnist, stacked-mnist, folder:PATH or
    idx:PATH; `channels` says how a folder's images are read (1 grey, 3 colour); the others
    have theirs (Dataset.channels)."""
    return Dataset(name, data_dir, download, invert, progress, channels)


def load_split(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, progress: Progress = None, invert: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(images N x 28 x 28 uint8, labels N) of a dataset's split."""
    return open_dataset(name, data_dir, download, invert, progress).split(split)


def _load_registered(spec: DatasetSpec, split: str, data_dir, download: bool,
                     progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    folder = locate(spec, data_dir, download=download, progress=progress)
    count = spec.counts[split]
    images = read_images(_find(folder, spec.files[f"{split}_images"]), count)
    labels = read_labels(_find(folder, spec.files[f"{split}_labels"]), count, len(spec.classes))
    check_identity(spec, split, labels, folder, data_dir)
    return images, labels


def check_identity(spec: DatasetSpec, split: str, labels: np.ndarray, folder: Path, data_dir=None) -> None:
    """Refuses a folder whose labels are those of another registered dataset (MNIST and
    Fashion-MNIST share one layout, so structure cannot tell them apart; their labels can).
    A folder matching no registered dataset (a user's own or re-labelled copy) is used as is."""
    digest = hashlib.sha256(labels.tobytes()).hexdigest()
    found = next((d.name for d in DATASETS.values() if d.labels_sha256.get(split) == digest), None)
    if found is not None and found != spec.name:
        source = "--data-dir" if data_dir else ("$MNISTGAN_DATA_DIR" if os.environ.get("MNISTGAN_DATA_DIR") else "")
        where = f" (from {source})" if source else ""
        raise DataError(f"{folder}{where} holds {found}, not {spec.name}: its {split} labels are {found}'s. "
                        f"Point {source or '--data-dir'} at a {spec.name} folder"
                        f"{', or unset it to use the cache or a download' if source == '$MNISTGAN_DATA_DIR' else ''}.")


class DeviceData:
    """The training set as one uint8 tensor on the training device.

    An epoch is a permutation of indices; a batch is an index slice converted to float on
    the fly. Nothing here touches Python per sample, and nothing re-reads the disk.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, device="cpu"):
        import torch

        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        # No copy when the array is already contiguous writable uint8 (read_idx's own array):
        # the tensor shares its memory. Anything else (a read-only buffer, other dtypes) is
        # copied once.
        arr = np.ascontiguousarray(images, dtype=np.uint8)
        if not arr.flags.writeable:
            arr = arr.copy()
        self.images = torch.from_numpy(arr).to(device)
        if self.images.dim() == 3:
            self.images = self.images.unsqueeze(1)  # N x 28 x 28 -> N x 1 x 28 x 28 (colour: N x 3 x 28 x 28)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(device)
        self.device = self.images.device

    def __len__(self) -> int:
        return self.images.shape[0]

    def epoch_order(self, seed: int, epoch: int):
        """The permutation for an epoch: a pure function of (seed, epoch), so resuming
        mid-epoch needs no RNG state for it."""
        import torch

        state = np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)
        gen = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        return torch.randperm(len(self), generator=gen).to(self.device)

    def batch(self, order, step: int, batch_size: int, part: slice | None = None):
        """(images B x C x 28 x 28 float in [0, 1], labels B) for the step-th slice of order
        (only its `part`: one process's share of the global batch)."""
        import torch

        idx = order[step * batch_size:(step + 1) * batch_size]
        if part is not None:
            idx = idx[part]
        # index_select, not images[idx]: the same rows at a third of the time (advanced
        # indexing goes through TensorIterator; ~0.06 ms a batch, 2% of the seed's step).
        return torch.index_select(self.images, 0, idx).float().div_(255.0), torch.index_select(self.labels, 0, idx)


def training_set(config, device, resuming: bool = False, progress: Progress = None):
    """(the training set on device as DeviceData, config with the dataset's identity
    (data_key), class count and train_images capped at its size, notices for the user). A
    resumed run's dataset must be the one it trained with: the same identity (name, or the
    content's hash for folder: and idx:), classes and images."""
    from ..config import apply_overrides

    dataset = open_dataset(config.dataset, config.data_dir, download=config.download, invert=config.invert,
                           progress=progress, channels=config.channels)
    if resuming and config.data_key is not None and dataset.key != config.data_key:
        raise ConfigError(f"{config.dataset} is not the data this run trained on: the run's data is "
                          f"{config.data_key}, this is {dataset.key}. Restore the run's data, or start a new run "
                          "(nothing was changed).")
    if not resuming and config.data_key != dataset.key:
        config = apply_overrides(config, {"data_key": dataset.key})
    if dataset.channels != config.channels:
        if resuming or config.channels != 1:
            raise ConfigError(f"{config.dataset} has {dataset.channels} channel(s); this "
                              f"{'run trained' if resuming else 'config asks'} with {config.channels}"
                              + ("" if resuming else f": drop channels={config.channels} (it is set from the dataset)"))
        config = apply_overrides(config, {"channels": dataset.channels})
    imgs, labels = dataset.split("train")
    notices = []
    if dataset.skipped:
        notices.append(f"warning: skipped {len(dataset.skipped)} unreadable image(s) of {config.dataset}: "
                       + "; ".join(dataset.skipped[:3]) + (" ..." if len(dataset.skipped) > 3 else ""))
    n = min(config.train_images, len(imgs))
    if dataset.num_classes != config.num_classes or n != config.train_images:
        if resuming:
            raise ConfigError(f"{config.dataset} now has {len(imgs):,} training images in {dataset.num_classes} "
                              f"classes; this run trained on {config.train_images:,} in {config.num_classes}. "
                              "Restore the dataset, or start a new run (nothing was changed).")
        if config.batch_size > n:
            raise ConfigError(f"{config.dataset} has {n} training images, fewer than one batch "
                              f"(batch_size {config.batch_size}); use --set batch_size=N with N <= {n}")
        config = apply_overrides(config, {"num_classes": dataset.num_classes, "train_images": n})
    return DeviceData(imgs[:n], labels[:n], device), config, notices
