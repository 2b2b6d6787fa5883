"""Your own images as a dataset: folder:PATH (conversion, layouts, cache, unreadable files)
and idx:PATH (any four IDX files, any number of classes), on small synthetic sets."""
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_idx
from mnistgan import data
from mnistgan.data import folder as imagefolder
from mnistgan.cli import main
from mnistgan.config import from_preset
from mnistgan.errors import DataError

from helpers import shapes  # noqa: E402


def test_a_dark_on_light_scan_becomes_light_on_black_and_keeps_its_aspect(tmp_path):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 60), "white")             # not square, dark stroke on white
    ImageDraw.Draw(img).rectangle([50, 10, 70, 50], fill="black")
    img.save(tmp_path / "scan.jpg", quality=95)
    frame = imagefolder.to_frame(tmp_path / "scan.jpg")
    assert frame.shape == (28, 28) and frame.dtype == np.uint8
    assert frame[0].max() < 30 and frame[-1].max() < 30     # background black (inverted), padded top and bottom
    assert frame[14, 14] > 200                              # the stroke is light
    cols = np.nonzero(frame[14] > 128)[0]
    assert 3 <= len(cols) <= 7                              # 20 of 120 pixels wide: aspect kept, not stretched
    assert imagefolder.to_frame(tmp_path / "scan.jpg", invert="no")[14, 14] < 50
    assert imagefolder.to_frame(tmp_path / "scan.jpg", invert="yes")[0, 0] < 30


def test_transparency_and_16_bit_images_convert(tmp_path):
    from PIL import Image

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (0, 0, 0, 255)                       # an opaque black square on transparency
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    frame = imagefolder.to_frame(tmp_path / "a.png")        # composited on white, then inverted
    assert frame[14, 14] > 200 and frame[1, 1] < 30
    deep = np.zeros((28, 28), np.uint16)
    deep[10:18, 10:18] = 4000
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert imagefolder.to_frame(tmp_path / "d.png")[14, 14] == 255


def test_a_class_folder_set_with_held_out_test_and_unreadable_files(tmp_path, isolated_env):
    root = shapes.make_folder(tmp_path / "s", per_class=30)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = data.open_dataset(f"folder:{root}")
    assert ds.classes == ("circle", "square", "triangle") and ds.num_classes == 3
    train, test = ds.split("train"), ds.split("test")
    assert len(test[0]) == 15 and len(train[0]) == 75        # every 6th image of each class held out
    assert np.bincount(test[1]).tolist() == [5, 5, 5]
    assert train[1][:15].tolist() != sorted(train[1][:15].tolist())  # stored shuffled: first N is a fair sample
    assert len(ds.skipped) == 1 and ds.skipped[0].startswith("square/broken.png: ")  # notes.txt is not an image
    assert ds.key.startswith("folder-") and len(ds.key) == 23


def test_train_and_test_folders_are_used_as_given(tmp_path, isolated_env):
    root = shapes.make_folder(tmp_path / "s", per_class=20, splits=True)
    ds = data.open_dataset(f"folder:{root}")
    assert len(ds.split("train")[0]) == 60 and len(ds.split("test")[0]) == 12


def test_the_cache_serves_a_second_open_and_a_changed_image_is_converted_again(tmp_path, isolated_env, monkeypatch):
    root = shapes.make_folder(tmp_path / "s", per_class=12)
    first = data.open_dataset(f"folder:{root}")
    calls = []
    real = imagefolder.to_frame
    monkeypatch.setattr(imagefolder, "to_frame", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = data.open_dataset(f"folder:{root}")
    assert calls == [] and again.key == first.key
    np.testing.assert_array_equal(again.split("train")[0], first.split("train")[0])
    shapes.draw("square", np.random.default_rng(5)).save(root / "circle" / "000.png")  # one image changes
    changed = data.open_dataset(f"folder:{root}")
    assert changed.key != first.key and len(calls) == 36
    assert data.open_dataset(f"folder:{root}", invert="no").key not in (first.key, changed.key)


def test_touched_images_are_found_by_content_and_indexed_again(tmp_path, isolated_env, monkeypatch):
    import os

    root = shapes.make_folder(tmp_path / "s", per_class=6)
    first = data.open_dataset(f"folder:{root}")
    for p in root.rglob("*.png"):
        os.utime(p, ns=(1, 1))                                   # same content, new times: the index misses
    hashed = []
    real = imagefolder._content_key
    monkeypatch.setattr(imagefolder, "_content_key", lambda *a: hashed.append(1) or real(*a))
    assert data.open_dataset(f"folder:{root}").key == first.key and len(hashed) == 1
    assert data.open_dataset(f"folder:{root}").key == first.key and len(hashed) == 1  # indexed: not hashed again


def test_folder_mistakes_are_told_in_one_line(tmp_path, isolated_env):
    with pytest.raises(DataError, match="no such folder"):
        data.open_dataset(f"folder:{tmp_path / 'nope'}")
    root = shapes.make_folder(tmp_path / "s", per_class=6, odd_files=False)
    shapes.draw("circle", np.random.default_rng(0)).save(root / "loose.png")
    with pytest.raises(DataError, match="mixes images at its top level"):
        data.open_dataset(f"folder:{root}")
    many = tmp_path / "many"
    for i in range(101):
        (many / f"c{i:03d}").mkdir(parents=True)
    with pytest.raises(DataError, match="101 class folders; at most 100"):
        data.open_dataset(f"folder:{many}")
    empty = tmp_path / "e"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    shapes.draw("circle", np.random.default_rng(0)).save(empty / "a" / "x.png")
    with pytest.raises(DataError, match="class folder.s. b hold no images"):
        data.open_dataset(f"folder:{empty}")


def test_a_folder_without_labels_trains_unconditional_and_refuses_conditional(tmp_path, isolated_env, capsys):
    root = tmp_path / "plain"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        shapes.draw("circle", rng).save(root / f"{i}.png")
    assert data.open_dataset(f"folder:{root}").classes == ()
    args = ["train", "--dataset", f"folder:{root}", "--no-progress", "--max-images", "16", "--epochs", "1",
            "--batch-size", "16", "--device", "cpu"]
    assert main([*args, "--preset", "cdcgan", "--out", str(tmp_path / "c")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnistgan: error:")]
    assert len(errors) == 1 and "conditional models need a dataset with labels" in errors[0]
    assert not (tmp_path / "c").exists()
    assert main([*args, "--preset", "seed", "--set", "hidden=16", "--out", str(tmp_path / "u")]) == 0
    cfg = (tmp_path / "u" / "config.json").read_text()
    assert '"num_classes": 0' in cfg and '"train_images": 34' in cfg  # capped at the set's size


def _idx_set(folder: Path, classes: int, names=("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, (img, lab) in (("train", 300, names[:2]), ("test", 50, names[2:])):
        write_idx(folder / (img + ".gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / (lab + ".gz"), np.arange(n) % classes)
    return folder


def test_idx_folders_of_any_class_count(tmp_path, isolated_env):
    kmnist = _idx_set(tmp_path / "k", 49, ("k49-train-imgs-idx3", "k49-train-labels", "k49-test-imgs-idx3",
                                           "k49-test-labels"))
    ds = data.open_dataset(f"idx:{kmnist}")
    assert ds.num_classes == 49 and ds.split("train")[0].shape == (300, 1, 28, 28) and ds.key.startswith("idx-")
    with pytest.raises(DataError, match="expected one test labels file"):
        (kmnist / "k49-test-labels.gz").unlink()
        data.open_dataset(f"idx:{kmnist}")
    with pytest.raises(DataError, match="1 classes; 2 to 100"):
        data.open_dataset(f"idx:{_idx_set(tmp_path / 'one', 1)}")


def test_a_conditional_model_of_the_dataset_class_count(tmp_path, isolated_env):
    import torch

    from mnistgan import models
    from mnistgan.training.trainer import Trainer

    cfg = from_preset("cdcgan", {"num_classes": 3, "width": 8, "out": str(tmp_path / "r")})
    G, D = models.build(cfg)
    assert G.class_embeddings().shape[0] == 3
    logits, classes = D(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 0]), classes=True)
    assert classes.shape == (4, 3)
    t = Trainer(cfg, torch.device("cpu"))
    assert t.fixed_labels.view(10, 10)[:, 0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    grid = t.fixed_noise.view(10, 10, -1)
    assert torch.equal(grid[0], grid[2]) and not torch.equal(grid[0], grid[3])  # one noise block per cycle


def test_the_data_command_describes_a_folder(tmp_path, isolated_env, capsys):
    root = shapes.make_folder(tmp_path / "s", per_class=12)
    assert main(["data", "check", "--dataset", f"folder:{root}"]) == 0
    out = capsys.readouterr().out
    assert "train: 30 images" in out and "classes (3): circle, square, triangle" in out and "ready in" in out


@pytest.mark.slow
def test_a_conditional_preset_learns_to_draw_the_class_asked_for_on_your_own_images(tmp_path, isolated_env):
    """cdcgan on 1,200 images of three shapes (400 a class, mixed formats, sizes, a quarter
    dark on light), judged by the classifier `mnistgan classifier train` makes for the set.
    Measured with the class through class-conditional batch norm (as cdcgan takes it
    now): 0.98, 1.00, 0.995 after 36,000 images (~45 s); at 24,000 the worst class was
    0.895 (cbn's class gains start at zero and grow as training finds them useful; the class
    concatenated to z gave 1.00 there). An untrained generator's forgeries all land in one
    class, so the check below can fail."""
    import mnistgan
    from mnistgan.metrics.classifier import FeatureNet

    root = shapes.make_folder(tmp_path / "shapes", per_class=400)
    dataset = f"folder:{root}"
    assert main(["classifier", "train", "--dataset", dataset]) == 0
    net = FeatureNet(data.open_dataset(dataset).key)
    run = mnistgan.train("cdcgan", dataset=dataset, width=32, max_images=36000, epochs=1000, progress=False,
                         device="cpu", out=str(tmp_path / "run"))
    assert run.config.num_classes == 3
    g = mnistgan.load(run.path)
    accuracy = []
    for k in range(3):
        _, probs = net(g.sample(200, digit=k, seed=1))
        accuracy.append(float((probs.argmax(1) == k).double().mean()))
    print("per-class accuracy of --digit k forgeries:", accuracy)
    assert min(accuracy) >= 0.9, accuracy
    scores = mnistgan.evaluate(g.sample(300, seed=2), metrics=["fid", "coverage"], dataset=dataset)
    assert scores["coverage"]["classes_present"] == 3


def test_evaluate_without_a_feature_network_says_how_to_make_one(tmp_path, isolated_env):
    import mnistgan
    from mnistgan.errors import MnistganError

    root = shapes.make_folder(tmp_path / "s", per_class=12)
    images = np.zeros((20, 28, 28), np.uint8)
    with pytest.raises(MnistganError, match=f"train one with: mnistgan classifier train --dataset folder:{root}"):
        mnistgan.evaluate(images, metrics=["fid"], dataset=f"folder:{root}")


def test_many_images_are_converted_by_worker_processes_with_the_same_result(tmp_path, isolated_env, monkeypatch):
    root = shapes.make_folder(tmp_path / "s", per_class=8)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG not really")
    alone = data.open_dataset(f"folder:{root}", invert="yes")      # below the threshold: in this process
    monkeypatch.setattr(imagefolder, "PARALLEL_FROM", 1)
    monkeypatch.setenv("MNISTGAN_CACHE", str(tmp_path / "other-cache"))
    workers = data.open_dataset(f"folder:{root}", invert="yes")    # spawned workers
    assert workers.skipped == alone.skipped and len(workers.skipped) == 1
    for split in ("train", "test"):
        np.testing.assert_array_equal(workers.split(split)[0], alone.split(split)[0])
        np.testing.assert_array_equal(workers.split(split)[1], alone.split(split)[1])
