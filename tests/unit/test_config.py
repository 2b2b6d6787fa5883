import json

import pytest

from mnistgan import registry
from mnistgan.config import PRESETS, TrainConfig, apply_overrides, fixed_fields, from_preset
from mnistgan.errors import ConfigError


def test_seed_preset_is_the_tutorial():
    c = from_preset("seed")
    assert (c.model, c.z_dim, c.hidden, c.init_std) == ("mlp", 128, 256, 0.01)
    assert (c.lr, c.beta1, c.beta2, c.eps, c.optimizer) == (2e-4, 0.9, 0.999, 1e-8, "adam-tf1")
    assert (c.batch_size, c.epochs, c.train_images, c.objective) == (100, 100, 55000, "nonsaturating")
    assert c.steps_per_epoch == 550 and c.total_images == 5_500_000


def test_pacgan_is_best_unconditional_with_packs_of_two():
    """The preset for mode coverage is the setting its board measured: `best` unconditional with
    pack=2 (G's conditioning mode is moot without classes), at the β1 of 0.5 and batch of 32 `best`
    had then."""
    measured = from_preset("best", {"conditional": False, "pack": 2, "dataset": "stacked-mnist", "beta1": 0.5,
                                    "batch_size": 32}).to_dict()
    pacgan = from_preset("pacgan", {"dataset": "stacked-mnist"}).to_dict()
    differ = {k for k in pacgan if pacgan[k] != measured[k]}
    assert differ == {"preset", "g_conditioning"}, differ
    assert (pacgan["pack"], pacgan["conditional"], pacgan["r1_gamma"], pacgan["reg_every"]) == (2, False, 0.03, 4)


def test_json_round_trip():
    c = from_preset("seed", {"epochs": 3, "max_images": 1000})
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0}, "epochs must be at least 1, got 0"),
    ({"batch_size": -5}, "batch_size must be at least 1"),
    ({"lr": 0.0}, r"lr must be in \(0, 1\)"),
    ({"lr": "fast"}, "lr must be a float"),
    ({"epochs": "ten"}, "epochs must be an integer"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
    ({"dataset": "cifar"}, "unknown dataset 'cifar'; available: mnist, fashion-mnist"),
    ({"model": "transformer"}, "unknown model 'transformer'"),
    ({"device": "gpu0"}, "device must be auto, cpu, cuda, cuda:N or mps"),
    ({"train_images": 2_000_000}, "train_images must be at most 1,000,000, got 2,000,000"),
    ({"d_steps": 101}, "d_steps must be at most 100"),
    ({"reg_every": 0}, "reg_every must be at least 1, got 0"),
    ({"reg_every": 2.5}, "reg_every must be an integer"),
    ({"memory_format": "nchw4"}, "memory_format must be auto, nchw or nhwc, got 'nchw4'"),
    ({"dataset": "folder:"}, "give a path after .folder:."),
    ({"invert": "maybe"}, "invert must be auto, yes or no"),
    ({"conditional": True, "num_classes": 0}, "conditional models need a dataset with labels"),
    ({"max_images": 50}, r"max_images must be at least one batch \(100\)"),
    ({"batch_size": 2000, "train_images": 1000}, r"batch_size \(2000\) must not exceed train_images"),
    ({"nonsense": 1}, "unknown config key"),
    ({"lr_d": 2.0}, r"lr_d must be in \(0, 1\), got 2.0"),
    ({"aux_weight": -1.0}, r"aux_weight must be in \[0, 1e\+06\], got -1.0"),
    # non-finite and absurd values, each refused before any work (hardening issue, item 5 and 2)
    ({"eps": "inf"}, "eps must be a finite number, got inf"),
    ({"init_std": "inf"}, "init_std must be a finite number, got inf"),
    ({"lr": "nan"}, "lr must be a finite number, got nan"),
    ({"gp_lambda": "-inf"}, "gp_lambda must be a finite number"),
    ({"max_seconds": "inf"}, "max_seconds must be a finite number"),
    ({"label_smoothing": "nan"}, "label_smoothing must be a finite number"),
    ({"eps": 5.0}, r"eps must be in \(0, 1\], got 5.0"),
    ({"hidden": 10**9}, "hidden must be at most 16,384, got 1,000,000,000"),
    ({"z_dim": 100000}, "z_dim must be at most 4,096"),
    ({"width": 5000}, "width must be at most 1,024"),
    ({"eval_n": 10**7}, "eval_n must be at most 100,000"),
    ({"keep_checkpoints": 10**6}, "keep_checkpoints must be at most 1,000"),
    ({"max_images": 10**16}, "at most 10\\*\\*15"),
    ({"preset": "dcgan"}, r"a preset is chosen by name \(--preset dcgan\), not by setting preset=dcgan"),
    ({"aux_weight": 1.0}, "aux_weight needs a conditional model"),
    ({"conditional": True, "aux_twin": True}, "aux_twin needs the auxiliary classifier"),
    ({"lr_schedule": "step"}, "unknown lr_schedule 'step'; available: constant, linear, cosine"),
    ({"lr_end": 1.5}, r"lr_end must be in \[0, 1\], got 1.5"),
    ({"lr_horizon": 0}, "lr_horizon must be a number of images from 1"),
    ({"lr_schedule": "cosine", "cuda_graph": True}, "cuda_graph records the learning rate once"),
])
def test_invalid_values_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message):
        from_preset("seed", overrides)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset .fancy.; available: best, cdcgan, dcgan, pacgan, r3gan, seed, wgan-gp"):
        from_preset("fancy")


def test_max_images_rounds_down_to_whole_batches():
    c = from_preset("seed", {"max_images": 250})
    assert c.total_images == 200


def test_string_overrides_are_coerced():
    c = apply_overrides(TrainConfig(), {"epochs": "7", "lr": "1e-3", "max_images": "none", "download": "false"})
    assert (c.epochs, c.lr, c.max_images, c.download) == (7, 1e-3, None, False)


def test_registry_names_match_the_builders():
    from mnistgan import data, models
    from mnistgan.training import objectives

    assert set(registry.NAMES["dataset"]) == set(data.REGISTERED)
    assert set(registry.NAMES["model"]) == set(models.MODELS)
    assert set(registry.NAMES["objective"]) == set(objectives.OBJECTIVES)
    assert set(PRESETS) >= {"seed"}


def test_fixed_fields_cover_the_maths():
    fixed = fixed_fields()
    assert {"model", "z_dim", "lr", "lr_d", "lr_schedule", "lr_end", "lr_horizon", "aux_weight", "batch_size", "seed",
            "objective"} <= fixed
    assert not {"epochs", "out", "device", "progress"} & fixed


def test_the_config_reads_by_concern_and_every_field_has_one():
    import dataclasses

    from mnistgan.config import CONCERNS, TrainConfig

    declared = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [name for names in CONCERNS.values() for name in names] == declared  # each once, in the order declared
    c = from_preset("dcgan")
    assert c.section("optimiser")["beta1"] == 0.5 and c.section("model")["model"] == "dcgan"
    assert set(c.section("data")) == {"dataset", "data_dir", "download", "invert", "train_images", "num_classes",
                                      "channels", "data_key"}
    with pytest.raises(ConfigError, match="unknown concern"):
        c.section("misc")
