"""The Python API: the README's example, run as written, and its errors."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import mnistgan

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.integration
def test_the_readme_example_runs_as_written(mnist_dir, isolated_env, tmp_path, monkeypatch, capsys):
    code = re.search(r"## Using it from Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTGAN_DATA_DIR", str(mnist_dir))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    x, run, scores = scope["x"], scope["run"], scope["scores"]
    assert x.shape == (16, 28, 28) and x.dtype == np.uint8
    assert run.path == Path("runs/api") and run.config.preset == "cdcgan" and run.log()[-1]["images_seen"] == 1280
    assert scores["fid"]["fid"] > 0 and 1 <= scores["coverage"]["classes_present"] <= 10
    g = scope["g"]
    t = g.sample_tensor(16, digit=7, seed=0)
    assert t.shape == (16, 1, 28, 28) and torch.equal((t * 255).round().to(torch.uint8)[:, 0], torch.from_numpy(x))
    from mnistgan.generation import sample
    assert np.array_equal(sample("runs/api", n=16, seed=0, digit=7), x)   # the CLI's sampling, the same images
    resumed = mnistgan.train(resume="runs/api", epochs=2, max_images=1280 * 2, progress=False)
    assert resumed.log()[-1]["images_seen"] == 2560


def test_errors_are_the_projects_exceptions(tmp_path):
    with pytest.raises(mnistgan.ConfigError, match="unknown preset 'fancy'"):
        mnistgan.train(preset="fancy", out=str(tmp_path / "r"))
    with pytest.raises(mnistgan.ConfigError, match="eps must be a finite number"):
        mnistgan.train(eps=float("inf"), out=str(tmp_path / "r"))
    with pytest.raises(mnistgan.CheckpointError, match="does not exist"):
        mnistgan.load(tmp_path / "nope")
    with pytest.raises(mnistgan.MnistganError, match="at least 10 images"):
        mnistgan.evaluate(np.zeros((3, 28, 28), np.uint8))
    assert not (tmp_path / "r").exists()


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, mnistgan; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
