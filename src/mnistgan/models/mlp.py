"""The seed's networks: perceptrons (Goodfellow et al. 2014, as the classic TensorFlow
tutorial wrote them, one hidden layer each), with depth, width and an optional class
condition. Images are B x C x 28 x 28 in [0, 1] (C channels: 1 grey, 3 colour, as
C x 784 pixels); the discriminator returns logits (the
sigmoid lives in the objective, for numerical stability)."""
from __future__ import annotations

import torch
from torch import nn

from .common import Generator, class_output, projection, with_class

PIXELS = 28 * 28


def init_normal_(module: nn.Module, std: float) -> None:
    """Weights ~ N(0, std), biases 0 (the tutorial's tf.random_normal(stddev=0.01), tf.zeros)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


def _hidden(in_dim: int, hidden: int, layers: int) -> list[nn.Module]:
    mods, d = [], in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]  # B x d -> B x hidden
        d = hidden
    return mods


class MLPGenerator(Generator):
    def __init__(self, z_dim: int = 128, hidden: int = 256, init_std: float = 0.01, layers: int = 1,
                 num_classes: int = 0, embed_dim: int = 32, channels: int = 1):
        super().__init__()
        self.z_dim, self.num_classes, self.channels = z_dim, num_classes, channels
        in_dim = z_dim + (embed_dim if num_classes else 0)
        self.net = nn.Sequential(
            *_hidden(in_dim, hidden, layers),       # B x z_dim -> B x hidden (x layers)
            nn.Linear(hidden, channels * PIXELS),   # B x hidden -> B x C*784
            nn.Sigmoid(),                       # pixels in [0, 1]
        )
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        init_normal_(self, init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                class_embedding: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(with_class(z, self.embed, labels, class_embedding)).view(-1, self.channels, 28, 28)  # B x C x 28 x 28


class MLPDiscriminator(nn.Module):
    def __init__(self, hidden: int = 256, init_std: float = 0.01, layers: int = 1, num_classes: int = 0,
                 head: int = 0, channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                  # B x C x 28 x 28 -> B x C*784
            *_hidden(channels * PIXELS, hidden, layers),   # B x C*784 -> B x hidden (x layers)
            nn.Linear(hidden, 1),               # B x hidden -> B x 1 (logit; D = sigmoid(logit))
        )
        self.embed = nn.Embedding(num_classes, hidden) if num_classes else None
        # Classifier head on the same features: classes (auxiliary classifier, Odena et al.
        # 2017) or InfoGAN's categorical code (Chen et al. 2016).
        self.classifier = nn.Linear(hidden, head) if head else None  # B x hidden -> B x head
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        """B logits; with classes=True, (B logits, B x head logits of the classifier head)."""
        if self.embed is None and not classes:
            return self.net(x).squeeze(1)  # B logits
        h = self.net[:-1](x)
        logit = self.net[-1](h).squeeze(1)
        if self.embed is not None:
            logit = logit + projection(self.embed, labels, h)
        return class_output(self, logit, h, classes)
