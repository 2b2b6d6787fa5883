"""Convolutional networks native to 28 x 28 (Radford et al. 2016's recipe, without resizing
MNIST to 64 x 64): transposed convolutions with batch norm in G, strided convolutions with
LeakyReLU in D (optionally spectrally normalised, Miyato et al. 2018).

Conditional versions take a class label. G either concatenates a learned label embedding to
z ("concat"), or feeds that embedding to every batch norm as its scale and shift
(class-conditional batch norm, "cbn": de Vries et al. 2017, as in SNGAN/BigGAN's generators),
so the class acts at every layer instead of only at the input. D adds a projection term
<embed(y), h> to its logit (Miyato & Koyama 2018)."""
from __future__ import annotations

import torch
from torch import nn

from .common import Generator, class_output, embedded, projection, with_class
from torch.nn.utils.parametrizations import spectral_norm


def init_dcgan_(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:  # (G's BatchNorm1d keeps PyTorch's 1 and 0, as it always has)
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


class ClassBatchNorm(nn.Module):
    """Batch norm without its own affine; the scale 1 + W e and shift U e come from the class
    embedding e (de Vries et al. 2017; BigGAN's shared-embedding form, which keeps one
    embedding per class for walks between classes). W and U start at zero: at step 0 it is
    plain batch norm and the class enters as training finds it useful."""

    def __init__(self, features: int, embed_dim: int, dims: int):
        super().__init__()
        self.norm = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(features, affine=False)
        self.gain = nn.Linear(embed_dim, features, bias=False)
        self.shift = nn.Linear(embed_dim, features, bias=False)
        self.shape = (-1, features) if dims == 1 else (-1, features, 1, 1)

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.gain(e)).view(self.shape) + self.shift(e).view(self.shape)


class DCGANGenerator(Generator):
    def __init__(self, z_dim: int = 128, width: int = 64, num_classes: int = 0, embed_dim: int = 32,
                 conditioning: str = "concat", channels: int = 1):
        super().__init__()
        if conditioning not in ("concat", "cbn"):
            raise ValueError(f"conditioning must be concat or cbn, got {conditioning!r}")
        self.z_dim, self.num_classes = z_dim, num_classes
        self.cbn = bool(num_classes) and conditioning == "cbn"
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = z_dim + (embed_dim if num_classes and not self.cbn else 0)
        w = width
        norm1 = ClassBatchNorm(2 * w * 7 * 7, embed_dim, 1) if self.cbn else nn.BatchNorm1d(2 * w * 7 * 7)
        norm2 = ClassBatchNorm(w, embed_dim, 2) if self.cbn else nn.BatchNorm2d(w)
        self.fc = nn.Sequential(
            nn.Linear(in_dim, 2 * w * 7 * 7, bias=False),       # B x in -> B x 2w*7*7
            norm1, nn.ReLU(),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),    # B x 2w x 7 x 7 -> B x w x 14 x 14
            norm2, nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 4, 2, 1),             # -> B x C x 28 x 28
            nn.Sigmoid(),                                          # pixels in [0, 1]
        )
        self.width = w
        init_dcgan_(self)
        for m in self.modules():
            if isinstance(m, ClassBatchNorm):
                m.reset_parameters()
        self.to(memory_format=torch.channels_last)  # see DCGANDiscriminator

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                class_embedding: torch.Tensor | None = None) -> torch.Tensor:
        if not self.cbn:
            h = self.fc(with_class(z, self.embed, labels, class_embedding)).view(-1, 2 * self.width, 7, 7)
            return self.net(h)
        class_embedding = embedded(self.embed, labels, class_embedding)
        h = _through(self.fc, z, class_embedding).view(-1, 2 * self.width, 7, 7)
        return _through(self.net, h, class_embedding)


def _through(layers: nn.Sequential, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """h through the layers, the class embedding e given to each class batch norm."""
    for layer in layers:
        h = layer(h, e) if isinstance(layer, ClassBatchNorm) else layer(h)
    return h


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int = 64, num_classes: int = 0, spectral: bool = False, head: int = 0,
                 channels: int = 1):
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        w = width
        self.num_classes = num_classes
        self.net = nn.Sequential(
            sn(nn.Conv2d(channels, w, 4, 2, 1)),                   # B x C x 28 x 28 -> B x w x 14 x 14
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(w, 2 * w, 4, 2, 1)),                      # -> B x 2w x 7 x 7
            nn.LeakyReLU(0.2),
            nn.Flatten(),                                          # -> B x 2w*49
        )
        self.out = sn(nn.Linear(2 * w * 49, 1))                    # -> B x 1 logit
        self.embed = sn(nn.Embedding(num_classes, 2 * w * 49)) if num_classes else None
        # Classifier head on the same features: classes (auxiliary classifier, Odena et al.
        # 2017) or InfoGAN's categorical code (Chen et al. 2016).
        self.classifier = nn.Linear(2 * w * 49, head) if head else None  # -> B x head
        init_dcgan_(self)
        # Channels-last (NHWC) weights make oneDNN run every convolution in NHWC, faster for a
        # whole step here (the 1-channel first layer most of all; docs/MEASUREMENTS.md), and
        # it is cuDNN's fast layout. Same maths; sums in another order.
        # Optimiser state must share the layout (checkpoint.load_optimizer sees to it).
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        """B logits; with classes=True, (B logits, B x head logits of the classifier head)."""
        h = self.net(x * 2 - 1)  # pixels to [-1, 1]
        logit = self.out(h).squeeze(1)
        if self.embed is not None:
            logit = logit + projection(self.embed, labels, h)
        return class_output(self, logit, h, classes)
