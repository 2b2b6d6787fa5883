"""The captured step (graphs.py) on a CPU: everything around the capture, and the optimiser's
graph form. The capture itself needs a CUDA device: benchmarks/cuda_graph_check.py."""
import copy
import math

import pytest
import torch

from mnistgan.training import graphs, optim
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError
from mnistgan.training.trainer import Trainer

from test_presets import fake_data, small


def recorder(graphed):
    """A capture for the CPU: its replay runs the step on the fixed inputs, as a CUDA graph's
    replay would run the recorded kernels on them (a forgotten copy into them shows)."""
    def capture(g_step, reg_step):
        stats = torch.empty(5)

        class Replay:
            def replay(self):
                stats.copy_(graphed.step(*graphed.inputs, g_step, reg_step))
        return Replay(), stats
    return capture


@pytest.mark.parametrize("overrides", [
    {"model": "dcgan", "conditional": True, "g_conditioning": "cbn", "ema_half_life": 200, "aux_weight": 1.0},
    {"model": "dcgan", "objective": "wgan-gp", "d_steps": 2},
    {"model": "mlp", "conditional": True, "optimizer": "adam-tf1"},
    {"model": "resnet", "objective": "rpgan", "r1_gamma": 0.1, "r2_gamma": 0.1, "reg_every": 2},
])
def test_replayed_steps_equal_the_uncaptured_ones(overrides):
    plain, graphed = Trainer(small(**overrides)), Trainer(small(**overrides))
    c = graphed.config
    step = graphs.GraphedStep(graphed.engine, graphed.noise, math.lcm(c.d_steps, c.reg_every), torch.device("cpu"))
    step._capture = recorder(step)
    graphed.engine = step
    data = fake_data()
    B = plain.config.batch_size
    for i in range(step.warmup + 6):
        real, labels = data.batch(data.epoch_order(0, 0), i % 16, B)
        stats = []
        for t in (plain, graphed):
            stats.append(t.train_step(real, labels))
            t.images_seen += B
        assert torch.equal(stats[0], stats[1])
    kinds = {(n % c.d_steps == 0, n % c.reg_every == 0) for n in range(1, step.warmup + 7)}
    assert step.calls == step.warmup and set(step.graphs) == kinds and len(kinds) == (2 if c.d_steps * c.reg_every > 1 else 1)
    for a, b in zip(plain.state()[0].items(), graphed.state()[0].items()):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]
    assert torch.equal(plain.generate_fixed(), graphed.generate_fixed())  # the EMA was marked stale


def test_replay_refuses_a_batch_of_another_shape():
    t = Trainer(small("mlp"))
    step = graphs.GraphedStep(t.engine, t.noise, 1, torch.device("cpu"))
    step._capture = recorder(step)
    step.warmup = 0
    step(torch.rand(16, 1, 28, 28), None, True)
    with pytest.raises(ConfigError, match="batches of one shape"):
        step(torch.rand(8, 1, 28, 28), None, True)


def step_both(opt_a, a, opt_b, b, shapes):
    """One step of each optimiser with the same fresh gradients; their parameters must agree."""
    grads = [torch.randn(s) for s in shapes]
    for p, q, g in zip(a, b, grads):
        p.grad, q.grad = g.clone(), g.clone()
    opt_a.step()
    opt_b.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)


def test_tf1_adam_graph_form_equals_the_fused_step():
    """TF1's update with the step count on the device (for capture) against the fused kernel
    with the host-side epsilon: equal within float rounding, every step."""
    torch.manual_seed(0)
    shapes = [(256, 784), (256,), (1, 256)]
    a = [torch.randn(s, requires_grad=True) for s in shapes]
    b = [p.detach().clone().requires_grad_(True) for p in a]
    fused, graph = optim.AdamTF1(a, lr=2e-4), optim.AdamTF1(b, lr=2e-4, capturable=True)
    for _ in range(5):
        step_both(fused, a, graph, b, shapes)
    assert {k: v.shape for k, v in graph.state[b[0]].items()} == {k: v.shape for k, v in fused.state[a[0]].items()}
    assert float(graph.state[b[0]]["step"]) == 5
    # A checkpoint of the fused form continues in the graph form (as a resumed run would).
    c = [p.detach().clone().requires_grad_(True) for p in a]
    resumed = optim.AdamTF1(c, lr=2e-4, capturable=True)
    resumed.load_state_dict(copy.deepcopy(fused.state_dict()))  # (state_dict holds the live tensors)
    step_both(fused, a, resumed, c, shapes)
    assert float(resumed.state[c[0]]["step"]) == 6


def test_cuda_graph_elsewhere_runs_uncaptured_and_conflicts_are_refused():
    t = Trainer(from_preset("seed", {"cuda_graph": True, "device": "cpu"}))
    assert t.engine.kind == "hand-derived"  # the CPU runs the seed's usual step
    with pytest.raises(ConfigError, match="choose one"):
        from_preset("seed", {"cuda_graph": True, "compile": True})
    with pytest.raises(ConfigError, match="mode_seeking"):
        from_preset("best", {"cuda_graph": True, "mode_seeking": 0.3})
    assert graphs.refusal(torch.device("cuda"), distributed=True)
    assert graphs.refusal(torch.device("cuda"), distributed=False) is None
