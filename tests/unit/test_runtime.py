"""runtime: devices, derived seeds, RNG capture and restore."""
import random

import numpy as np
import pytest
import torch

from mnistgan.system import runtime, seeds
from mnistgan.errors import ConfigError


def test_derived_seeds_are_stable_distinct_and_63_bit():
    derived = [seeds.derived_seed(0, p) for p in range(6)]
    assert len(set(derived)) == 6 and all(0 <= s < 2**63 for s in derived)
    assert seeds.derived_seed(0, seeds.NOISE) == seeds.derived_seed(0, seeds.NOISE)
    assert seeds.derived_seed(0, seeds.NOISE) != seeds.derived_seed(1, seeds.NOISE)


def test_rng_capture_and_restore_round_trip():
    noise = torch.Generator().manual_seed(3)
    seeds.seed_global_rngs(7)
    torch.randn(3, generator=noise)
    tensors, meta = seeds.capture_rng(noise)
    ahead = (torch.randn(3, generator=noise), torch.rand(2), np.random.rand(2), random.random())
    other = torch.Generator().manual_seed(99)
    seeds.seed_global_rngs(8)
    seeds.restore_rng(other, tensors, meta)
    again = (torch.randn(3, generator=other), torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(ahead[0], again[0]) and torch.equal(ahead[1], again[1])
    assert np.array_equal(ahead[2], again[2]) and ahead[3] == again[3]


def test_device_choice():
    assert runtime.resolve_device("cpu").type == "cpu"
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available here; use --device cpu"):
            runtime.resolve_device("cuda")


def _underflow_survives() -> bool:
    """Whether products below float32's smallest normal number (1.2e-38) survive anywhere in an
    elementwise multiply and a matrix product that both span every intra-op thread."""
    n = 1 << 20
    elementwise = torch.full((n,), 1e-20).mul_(1e-20)              # each product 1e-40
    product = torch.full((512, 256), 1e-20) @ torch.full((256, 512), 1e-20)  # sums of 1e-40s: 2.6e-38 unflushed
    return bool(elementwise.count_nonzero()) or bool(product.count_nonzero())


def test_denormals_flush_on_every_thread_even_in_a_pool_made_before():
    torch.ones(1 << 20).mul_(2)  # the intra-op threads exist before the setting changes
    try:
        assert runtime.flush_denormals(False)
        assert _underflow_survives()
        assert runtime.flush_denormals(True)
        assert not _underflow_survives()
        if torch.get_num_threads() > 1:  # the pool's own threads, not only this one, flush
            torch.set_flush_denormal(False)  # this thread alone back to gradual underflow
            elementwise = torch.full((1 << 20,), 1e-20).mul_(1e-20)
            share = elementwise.count_nonzero().item() / elementwise.numel()
            assert 0 < share < 1
    finally:
        runtime.flush_denormals(True)


def test_training_follows_the_config_and_leaves_the_process_as_it_was():
    """A Trainer changes nothing process-wide when built; while it trains (fit, or its
    process_settings around steps) denormals are flushed as its config says; after, the
    process has its own setting back."""
    from mnistgan.callbacks import Callback
    from mnistgan.config import from_preset
    from mnistgan.training.trainer import Trainer

    from test_training import fake_data

    class Watch(Callback):
        seen = []

        def on_epoch_end(self, trainer, row):
            self.seen.append(_underflow_survives())

    small = {"device": "cpu", "progress": False, "train_images": 200, "epochs": 1}
    try:
        for before in (False, True):
            assert runtime.flush_denormals(before)
            for flush in (False, True):
                t = Trainer(from_preset("seed", {**small, "flush_denormals": flush}))
                assert _underflow_survives() != before  # building it changed nothing
                with t.process_settings():
                    assert _underflow_survives() != flush
                assert _underflow_survives() != before
                Watch.seen = []
                t.fit(fake_data(200), [Watch()])
                assert Watch.seen == [not flush] and _underflow_survives() != before
    finally:
        runtime.flush_denormals(True)


def test_memory_format_gives_the_networks_their_layout():
    """nchw and nhwc are obeyed by every family; auto keeps dcgan's own channels-last layout and
    makes the resnet family channels-last on AVX-512 CPUs only (where it was measured faster)."""
    from mnistgan.config import from_preset
    from mnistgan.training.trainer import Trainer

    def layout(preset, fmt):
        t = Trainer(from_preset(preset, {"memory_format": fmt, "device": "cpu", "width": 8}), "cpu")
        w = next(p for p in t.D.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1)
        return "nhwc" if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() else "nchw"

    assert layout("dcgan", "auto") == "nhwc" and layout("dcgan", "nchw") == "nchw"
    assert layout("r3gan", "nhwc") == "nhwc" and layout("r3gan", "nchw") == "nchw"
    avx512 = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    assert layout("r3gan", "auto") == ("nhwc" if avx512 else "nchw")
    assert runtime.channels_last("auto", torch.device("cuda"), "resnet") is None


def _cpu_has_native_bf16() -> bool:
    """Read from /proc/cpuinfo, independently of torch's own check."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def test_precision_auto_is_bf16_for_conv_families_on_cpus_with_native_bf16_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    native = _cpu_has_native_bf16()
    assert runtime.native_bf16(cpu) == native and not runtime.native_bf16(cuda)
    for family in ("dcgan", "resnet"):
        assert runtime.bf16_autocast("auto", cpu, family) == native
        assert runtime.bf16_autocast("auto", cuda, family) is False
        assert runtime.bf16_autocast("fp32", cpu, family) is False and runtime.bf16_autocast("bf16", cpu, family)
    assert runtime.bf16_autocast("auto", cpu, "mlp") is False  # the seed preset stays exact fp32
    assert runtime.bf16_autocast("bf16", cpu, "mlp") is True


def test_precision_auto_trains_as_its_resolved_precision():
    """One dcgan step under auto ends with the weights of the precision it resolves to, which
    differ from the other one's (so autocast is really on or off); the seed keeps its exact
    hand-derived fp32 step under auto and under an explicit fp32."""
    from mnistgan.config import from_preset
    from mnistgan.training.trainer import Trainer

    def one_step(precision):
        t = Trainer(from_preset("dcgan", {"precision": precision, "device": "cpu", "width": 8, "batch_size": 16}), "cpu")
        real = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        t.train_step(real)
        return t, torch.cat([p.detach().flatten() for p in t.G.parameters()])

    auto, w_auto = one_step("auto")
    _, w_fp32 = one_step("fp32")
    _, w_bf16 = one_step("bf16")
    assert not torch.equal(w_fp32, w_bf16)
    assert auto.bf16 == _cpu_has_native_bf16()
    assert torch.equal(w_auto, w_bf16 if auto.bf16 else w_fp32)
    for precision in ("auto", "fp32"):
        assert Trainer(from_preset("seed", {"precision": precision, "device": "cpu"}), "cpu").engine.kind == "hand-derived"
