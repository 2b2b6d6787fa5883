import copy
import math

import numpy as np
import torch

from mnistgan.training.optim import AdamTF1


def tf1_adam_reference(p, grads, lr=2e-4, b1=0.9, b2=0.999, eps=1e-8):
    """tf.train.AdamOptimizer's update, written out in numpy float64."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - lr_t * m / (np.sqrt(v) + eps)
    return p


def test_matches_tensorflow1_update():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(5, 3))
    grads = [rng.normal(size=(5, 3)) * 10 ** rng.uniform(-9, 0) for _ in range(20)]
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = AdamTF1([p], lr=2e-4)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), tf1_adam_reference(p0, grads), rtol=1e-12, atol=1e-15)


def test_differs_from_pytorch_adam_only_through_epsilon():
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(10, dtype=torch.float64))
    p2 = torch.nn.Parameter(p1.detach().clone())
    tiny = torch.randn(10, dtype=torch.float64) * 1e-9  # gradients at epsilon's scale
    a, b = AdamTF1([p1], lr=1e-3), torch.optim.Adam([p2], lr=1e-3)
    p1.grad, p2.grad = tiny.clone(), tiny.clone()
    a.step(); b.step()
    assert not torch.allclose(p1, p2, rtol=0, atol=1e-7)  # epsilon placement matters here
    a2, b2 = AdamTF1([p1], lr=1e-3, eps=0.0), torch.optim.Adam([p2], lr=1e-3, eps=0.0)
    q = p1.detach().clone()
    p2.data.copy_(q)
    p1.grad, p2.grad = tiny.clone(), tiny.clone()
    a2.step(); b2.step()
    torch.testing.assert_close(p1, p2, rtol=1e-12, atol=1e-15)  # and nothing else does


def test_state_dict_round_trip():
    p = torch.nn.Parameter(torch.ones(3))
    opt = AdamTF1([p])
    p.grad = torch.ones(3)
    opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdamTF1([q])
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from a file: no shared tensors
    for o, param in ((opt, p), (opt2, q)):
        param.grad = torch.full((3,), 0.5)
        o.step()
    torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_update_is_step_without_the_wrapper():
    """update() (the seed's hand-derived step calls it) makes the same update as step(), including the
    first step (no state yet) and the TF1 epsilon schedule; registered hooks still run."""
    torch.manual_seed(1)
    p0 = torch.randn(64, 8)
    grads = [torch.randn(64, 8) * 10 ** -k for k in range(6)]
    a, b = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    oa, ob = AdamTF1([a], lr=2e-4, betas=(0.5, 0.999)), AdamTF1([b], lr=2e-4, betas=(0.5, 0.999))
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.update()
    assert torch.equal(a, b) and oa._t == ob._t == len(grads)
    assert torch.equal(oa.state[a]["exp_avg_sq"], ob.state[b]["exp_avg_sq"])
    calls = []
    ob.register_step_post_hook(lambda *args: calls.append(1))
    b.grad = grads[0].clone()
    ob.update()
    assert calls == [1] and ob._t == len(grads) + 1


def test_lr_factor_falls_from_one_to_its_end_and_stays():
    from mnistgan.training.optim import lr_factor

    for schedule in ("linear", "cosine"):
        assert lr_factor(schedule, 0, 1000, 0.1) == 1.0
        assert math.isclose(lr_factor(schedule, 500, 1000, 0.1), 0.55)  # halfway: halfway down, both
        assert math.isclose(lr_factor(schedule, 1000, 1000, 0.1), 0.1)
        assert math.isclose(lr_factor(schedule, 5000, 1000, 0.1), 0.1)   # after the horizon: the end
    assert math.isclose(lr_factor("linear", 250, 1000, 0.0), 0.75)
    assert math.isclose(lr_factor("cosine", 250, 1000, 0.0), (1 + math.cos(math.pi / 4)) / 2)  # 0.854: slower at first
    assert lr_factor("constant", 10**9, 1000, 0.0) == 1.0


def test_a_falling_learning_rate_is_applied_each_step_and_survives_a_resume(tiny_config):
    """The rate each optimiser used is the schedule's at the images seen before the step (a
    probe records it), for both networks (D's from lr_d), and a run stopped and resumed
    falls as one run."""
    from mnistgan.config import apply_overrides
    from mnistgan.training.trainer import Trainer

    from mnistgan.data import DeviceData

    from helpers.exactness import weights, whole_and_resumed

    def fake_data():
        rng = np.random.default_rng(0)
        return DeviceData(rng.integers(0, 256, (1000, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 1000).astype(np.uint8))

    cfg = apply_overrides(tiny_config, {"lr_schedule": "cosine", "lr_end": 0.2, "lr_horizon": 1500,
                                        "lr_d": 4e-4})
    t = Trainer(cfg)
    seen = []
    original = t.engine

    def probe(*a):
        seen.append((t.images_seen, t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"]))
        return original(*a)

    t.engine = probe
    t.fit(fake_data())
    assert [s[0] for s in seen] == list(range(0, 2000, 100))
    for images, g, d in seen:
        f = 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * min(images / 1500, 1)))
        assert math.isclose(g, 2e-4 * f) and math.isclose(d, 4e-4 * f)
    whole, resumed = whole_and_resumed(cfg, fake_data(), 700)
    assert torch.equal(weights(whole), weights(resumed))
    plain, _ = whole_and_resumed(tiny_config, fake_data(), 700)
    assert not torch.equal(weights(whole), weights(plain))  # (the schedule did change the run)
