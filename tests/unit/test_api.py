"""The Python API: its errors, and what it returns (tests/integration/test_readme_example.py
runs the README's example)."""
import numpy as np
import pytest

import mnistgan


def test_errors_are_the_projects_exceptions(tmp_path):
    with pytest.raises(mnistgan.ConfigError, match="unknown preset 'fancy'"):
        mnistgan.train(preset="fancy", out=str(tmp_path / "r"))
    with pytest.raises(mnistgan.ConfigError, match="eps must be a finite number"):
        mnistgan.train(eps=float("inf"), out=str(tmp_path / "r"))
    with pytest.raises(mnistgan.RunError, match="does not exist"):
        mnistgan.load(tmp_path / "nope")
    with pytest.raises(mnistgan.MnistganError, match="at least 10 images"):
        mnistgan.evaluate(np.zeros((3, 28, 28), np.uint8))
    assert not (tmp_path / "r").exists()


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, mnistgan; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


PROCESS_CHECK = """
import sys
import torch
import mnistgan
from mnistgan.system import runtime

data, out, tune = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def underflow_survives():
    return bool(torch.full((1 << 20,), 1e-20).mul_(1e-20).count_nonzero())
before = underflow_survives()
mnistgan.train(out=out, dataset="idx:" + data, progress=False, device="cpu", train_images=200, epochs=1,
               hidden=32, tune_malloc=tune)
print(before, underflow_survives(), runtime._MALLOC_TUNED)
"""


@pytest.mark.parametrize("tune", [True, False])
def test_train_changes_the_process_only_as_its_docstring_says(tmp_path, tune):
    """Denormals are flushed while it trains and not after (the process's own IEEE underflow
    is back); malloc is tuned only when asked (the default)."""
    import subprocess
    import sys

    from helpers.datasets import make_dataset

    data = make_dataset(tmp_path / "data", 300, 100)
    got = subprocess.run([sys.executable, "-c", PROCESS_CHECK, str(data), str(tmp_path / "run"), "1" if tune else "0"],
                         capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                         "MNISTGAN_CACHE": str(tmp_path / "cache")})
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split()[-3:] == ["True", "True", str(tune)]
    assert (tmp_path / "run" / "config.json").exists()


def test_a_setting_given_twice_must_agree():
    from mnistgan.config import merge_settings, parse_sets

    assert merge_settings({"epochs": 5, "lr": None}, parse_sets(["epochs=5", "hidden=64"])) == {"epochs": "5", "hidden": "64"}
    assert merge_settings({"lr": 2e-4}, {"lr": "0.0002"}) == {"lr": "0.0002"}  # the same value, written otherwise
    with pytest.raises(mnistgan.ConfigError, match="--epochs 5 and --set epochs=6 disagree"):
        merge_settings({"epochs": 5}, {"epochs": "6"})
    with pytest.raises(mnistgan.ConfigError, match="--set expects KEY=VALUE"):
        parse_sets(["epochs"])
    with pytest.raises(mnistgan.ConfigError, match="resume continues a run with its own preset"):
        mnistgan.train("dcgan", resume="runs/x")
