"""Channels as a property of the data: colour (3-channel) images through every room, from a
folder of your own colour images (`--set channels=3`) to the models, the run's pictures,
checkpoints, `sample`, the API and `export`; grey stays the default and old checkpoints read
as one channel."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnistgan
from mnistgan.store import checkpoint as ckpt
from mnistgan import data, export, generation, images, models
from mnistgan.data import folder as imagefolder
from mnistgan.config import TrainConfig, from_preset
from mnistgan.errors import ConfigError

from helpers import shapes  # noqa: E402

COLOURS = {"circle": (255, 40, 40), "square": (40, 255, 40), "triangle": (60, 60, 255)}  # red, green, blue


def colour_folder(root: Path, per_class: int = 24) -> Path:
    """root/<shape>/NNN.png: light shapes on black, each class in its own colour."""
    rng = np.random.default_rng(0)
    for shape, colour in COLOURS.items():
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            mask = np.asarray(shapes.draw(shape, rng, 28)) > 127
            rgb = np.zeros((28, 28, 3), np.uint8)
            rgb[mask] = colour
            Image.fromarray(rgb).save(root / shape / f"{i:03d}.png")
    return root


def test_to_frame_keeps_colour_when_asked_and_grey_stays_as_it_was(tmp_path):
    rgb = np.zeros((40, 56, 3), np.uint8)             # not square: padded with the border's colour
    rgb[10:30, 20:40] = (200, 30, 90)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    colour = imagefolder.to_frame(tmp_path / "c.png", channels=3)
    grey = imagefolder.to_frame(tmp_path / "c.png")
    assert colour.shape == (3, 28, 28) and grey.shape == (28, 28)
    centre = colour[:, 14, 14]
    assert centre[0] > 150 and centre[1] < 60 and 50 < centre[2] < 130     # red stays red
    light = 255 - rgb                                 # dark-on-light colour art is inverted, as grey is
    Image.fromarray(light).save(tmp_path / "l.png")
    assert np.abs(imagefolder.to_frame(tmp_path / "l.png", channels=3).astype(int) - colour).max() <= 1
    # the grey frame is the colour image's luminance, converted as a grey file is
    Image.fromarray(rgb).convert("L").save(tmp_path / "g.png")
    assert np.array_equal(grey, imagefolder.to_frame(tmp_path / "g.png"))


def test_a_colour_folder_is_its_own_dataset_and_keeps_its_colours(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path / "cache"))
    folder = colour_folder(tmp_path / "art")
    grey = data.open_dataset(f"folder:{folder}")
    colour = data.open_dataset(f"folder:{folder}", channels=3)
    assert grey.channels == 1 and colour.channels == 3 and grey.key != colour.key
    x, y = colour.split("train")
    assert x.shape[1:] == (3, 28, 28) and grey.split("train")[0].shape[1:] == (1, 28, 28)
    for k, shape in enumerate(colour.classes):
        brightest = x[y == k].reshape(-1, 3, 784).max(2).mean(0)       # per channel
        assert int(np.argmax(brightest)) == {"circle": 0, "square": 1, "triangle": 2}[shape]


def test_every_model_family_takes_and_makes_its_channels():
    for preset in ("seed", "dcgan", "r3gan"):
        for conditional in (False, True):
            c = from_preset(preset, {"channels": 3, "width": 8, "hidden": 16, "conditional": conditional,
                                     **({"g_conditioning": "cbn"} if preset == "dcgan" and conditional else {})})
            G, D = models.build(c)
            labels = torch.arange(4) % 10 if conditional else None
            x = G(torch.randn(4, c.z_dim), labels)
            assert x.shape == (4, 3, 28, 28), preset
            assert D(x, labels).shape == (4,)
    grey = from_preset("dcgan")
    assert models.build(grey)[0](torch.randn(2, 128)).shape == (2, 1, 28, 28)


def test_resnet_blocks_start_as_the_identity_and_eval_pixels_are_clipped():
    from mnistgan.models.resnet import Block, ResNetGenerator, fixup_

    block = Block(32)
    fixup_(block, blocks=2)
    x = torch.randn(3, 32, 7, 7)
    torch.testing.assert_close(block(x), x)
    G = ResNetGenerator(16, 8, channels=3)
    with torch.no_grad():
        G.out.bias.fill_(5.0)                         # far outside [0, 1]
        assert G.train()(torch.randn(2, 16)).max() > 1   # D sees the unclipped pixels in training
        out = G.eval()(torch.randn(2, 16))
    assert out.min() >= 0 and out.max() <= 1


def test_old_config_without_channels_reads_as_one_channel():
    values = TrainConfig().to_dict()
    del values["channels"]
    assert TrainConfig.from_dict(values).channels == 1
    with pytest.raises(ConfigError, match="channels must be 1"):
        from_preset("seed", {"channels": 2})


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("colour")
    folder = colour_folder(base / "art")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNISTGAN_CACHE", str(base / "cache"))
        run = mnistgan.train("r3gan", dataset=f"folder:{folder}", channels=3, width=4, batch_size=16,
                             max_images=64, epochs=2, progress=False, device="cpu", out=str(base / "run"),
                             strip_every=1)
    return run.path


def test_a_colour_run_leaves_every_picture_in_colour(colour_run):
    config = json.loads((colour_run / "config.json").read_text())
    assert config["channels"] == 3
    for name in ("samples/grid-001.png", "samples/001.png", "real_vs_fake.png", "progress.png", "progress.gif"):
        with Image.open(colour_run / name) as img:
            rgb = np.asarray(img.convert("RGB")).astype(int)
        assert (np.abs(rgb[..., 0] - rgb[..., 1]) > 30).any(), name      # not grey
    with Image.open(colour_run / "samples/grid-001.png") as img:
        assert img.mode == "RGB"


def test_sample_api_and_export_of_a_colour_run(colour_run, tmp_path):
    import onnxruntime as ort

    generation.sample_to_file(colour_run, tmp_path / "f.npy", n=1500)
    arr = np.load(tmp_path / "f.npy")
    assert arr.shape == (1500, 3, 28, 28) and arr.dtype == np.uint8
    assert np.array_equal(arr[:10], generation.sample(colour_run, n=10))
    generation.sample_to_file(colour_run, tmp_path / "f.png", n=16)
    with Image.open(tmp_path / "f.png") as img:
        assert img.mode == "RGB"
    g = mnistgan.load(colour_run)
    assert g.sample_tensor(5).shape == (5, 3, 28, 28)
    out, card = export.export(colour_run, tmp_path / "g.onnx", "onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    G, config = generation.load_generator(colour_run)
    z = export.example_inputs(config, 8, 1)[0]
    got = session.run(["images"], {"noise": z.numpy()})[0]
    assert got.shape == (8, 3, 28, 28)
    np.testing.assert_allclose(got, generation.generate(G, z).numpy(), atol=1e-5)
    assert "shape (batch, 3, 28, 28)" in Path(card).read_text()


def test_a_checkpoint_from_before_channels_loads_as_grey(tmp_path):
    run = mnistgan.train("seed", dataset="folder:" + str(shapes.make_folder(tmp_path / "s", per_class=10)),
                         hidden=8, batch_size=10, max_images=20, epochs=1, progress=False, device="cpu",
                         out=str(tmp_path / "run")).path
    path = ckpt.list_checkpoints(run / "checkpoints")[-1]
    tensors, meta = ckpt.load(path)
    del meta["config"]["channels"]
    ckpt.save(path, tensors, meta)
    G, config = generation.load_generator(run)
    assert config.channels == 1 and generation.sample(run, n=3).shape == (3, 28, 28)


def test_images_tile_colour_grids_and_rows():
    x = np.zeros((4, 3, 28, 28), np.uint8)
    x[:, 0] = 255                                     # red
    g = images.grid(x, nrow=2)
    assert g.shape == (2 * 30 + 2, 2 * 30 + 2, 3) and g[5, 5, 0] == 255 and g[5, 5, 1] == 0
    row = images.grid_row(images.grid(np.concatenate([x] * 25), nrow=10))
    assert row.shape == (10, 3, 28, 28) and (row[:, 0] == 255).all()
    assert images.to_uint8(torch.ones(2, 3, 28, 28)).shape == (2, 3, 28, 28)
    assert images.to_uint8(torch.ones(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    assert images.public(images.to_uint8(torch.ones(2, 1, 28, 28))).shape == (2, 28, 28)
