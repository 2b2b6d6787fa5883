"""The data a run learns from, by the name a config gives it: `Dataset` (mnist,
fashion-mnist, stacked-mnist, folder:PATH, idx:PATH; its classes, channels, splits and
identity), `DeviceData` (the training set as one N x C x 28 x 28 tensor on the device) and
`training_set` (the split a run trains on). Every image array it gives is N x C x 28 x 28
uint8 (C = 1 grey, 3 colour), whatever the file's own layout. Its parts: `idx` (reading IDX files),
`sources` (the registered datasets' files, finding and downloading them), `stacked`
(Stacked-MNIST's recipe) and `folder` (your own images). Local folders are validated by
structure, never by checksum: a user's own copy may be re-encoded.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from .idx import IMAGE_MAGIC, KINDS, LABEL_MAGIC, MAX_IDX_BYTES, MAX_LABELS, read_idx, read_images, read_labels
from .sources import (DATASETS, ROLES, DatasetSpec, Progress, download_dataset, download_file, find_file, get_spec,
                      locate, missing_files)
from .stacked import STACKED, STACKS, stack_digits

REGISTERED = (*DATASETS, STACKED)  # the names --dataset takes besides folder:PATH and idx:PATH
__all__ = ["IMAGE_MAGIC", "LABEL_MAGIC", "KINDS", "MAX_IDX_BYTES", "MAX_LABELS", "read_idx", "read_images",
           "read_labels", "DATASETS", "ROLES", "DatasetSpec", "Progress", "download_dataset", "download_file",
           "find_file", "get_spec", "locate", "missing_files", "STACKED", "STACKS", "stack_digits", "REGISTERED", "parse_name",
           "Dataset", "open_dataset", "load_split", "check_identity", "describe", "DeviceData", "Found",
           "training_set"]


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
        """1 (grey) or 3 (colour): C of a split's N x C x 28 x 28 images."""
        if self.kind == "folder":
            return self._channels
        return 3 if self.name == STACKED else 1

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 N x C x 28 x 28, labels N int) of the split: train or test."""
        if split not in ("train", "test"):
            raise DataError(f"unknown split {split!r}; available: train, test")
        if split not in self._splits:
            data_dir, download, progress = self._where
            if self.name == STACKED:
                digits, labels = _load_registered(self.spec, split, data_dir, download, progress)
                self._splits[split] = stack_digits(digits, labels, *STACKS[split])
            else:
                self._splits[split] = _load_registered(self.spec, split, data_dir, download, progress)
        images, labels = self._splits[split]
        # IDX files and a grey folder's cache hold N x 28 x 28: the channel axis as a view
        return images.reshape(len(images), self.channels, 28, 28), labels

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
    """(images N x C x 28 x 28 uint8, labels N) of a dataset's split."""
    return open_dataset(name, data_dir, download, invert, progress).split(split)


def _load_registered(spec: DatasetSpec, split: str, data_dir, download: bool,
                     progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    folder = locate(spec, data_dir, download=download, progress=progress)
    count = spec.counts[split]
    images = read_images(find_file(folder, spec.files[f"{split}_images"]), count)
    labels = read_labels(find_file(folder, spec.files[f"{split}_labels"]), count, len(spec.classes))
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


def describe(name: str, data_dir=None, fetch: bool = False, invert: str = "auto",
             progress: Progress = None) -> Iterator[str]:
    """`mnistgan data check|fetch`: a dataset's splits checked (fetched first with fetch), one
    line each, and what it is. A folder or IDX dataset is converted (or found in the cache)."""
    if parse_name(name)[1] is not None:
        t0 = time.perf_counter()
        source = open_dataset(name, invert=invert, progress=progress)
        for split in ("train", "test"):
            imgs, labels = source.split(split)
            yield f"{name} {split}: {len(imgs)} images, {len(labels)} labels, valid"
        classes = ", ".join(source.classes) if source.classes else "none (unconditional presets only)"
        yield f"classes ({source.num_classes}): {classes}"
        yield from (f"skipped: {line}" for line in source.skipped)
        yield f"key {source.key}, ready in {time.perf_counter() - t0:.1f} s"
        return
    spec = get_spec("mnist" if name == STACKED else name)  # (Stacked-MNIST is made from MNIST's files)
    folder = locate(spec, data_dir, download=fetch, progress=progress)
    source = open_dataset(name, folder, download=False)
    if name == STACKED:
        for split, (count, seed) in STACKS.items():
            _, labels = source.split(split)
            yield (f"{name} {split}: {count} stacks of three MNIST {split} digits (seed {seed}), "
                   f"{len(set(labels.tolist()))} of the 1000 triples present ({folder})")
        return
    for split in spec.counts:
        imgs, labels = source.split(split)
        yield f"{name} {split}: {len(imgs)} images, {len(labels)} labels, valid ({folder})"


class DeviceData:
    """The training set as one uint8 tensor on the training device.

    An epoch is a permutation of indices; a batch is an index slice converted to float on
    the fly. Nothing here touches Python per sample, and nothing re-reads the disk.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, device="cpu"):
        import torch

        if images.ndim != 4 or images.shape[2:] != (28, 28):
            raise DataError(f"training images must be N x C x 28 x 28, got shape {images.shape}")
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        # No copy when the array is already contiguous writable uint8 (read_idx's own array):
        # the tensor shares its memory. Anything else (a read-only buffer, other dtypes) is
        # copied once.
        arr = np.ascontiguousarray(images, dtype=np.uint8)
        if not arr.flags.writeable:
            arr = arr.copy()
        self.images = torch.from_numpy(arr).to(device)  # N x C x 28 x 28
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
        # index_select, not images[idx]: the same rows in a fraction of the time (advanced
        # indexing goes through TensorIterator, a visible share of the seed's small step).
        return torch.index_select(self.images, 0, idx).float().div_(255.0), torch.index_select(self.labels, 0, idx)


@dataclass(frozen=True)
class Found:
    """What a run's dataset turned out to be: its identity (`Dataset.key`), channels, classes
    and training images. The config's data fields are set from it by the run (runs.fit_to_data),
    or compared with it on resume; this room never changes a config."""
    key: str
    channels: int
    num_classes: int
    images: int


def training_set(config, device, progress: Progress = None) -> tuple[DeviceData, Found, list[str]]:
    """(the first config.train_images training images (all, when there are fewer) on device as
    DeviceData, what the dataset is (Found), notices for the user)."""
    dataset = open_dataset(config.dataset, config.data_dir, download=config.download, invert=config.invert,
                           progress=progress, channels=config.channels)
    imgs, labels = dataset.split("train")
    notices = []
    if dataset.skipped:
        notices.append(f"warning: skipped {len(dataset.skipped)} unreadable image(s) of {config.dataset}: "
                       + "; ".join(dataset.skipped[:3]) + (" ..." if len(dataset.skipped) > 3 else ""))
    n = min(config.train_images, len(imgs))
    found = Found(dataset.key, dataset.channels, dataset.num_classes, len(imgs))
    return DeviceData(imgs[:n], labels[:n], device), found, notices
