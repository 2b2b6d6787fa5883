"""Pieces the model families share."""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """What every generator has beside forward(z, labels=None, class_embedding=None)."""

    embed: nn.Embedding | None

    def class_embeddings(self) -> torch.Tensor:
        """The learned class (or code) embedding table, classes x embed_dim: rows to
        interpolate between for a walk across classes."""
        if self.embed is None:
            raise ValueError("this generator takes no class")
        return self.embed.weight


def with_class(z: torch.Tensor, embed: nn.Embedding | None, labels: torch.Tensor | None,
               class_embedding: torch.Tensor | None) -> torch.Tensor:
    """z, with the class embedding concatenated when the generator is conditional (a given
    class_embedding, e.g. one interpolated between classes, stands in for labels)."""
    if embed is None:
        return z
    return torch.cat([z, embedded(embed, labels, class_embedding)], dim=1)


def embedded(embed: nn.Embedding, labels: torch.Tensor | None, class_embedding: torch.Tensor | None = None,
             network: str = "generator") -> torch.Tensor:
    """The class embedding a conditional network uses: the one given, or its labels' rows of
    embed; one error for a conditional network called without labels."""
    if class_embedding is not None:
        return class_embedding
    if labels is None:
        raise ValueError(f"this {network} is conditional: pass class labels")
    return embed(labels)


def projection(embed: nn.Embedding, labels: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """A projection discriminator's class term (Miyato & Koyama 2018): <embed(y), h> per row."""
    return (embedded(embed, labels, network="discriminator") * h).sum(1)


def class_output(D: nn.Module, logit: torch.Tensor, h: torch.Tensor, classes: bool):
    """A discriminator's return value: logit, or (logit, class logits from features h) when
    classes is asked for; only a discriminator built with an auxiliary classifier has them."""
    if not classes:
        return logit
    if getattr(D, "classifier", None) is None:
        raise ValueError("this discriminator has no classifier head (aux_weight is 0, info_code off)")
    return logit, D.classifier(h)


class Packed(nn.Module):
    """PacGAN's discriminator (Lin et al. 2018): D judges packs of m images, stacked on its
    input channels, instead of single images. A pack of m forgeries from a generator that
    dropped modes looks unlike a pack of m real images (it repeats itself), so D can punish
    what one image at a time cannot show; D's later layers also run on B/m rows, not B.

    net is the discriminator built for m x C input channels. forward(x) maps N images
    (N a multiple of m; consecutive images form a pack) to N/m logits; `each(x)` gives one
    logit per image by judging a pack of m copies of it (what `serve`'s police officer asks)."""

    def __init__(self, net: nn.Module, m: int):
        super().__init__()
        self.net, self.m = net, m
        self.classifier = None  # packs have no class: a packed D has no head (config refuses one)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        if labels is not None or classes:
            raise ValueError("a packed discriminator takes no labels: packs have no single class")
        n, c, h, w = x.shape
        if n % self.m:
            raise ValueError(f"a packed discriminator judges packs of {self.m} images; got {n}, not a multiple")
        packs = x.reshape(n // self.m, self.m * c, h, w)
        if c > 1 and x.is_contiguous(memory_format=torch.channels_last):
            packs = packs.contiguous(memory_format=torch.channels_last)  # the reshape copied to NCHW
        return self.net(packs)

    def each(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image of x: each judged as a pack of m copies of itself."""
        return self.forward(x.repeat_interleave(self.m, dim=0))


def each_logit(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """D's logit for every image of x (N images -> N logits), packed or not."""
    return D.each(x) if isinstance(D, Packed) else D(x, labels)
