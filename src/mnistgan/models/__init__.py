"""Generators and discriminators as pure nn.Modules, built by registered family name.

Every generator maps (z B x z_dim, labels B or None) to images B x C x 28 x 28 in [0, 1]
(C = config.channels: 1 grey, 3 colour);
every discriminator maps (images, labels or None) to B logits (and, built with an auxiliary
classifier and called with classes=True, also to B x K class logits). A conditional generator
also accepts class_embedding (B x embed_dim) instead of labels, for walks across classes.
With config.pack = m > 1, D is `Packed`: B images -> B/m logits, one per pack of m.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError

from .common import Packed, each_logit
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


def _d_channels(c) -> int:
    """D's input channels: the images', times the pack size (PacGAN stacks a pack's images)."""
    return c.channels * c.pack


def _mlp(c) -> tuple[nn.Module, nn.Module]:
    return (MLPGenerator(c.z_dim, c.hidden, c.init_std, c.layers, _codes(c), channels=c.channels),
            MLPDiscriminator(c.hidden, c.init_std, c.layers, _classes(c), head=_head(c), channels=_d_channels(c)))


def _dcgan(c) -> tuple[nn.Module, nn.Module]:
    return (DCGANGenerator(c.z_dim, c.width, _codes(c), conditioning=c.g_conditioning, channels=c.channels),
            DCGANDiscriminator(c.width, _classes(c), spectral=c.spectral_norm, head=_head(c), channels=_d_channels(c)))


def _resnet(c) -> tuple[nn.Module, nn.Module]:
    return (ResNetGenerator(c.z_dim, c.width, _codes(c), channels=c.channels, blocks=c.layers),
            ResNetDiscriminator(c.width, _classes(c), head=_head(c), channels=_d_channels(c), blocks=c.layers))


def _family(config) -> tuple[nn.Module, nn.Module]:
    """The family's (G, D), D wrapped to judge packs when config.pack > 1."""
    G, D = MODELS[config.model](config)
    return (G, Packed(D, config.pack)) if config.pack > 1 else (G, D)


# family name -> builder(config) -> (generator, discriminator)
MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": _mlp, "dcgan": _dcgan, "resnet": _resnet}


# Parameters G and D may have together (1 GB of fp32 weights; training holds about four
# times that with gradients and Adam's moments). Each setting is bounded on its own in
# config.py, but together they can ask for far more (an MLP of 16 layers of 16,384: 4.3
# billion), so the networks are sized before anything is allocated.
MAX_PARAMETERS = 250_000_000


def _on_meta(config) -> tuple[nn.Module, nn.Module]:
    """The networks with every tensor on the meta device: shapes without memory or time. The
    global RNG is left as it was (the real build draws from it)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return _family(config)


def layout(config) -> dict[str, tuple[int, ...]]:
    """{checkpoint tensor name: shape} of the networks a config builds (G.*, D.*, and G_ema.*
    when the run keeps an EMA of G), computed without allocating; ConfigError past the size
    bound. What checkpoint.load compares a file's header with before reading its tensors."""
    G, D = _on_meta(config)
    count = sum(p.numel() for net in (G, D) for p in net.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(f"{config.model} networks of these settings would hold {count:,} parameters "
                          f"together; at most {MAX_PARAMETERS:,} are allowed (lower hidden, layers, width or z_dim)")
    shapes = {f"G.{k}": tuple(v.shape) for k, v in G.state_dict().items()}
    shapes.update({f"D.{k}": tuple(v.shape) for k, v in D.state_dict().items()})
    if config.ema_half_life:
        shapes.update({f"G_ema.{k}": tuple(v.shape) for k, v in G.state_dict().items()})
    return shapes


def build(config) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for config.model, initialised from the global torch RNG;
    sized first (layout), so that settings past the bound fail before any allocation."""
    layout(config)
    return _family(config)


__all__ = ["MODELS", "MAX_PARAMETERS", "build", "layout", "Packed", "each_logit", "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
           "ResNetGenerator", "ResNetDiscriminator"]
