"""Your own images as a dataset (``--dataset folder:PATH``): a folder of PNG/JPEG/BMP/GIF/
TIFF/WebP files of any size and mode, converted once to MNIST's form and cached.

Layout (as torchvision's ImageFolder: a class is a sub-folder, its name the class name,
classes in sorted order, images found at any depth below it):

    PATH/train/<class>/*.png and PATH/test/<class>/*.png   the splits as given
    PATH/<class>/*.png  (2 to 100 class folders)            every 6th image of each class
                                                            (sorted by path) is held out as test
    PATH/*.png  (or a single sub-folder)                    no labels: unconditional runs only

Conversion of one image (`to_frame`): EXIF orientation applied; transparency composited on
white; to 8-bit grey (16-bit and float images scaled by their maximum); inverted when it is
dark on light (MNIST is light strokes on black) — "auto" decides per image from the median
of its border pixels, "yes"/"no" force it; padded to a square with its background colour
(the aspect ratio is kept, nothing is cropped); resized to 28 x 28 with a Lanczos filter.

Unreadable files with an image extension are skipped and listed in the dataset's `skipped`
(the run says how many); files of other types are ignored. The training split is stored in
a fixed shuffled order, so `train_images=N` takes a representative N, not the first classes.

The cache (``<cache>/folders/<key>.safetensors``) is keyed by the content of every image and
its path below PATH (sha256) and by the inversion choice: a changed, added or removed image
makes a new conversion. A second run finds it through a quick index of file sizes and times
and starts at once. This module knows nothing of models; data/__init__ calls it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .. import registry
from ..errors import DataError
from ..store.files import atomic_write_bytes, cache_dir
from ..system import numbers

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INVERT = registry.NAMES["invert"]
MAX_CLASSES = 100  # classes a dataset of your own may have (folder: and idx:)
MAX_IMAGES = 1_000_000    # 784 MB as uint8 frames
MAX_PIXELS = 50_000_000   # an image of more pixels (read from its header) is skipped as "too large" before it is decoded
PAD_SIDE = 4096           # a longer side is shrunk to this before padding: the square holds at most 16.8 M pixels
HOLDOUT = 6               # without train/ and test/: every 6th image of a class is a test image
FORMAT = 1                # bump when the conversion changes: old caches are then not used
Progress = Optional[Callable[..., Any]]


@dataclass
class FolderDataset:
    """A converted folder: uint8 N x 28 x 28 frames and int labels per split."""
    path: Path
    key: str                                  # content key (sha256 hex)
    classes: tuple[str, ...]                  # () when the folder has no labels
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    skipped: list[str] = field(default_factory=list)  # "relpath: reason" of unreadable images
    held_out: bool = False                    # test split held out from the class folders


def to_frame(path: str | os.PathLike | io.BytesIO, invert: str = "auto", max_pixels: int = MAX_PIXELS,
             channels: int = 1) -> np.ndarray:
    """One image file as a 28 x 28 uint8 frame, light strokes on black (see module doc);
    channels=3: its colour kept, a 3 x 28 x 28 frame (red, green, blue), inverted and padded
    as its grey version would be. Its size is read from the header before anything is
    decoded: an image of more than max_pixels pixels is refused, so a small file that decodes
    to a huge image costs nothing; and an image whose longer side passes PAD_SIDE is shrunk to
    that side before it is padded to a square, so a very thin one (60,000 x 833) is never
    padded at full size."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        w, h = img.size
        if w * h > max_pixels:
            raise ValueError(f"too large ({w} x {h} pixels; at most {max_pixels:,})")
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        if img.mode in ("I", "F") or img.mode.startswith("I;16"):
            a = np.asarray(img, dtype=np.float64)
            peak = a.max()
            grey = Image.fromarray(np.clip(a / peak * 255 if peak > 0 else a, 0, 255).round().astype(np.uint8))
            colour = grey
        else:
            grey, colour = img.convert("L"), img
        picture = grey if channels == 1 else colour.convert("RGB")
    a = np.asarray(grey)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if invert == "yes" or (invert == "auto" and np.median(border) > 127):  # (decided on the grey image, colour or not)
        picture = ImageOps.invert(picture)
    b = np.asarray(picture)
    edge = np.concatenate([b[0], b[-1], b[:, 0], b[:, -1]])  # the border's pixels (colour: x 3), the padding's colour
    fill = int(np.median(edge)) if channels == 1 else tuple(int(v) for v in np.median(edge, axis=0))
    w, h = picture.size
    if max(w, h) > PAD_SIDE:  # (images up to PAD_SIDE convert exactly as they always did)
        scale = PAD_SIDE / max(w, h)
        # (reducing_gap: a box reduction by a whole factor first, so the filter's weights
        # stay small; a 25,000,000 x 2 image needed 1.4 GB for them without it)
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS,
                                 reducing_gap=3.0)
        w, h = picture.size
    if w != h:
        side = max(w, h)
        square = Image.new(picture.mode, (side, side), fill)
        square.paste(picture, ((side - w) // 2, (side - h) // 2))
        picture = square
    if picture.size != (28, 28):
        picture = picture.resize((28, 28), Image.Resampling.LANCZOS)
    frame = np.asarray(picture, dtype=np.uint8)
    return frame if channels == 1 else np.ascontiguousarray(frame.transpose(2, 0, 1))  # 3 x 28 x 28


def _images_below(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _top_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _class_folders(folder: Path, where: str) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """(class names, [(image, label)]) of a folder: class sub-folders, or images and no labels."""
    subs, top = _subfolders(folder), _top_images(folder)
    if top and subs:
        raise DataError(f"{where} mixes images at its top level ({top[0].name}, ...) with sub-folders "
                        f"({subs[0].name}, ...): put every image into a class folder, or use no sub-folders "
                        "for a set without labels")
    if len(subs) > MAX_CLASSES:
        raise DataError(f"{where} has {len(subs)} class folders; at most {MAX_CLASSES} classes are supported")
    if len(subs) >= 2:
        items, empty = [], []
        for label, sub in enumerate(subs):
            found = _images_below(sub)
            items += [(p, label) for p in found]
            if not found:
                empty.append(sub.name)
        if empty:
            raise DataError(f"{where}: class folder(s) {', '.join(empty)} hold no images")
        return tuple(s.name for s in subs), items
    return (), [(p, 0) for p in _images_below(folder)]


def _layout(root: Path) -> tuple[tuple[str, ...], dict[str, list[tuple[Path, int]]], bool]:
    """(classes, split -> [(image, label)], held_out) of a dataset folder."""
    names = {p.name for p in _subfolders(root)}
    if {"train", "test"} <= names and not _top_images(root):
        train_classes, train = _class_folders(root / "train", f"{root}/train")
        test_classes, test = _class_folders(root / "test", f"{root}/test")
        if train_classes != test_classes:
            raise DataError(f"{root}: train/ and test/ must hold the same class folders; train has "
                            f"{list(train_classes) or 'none'}, test has {list(test_classes) or 'none'}")
        return train_classes, {"train": train, "test": test}, False
    classes, items = _class_folders(root, str(root))
    if len(items) < HOLDOUT:
        raise DataError(f"{root} holds {len(items)} image(s): too few to hold out a test split (every {HOLDOUT}th "
                        f"image); give at least {HOLDOUT}, or train/ and test/ folders")
    train, test = [], []
    for label in range(max(len(classes), 1)):
        mine = [it for it in items if it[1] == label]
        for i, it in enumerate(mine):
            (test if i % HOLDOUT == HOLDOUT - 1 else train).append(it)
    if not test:  # every class smaller than HOLDOUT: every HOLDOUT-th image of the whole folder instead
        train, test = [it for i, it in enumerate(items) if i % HOLDOUT != HOLDOUT - 1], items[HOLDOUT - 1::HOLDOUT]
    return classes, {"train": train, "test": test}, True


MAX_FILE_BYTES = 256 << 20  # an image file larger than this is not read (not hashed, skipped as too large)


def _name(path: Path) -> bytes:
    """A path's bytes as the file system has them (names need not be UTF-8)."""
    return os.fsencode(path)


def _quick_key(root: Path, paths: list[Path], invert: str) -> str:
    h = hashlib.sha256(f"{FORMAT}\0{invert}\0".encode() + _name(root.resolve()))
    for p in paths:
        st = p.stat()
        h.update(_name(p.relative_to(root)) + f"\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _content_key(root: Path, paths: list[Path], invert: str) -> str:
    """sha256 over every image's name and content, each file hashed as a stream after its
    size is checked (a file past MAX_FILE_BYTES, a sparse 2 GiB one say, counts by its size
    alone: it is skipped as too large when converted)."""
    h = hashlib.sha256(f"{FORMAT}\0{invert}\0".encode())
    for p in paths:
        h.update(_name(p.relative_to(root)) + b"\0")
        h.update(_file_digest(p))
    return h.hexdigest()


def _file_digest(path: Path) -> bytes:
    """sha256 of a file's content: only of a regular file (opened non-blocking, so a FIFO
    cannot hold the conversion), only of the st_size bytes it declares (a file in /proc, or
    a link to one, declares 0 and would never end), and of its size alone past MAX_FILE_BYTES."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return hashlib.sha256(b"not a regular file").digest()
        if st.st_size > MAX_FILE_BYTES:
            return hashlib.sha256(f"too large: {st.st_size}".encode()).digest()
        digest, left = hashlib.sha256(), st.st_size
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            digest.update(chunk)
            left -= len(chunk)
        return digest.digest()
    finally:
        os.close(fd)


def _frame_or_error(path: str, invert: str, channels: int = 1) -> np.ndarray | str:
    """One image's frame, or why it cannot be read (PIL raises many kinds: OSError,
    ValueError, SyntaxError, DecompressionBombError, ...)."""
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            return f"ValueError: too large ({size:,} bytes; at most {MAX_FILE_BYTES:,})"
        return to_frame(path, invert, channels=channels)
    except Exception as e:
        return f"{type(e).__name__}: {e}"


PARALLEL_FROM = 2000  # images; fewer are converted in this process (starting workers costs ~0.5 s)


def _workers() -> int:
    """Worker processes for a conversion: the CPUs other work leaves free now (threads.py's
    rule: beside one busy process on 2 cores, one worker, not two that each wait for a core),
    at most 8; MNISTGAN_WORKERS sets the count (at most the CPUs this process may use)."""
    from ..system import threads  # (here: the spawned workers import this module, and need no torch)

    given = os.environ.get("MNISTGAN_WORKERS", "").strip()
    if given:  # (read like every number given: ASCII digits; at most the CPUs this process may use)
        return numbers.whole(given, "MNISTGAN_WORKERS", 1, len(threads.allowed_cpus()))
    return min(8, threads.available())


def _convert(paths: list[Path], root: Path, invert: str, progress: Progress,
             channels: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(frames of the readable paths, N x 28 x 28 or N x 3 x 28 x 28; which paths were readable, a boolean mask;
    the skipped files with their reasons).

    Many images are converted by worker processes (spawned: the parent may hold torch's
    threads), not threads: Pillow keeps the GIL for much of the work (the figures are in
    docs/MEASUREMENTS.md, "Your own images")."""
    frames = np.zeros((len(paths), *((28, 28) if channels == 1 else (channels, 28, 28))), np.uint8)
    readable = np.ones(len(paths), bool)
    skipped: list[str] = []
    bar = progress(total=len(paths), desc="converting images", unit="img", leave=False) if callable(progress) else None
    names = [str(p) for p in paths]
    with contextlib.ExitStack() as stack:
        if len(paths) >= PARALLEL_FROM and (workers := _workers()) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            results = pool.map(_frame_or_error, names, [invert] * len(names), [channels] * len(names), chunksize=256)
        else:
            results = map(_frame_or_error, names, [invert] * len(names), [channels] * len(names))
        for i, out in enumerate(results):
            if isinstance(out, str):
                skipped.append(f"{paths[i].relative_to(root)}: {out}")
                readable[i] = False
            else:
                frames[i] = out
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return frames[readable], readable, sorted(skipped)


def load_folder(path: str | os.PathLike, invert: str = "auto", progress: Progress = None,
                channels: int = 1) -> FolderDataset:
    """The folder as a converted dataset, from the cache when its images are unchanged;
    channels=3 keeps the images' colour (frames 3 x 28 x 28)."""
    from safetensors.numpy import load_file, save

    root = Path(path).expanduser()
    if invert not in INVERT:
        raise DataError(f"invert must be one of {', '.join(INVERT)}, got {invert!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    form = invert if channels == 1 else f"{invert}\0rgb"  # what the keys cover: grey keys are as they always were
    if not root.is_dir():
        raise DataError(f"folder:{path}: no such folder")
    classes, layout, held_out = _layout(root)
    every = [p for items in layout.values() for p, _ in items]
    if len(every) > MAX_IMAGES:
        raise DataError(f"folder:{path} holds {len(every):,} images; at most {MAX_IMAGES:,} are supported")
    cache = cache_dir() / "folders"
    before = _quick_key(root, every, form)  # (names, sizes, times: compared again after a conversion)
    quick = cache / "index" / f"{before[:32]}.json"
    key = None
    if quick.exists():
        try:
            key = json.loads(quick.read_text())["key"]
        except (OSError, ValueError, KeyError, TypeError):
            key = None
    indexed = key is not None
    if key is None:
        key = _content_key(root, every, form)
    stored = cache / f"{key[:32]}.safetensors"
    if stored.exists():
        try:
            arrays = load_file(stored)
            info = json.loads(arrays.pop("info").tobytes().decode())
            found = _dataset(root, key, info, arrays)
        except Exception:  # a damaged cache is converted again, never trusted
            pass
        else:
            if not indexed:  # same images, new sizes or times (a copy, a touch): index them for the next start
                _write_index(quick, key)
            return found
    arrays: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for split, items in layout.items():
        frames, readable, bad = _convert([p for p, _ in items], root, invert, progress, channels)
        labels = np.array([label for _, label in items], np.int64)[readable]
        if split == "train":  # a fixed shuffle: the first N images are a fair sample of all
            order = np.random.default_rng(0).permutation(len(frames))
            frames, labels = frames[order], labels[order]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = frames, labels
        skipped += bad
    for split in layout:
        if len(arrays[f"{split}_images"]) == 0:
            raise DataError(f"folder:{path}: no readable images for its {split} split"
                            + (f" ({len(skipped)} unreadable, e.g. {skipped[0]})" if skipped else "")
                            + f"; images must end in {', '.join(sorted(EXTENSIONS))}")
    try:
        changed = _quick_key(root, every, form) != before
    except OSError:  # a file removed meanwhile
        changed = True
    if changed:  # its frames would not match the content key taken before: never cache them
        raise DataError(f"folder:{path} changed while its images were converted (a file was written, replaced or "
                        "removed); nothing was cached: run again once the folder is complete")
    info = {"classes": list(classes), "skipped": skipped, "held_out": held_out, "source": str(root.resolve()),
            "invert": invert, "format": FORMAT}
    cache.mkdir(parents=True, exist_ok=True)
    blob = save({**arrays, "info": np.frombuffer(json.dumps(info).encode(), np.uint8)})
    atomic_write_bytes(stored, blob)
    _write_index(quick, key)
    return _dataset(root, key, info, arrays)


def _write_index(quick: Path, key: str) -> None:
    quick.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(quick, json.dumps({"key": key}).encode())


def _dataset(root: Path, key: str, info: dict, arrays: dict[str, np.ndarray]) -> FolderDataset:
    splits = {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in ("train", "test")}
    return FolderDataset(root, key, tuple(info["classes"]), splits, list(info["skipped"]), bool(info["held_out"]))
