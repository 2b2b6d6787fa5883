"""A discriminator whose input gradient is known in closed form, for the penalties' tests."""
from __future__ import annotations

import torch


class Quadratic(torch.nn.Module):
    """D(x) = sum(w * x^2) over every channel and pixel: grad_x D = 2 w x. Any channel count
    (w broadcasts), so a pack of images stacked on the channels is judged too."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((1, 1, 28, 28), 0.3))

    def forward(self, x, labels=None):
        return (self.w * x.square()).sum(dim=(1, 2, 3))
