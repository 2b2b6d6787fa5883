"""`mnistgan evaluate` and the shipped feature networks."""
import json
from pathlib import Path

import numpy as np
import pytest

from mnistgan.cli import main
from mnistgan.metrics.classifier import FeatureNet


@pytest.mark.integration
def test_shipped_mnist_classifier_meets_the_bar(mnist_dir, isolated_env):
    from mnistgan.data import load_split

    net = FeatureNet("mnist")
    images, labels = load_split("mnist", "test", mnist_dir, download=False)
    _, probs = net(images)
    accuracy = float((probs.argmax(1).numpy() == labels).mean())
    assert accuracy >= 0.99
    assert abs(accuracy - net.accuracy) < 1e-9  # the recorded figure is this network's


@pytest.mark.integration
def test_shipped_fashion_classifier_meets_the_bar(isolated_env):
    from mnistgan.data import load_split

    if not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    net = FeatureNet("fashion-mnist")
    images, labels = load_split("fashion-mnist", "test", None, download=False)
    _, probs = net(images)
    assert float((probs.argmax(1).numpy() == labels).mean()) >= 0.90


def test_a_tampered_weight_file_is_refused(tmp_path, monkeypatch):
    import shutil

    from mnistgan.errors import MnistganError
    from mnistgan.metrics import classifier

    for f in classifier.WEIGHTS.glob("mnist.*"):
        shutil.copy(f, tmp_path / f.name)
    data = bytearray((tmp_path / "mnist.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "mnist.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(classifier, "WEIGHTS", tmp_path)
    with pytest.raises(MnistganError, match="sha256 .* does not match"):
        FeatureNet("mnist")


@pytest.mark.integration
def test_evaluate_images_file_real_vs_noise(mnist_dir, isolated_env, tmp_path, capsys):
    """Real test-like digits score far better than noise, and results name the network."""
    from mnistgan.data import load_split

    train, _ = load_split("mnist", "train", mnist_dir, download=False)
    np.save(tmp_path / "real.npy", train[:2000])
    np.save(tmp_path / "noise.npy", np.random.default_rng(0).integers(0, 256, (2000, 28, 28), dtype=np.uint8))
    metrics = "fid,kid,classifier_score,coverage,prdc,memorization"
    for name in ("real", "noise"):
        assert main(["evaluate", "--images", str(tmp_path / f"{name}.npy"), "--data-dir", str(mnist_dir),
                     "--metrics", metrics, "--out", str(tmp_path / f"{name}.json")]) == 0
    real = json.loads((tmp_path / "real.json").read_text())
    noise = json.loads((tmp_path / "noise.json").read_text())
    assert real["feature_network"]["name"] == "lenet-mnist" and len(real["feature_network"]["sha256"]) == 64
    # measured: real 9.9 (2,000 images; 3.6 with 10,000), noise 1343
    assert real["metrics"]["fid"]["fid"] < 20 and noise["metrics"]["fid"]["fid"] > 50 * real["metrics"]["fid"]["fid"]
    assert real["metrics"]["classifier_score"]["classifier_score"] > 9.0
    assert real["metrics"]["coverage"]["classes_present"] == 10
    # Noise lands inside a few very wide real k-NN balls, so its precision is high (a known
    # weakness of k-NN precision); recall and coverage expose it.
    assert real["metrics"]["prdc"]["recall"] > 0.6 and noise["metrics"]["prdc"]["recall"] < 0.05
    assert real["metrics"]["prdc"]["coverage"] > 0.4 and noise["metrics"]["prdc"]["coverage"] < 0.05
    assert real["metrics"]["memorization"]["exact_copies"] == 2000  # training images are copies
    assert noise["metrics"]["memorization"]["exact_copies"] == 0
    assert (tmp_path / "real-novelty.png").exists() and (tmp_path / "noise-novelty.png").exists()
    out = capsys.readouterr().out
    assert "fid" in out and "lenet-mnist" in out


def test_evaluate_errors(tmp_path, capsys):
    assert main(["evaluate"]) == 1
    assert "give either a RUN folder or --images" in capsys.readouterr().err
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    assert main(["evaluate", "--images", str(tmp_path / "bad.npy")]) == 1
    assert "bad.npy is not a .npy file (no NumPy header)" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((20, 32, 32), np.uint8))
    assert main(["evaluate", "--images", str(tmp_path / "wrong.npy"), "--metrics", "fid"]) == 1
    assert "wrong.npy must be N x 28 x 28 (grey) or N x 3 x 28 x 28 (colour), got shape (20, 32, 32)" in capsys.readouterr().err


@pytest.mark.parametrize("array, message", [
    (np.where(np.arange(20 * 784).reshape(20, 28, 28) == 5000, np.nan, 0.5), "image 6 holds a non-finite value (nan)"),
    (np.full((20, 28, 28), np.inf, np.float32), "image 0 holds a non-finite value (inf)"),
    (np.zeros((20, 28, 28), np.complex64), "holds complex64 values; expected uint8 (0..255) or floats in [0, 1]"),
    (np.zeros((20, 28, 28), bool), "holds bool values"),
    (np.zeros((20, 28, 28), np.int64), "holds int64 values"),
    (np.full((20, 28, 28), 1.5), "float images must lie in [0, 1]"),
])
def test_evaluate_refuses_bad_values(array, message, tmp_path, capsys):
    np.save(tmp_path / "x.npy", array)
    assert main(["evaluate", "--images", str(tmp_path / "x.npy"), "--metrics", "fid"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "metrics.json").exists()


def test_a_npy_header_that_promises_millions_is_refused_without_reading(tmp_path, capsys):
    """A header claiming 2.7 M images in a small file: refused from the header (memory map)."""
    import resource

    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (2_700_000, 28, 28)})
        f.write(bytes(1000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["evaluate", "--images", str(path), "--metrics", "fid"]) == 1
    err = capsys.readouterr().err
    assert "cannot read --images" in err or "at most 100,000" in err
    big = tmp_path / "big2.npy"       # a real file of 150,000 images: refused by count, memory mapped
    np.lib.format.open_memmap(big, mode="w+", dtype=np.uint8, shape=(150_000, 28, 28)).flush()
    assert main(["evaluate", "--images", str(big), "--metrics", "fid"]) == 1
    assert "holds 150,000 images; an evaluation takes at most 100,000" in capsys.readouterr().err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 60 * 1024  # KiB


def test_cached_test_features_are_written_through_a_temporary_file_of_their_own(isolated_env, tmp_path):
    """Evaluations side by side must not share a temporary file name: with a fixed name, one
    process's rename took the file from under another's (seen running quality.py four at a time).
    A folder squatting on the old fixed name makes any writer that still uses it fail."""
    from conftest import make_dataset
    from mnistgan.store.files import cache_dir
    from mnistgan.metrics import evaluate

    data = make_dataset(tmp_path / "data")
    stats = cache_dir() / "stats"
    name = f"mnist-test-{FeatureNet('mnist').sha256[:16]}"
    (stats / f"{name}.tmp").mkdir(parents=True)
    fake = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    first, _ = evaluate(fake, "mnist", ["fid"], data, download=False, progress=False)
    assert (stats / f"{name}.safetensors").is_file()
    again, _ = evaluate(fake, "mnist", ["fid"], data, download=False, progress=False)  # from the cache
    assert again["metrics"]["fid"] == first["metrics"]["fid"]
    assert sorted(p.name for p in stats.iterdir()) == [f"{name}.safetensors", f"{name}.tmp"]
