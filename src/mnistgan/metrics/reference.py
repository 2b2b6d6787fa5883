"""The two sides of every comparison: `Reference`, the real side (the dataset's feature
network, its real splits, the real test features cached on disk per dataset and network),
and `Context`, what the metrics share for one set of forgeries (their features, computed
once)."""
from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from .classifier import FeatureNet
from .inputs import as_uint8_images


class Reference:
    """The real side of every comparison, each part loaded once on first use: the dataset's
    feature network, its real splits, and the features of its test split (cached on disk per
    dataset and network). A probe that measures many times keeps one Reference."""

    def __init__(self, dataset: str = "mnist", data_dir=None, download: bool = True, progress=None,
                 device: str = "cpu", invert: str = "auto", channels: int = 1):
        self.dataset, self.data_dir, self.download, self.progress = dataset, data_dir, download, progress
        self.device, self.invert, self.channels = device, invert, channels

    @cached_property
    def source(self):
        """The data.Dataset (a registered one reads its files only when a split is asked for)."""
        from ..data import open_dataset

        return open_dataset(self.dataset, self.data_dir, self.download, self.invert, self.progress, self.channels)

    @cached_property
    def net(self) -> FeatureNet:
        # (name: how the error names the dataset, and so the command it suggests)
        return FeatureNet(self.source.key, self.device,
                          name=self.dataset + (f" --channels {self.channels}" if self.source.kind == "folder" and self.channels > 1 else ""))

    def _split(self, split: str):
        return self.source.split(split)

    @cached_property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self._split("test")

    @cached_property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self._split("train")

    @cached_property
    def real(self) -> torch.Tensor:
        """Features of the real test split, cached on disk per dataset and network."""
        return self._read[0]

    @cached_property
    def real_classes(self) -> torch.Tensor:
        """The feature network's reading (most likely class) of each real test image, cached with the features."""
        return self._read[1]

    @cached_property
    def _read(self) -> tuple[torch.Tensor, torch.Tensor]:
        from safetensors.torch import load_file, save

        from ..store.files import atomic_write_bytes, cache_dir

        path = cache_dir() / "stats" / f"{self.source.key}-test-{self.net.sha256[:16]}.safetensors"
        if path.exists():
            try:
                stored = load_file(path)
                feats, classes = stored["features"], stored.get("classes")
                if feats.shape == (len(self.test[0]), self.net.features) and classes is not None \
                        and classes.shape == (len(feats),):
                    return feats, classes
            except Exception:  # a damaged cache is recomputed, never trusted
                pass
        feats, probs = self.net(self.test[0])
        classes = probs.argmax(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file of its own: evaluations running side by side each write one whole file.
        atomic_write_bytes(path, save({"features": feats.contiguous().cpu(), "classes": classes.contiguous().cpu()}))
        return feats, classes


class Context:
    """What the metrics share for one set of forgeries: the images, their features (computed
    once, on first use), and the Reference they are compared with."""

    def __init__(self, images: np.ndarray, reference: Reference, fake: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.images = as_uint8_images(images)
        if fake is not None:  # features computed elsewhere (by several processes, gathered)
            self.__dict__["fake"] = fake
        self.reference = reference
        self.dataset = reference.dataset
        self.extras: dict = {}  # figures' material (e.g. nearest neighbours)

    @property
    def net(self) -> FeatureNet:
        return self.reference.net

    @property
    def real(self) -> torch.Tensor:
        return self.reference.real

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference.test

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference.train

    @cached_property
    def fake(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.images)

    @property
    def colour(self) -> bool:
        return self.images.shape[1] > 1
