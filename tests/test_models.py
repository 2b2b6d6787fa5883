import torch

from mnistgan import models
from mnistgan.config import from_preset


def test_seed_shapes_and_init():
    torch.manual_seed(0)
    G, D = models.build(from_preset("seed"))
    z = torch.randn(7, 128)
    x = G(z)
    assert x.shape == (7, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert D(x).shape == (7,)
    shapes = [tuple(p.shape) for p in G.parameters()] + [tuple(p.shape) for p in D.parameters()]
    assert shapes == [(256, 128), (256,), (784, 256), (784,), (256, 784), (256,), (1, 256), (1,)]
    for m in (G, D):
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                assert torch.count_nonzero(p) == 0
            else:
                assert abs(p.std().item() - 0.01) < 0.001 and abs(p.mean().item()) < 0.001
