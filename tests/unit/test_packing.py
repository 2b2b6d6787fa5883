"""PacGAN's packed discriminator (`pack = m`): D judges packs of m consecutive images stacked
on its channels; the losses and penalties see one row per pack."""
import contextlib

import pytest
import torch

from mnistgan import models
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError
from mnistgan.system import distributed
from mnistgan.training import objectives

from helpers.critics import Quadratic


def test_a_packed_d_gives_one_logit_per_pack_of_consecutive_images():
    torch.manual_seed(0)
    G, D = models.build(from_preset("dcgan", {"pack": 2, "width": 8}))
    assert isinstance(D, models.Packed) and D.net.net[0].weight.shape[1] == 2  # 2 x 1 input channels
    D.eval()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        logits = D(x)
        assert logits.shape == (3,)
        # a pack is its two images in order, stacked on the channels
        torch.testing.assert_close(logits, D.net(x.reshape(3, 2, 28, 28)))
        # moving an image to another pack changes both packs' verdicts: D sees them together
        swapped = x[[0, 2, 1, 3, 4, 5]]
        assert not torch.allclose(D(swapped)[:2], logits[:2])
        # one logit per image: each judged as a pack of copies of itself
        torch.testing.assert_close(models.each_logit(D, x[:3], None), D.net(x[:3].repeat_interleave(2, 0).reshape(3, 2, 28, 28)))
    with pytest.raises(ValueError, match="packs of 2"):
        D(x[:5])


def test_pack_is_refused_where_a_pack_has_no_single_class_or_batch_splits_packs():
    with pytest.raises(ConfigError, match="unconditional"):
        from_preset("best", {"pack": 2})
    with pytest.raises(ConfigError, match="unconditional"):
        from_preset("dcgan", {"pack": 2, "info_code": True})
    with pytest.raises(ConfigError, match="multiple of pack"):
        from_preset("r3gan", {"pack": 3})
    with pytest.raises(ConfigError, match="pack"):
        from_preset("r3gan", {"pack": 17})
    two = distributed.Dist(rank=1, world=2, local_rank=1)
    with pytest.raises(ConfigError, match="whole packs"):
        distributed.batch_part(64, two, pack=64)
    assert distributed.batch_part(64, two, pack=4) == slice(32, 64)


def test_penalties_take_the_gradient_norm_of_each_pack_d_judges():
    """R1/R2 and WGAN-GP's penalty are on |grad D(input)| where D's input is a pack of m
    images: |grad|^2 summed over the pack's images, one term per pack."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(8, 1, 28, 28, generator=g), torch.rand(8, 1, 28, 28, generator=g)
    critic = objectives.Critic(models.Packed(Quadratic(), 2), head=False, joint=True, autocast=contextlib.nullcontext)
    loss = objectives.loss_for(from_preset("r3gan", {"pack": 2, "r1_gamma": 4.0, "r2_gamma": 3.0}), critic)
    d_loss, out = loss.d_phase(objectives.Batch(real, None, None, None, fake))
    assert out.real_logits.shape == (4,) and out.fake_logits.shape == (4,)
    per_pack = lambda x: (2 * 0.3 * x).square().sum(dim=(1, 2, 3)).reshape(4, 2).sum(1)  # noqa: E731
    rpgan = torch.nn.functional.softplus(out.fake_logits - out.real_logits).mean()
    torch.testing.assert_close(d_loss, rpgan + 2.0 * per_pack(real).mean() + 1.5 * per_pack(fake).mean())

    draws = objectives.Draws(torch.Generator().manual_seed(1))
    state = draws.noise.get_state()
    gp = objectives.GradientPenalty(10.0).d(objectives.Batch(real, None, None, None, fake), None, critic, draws)
    draws.noise.set_state(state)
    e = torch.rand(8, 1, 1, 1, generator=draws.noise)
    x_hat = e * real + (1 - e) * fake
    torch.testing.assert_close(gp, 10.0 * ((2 * 0.3 * x_hat).reshape(4, -1).norm(dim=1) - 1).square().mean())


@pytest.mark.parametrize("preset", ["r3gan", "wgan-gp", "dcgan"])
def test_a_packed_run_trains_and_its_checkpoint_loads_with_the_packed_d(tmp_path, isolated_env, fake_mnist, preset):
    from mnistgan import generation
    from mnistgan.runs import train

    train(from_preset(preset, {"pack": 4, "width": 8, "batch_size": 16, "train_images": 64, "epochs": 1,
                               "data_dir": str(fake_mnist), "download": False, "device": "cpu",
                               "out": str(tmp_path / "run"), "progress": False}))
    nets = generation.load_networks(tmp_path / "run")
    assert isinstance(nets.D, models.Packed) and nets.D.m == 4
    with torch.no_grad():
        verdicts = models.each_logit(nets.D, torch.rand(3, 1, 28, 28), None)
    assert verdicts.shape == (3,) and torch.isfinite(verdicts).all()
