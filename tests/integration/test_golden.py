"""Behaviour is pinned bit for bit: every preset's short real-MNIST run ends with the same
weights, optimiser state, RNG state and samples as the code before the redesign.

Hashes are recorded per machine kind (tests/helpers/golden_hashes.json; see golden.machine_kind).
On a kind with none recorded, the test rebuilds the reference from the recorded commit's
src/ (git archive into a temporary folder) on this machine and compares with that.
"""
import json
import os
import subprocess
import sys
import tarfile
import io
from pathlib import Path

import pytest
import torch

from helpers.golden import machine_kind

HERE = Path(__file__).resolve().parents[1] / "helpers"
RECORD = json.loads((HERE / "golden_hashes.json").read_text())

pytestmark = pytest.mark.slow


def hashes_of(src: Path, data_dir: Path, tmp_path: Path) -> dict:
    """Runs golden.py with `src` first on the import path, in a fresh process."""
    out = tmp_path / f"golden-{src.parent.name}.json"
    # The thread count pinned where the code would follow the machine's load: a convolution's
    # sums split by thread count, and a CI neighbour must not change a hash.
    env = {**os.environ, "PYTHONPATH": str(src), "MNISTGAN_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(torch.get_num_threads())}
    code = ("import sys, mnistgan; assert mnistgan.__file__.startswith(sys.argv[1]), mnistgan.__file__; "
            "sys.argv = sys.argv[2:]; import runpy; runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(HERE / "golden.py"), str(data_dir), str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def reference(data_dir: Path, tmp_path: Path) -> dict:
    kind = machine_kind()
    if kind in RECORD["kinds"]:
        return RECORD["kinds"][kind]
    commit = RECORD["golden_commit"]
    try:
        archive = subprocess.run(["git", "-C", str(HERE.parents[1]), "archive", commit, "src"],
                                 capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"no golden hashes recorded for {kind} and commit {commit[:12]} cannot be "
                    f"checked out to record them ({e})")
    old = tmp_path / "golden-commit"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    return hashes_of(old / "src", data_dir, tmp_path)["hashes"]


def test_every_preset_is_bit_identical_to_the_golden_commit(mnist_dir, tmp_path):
    expected = reference(mnist_dir, tmp_path)
    got = hashes_of(HERE.parents[1] / "src", mnist_dir, tmp_path)
    assert got["kind"] == machine_kind()
    differ = {name: {"expected": expected[name], "got": got["hashes"][name]}
              for name in expected if got["hashes"].get(name) != expected[name]}
    assert not differ, f"behaviour changed on {got['kind']}: {json.dumps(differ, indent=1)}"
    assert set(got["hashes"]) == set(expected)
