import numpy as np
import torch

from mnistgan.callbacks import Callback
from mnistgan.data import DeviceData
from mnistgan.training import steps
from mnistgan.training.trainer import Trainer

from helpers.exactness import weights, whole_and_resumed


def fake_data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return DeviceData(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))


def test_same_seed_same_run_other_seed_other_run(tiny_config):
    data = fake_data()
    a, b = Trainer(tiny_config), Trainer(tiny_config)
    a.fit(data)
    b.fit(data)
    assert torch.equal(weights(a), weights(b))
    c = Trainer(tiny_config.__class__(**{**tiny_config.to_dict(), "seed": 1}))
    c.fit(data)
    assert not torch.equal(weights(a), weights(c))


def test_stops_at_max_images(tiny_config):
    from mnistgan.config import apply_overrides

    cfg = apply_overrides(tiny_config, {"max_images": 1500})
    rows = []

    class Collect(Callback):
        def on_epoch_end(self, trainer, row):
            rows.append(row)

    t = Trainer(cfg)
    t.fit(fake_data(), [Collect()])
    assert t.images_seen == 1500
    assert [(r["epoch"], r["images_seen"], r["partial"]) for r in rows] == [(1, 1000, False), (2, 1500, True)]


def test_step_equals_the_plain_reference_step(tiny_config):
    """The optimised step (G(z) once, no D grads in the G phase, logits) changes the weights
    exactly as the tutorial's two ops would: G(z) recomputed, log(sigmoid) on probabilities."""
    data = fake_data()
    fast, ref = Trainer(tiny_config), Trainer(tiny_config)
    order = data.epoch_order(0, 0)
    for step in range(5):
        real, _ = data.batch(order, step, 100)
        fast.train_step(real)
        z = torch.randn(100, 128, generator=ref.noise)
        # train_D: minimise -mean(log D(x) + log(1 - D(G(z))))
        d_real, d_fake = torch.sigmoid(ref.D(real)), torch.sigmoid(ref.D(ref.G(z)))
        cost_d = torch.mean(torch.log(d_real) + torch.log(1 - d_fake))
        ref.opt_d.zero_grad()
        ref.opt_g.zero_grad()
        (-cost_d).backward()
        ref.opt_d.step()
        # train_G: minimise -mean(log D(G(z))) with the same z
        cost_g = torch.mean(torch.log(torch.sigmoid(ref.D(ref.G(z)))))
        ref.opt_d.zero_grad()
        ref.opt_g.zero_grad()
        (-cost_g).backward()
        ref.opt_g.step()
    # float32 rounding differs between the two forms; a wrong maths (e.g. the G step through
    # the old D) differs by about one Adam step, lr = 2e-4, far above this tolerance.
    torch.testing.assert_close(weights(fast), weights(ref), rtol=1e-4, atol=1e-6)
    assert not torch.equal(weights(fast), weights(Trainer(tiny_config)))  # it did train


def test_no_gradient_reaches_d_in_the_g_phase(tiny_config):
    t = Trainer(tiny_config)
    data = fake_data()
    real, _ = data.batch(data.epoch_order(0, 0), 0, 100)
    before = [p.detach().clone() for p in t.D.parameters()]
    t.opt_d.step = lambda *a, **k: None  # freeze D's update to see what the G phase does to D
    t.train_step(real)
    for p, b in zip(t.D.parameters(), before):
        assert torch.equal(p, b) and p.requires_grad


def test_state_round_trip_continues_identically(tiny_config):
    whole, resumed = whole_and_resumed(tiny_config, fake_data(), 1300)
    assert torch.equal(weights(whole), weights(resumed))


def test_fast_path_equals_the_autograd_step(tiny_config):
    """The hand-derived seed step (fastpath.py) and the generic autograd step agree."""
    data = fake_data()
    fast, auto = Trainer(tiny_config), Trainer(tiny_config)
    assert fast.engine.kind == "hand-derived"
    auto.engine = steps.build(auto.parts, hand_derived=False)
    assert auto.engine.kind == "autograd"
    order = data.epoch_order(0, 0)
    for step in range(10):
        real, _ = data.batch(order, step, 100)
        torch.testing.assert_close(fast.train_step(real), auto.train_step(real), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights(fast), weights(auto), rtol=1e-4, atol=1e-6)
    for a, b in zip(fast.opt_g.state.values(), auto.opt_g.state.values()):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"], rtol=1e-3, atol=1e-9)


def test_fast_path_only_where_exact(tiny_config):
    from mnistgan.config import apply_overrides

    assert Trainer(tiny_config).engine.kind == "hand-derived"
    for change in ({"objective": "hinge"}, {"precision": "bf16"}, {"optimizer": "adam"}, {"diffaugment": "cutout"},
                   {"mode_seeking": 0.5}, {"layers": 2}, {"label_smoothing": 0.1}):
        t = Trainer(apply_overrides(tiny_config, change))
        assert (t.engine.kind == "autograd") == ("optimizer" not in change), change
    # PyTorch's Adam (no update()) takes the fast path too, and gives the autograd step's weights.
    cfg = apply_overrides(tiny_config, {"optimizer": "adam"})
    fast, auto = Trainer(cfg), Trainer(cfg)
    auto.engine = steps.build(auto.parts, hand_derived=False)
    real, _ = fake_data().batch(fake_data().epoch_order(0, 0), 0, 100)
    for _ in range(3):
        fast.train_step(real)
        auto.train_step(real)
    torch.testing.assert_close(weights(fast), weights(auto), rtol=1e-4, atol=1e-6)


def test_conv_state_round_trip_through_a_file_continues_identically(tmp_path):
    """Conv weights are channels-last and checkpoints are contiguous: the fused Adam moments
    must get their parameter's layout back on load, or the resumed run silently diverges."""
    from mnistgan.store import checkpoint as ckpt
    from mnistgan.config import apply_overrides, from_preset

    cfg = from_preset("best", {"train_images": 256, "batch_size": 32, "epochs": 2, "progress": False,
                               "out": str(tmp_path / "run"), "device": "cpu", "width": 8})
    data = fake_data(300)
    conv = [p for p in Trainer(cfg).G.parameters() if p.dim() == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    assert any(not p.is_contiguous() for p in conv)  # (a 1-channel weight is both layouts)
    whole = Trainer(cfg)
    whole.fit(data)
    first = Trainer(apply_overrides(cfg, {"max_images": 320}))
    first.fit(data)
    path = ckpt.save(tmp_path / "c.safetensors", *first.state())
    resumed = Trainer(cfg)
    resumed.load_state(*ckpt.load(path))
    for opt in (resumed.opt_g, resumed.opt_d):
        for p, st in opt.state.items():
            assert st["exp_avg"].stride() == p.stride() and st["exp_avg_sq"].stride() == p.stride()
    resumed.fit(data)
    assert torch.equal(weights(whole), weights(resumed))
    ema = lambda t: torch.cat([p.flatten() for p in t.G_ema.parameters()])  # noqa: E731
    assert torch.equal(ema(whole), ema(resumed))


def _faults_per_step(env):
    import subprocess
    import sys

    code = """
import os, resource, torch
from mnistgan.system import runtime
from mnistgan.config import from_preset
from mnistgan.training.trainer import Trainer
c = from_preset("dcgan", {"device": "cpu"})
t = Trainer(c)
runtime.keep_freed_memory()  # as training through runs.train / the CLI does
real = torch.rand(c.batch_size, 1, 28, 28)
for _ in range(3):
    t.train_step(real)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    t.train_step(real)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 4)
"""
    import os
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def test_cpu_training_keeps_freed_memory_instead_of_faulting_it_back():
    """glibc's defaults return a conv step's freed activations to the system and fault them
    back in on the next step (~10,000 page faults a step, measured); runtime.keep_freed_memory
    keeps them. Counted in page faults, not timed."""
    import platform

    if platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc":
        import pytest
        pytest.skip("glibc only")
    tuned, default = _faults_per_step({}), _faults_per_step({"MNISTGAN_MALLOC_TUNING": "0"})
    assert default > 2000, default  # the problem exists here (else the test proves nothing)
    assert tuned < default / 10, (tuned, default)
