"""Models x objectives, the gradient penalty, EMA, conditional sampling, every preset end to end."""
import numpy as np
import pytest
import torch

from mnistgan import models
from mnistgan.config import PRESETS, from_preset
from mnistgan.data import DeviceData
from mnistgan.errors import ConfigError
from mnistgan.generation import recalibrate_batch_norm
from mnistgan.training.trainer import Trainer

OBJECTIVES = ["minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp"]


def fake_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    return DeviceData(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))


def small(model, objective="nonsaturating", conditional=False, **kw):
    base = {"model": model, "objective": objective, "conditional": conditional, "train_images": 256,
            "batch_size": 16, "epochs": 1, "progress": False, "device": "cpu", "hidden": 32, "width": 8}
    return from_preset("seed", {**base, **kw})


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_model_and_objective_takes_a_step(model, conditional, objective):
    cfg = small(model, objective, conditional)
    t = Trainer(cfg)
    G, D = t.G, t.D
    z = torch.randn(5, cfg.z_dim)
    labels = torch.arange(5) if conditional else None
    x = G(z, labels).detach()
    assert x.shape == (5, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert D(x, labels).shape == (5,)
    before = [p.detach().clone() for p in [*G.parameters(), *D.parameters()]]
    data = fake_data()
    real, y = data.batch(data.epoch_order(0, 0), 0, 16)
    stats = t.train_step(real, y)
    assert stats.shape == (5,) and torch.isfinite(stats).all()
    after = [*G.parameters(), *D.parameters()]
    # Every weight moves. (Biases may not: under the hinge and Wasserstein losses the gradient
    # of D's output bias is (share of real) - (share of forged) logits in the active region,
    # exactly 0 at the start; for WGAN always.)
    moved = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert all(m for m, p in zip(moved, after) if p.ndim >= 2), "every weight moved"
    assert all(moved[:len(list(G.parameters()))]), "every generator parameter moved"


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_auxiliary_classifier_head(model):
    """aux_weight adds a 10-way head to D, trained on real labels; G's loss gets the
    cross-entropy of its forgeries' requested classes."""
    with pytest.raises(ConfigError, match="conditional"):
        small(model, aux_weight=1.0)
    cfg = small(model, conditional=True, aux_weight=1.0)
    t = Trainer(cfg)
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    logit, classes = t.D(x, y, classes=True)
    assert logit.shape == (6,) and classes.shape == (6, 10)
    assert torch.equal(logit, t.D(x, y))  # the head does not change the logit
    with pytest.raises(ValueError, match="no classifier head"):
        Trainer(small(model, conditional=True)).D(x, y, classes=True)
    head = t.D.classifier.weight.detach().clone()
    data = fake_data()
    real, labels = data.batch(data.epoch_order(0, 0), 0, 16)
    stats = t.train_step(real, labels)
    assert torch.isfinite(stats).all() and not torch.equal(head, t.D.classifier.weight)
    # The losses carry the cross-entropy: the same step without the head's term differs.
    plain = Trainer(small(model, conditional=True, aux_weight=1.0))
    assert [type(term).__name__ for term in plain.engine.loss.terms] == ["AuxiliaryClassifier"]
    plain.engine.loss.terms = []  # same networks, the head's term taken out of both phases
    plain_stats = plain.train_step(real, labels)
    assert float(stats[0]) > float(plain_stats[0]) and float(stats[1]) > float(plain_stats[1])


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_twin_auxiliary_classifier_trains_both_halves_of_the_head(model):
    """aux_twin doubles D's head: real-image classes, then the twin's classes of forgeries;
    a step moves both halves."""
    t = Trainer(small(model, conditional=True, aux_weight=1.0, aux_twin=True))
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    assert t.D(x, y, classes=True)[1].shape == (6, 20)
    head = t.D.classifier.weight.detach().clone()
    data = fake_data()
    real, labels = data.batch(data.epoch_order(0, 0), 0, 16)
    assert torch.isfinite(t.train_step(real, labels)).all()
    moved = (t.D.classifier.weight - head).abs().sum(1) > 0
    assert moved[:10].all() and moved[10:].all()


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_info_code(model):
    """info_code: G takes a 10-way code, D (unconditional) a head that must recover it; the
    losses carry the cross-entropy; no labels are used."""
    with pytest.raises(ConfigError, match="info_code is for unconditional"):
        small(model, conditional=True, info_code=True)
    t = Trainer(small(model, info_code=True))
    assert t.D.embed is None and t.D.classifier is not None and t.G.embed is not None
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(t.D(x), t.D(x, torch.arange(4)))  # D never reads labels
    before = [p.detach().clone() for p in (t.D.classifier.weight, t.G.embed.weight)]
    data = fake_data()
    real, labels = data.batch(data.epoch_order(0, 0), 0, 16)
    stats = t.train_step(real, labels)
    assert torch.isfinite(stats).all()
    # At the start both losses are ~log 4 and ~log 2 without the term; with it each also
    # carries a 10-way cross-entropy of ~log 10 = 2.3.
    assert float(stats[0]) > 2.5 and float(stats[1]) > 2.5, stats
    assert all(not torch.equal(b, a) for b, a in zip(before, (t.D.classifier.weight, t.G.embed.weight)))
    assert t.fixed_labels is not None and t.fixed_labels.tolist() == [k for k in range(10) for _ in range(10)]
    # the same step with real labels changed: identical (labels are never used)
    a, b = Trainer(small(model, info_code=True)), Trainer(small(model, info_code=True))
    assert torch.equal(a.train_step(real, labels), b.train_step(real, (labels + 1) % 10))


def test_lr_d_gives_d_its_own_learning_rate():
    t = Trainer(small("dcgan", lr=1e-4, lr_d=4e-4))
    assert t.opt_g.param_groups[0]["lr"] == 1e-4 and t.opt_d.param_groups[0]["lr"] == 4e-4
    t = Trainer(small("dcgan", lr=1e-4))
    assert t.opt_g.param_groups[0]["lr"] == t.opt_d.param_groups[0]["lr"] == 1e-4


def test_conditional_models_require_labels():
    G, D = models.build(small("dcgan", conditional=True))
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(2, 128))
    with pytest.raises(ValueError, match="conditional"):
        D(torch.rand(2, 1, 28, 28))


def test_ema_update_and_half_life():
    cfg = small("dcgan", ema_half_life=160)  # 10 G steps of 16 images
    t = Trainer(cfg)
    assert abs(t.ema.beta ** 10 - 0.5) < 1e-12
    ema0 = [p.detach().clone() for p in t.G_ema.parameters()]
    data = fake_data()
    real, y = data.batch(data.epoch_order(0, 0), 0, 16)
    t.train_step(real, y)
    for e0, e1, g in zip(ema0, t.G_ema.parameters(), t.G.parameters()):
        torch.testing.assert_close(e1, t.ema.beta * e0 + (1 - t.ema.beta) * g.detach())


def test_batch_norm_recalibration_is_deterministic_and_replaces_copied_statistics():
    cfg = small("dcgan")
    G, _ = models.build(cfg)
    bn = G.net[1]
    bn.running_mean.fill_(5.0)
    recalibrate_batch_norm(G, cfg, "cpu")
    first = bn.running_mean.clone()
    assert not torch.allclose(first, torch.full_like(first, 5.0))
    recalibrate_batch_norm(G, cfg, "cpu")
    assert torch.equal(first, bn.running_mean)
    assert bn.momentum == 0.1  # restored


def test_d_steps_update_g_every_nth_step():
    t = Trainer(small("dcgan", "wgan-gp", d_steps=3))
    data = fake_data()
    order = data.epoch_order(0, 0)
    flags = []
    for s in range(6):
        flags.append(float(t.train_step(*data.batch(order, s, 16))[4]))
        t.images_seen += 16
    assert flags == [0, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_runs_end_to_end(preset, tmp_path, isolated_env, fake_mnist):
    from mnistgan.generation import interpolate, sample
    from mnistgan.runs import read_log, train

    folder = fake_mnist
    cfg = from_preset(preset, {"train_images": 256, "epochs": 2, "progress": False, "device": "cpu",
                               "data_dir": str(folder), "download": False, "out": str(tmp_path / "run")})
    train(cfg)
    run = tmp_path / "run"
    assert [r["epoch"] for r in read_log(run)] == [1, 2]
    for name in ("progress.gif", "progress.png", "losses.png", "real_vs_fake.png", "samples/grid-002.png"):
        assert (run / name).exists(), name
    digits = sample(run, n=12, seed=0)
    assert digits.shape == (12, 28, 28)
    assert np.array_equal(digits, sample(run, n=12, seed=0))
    walk = interpolate(run, steps=6)
    assert walk.shape == ((2 if cfg.conditional else 1), 6, 1, 28, 28)


def test_digit_reaches_the_generator_and_is_refused_when_unconditional(tmp_path, isolated_env, monkeypatch, fake_mnist):
    from mnistgan.models.dcgan import DCGANGenerator
    from mnistgan.generation import sample
    from mnistgan.runs import train

    folder = fake_mnist
    base = {"train_images": 128, "epochs": 1, "progress": False, "device": "cpu", "data_dir": str(folder),
            "download": False, "width": 8}
    train(from_preset("cdcgan", {**base, "out": str(tmp_path / "c")}))
    train(from_preset("dcgan", {**base, "out": str(tmp_path / "u")}))
    seen = []
    original = DCGANGenerator.forward

    def spy(self, z, labels=None, class_embedding=None):
        seen.append(labels)
        return original(self, z, labels, class_embedding)

    monkeypatch.setattr(DCGANGenerator, "forward", spy)
    sample(tmp_path / "c", n=30, digit=7)
    assert seen[-1].tolist() == [7] * 30
    sample(tmp_path / "c", n=12)
    assert seen[-1].tolist() == [i % 10 for i in range(12)]
    with pytest.raises(ConfigError, match="--digit needs a conditional model"):
        sample(tmp_path / "u", n=4, digit=3)
    with pytest.raises(ConfigError, match="--digit must be 0..9"):
        sample(tmp_path / "c", n=4, digit=11)
