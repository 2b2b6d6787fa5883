"""The README's Python example, run as written on the real MNIST copy."""
import re
from pathlib import Path

import numpy as np
import torch

import mnistgan


README = Path(__file__).resolve().parents[2] / "README.md"


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
