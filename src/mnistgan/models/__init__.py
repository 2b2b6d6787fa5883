"""Generators and discriminators as pure nn.Modules, built by registered family name."""
from __future__ import annotations

from typing import Callable

from torch import nn

from .mlp import MLPDiscriminator, MLPGenerator


def _mlp(c) -> tuple[nn.Module, nn.Module]:
    return (MLPGenerator(c.z_dim, c.hidden, c.init_std), MLPDiscriminator(c.hidden, c.init_std))


# family name -> builder(config) -> (generator, discriminator)
MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": _mlp}


def build(config) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for config.model, initialised from the global torch RNG."""
    return MODELS[config.model](config)


__all__ = ["MODELS", "build", "MLPGenerator", "MLPDiscriminator"]
