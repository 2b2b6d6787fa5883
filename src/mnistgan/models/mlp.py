"""The seed's networks: two-layer perceptrons (Goodfellow et al. 2014, as the classic
TensorFlow tutorial wrote them). Images are B x 1 x 28 x 28 in [0, 1]; the discriminator
returns logits (the sigmoid lives in the objective, for numerical stability)."""
from __future__ import annotations

import torch
from torch import nn

PIXELS = 28 * 28


def init_normal_(module: nn.Module, std: float) -> None:
    """Weights ~ N(0, std), biases 0 (the tutorial's tf.random_normal(stddev=0.01), tf.zeros)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int = 128, hidden: int = 256, init_std: float = 0.01):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden),   # B x z_dim -> B x hidden
            nn.ReLU(),
            nn.Linear(hidden, PIXELS),  # B x hidden -> B x 784
            nn.Sigmoid(),               # pixels in [0, 1]
        )
        init_normal_(self, init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)  # B x 1 x 28 x 28


class MLPDiscriminator(nn.Module):
    def __init__(self, hidden: int = 256, init_std: float = 0.01):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),               # B x 1 x 28 x 28 -> B x 784
            nn.Linear(PIXELS, hidden),  # B x 784 -> B x hidden
            nn.ReLU(),
            nn.Linear(hidden, 1),       # B x hidden -> B x 1 (logit; D = sigmoid(logit))
        )
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)  # B logits
