"""The feature network behind the metrics: a small LeNet-style classifier the project trains
itself, because Inception features neither fit 28x28 grey digits nor can be downloaded here.

Its weights ship in the package (weights/<dataset>.safetensors) with their test accuracy
and sha256 in weights/<dataset>.json; every metric result names the network and its
sha256, so only numbers from the same network are compared.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..system import threads
from ..errors import MnistganError

WEIGHTS = Path(__file__).resolve().parent / "weights"
FEATURES = 128


class LeNet(nn.Module):
    """conv5(32) -> pool -> conv5(64) -> pool -> fc 128 (the feature layer) -> fc 10."""

    def __init__(self, num_classes: int = 10, channels: int = 1):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 5), nn.ReLU(), nn.MaxPool2d(2),   # B x 32 x 12 x 12
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),  # B x 64 x 4 x 4
            nn.Flatten(),                                       # B x 1024
        )
        self.fc = nn.Sequential(nn.Linear(1024, FEATURES), nn.ReLU())  # B x 128 features
        self.head = nn.Linear(FEATURES, num_classes)                   # B x 10 logits

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: B x C x 28 x 28 in [0, 1] -> (features B x 128, logits B x 10)."""
        f = self.fc(self.conv((x - 0.5) / 0.5))
        return f, self.head(f)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_folder(key: str) -> Path:
    """Where a dataset's classifier lives: the package's weights/ for the shipped datasets,
    the user cache for one's own (folder-... and idx-... keys)."""
    if key.startswith(("folder-", "idx-")):
        from ..store.files import cache_dir

        return cache_dir() / "classifiers"
    return WEIGHTS


# Datasets whose images are read channel by channel by another dataset's classifier:
# Stacked-MNIST's three channels are MNIST digits.
PER_CHANNEL = {"stacked-mnist": "mnist"}


class FeatureNet:
    """A loaded classifier with its identity: name, sha256, accuracy. `dataset` is the
    dataset's key (data.Dataset.key); `name` how the user called it, for messages.

    For Stacked-MNIST (PER_CHANNEL) it is MNIST's classifier read channel by channel: an
    image's features are its three channels' 128 features side by side (red, green, blue:
    384 numbers, the space FID, KID and PRDC are then measured in), and its class
    probabilities are the product of the channels', over the 1,000 triples 100 r + 10 g + b
    (the digits of one stack were drawn independently)."""

    def __init__(self, dataset: str, device="cpu", name: str | None = None):
        from safetensors.torch import load_file

        self.per_channel = 3 if dataset in PER_CHANNEL else 1
        source = PER_CHANNEL.get(dataset, dataset)
        folder = weights_folder(source)
        wpath, info_path = folder / f"{source}.safetensors", folder / f"{source}.json"
        if not wpath.exists() or not info_path.exists():
            raise MnistganError(f"no classifier (feature network) for dataset {name or dataset} (expected {wpath}); "
                                f"train one with: mnistgan classifier train --dataset {name or dataset}")
        info = json.loads(info_path.read_text())
        digest = sha256(wpath)
        if digest != info["sha256"]:
            raise MnistganError(f"{wpath}: sha256 {digest} does not match {info_path} ({info['sha256']})")
        state = load_file(wpath)
        self.channels = state["conv.0.weight"].shape[1] * self.per_channel  # of the images it reads
        self.net = LeNet(state["head.weight"].shape[0], state["conv.0.weight"].shape[1])
        self.net.load_state_dict(state)
        self.net.eval().to(device)
        self.device = torch.device(device)
        self.dataset = dataset
        self.sha256 = digest
        self.accuracy = info["test_accuracy"]
        self.features = FEATURES * self.per_channel
        self.classes = self.net.head.out_features ** self.per_channel

    @property
    def identity(self) -> dict:
        name = f"lenet-{PER_CHANNEL[self.dataset]}-per-channel" if self.per_channel > 1 else f"lenet-{self.dataset}"
        return {"name": name, "sha256": self.sha256, "test_accuracy": self.accuracy}

    @torch.no_grad()
    def __call__(self, images: np.ndarray | torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N x 28 x 28 or N x C x 28 x 28 (or floats in [0, 1] as N x C x 28 x 28) ->
        (features float64, probabilities float64)."""
        x = torch.as_tensor(np.array(images, copy=True)) if isinstance(images, np.ndarray) else images
        feats, probs = [], []
        for chunk in x.split(batch):
            threads.tick()  # (the thread count follows the load inside threads.governed)
            chunk = chunk.to(self.device)
            if chunk.dtype == torch.uint8:
                chunk = chunk.float().div_(255.0)
            n = len(chunk)
            chunk = chunk.reshape(n * self.per_channel, self.channels // self.per_channel, 28, 28).float()
            f, logits = self.net(chunk)
            p = F.softmax(logits.double(), dim=1)
            if self.per_channel > 1:  # (n x 3 channels) rows -> n rows: features side by side, joint probabilities
                p = p.view(n, self.per_channel, self.net.head.out_features)
                p = torch.einsum("ni,nj,nk->nijk", p[:, 0], p[:, 1], p[:, 2]).reshape(n, -1)
            feats.append(f.double().reshape(n, self.features).cpu())  # (n may be 0: a process with no share)
            probs.append(p.cpu())
        if not feats:  # no images (a process with no share of the work)
            return (torch.zeros(0, self.features, dtype=torch.float64),
                    torch.zeros(0, self.classes, dtype=torch.float64))
        return torch.cat(feats), torch.cat(probs)


def train_classifier(dataset: str, data_dir=None, epochs: int = 4, seed: int = 0, out: Path | None = None,
                     progress=None, device: str = "cpu", force: bool = False, invert: str = "auto",
                     channels: int = 1) -> dict:
    """Trains the feature network deterministically per seed; writes weights and info JSON
    (never over existing ones unless force) where FeatureNet finds them (default: the
    package's weights/ for the shipped datasets, the user cache for folder:/idx: ones).
    At least MIN_STEPS steps are taken, so a small dataset gets more epochs.
    `progress`: a progress-bar factory (callbacks.progress_bar), or None for no bars."""
    from safetensors.torch import save

    from ..store import files
    from ..data import open_dataset

    torch.manual_seed(seed)
    if dataset in PER_CHANNEL:
        raise MnistganError(f"{dataset} is read channel by channel by the {PER_CHANNEL[dataset]} classifier: "
                            f"train that one (mnistgan classifier train --dataset {PER_CHANNEL[dataset]})")
    source = open_dataset(dataset, data_dir, invert=invert, progress=progress, channels=channels)
    if source.num_classes < 2:
        raise MnistganError(f"{dataset} has no labels (no class sub-folders): a classifier, and so the metrics, "
                            "need 2 or more classes")
    wpath, ipath = outputs(source.key, out)
    files.refuse_existing((wpath, ipath), force)  # before minutes of training; again, atomically, at the end
    x, y = source.split("train")
    xt, yt = source.split("test")
    if len(xt) == 0 or len(x) == 0:
        raise MnistganError(f"{dataset} has an empty {'test' if len(x) else 'training'} split: the classifier's "
                            "accuracy is measured on the test split, so it needs images in both")
    X = torch.from_numpy(x.copy())
    Y = torch.from_numpy(y.astype(np.int64))
    batch = min(100, len(X))
    per_epoch = len(X) // batch
    epochs = max(epochs, -(-MIN_STEPS // per_epoch))
    net = LeNet(source.num_classes, X.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * per_epoch)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        net.train()
        steps = range(per_epoch)
        for i in (progress(steps, desc=f"classifier epoch {epoch + 1}/{epochs}") if callable(progress) else steps):
            idx = order[i * batch:(i + 1) * batch]
            xb = X[idx].float().div_(255.0).to(device)
            # Light augmentation (shifts of up to 2 pixels) for a network that generalises to forgeries.
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            _, logits = net(xb)
            loss = F.cross_entropy(logits, Y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(c.copy()).reshape(-1, X.shape[1], 28, 28).float().div(255).to(device))[1].argmax(1).cpu()
                          for c in np.array_split(xt, max(1, -(-len(xt) // 1000)))])
    acc = float((pred.numpy() == yt).mean())
    wpath.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_bytes(wpath, save({k: v.contiguous().cpu() for k, v in net.state_dict().items()}),
                             overwrite=force)
    info = {"dataset": source.key, "test_accuracy": acc, "sha256": sha256(wpath), "epochs": epochs, "seed": seed,
            "train_seconds": round(time.time() - t0, 1), "torch": torch.__version__}
    if source.key != dataset:  # folder:/idx: sets: what the key stands for
        info.update(source=dataset, classes=list(source.classes))
    files.write_json(ipath, info, overwrite=force)
    return info


MIN_STEPS = 300


def outputs(key: str, out: Path | str | None = None) -> tuple[Path, Path]:
    """(weights, info JSON) that train_classifier writes for a dataset key: into out, else
    where FeatureNet looks (weights_folder)."""
    out = Path(out) if out else weights_folder(key)
    return out / f"{key}.safetensors", out / f"{key}.json"
