"""Generators and discriminators as pure nn.Modules, built by registered family name.

Every generator maps (z B x z_dim, labels B or None) to images B x 1 x 28 x 28 in [0, 1];
every discriminator maps (images, labels or None) to B logits (and, built with an auxiliary
classifier and called with classes=True, also to B x K class logits). A conditional generator
also accepts class_embedding (B x embed_dim) instead of labels, for walks across classes.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator


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
    return (MLPGenerator(c.z_dim, c.hidden, c.init_std, c.layers, _codes(c)),
            MLPDiscriminator(c.hidden, c.init_std, c.layers, _classes(c), head=_head(c)))


def _dcgan(c) -> tuple[nn.Module, nn.Module]:
    return (DCGANGenerator(c.z_dim, c.width, _codes(c), conditioning=c.g_conditioning),
            DCGANDiscriminator(c.width, _classes(c), spectral=c.spectral_norm, head=_head(c)))


# family name -> builder(config) -> (generator, discriminator)
MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": _mlp, "dcgan": _dcgan}


def build(config) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for config.model, initialised from the global torch RNG."""
    return MODELS[config.model](config)


__all__ = ["MODELS", "build", "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator"]
