"""Differentiable augmentation (augment.py): exact on hand-made images, differentiable,
drawn from the run's noise stream, and a run with it trains, resumes and is refused when misnamed."""
import pytest
import torch

from mnistgan.training import augment
from mnistgan.config import apply_overrides, from_preset, validate
from mnistgan.errors import ConfigError

from helpers.exactness import weights, whole_and_resumed


def test_translate_moves_each_image_by_its_shift_with_zeros_shifted_in():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5) + 1
    out = augment.translate(x, torch.tensor([[1, 0], [0, -2]]), 2)
    torch.testing.assert_close(out[0, 0, 1:], x[0, 0, :-1])  # down by one row
    assert (out[0, 0, 0] == 0).all()
    torch.testing.assert_close(out[1, 0, :, :-2], x[1, 0, :, 2:])  # left by two columns
    assert (out[1, 0, :, -2:] == 0).all()
    assert torch.equal(augment.translate(x, torch.zeros(2, 2, dtype=torch.long), 2), x)


def test_cutout_zeroes_a_square_around_each_centre():
    x = torch.ones(2, 1, 8, 8)
    out = augment.cutout(x, torch.tensor([[4, 4], [0, 7]]), 4)
    assert out[0, 0, 2:6, 2:6].sum() == 0 and out[0].sum() == 64 - 16
    assert out[1, 0, :2, 5:].sum() == 0 and out[1].sum() == 64 - 6  # clipped at the corner: 2 x 3


def test_augmentation_is_differentiable_and_drawn_from_the_given_stream():
    x = torch.rand(6, 1, 28, 28, requires_grad=True)

    def draw(fn, *shape):
        return fn(6, *shape, generator=torch.Generator().manual_seed(3), device=x.device)

    a = augment.augment(x, ["translation", "cutout"], draw)
    b = augment.augment(x, ["translation", "cutout"], draw)
    assert torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and 0 < (x.grad != 0).float().mean() < 1  # kept pixels only


def test_a_run_with_diffaugment_and_class_batch_norm_is_exact_across_a_resume():
    """The draws come from the run's noise stream, so stopping and resuming from the state
    gives the uninterrupted run's weights bit for bit (and other draws: other weights)."""
    import numpy as np

    from mnistgan.data import DeviceData
    from mnistgan.training.trainer import Trainer

    rng = np.random.default_rng(0)
    data = DeviceData(rng.integers(0, 256, (256, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 256).astype(np.uint8))
    cfg = from_preset("best", {"train_images": 256, "batch_size": 32, "epochs": 2, "progress": False, "device": "cpu",
                               "width": 8, "diffaugment": "translation,cutout", "g_conditioning": "cbn",
                               "mode_seeking": 0.3})

    whole, resumed = whole_and_resumed(cfg, data, 320)
    assert torch.equal(weights(whole), weights(resumed))
    plain = Trainer(apply_overrides(cfg, {"diffaugment": ""}))
    plain.fit(data)
    assert not torch.equal(weights(whole), weights(plain))


def test_config_refuses_unknown_policies():
    cfg = from_preset("dcgan")
    validate(apply_overrides(cfg, {"diffaugment": "translation,cutout"}))
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        validate(apply_overrides(cfg, {"diffaugment": "translation,flip"}))
