"""Model folders in the Hugging Face Hub's convention (`export --format hub`), read back
wherever a run is taken; `pretrained:NAME` names the package's own; the web page shows them."""
import json

import numpy as np
import pytest
import torch

import mnistgan
from mnistgan import export, generation, zoo
from mnistgan.cli import main
from mnistgan.errors import ConfigError, MnistganError, RunError
from mnistgan.store import modelfolder

from helpers import shapes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs on three shapes: a conditional EMA one (batch norm recomputed) and a packed one."""
    base = tmp_path_factory.mktemp("hub")
    folder = shapes.make_folder(base / "shapes", per_class=40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNISTGAN_CACHE", str(base / "cache"))
        best = mnistgan.train("best", dataset=f"folder:{folder}", batch_size=16, max_images=64, epochs=1, width=8,
                              progress=False, device="cpu", out=str(base / "best")).path
        packed = mnistgan.train("dcgan", dataset=f"folder:{folder}", batch_size=16, max_images=32, epochs=1, width=8,
                                pack=2, progress=False, device="cpu", out=str(base / "packed")).path
    return {"best": best, "packed": packed}


def test_a_hub_folder_round_trips_the_same_forgeries_and_discriminator(runs, tmp_path):
    out = tmp_path / "model"
    paths = export.hub(runs["best"], out)
    assert [p.name for p in paths] == ["config.json", "model.safetensors", "README.md"]
    assert modelfolder.is_model_folder(out) and not modelfolder.is_model_folder(runs["best"])
    run, folder = mnistgan.load(runs["best"]), mnistgan.load(out)
    for digit in (None, 2):
        assert np.array_equal(run.sample(32, digit=digit, seed=5), folder.sample(32, digit=digit, seed=5))
    a, b = generation.load_networks(runs["best"]), generation.load_networks(out)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(a.D(x, torch.tensor([0, 1, 2, 0])), b.D(x, torch.tensor([0, 1, 2, 0])), rtol=0, atol=0)
    config = json.loads((out / "config.json").read_text())
    assert config["library_name"] == "mnistgan" and config["preset"] == "best"
    assert config["data_dir"] is None and config["out"] == "runs/seed"  # nothing of this machine's places travels


def test_float16_halves_the_folder_and_moves_pixels_by_a_grey_level_at_most(runs, tmp_path):
    export.hub(runs["best"], tmp_path / "f32")
    export.hub(runs["best"], tmp_path / "f16", dtype="float16")
    s32, s16 = ((tmp_path / d / "model.safetensors").stat().st_size for d in ("f32", "f16"))
    assert s16 < 0.55 * s32
    a, b = mnistgan.load(tmp_path / "f32").sample(64), mnistgan.load(tmp_path / "f16").sample(64)
    assert np.abs(a.astype(int) - b).max() <= 2


def test_the_card_has_the_hubs_metadata_and_the_figures_given(runs, tmp_path):
    card = {"metrics": {"fid": 7.25, "recall": 0.71, "n": 10000}, "headline": {"FID": 7.25},
            "command": "mnistgan train --preset best", "machine": "a CPU", "notes": ["n = 10,000"]}
    export.hub(runs["best"], tmp_path / "m", card=card, name="best-shapes")
    text = (tmp_path / "m" / "README.md").read_text()
    head, _, body = text[4:].partition("\n---\n")
    assert text.startswith("---\n") and "library_name: mnistgan" in head and "pipeline_tag: image-generation" in head
    assert '- type: "fid"\n      value: 7.25' in head and '"n"' not in head  # a count is not a metric
    assert "`mnistgan train --preset best`" in body and "| recall | 0.71 |" in body and "- n = 10,000" in body
    # a folder exported again keeps its card's figures
    export.hub(tmp_path / "m", tmp_path / "again")
    assert modelfolder.metadata(tmp_path / "again")["card"] == card


def test_a_packed_model_folder_loads_its_packed_discriminator(runs, tmp_path):
    export.hub(runs["packed"], tmp_path / "p")
    D = generation.load_networks(tmp_path / "p").D
    assert isinstance(D, mnistgan.models.Packed)
    assert mnistgan.models.each_logit(D, torch.rand(3, 1, 28, 28), None).shape == (3,)


def test_hub_export_refuses_what_it_would_replace_and_bad_places(runs, tmp_path, capsys):
    export.hub(runs["best"], tmp_path / "m")
    with pytest.raises(ConfigError, match="already exists"):
        export.hub(runs["best"], tmp_path / "m")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        export.hub(runs["best"], tmp_path / "file")
    with pytest.raises(ConfigError, match="does not exist"):
        export.hub(runs["best"], tmp_path / "no" / "m")
    assert main(["export", str(runs["best"]), "--format", "onnx", "--dtype", "float16", "--out", str(tmp_path / "g.onnx")]) == 1
    assert "--dtype is for --format hub" in capsys.readouterr().err
    assert main(["export", str(runs["best"]), "--format", "hub", "--out", str(tmp_path / "cli"), "--dtype", "float16"]) == 0
    assert modelfolder.metadata(tmp_path / "cli")["dtype"] == "float16"


def test_a_run_checkpoint_is_not_taken_for_a_model_folders_weights(runs, tmp_path):
    """A model folder whose weights are a run's checkpoint (renamed) is refused by name."""
    import shutil

    from mnistgan.store import checkpoint as ckpt

    (tmp_path / "m").mkdir()
    shutil.copy(ckpt.list_checkpoints(runs["best"] / "checkpoints")[-1], tmp_path / "m" / "model.safetensors")
    with pytest.raises(MnistganError, match="model folder"):
        mnistgan.load(tmp_path / "m")


def test_pretrained_names_resolve_in_the_package_and_unknown_ones_list_the_zoo():
    with pytest.raises(RunError, match="no pretrained model 'nope'.*mnistgan zoo"):
        zoo.resolve("pretrained:nope")
    assert zoo.resolve("runs/x") == zoo.Path("runs/x")
    for name in zoo.names():
        assert zoo.resolve(f"pretrained:{name}") == zoo.HERE / name


def test_evaluate_of_a_model_folder_writes_metrics_here_not_into_it(runs, tmp_path, monkeypatch, fake_mnist):
    from mnistgan import evaluation

    export.hub(runs["packed"], tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    done = evaluation.run(str(tmp_path / "m"), n=200, metrics=["coverage"], dataset="mnist", data_dir=str(fake_mnist))
    assert done.written[0].resolve() == (tmp_path / "metrics.json").resolve()
    assert not (tmp_path / "m" / "metrics.json").exists()


def test_serve_with_no_runs_folder_shows_the_pretrained_models_and_forges_from_them(tmp_path):
    import urllib.error
    import urllib.request

    pytest.importorskip("fastapi")
    from mnistgan.web.app import serve_in_thread

    base, stop = serve_in_thread(tmp_path / "none")  # no runs folder yet
    try:
        page = urllib.request.urlopen(base + "/", timeout=30).read().decode()
        assert "Pretrained models" in page and page.index("Pretrained models") < page.index("Runs in")
        for name in zoo.names():
            assert f"/runs/pretrained%3A{name}/forge" in page
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/runs/pretrained:nope/forge", timeout=30)
        assert e.value.code == 404
    finally:
        stop()


def test_a_hostile_model_folder_is_one_error_naming_its_weights(runs, tmp_path):
    """A link out, a FIFO or a truncated file in the weights' place: one error naming it,
    never a hang, never the folder taken for a run without checkpoints."""
    import os

    export.hub(runs["packed"], tmp_path / "good")
    weights = (tmp_path / "good" / "model.safetensors").read_bytes()
    for kind, expected in [("link", "leads outside"), ("fifo", "not a regular file"), ("truncated", "truncated")]:
        folder = tmp_path / kind
        export.hub(runs["packed"], folder)
        (folder / "model.safetensors").unlink()
        if kind == "link":
            (folder / "model.safetensors").symlink_to(tmp_path / "good" / "model.safetensors")
        elif kind == "fifo":
            os.mkfifo(folder / "model.safetensors")
        else:
            (folder / "model.safetensors").write_bytes(weights[:5000])
        assert modelfolder.is_model_folder(folder)
        with pytest.raises(MnistganError, match=f"model.safetensors.*{expected}"):
            mnistgan.load(folder)
    assert (tmp_path / "good" / "model.safetensors").read_bytes() == weights
