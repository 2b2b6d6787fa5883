"""`mnistgan evaluate` and the shipped feature networks."""

import numpy as np
import pytest

from mnistgan.cli import main
from mnistgan.metrics.classifier import FeatureNet


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


def test_cached_test_features_are_written_through_a_temporary_file_of_their_own(isolated_env, tmp_path, fake_mnist):
    """Evaluations side by side must not share a temporary file name: with a fixed name, one
    process's rename took the file from under another's (seen running quality.py four at a time).
    A folder squatting on the old fixed name makes any writer that still uses it fail."""
    from mnistgan.store.files import cache_dir
    from mnistgan.metrics import evaluate

    data = fake_mnist
    stats = cache_dir() / "stats"
    name = f"mnist-test-{FeatureNet('mnist').sha256[:16]}"
    (stats / f"{name}.tmp").mkdir(parents=True)
    fake = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    first, _ = evaluate(fake, "mnist", ["fid"], data, download=False, progress=False)
    assert (stats / f"{name}.safetensors").is_file()
    again, _ = evaluate(fake, "mnist", ["fid"], data, download=False, progress=False)  # from the cache
    assert again["metrics"]["fid"] == first["metrics"]["fid"]
    assert sorted(p.name for p in stats.iterdir()) == [f"{name}.safetensors", f"{name}.tmp"]
