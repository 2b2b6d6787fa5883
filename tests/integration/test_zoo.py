"""The package's pretrained models: each loads from package data, samples, and measures what
its card says (the same forgeries: seed 0, the card's count), the conditional ones draw the
class asked for; the built wheel samples and evaluates them alone, offline, in a fresh venv."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mnistgan
from mnistgan import evaluation, zoo
from mnistgan.store import modelfolder

REPO = Path(__file__).resolve().parents[2]
FASHION = Path("/usr/share/datasets/fashion-mnist")
MODELS = ["best-fashion-mnist", "best-mnist", "cdcgan-mnist", "pacgan-stacked-mnist", "r3gan-stacked-mnist", "seed-mnist"]
MAX_BYTES = 15 * 2**20  # the zoo's whole size in the wheel


def test_the_zoo_holds_its_models_within_its_size():
    assert zoo.names() == MODELS
    size = sum(f.stat().st_size for name in MODELS for f in (zoo.HERE / name).iterdir())
    assert size <= MAX_BYTES, f"the zoo holds {size:,} bytes"
    for name in MODELS:
        card = modelfolder.metadata(zoo.HERE / name)["card"]
        assert {"command", "budget", "machine", "date", "metrics", "headline"} <= set(card), name
        assert card["command"] in (zoo.HERE / name / "README.md").read_text()


def data_dir(dataset: str, mnist_dir: Path) -> Path:
    if dataset == "fashion-mnist":
        if not (FASHION / "t10k-images-idx3-ubyte.gz").exists():
            pytest.skip("Debian's dataset-fashion-mnist is not installed")
        return FASHION
    return mnist_dir


@pytest.mark.parametrize("name", MODELS)
def test_each_model_measures_what_its_card_says(name, mnist_dir, isolated_env, tmp_path, monkeypatch):
    meta = modelfolder.metadata(zoo.HERE / name)
    card, dataset = meta["card"]["metrics"], meta["config"]["dataset"]
    where = data_dir(dataset, mnist_dir)
    monkeypatch.chdir(tmp_path)
    wanted = ["modes"] if dataset == "stacked-mnist" else ["fid"]
    done = evaluation.run(f"pretrained:{name}", metrics=wanted, data_dir=str(where))
    fresh = {k: v for m in done.result["metrics"].values() for k, v in m.items() if isinstance(v, (int, float))}
    assert done.written[0].resolve() == (tmp_path / "metrics.json").resolve()  # here, not inside the package
    assert done.result["n"] == (26000 if dataset == "stacked-mnist" else 10000)  # the card's count
    if dataset == "stacked-mnist":  # the same 26,000 forgeries: CPU kinds' rounding moves a few at most
        assert abs(fresh["modes"] - card["modes"]) <= 3 and fresh["kl"] == pytest.approx(card["kl"], rel=0.1, abs=0.01)
    else:
        assert fresh["fid"] == pytest.approx(card["fid"], rel=0.03, abs=0.05)


@pytest.mark.parametrize("name", [n for n in MODELS if modelfolder.metadata(zoo.HERE / n)["config"]["conditional"]])
def test_conditional_models_draw_the_class_asked_for(name, isolated_env, mnist_dir):
    from mnistgan.metrics.classifier import FeatureNet

    meta = modelfolder.metadata(zoo.HERE / name)
    net, g = FeatureNet(meta["config"]["dataset"]), mnistgan.load(f"pretrained:{name}")
    worst = min(float((net(g.sample(300, digit=k, seed=2))[1].argmax(1) == k).double().mean()) for k in range(10))
    assert worst >= min(0.97, meta["card"]["metrics"]["digit_worst"] - 0.02)


def test_sampling_a_pretrained_model_from_the_command_line(tmp_path, isolated_env):
    from mnistgan.cli import main

    assert main(["sample", "pretrained:best-mnist", "--digit", "7", "--n", "16", "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (16, 28, 28) and x.dtype == np.uint8 and x.std() > 10
    assert main(["zoo"]) == 0


@pytest.mark.slow
def test_the_built_wheel_samples_and_evaluates_the_zoo_alone_offline(tmp_path, mnist_dir):
    """pip's wheel of this checkout, installed with no index into a fresh venv that sees the
    test environment's other packages (torch and the rest) but not this checkout; run from an
    empty folder, so that nothing but the installed package can answer."""
    import shutil

    source, wheels = tmp_path / "source", tmp_path / "wheels"  # (a copy: the build leaves build/ where it runs)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, source / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(source)], check=True, env={**os.environ, "PIP_NO_INDEX": "1"})
    (wheel,) = wheels.glob("mnistgan-*.whl")
    with zipfile.ZipFile(wheel) as z:
        held = z.namelist()
    for name in MODELS:
        assert {f"mnistgan/zoo/{name}/{f}" for f in ("config.json", "model.safetensors", "README.md")} <= set(held)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # this environment's packages, after the venv's own (a plain path: its .pth files, the
    # checkout's editable install among them, are not run)
    theirs = [p for p in sys.path if p.endswith("site-packages")]
    (site / "others.pth").write_text("\n".join(theirs) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--no-deps", "-q", str(wheel)],
                   check=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MNISTGAN_DATA_DIR")}
    env.update(MNISTGAN_CACHE=str(tmp_path / "cache"), no_proxy="*", http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    where = subprocess.run([str(py), "-c", "import mnistgan; print(mnistgan.__file__)"], cwd=empty, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(site)), where
    mnistgan_cli = [str(py), "-m", "mnistgan"]
    for name in MODELS:
        subprocess.run([*mnistgan_cli, "sample", f"pretrained:{name}", "--n", "64", "--out", f"{name}.png"],
                       cwd=empty, env=env, check=True, capture_output=True)
        assert (empty / f"{name}.png").stat().st_size > 1000
    ev = subprocess.run([*mnistgan_cli, "evaluate", "pretrained:best-mnist", "--n", "2000", "--metrics", "fid",
                         "--data-dir", str(mnist_dir)], cwd=empty, env=env, capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    assert json.loads((empty / "metrics.json").read_text())["metrics"]["fid"]["fid"] > 0
