"""mnistgan export: every preset's generator through ONNX (checked with onnxruntime),
TorchScript and torch.export, against PyTorch's own sampling; the model card; no overwrite."""

import numpy as np
import pytest
import torch

import mnistgan
from mnistgan import export, generation
from mnistgan.cli import main
from mnistgan.errors import ConfigError

from helpers import shapes  # noqa: E402

# Small networks: what is checked is the export of each preset's kind of generator (MLP,
# conv with batch norm, conditional with embedding, EMA with recalibrated statistics).
SMALL = {"seed": {"hidden": 32}, "dcgan": {"width": 8}, "cdcgan": {"width": 8}, "wgan-gp": {"width": 8},
         "best": {"width": 8}}
VARIANTS = [*((p, {}) for p in SMALL), ("seed", {"info_code": True})]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per preset on a folder of three shapes (conditional ones: 3 classes)."""
    base = tmp_path_factory.mktemp("export")
    folder = shapes.make_folder(base / "shapes", per_class=40)
    made = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNISTGAN_CACHE", str(base / "cache"))
        for preset, extra in VARIANTS:
            name = preset + ("-info" if extra else "")
            made[name] = mnistgan.train(preset, dataset=f"folder:{folder}", batch_size=16, max_images=32, epochs=1,
                                        progress=False, device="cpu", out=str(base / name),
                                        **SMALL[preset], **extra).path
    return made


def reference(run, n=64, seed=3, digit=None):
    """What PyTorch's sampling gives: the same generator mnistgan sample uses."""
    G, config = generation.load_generator(run)
    inputs = export.example_inputs(config, n, seed)
    if digit is not None:
        inputs = (inputs[0], torch.full((n,), digit))
    with torch.no_grad():
        return inputs, generation.generate(G, *inputs).numpy()


@pytest.mark.parametrize("name", [p + ("-info" if e else "") for p, e in VARIANTS])
def test_onnx_matches_pytorch_for_every_preset(runs, name, tmp_path):
    import onnxruntime as ort

    out, card = export.export(runs[name], tmp_path / "g.onnx", "onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs, expected = reference(runs[name])
    feeds = dict(zip([i.name for i in session.get_inputs()], (t.numpy() for t in inputs)))
    got = session.run(["images"], feeds)[0]
    assert got.shape == (64, 1, 28, 28) and got.dtype == np.float32
    diff = float(np.abs(got - expected).max())
    print(f"{name}: onnxruntime vs PyTorch max |diff| on 64 samples: {diff:.2e}")
    assert diff < 1e-5
    assert 0 <= got.min() and got.max() <= 1
    # the batch axis is dynamic: 1 and 7 samples from the same file
    assert session.run(None, {k: v[:1] for k, v in feeds.items()})[0].shape == (1, 1, 28, 28)
    assert session.run(None, {k: v[:7] for k, v in feeds.items()})[0].shape == (7, 1, 28, 28)
    text = card.read_text()
    assert f"preset `{name.removesuffix('-info')}`" in text and "onnxruntime" in text and "sha256" in text


def test_conditional_export_draws_the_class_asked_for(runs, tmp_path):
    import onnxruntime as ort

    out, card = export.export(runs["cdcgan"], tmp_path / "c.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["noise", "labels"]
    inputs, expected = reference(runs["cdcgan"], n=10, digit=2)
    got = session.run(None, {"noise": inputs[0].numpy(), "labels": inputs[1].numpy()})[0]
    assert np.abs(got - expected).max() < 1e-5
    assert "0..2" in card.read_text()  # three classes


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_torchscript_and_torch_export_match_pytorch(runs, fmt, tmp_path):
    for name in ("seed", "best"):
        out, _ = export.export(runs[name], tmp_path / f"{name}{export.FORMATS[fmt]}", fmt)
        g = torch.jit.load(str(out)) if fmt == "torchscript" else torch.export.load(str(out)).module()
        inputs, expected = reference(runs[name], n=9)
        with torch.no_grad():
            got = g(*inputs).numpy()
        assert np.abs(got - expected).max() < 1e-5, (name, fmt)


def test_export_refuses_to_overwrite_and_the_cli_says_so(runs, tmp_path, capsys):
    out = tmp_path / "g.onnx"
    assert main(["export", str(runs["seed"]), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["export", str(runs["dcgan"]), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == first
    assert main(["export", str(runs["dcgan"]), "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != first
    with pytest.raises(ConfigError, match="--format must be one of"):
        export.export(runs["seed"], tmp_path / "x.bin", "tflite")
    with pytest.raises(ConfigError, match="does not exist"):
        export.export(runs["seed"], tmp_path / "nowhere" / "g.onnx")


def test_model_card_includes_metrics_when_the_run_was_measured(runs, tmp_path):
    import json

    run = runs["seed"]
    (run / "metrics.json").write_text(json.dumps({"metrics": {"fid": {"fid": 12.5}, "prdc": {"recall": 0.5}}}))
    try:
        _, card = export.export(run, tmp_path / "g.pt", "torchscript")
    finally:
        (run / "metrics.json").unlink()
    text = card.read_text()
    assert "| fid | 12.5 |" in text and "| recall | 0.5 |" in text and "torch.jit.load" in text
