"""R3GAN's networks (Huang et al. 2024, "The GAN is dead; long live the GAN!") at a size a
CPU trains, native to 28 x 28: ResNeXt-style residual blocks (1x1 conv, grouped 3x3 conv,
1x1 conv; an inverted bottleneck, twice as wide inside), fix-up initialisation, leaky ReLU,
bilinear resampling instead of transposed or strided convolutions, and no normalisation
layer at all (batch norm, they report, does not go with R1, R2 or the relativistic pairing
loss).

    G: z -> linear -> 4w x 7 x 7 -> blocks -> 1x1 conv, bilinear x2 -> 2w x 14 x 14 -> blocks
       -> 1x1 conv, bilinear x2 -> w x 28 x 28 -> 3x3 conv -> C x 28 x 28
    D: C x 28 x 28 -> 3x3 conv -> w x 28 x 28 -> 2x2 average, 1x1 conv -> 2w x 14 x 14 -> blocks
       -> 2x2 average, 1x1 conv -> 4w x 7 x 7 -> blocks -> 7x7 depthwise conv -> 4w -> linear
       -> logit

The residual stages work at 7 x 7 and 14 x 14 only: at 28 x 28 one block cost more than
both other stages together on a CPU (docs/MEASUREMENTS.md, "Stacked-MNIST"), so 28 x 28 has
one plain 3x3 convolution in each network.

(A 2x2 average is bilinear resampling by one half, align_corners=False: the sample points
fall midway between pixels.) Conditional: G takes the class embedding beside z, D adds the
projection <embed(y), h> to its logit (Miyato & Koyama 2018), as R3GAN's conditional models
do. G's last layer is linear (no sigmoid, as R3GAN's): pixels are 0.5 + 0.5 out, and D sees
them unclipped in training; in eval mode (every picture, sample and export) they are clipped
to [0, 1].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import Generator, class_output, projection, with_class

SLOPE = 0.2        # leaky ReLU
GROUP = 16         # channels per group of the grouped 3x3 convolution (R3GAN's group size)
EXPANSION = 2      # the inverted bottleneck's width inside a block, times its outside width


class Block(nn.Module):
    """x + conv1x1(act(conv3x3_grouped(act(conv1x1(x))))): B x c x H x W -> B x c x H x W."""

    def __init__(self, c: int):
        super().__init__()
        inner = c * EXPANSION
        self.expand = nn.Conv2d(c, inner, 1)                                           # c -> 2c
        self.spatial = nn.Conv2d(inner, inner, 3, padding=1, groups=max(1, inner // GROUP))  # grouped 3x3
        self.reduce = nn.Conv2d(inner, c, 1)                                           # 2c -> c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.spatial(h), SLOPE)
        return x + self.reduce(h)


def fixup_(module: nn.Module, blocks: int) -> None:
    """Fix-up initialisation (Zhang et al. 2019, as R3GAN uses it): every conv and linear
    layer He-initialised for leaky ReLU, biases 0; inside each residual block the first two
    layers scaled by blocks^(-1/(2m - 2)) with m = 3 layers a block, and the last one zero,
    so every block starts as the identity and the signal's scale does not grow with depth."""
    gain = nn.init.calculate_gain("leaky_relu", SLOPE)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, gain / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)
    scale = blocks ** (-1 / (2 * 3 - 2))
    for m in module.modules():
        if isinstance(m, Block):
            with torch.no_grad():
                m.expand.weight.mul_(scale)
                m.spatial.weight.mul_(scale)
                m.reduce.weight.zero_()


def _stage(c: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*(Block(c) for _ in range(blocks)))


class ResNetGenerator(Generator):
    def __init__(self, z_dim: int = 128, width: int = 32, num_classes: int = 0, embed_dim: int = 32,
                 channels: int = 1, blocks: int = 1):
        super().__init__()
        self.z_dim, self.num_classes, self.width = z_dim, num_classes, width
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        w = width
        self.basis = nn.Linear(z_dim + (embed_dim if num_classes else 0), 4 * w * 7 * 7)  # B x in -> B x 4w*49
        self.stage7 = _stage(4 * w, blocks)                                # B x 4w x 7 x 7
        self.to14 = nn.Conv2d(4 * w, 2 * w, 1)                             # -> 2w x 7 x 7, then bilinear x2
        self.stage14 = _stage(2 * w, blocks)                               # B x 2w x 14 x 14
        self.to28 = nn.Conv2d(2 * w, w, 1)                                 # -> w x 14 x 14, then bilinear x2
        self.out = nn.Conv2d(w, channels, 3, padding=1)                    # B x w x 28 x 28 -> B x C x 28 x 28
        fixup_(self, blocks=2 * blocks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                class_embedding: torch.Tensor | None = None) -> torch.Tensor:
        h = self.basis(with_class(z, self.embed, labels, class_embedding)).view(-1, 4 * self.width, 7, 7)
        h = self.stage7(F.leaky_relu(h, SLOPE))
        h = self.stage14(_up(self.to14(h)))
        h = F.leaky_relu(_up(self.to28(h)), SLOPE)
        x = 0.5 + 0.5 * self.out(h)                 # pixels; [0, 1] is where real ones lie
        return x if self.training else x.clamp(0, 1)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ResNetDiscriminator(nn.Module):
    def __init__(self, width: int = 32, num_classes: int = 0, head: int = 0, channels: int = 1, blocks: int = 1):
        super().__init__()
        w = width
        self.num_classes = num_classes
        self.inp = nn.Conv2d(channels, w, 3, padding=1)                    # B x C x 28 x 28 -> B x w x 28 x 28
        self.to14 = nn.Conv2d(w, 2 * w, 1)                                 # (after a 2x2 average) -> 2w x 14 x 14
        self.stage14 = _stage(2 * w, blocks)
        self.to7 = nn.Conv2d(2 * w, 4 * w, 1)                              # (after a 2x2 average) -> 4w x 7 x 7
        self.stage7 = _stage(4 * w, blocks)
        self.basis = nn.Conv2d(4 * w, 4 * w, 7, groups=4 * w)              # depthwise 7x7 -> B x 4w x 1 x 1
        self.logit = nn.Linear(4 * w, 1)                                   # -> B x 1
        self.embed = nn.Embedding(num_classes, 4 * w) if num_classes else None
        self.classifier = nn.Linear(4 * w, head) if head else None        # -> B x head
        fixup_(self, blocks=2 * blocks)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        """B logits; with classes=True, (B logits, B x head logits of the classifier head)."""
        h = F.leaky_relu(self.inp(x * 2 - 1), SLOPE)    # pixels to [-1, 1]
        h = self.stage14(self.to14(F.avg_pool2d(h, 2)))
        h = self.stage7(self.to7(F.avg_pool2d(h, 2)))
        h = self.basis(F.leaky_relu(h, SLOPE)).flatten(1)                 # B x 4w
        logit = self.logit(h).squeeze(1)
        if self.embed is not None:
            logit = logit + projection(self.embed, labels, h) / math.sqrt(h.shape[1])  # scaled by 1/sqrt(4w)
        return class_output(self, logit, h, classes)
