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


def test_class_conditional_batch_norm_generator():
    """g_conditioning=cbn: the class sets every batch norm's scale and shift (zero at start:
    plain batch norm, labels not yet used), G takes z alone, and interpolated embeddings work."""
    from mnistgan.config import apply_overrides, validate
    from mnistgan.errors import ConfigError
    from mnistgan.models.dcgan import ClassBatchNorm

    cfg = from_preset("best", {"width": 8, "g_conditioning": "cbn"})
    torch.manual_seed(0)
    G, D = models.build(cfg)
    norms = [m for m in G.modules() if isinstance(m, ClassBatchNorm)]
    assert len(norms) == 2 and G.fc[0].in_features == 128  # z only: the class is not concatenated
    z, y = torch.randn(16, 128), torch.arange(16) % 10
    G.eval()  # running statistics: each row on its own
    x0 = G(z, y)
    assert x0.shape == (16, 1, 28, 28) and 0 <= x0.min() and x0.max() <= 1
    assert torch.equal(x0, G(z, (y + 1) % 10))  # gains and shifts start at zero
    for m in norms:
        torch.nn.init.normal_(m.gain.weight, 0, 0.5)
        torch.nn.init.normal_(m.shift.weight, 0, 0.5)
    x1, x2 = G(z, y), G(z, (y + 1) % 10)
    assert (x1 - x2).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # now every row depends on its class
    e = G.class_embeddings()
    torch.testing.assert_close(G(z, class_embedding=e[y]), x1)
    assert G(z[:3], class_embedding=(e[0] + e[1]).expand(3, -1) / 2).shape == (3, 1, 28, 28)
    x1.mean().backward()
    assert all(m.gain.weight.grad is not None and m.gain.weight.grad.abs().sum() > 0 for m in norms)
    concat = models.build(from_preset("best", {"width": 8, "g_conditioning": "concat"}))[0]
    assert concat.fc[0].in_features == 128 + 32 and not any(isinstance(m, ClassBatchNorm) for m in concat.modules())
    for bad, words in (({"g_conditioning": "film"}, "concat, cbn"), ({"model": "mlp", "g_conditioning": "cbn"}, "dcgan")):
        try:
            validate(apply_overrides(cfg, bad))
        except ConfigError as e:
            assert words in str(e)
        else:
            raise AssertionError(bad)
