"""The names a config may use, in one light place (no torch), so validation needs no imports.

Each heavy module registers its builders under these names; a test checks both agree.
"""
from __future__ import annotations

from .errors import ConfigError

NAMES: dict[str, tuple[str, ...]] = {
    "dataset": ("mnist", "fashion-mnist", "stacked-mnist"),
    "model": ("mlp", "dcgan", "resnet"),
    "objective": ("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp", "relativistic", "rpgan"),
    "optimizer": ("adam-tf1", "adam"),
    "lr_schedule": ("constant", "linear", "cosine"),
    "augmentation": ("translation", "cutout"),
    "g_conditioning": ("concat", "cbn"),
    "invert": ("auto", "yes", "no"),  # folder datasets: make dark-on-light images light-on-dark (auto: per image)
}


def check(kind: str, name: str) -> None:
    if name not in NAMES[kind]:
        raise ConfigError(f"unknown {kind} {name!r}; available: {', '.join(NAMES[kind])}")


def check_list(kind: str, text: str) -> list[str]:
    """A comma-separated list of names of one kind ('translation,cutout'), each checked; '' -> []."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        check(kind, name)
    return names
