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
