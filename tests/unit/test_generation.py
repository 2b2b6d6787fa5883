"""generation: noise, labels, eval-mode sampling in chunks, latent walks, writing forgeries."""
import numpy as np
import pytest
import torch
from PIL import Image

from mnistgan import generation, models
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(128), torch.randn(128)
    path = generation.slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(path[-1], b, rtol=1e-4, atol=1e-5)
    # unit vectors stay on the sphere
    a, b = a / a.norm(), b / b.norm()
    torch.testing.assert_close(generation.slerp(a, b, torch.linspace(0, 1, 7)).norm(dim=1), torch.ones(7))


def test_digit_is_refused_for_info_code_runs():
    """An InfoGAN code is learned without labels: code k is not digit k, so --digit is refused
    with a message that says so; plain sampling draws the ten codes in turn."""
    cfg = from_preset("dcgan", {"info_code": True})
    with pytest.raises(ConfigError, match="code k is not digit k"):
        generation.class_labels(cfg, 5, 3)
    assert generation.class_labels(cfg, 12, None).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_class_labels():
    assert generation.class_labels(from_preset("seed"), 5) is None
    cond = from_preset("cdcgan")
    assert generation.class_labels(cond, 3, 7).tolist() == [7, 7, 7]
    with pytest.raises(ConfigError, match=r"--digit must be 0..9 \(this run's classes\), got 10"):
        generation.class_labels(cond, 3, 10)
    three = from_preset("cdcgan", {"num_classes": 3})  # a dataset of three classes
    assert generation.class_labels(three, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ConfigError, match=r"--digit must be 0..2"):
        generation.class_labels(three, 3, 3)
    with pytest.raises(ConfigError, match="this run is unconditional"):
        generation.class_labels(from_preset("dcgan"), 3, 1)


def test_noise_is_a_function_of_the_seed_and_is_standard_normal():
    a, b = generation.noise(4000, 128, 5), generation.noise(4000, 128, 5)
    assert torch.equal(a, b) and not torch.equal(a, generation.noise(4000, 128, 6))
    assert abs(float(a.mean())) < 0.01 and abs(float(a.std()) - 1) < 0.01


def test_generate_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    G, _ = models.build(from_preset("cdcgan", {"width": 8}))
    G.train()
    z = torch.randn(12, 128)
    out = generation.generate(G, z, label_count=10)       # labels 0..9, 0, 1
    assert G.training and out.shape == (12, 1, 28, 28) and out.dtype == torch.float32
    G.eval()
    with torch.no_grad():
        expected = G(z, torch.arange(12) % 10)
    torch.testing.assert_close(out, expected)                 # eval-mode batch norm, default labels


def test_recalibration_replaces_running_statistics_deterministically():
    torch.manual_seed(0)
    cfg = from_preset("dcgan", {"width": 8})
    G, _ = models.build(cfg)
    bn = next(m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(5.0)
    generation.recalibrate_batch_norm(G, cfg, "cpu")
    first = bn.running_mean.clone()
    generation.recalibrate_batch_norm(G, cfg, "cpu")
    assert torch.equal(first, bn.running_mean) and float(first.abs().max()) < 5.0
    assert bn.momentum == 0.1  # restored


def test_check_output_and_write(tmp_path):
    with pytest.raises(ConfigError, match="must end in .png or .npy"):
        generation.check_output(tmp_path / "x.jpg")
    with pytest.raises(ConfigError, match="does not exist"):
        generation.check_output(tmp_path / "missing" / "x.png")
    digits = np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 1, 28, 28).astype(np.uint8)
    generation.write(tmp_path / "d.npy", digits)
    assert np.array_equal(np.load(tmp_path / "d.npy"), digits[:, 0])  # a user's grey array: N x 28 x 28
    generation.write(tmp_path / "d.png", digits)          # 5 -> 3 a row (about square), scale 2
    with Image.open(tmp_path / "d.png") as img:
        assert img.size == (2 * (3 * 30 + 2), 2 * (2 * 30 + 2))
    walks = np.zeros((2, 4, 1, 28, 28), np.uint8)            # 2 walks of 4 steps: a row per walk
    generation.write(tmp_path / "w.png", walks, walks=True)
    with Image.open(tmp_path / "w.png") as img:
        assert img.size == (2 * (4 * 30 + 2), 2 * (2 * 30 + 2))
