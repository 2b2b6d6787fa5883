"""Generators and discriminators as pure nn.Modules, built by registered family name.

Every generator maps (z B x z_dim, labels B or None) to images B x C x 28 x 28 in [0, 1]
(C = config.channels: 1 grey, 3 colour);
every discriminator maps (images, labels or None) to B logits (and, built with an auxiliary
classifier and called with classes=True, also to B x K class logits). A conditional generator
also accepts class_embedding (B x embed_dim) instead of labels, for walks across classes.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator


def _classes(c) -> int:
    """Classes D is told (projection): the dataset's, for conditional models."""
    return c.num_classes if c.conditional else 0


def _codes(c) -> int:
    """Labels G takes: classes (conditional) or InfoGAN codes."""
    return c.label_count


def _head(c) -> int:
    """Outputs of D's classifier head: classes (aux_weight) or codes (info_code)."""
    return c.head_count


def _mlp(c) -> tuple[nn.Module, nn.Module]:
    return (MLPGenerator(c.z_dim, c.hidden, c.init_std, c.layers, _codes(c), channels=c.channels),
            MLPDiscriminator(c.hidden, c.init_std, c.layers, _classes(c), head=_head(c), channels=c.channels))


def _dcgan(c) -> tuple[nn.Module, nn.Module]:
    return (DCGANGenerator(c.z_dim, c.width, _codes(c), conditioning=c.g_conditioning, channels=c.channels),
            DCGANDiscriminator(c.width, _classes(c), spectral=c.spectral_norm, head=_head(c), channels=c.channels))


def _resnet(c) -> tuple[nn.Module, nn.Module]:
    return (ResNetGenerator(c.z_dim, c.width, _codes(c), channels=c.channels, blocks=c.layers),
            ResNetDiscriminator(c.width, _classes(c), head=_head(c), channels=c.channels, blocks=c.layers))


# family name -> builder(config) -> (generator, discriminator)
MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": _mlp, "dcgan": _dcgan, "resnet": _resnet}


def build(config) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for config.model, initialised from the global torch RNG."""
    return MODELS[config.model](config)


__all__ = ["MODELS", "build", "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
           "ResNetGenerator", "ResNetDiscriminator"]
