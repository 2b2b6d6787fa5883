"""torchrun with two processes on this CPU (gloo on 127.0.0.1): the same forgeries at any
scale. Each test launches real torchrun processes on the real MNIST copy."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistgan.store import checkpoint as ckpt
from mnistgan.runs import read_log

from helpers.runs import assert_same_run, log_without_timing as log

pytestmark = pytest.mark.slow
TORCHRUN = Path(sys.executable).with_name("torchrun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(out: Path, data: Path, preset: str = "seed", images: int = 20000, epochs: int = 2, *extra: str):
    return ["train", "--preset", preset, "--out", str(out), "--data-dir", str(data), "--no-download",
            "--no-progress", "--device", "cpu", "--set", f"train_images={images}", "--epochs", str(epochs), *extra]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun(args: list[str], nproc: int = 2, extra: list[str] = (), timeout: int = 600, check: bool = True):
    cmd = [str(TORCHRUN), "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), *extra, "-m", "mnistgan", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env())
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def single(args: list[str], timeout: int = 600):
    proc = subprocess.run([sys.executable, "-m", "mnistgan", *args], capture_output=True, text=True,
                          timeout=timeout, env=env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def final(run: Path) -> tuple[dict, dict]:
    tensors, meta = ckpt.load(ckpt.list_checkpoints(run / "checkpoints")[-1])
    return tensors, meta


def weights(run: Path) -> dict:
    tensors, _ = final(run)
    return {k: v for k, v in tensors.items() if k.startswith(("G.", "D.", "G_ema."))}


@pytest.fixture(scope="module")
def two_ranks(mnist_dir, tmp_path_factory):
    """The seed preset, global batch 100, 400 steps on 2 ranks: the reference of tests 1, 3, 4."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    torchrun(train_args(out, mnist_dir))
    return out


def test_1_two_ranks_match_one_process_and_repeat_bit_identically(two_ranks, mnist_dir, tmp_path):
    """Tolerance: the same maths in another order. Two processes each average their half of
    the batch's gradient and all-reduce the halves, where one process sums the whole batch at
    once; float32 sums in another order differ by ~1e-7 relative per step, and Adam's
    normalised steps (lr 2e-4) carry such differences on for 400 steps without growing them
    past ~1e-5 of a weight of size ~0.01-0.1: atol 2e-5 (measured max difference: see the
    assertion message), where one step's update is ~2e-4."""
    one = tmp_path / "one"
    single(train_args(one, mnist_dir))
    a, b = weights(two_ranks), weights(one)
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 2e-5, f"max |difference| {worst:.3g}"
    rows_a, rows_b = log(two_ranks), log(one)
    assert [r["images_seen"] for r in rows_a] == [r["images_seen"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        assert abs(ra["d_loss"] - rb["d_loss"]) < 1e-4 and abs(ra["d_fake"] - rb["d_fake"]) < 1e-4
    again = tmp_path / "again"
    torchrun(train_args(again, mnist_dir))
    assert_same_run(two_ranks, again)


@pytest.mark.parametrize("preset", ["dcgan", "cdcgan", "wgan-gp"])
def test_2_conv_presets_train_on_two_ranks(preset, mnist_dir, tmp_path):
    """Batch norm (synchronised), the auxiliary head, projection and the gradient penalty
    (double backward) under DDP, with no unused-parameter errors; dcgan matches one process.
    (The comparison runs in fp32, the precision its bar was measured in; cdcgan and wgan-gp run
    at the default, bf16 autocast on a CPU with native bf16.)"""
    pin = ["--precision", "fp32"] if preset == "dcgan" else []
    args = lambda out: train_args(out, mnist_dir, preset, 640, 1, "--set", "width=16", *pin)
    two = tmp_path / "two"
    torchrun(args(two))
    rows = read_log(two)
    assert rows and rows[-1]["images_seen"] == 640 and all(abs(r["d_loss"]) < 1e3 for r in rows)
    if preset == "dcgan":
        one = tmp_path / "one"
        single(args(one))
        a, b = weights(two), weights(one)
        start = initial_weights(preset, 640)
        # Tolerance: relative to how far training moved each tensor. Batch norm summed over two
        # processes (one-pass variance) differs from torch's kernel over the whole batch by
        # ~1e-7 relative, and Adam's normalised steps turn noise in near-zero gradients into
        # full-size steps (worst where a linear layer feeds batch norm, which makes its
        # gradient nearly degenerate): measured, mean |2 ranks - 1 process| is at most 1.7% of
        # the mean |update| of a tensor (G.fc.0.weight), ~0.1% elsewhere. Unsynchronised batch
        # norm (each process normalising its own half) would differ by the same order as
        # the update itself. Bar: 5%.
        for k in a:
            if k in start and a[k].is_floating_point():
                moved = float((b[k] - start[k]).abs().mean())
                differ = float((a[k] - b[k]).abs().mean())
                assert differ <= 0.05 * moved + 1e-9, f"{k}: mean |difference| {differ:.3g}, mean |update| {moved:.3g}"


def initial_weights(preset: str, images: int) -> dict:
    from mnistgan.config import from_preset
    from mnistgan.training.trainer import Trainer

    t = Trainer(from_preset(preset, {"train_images": images, "width": 16, "device": "cpu"}))
    return {**{f"G.{k}": v for k, v in t.G.state_dict().items()}, **{f"D.{k}": v for k, v in t.D.state_dict().items()}}


def workers_of(agent: int) -> list[int]:
    """The training processes torchrun (pid agent) started: its children running mnistgan."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                cmdline = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == agent and b"mnistgan" in cmdline:
                pids.append(int(p.name))
    return pids


def kill_a_worker_mid_run(cmd: list[str], out: Path) -> tuple[str, str]:
    """Starts torchrun (cmd, two workers, --max-restarts), SIGKILLs one worker once the run's
    first checkpoint exists (the workers are then mid-run), and waits for the group to
    finish after its restart: (stdout, stderr); the agent must exit 0."""
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.time() + 300
        while not ckpt.list_checkpoints(out / "checkpoints") and time.time() < deadline:
            time.sleep(0.05)
        assert ckpt.list_checkpoints(out / "checkpoints"), "no checkpoint appeared"
        victims = workers_of(agent.pid)
        assert len(victims) == 2, victims
        os.kill(victims[-1], signal.SIGKILL)
        stdout, err = agent.communicate(timeout=600)
    finally:
        agent.kill()
    assert agent.returncode == 0, err[-4000:]
    return stdout, err


def test_3_elastic_restart_after_a_killed_worker_ends_bit_identical(two_ranks, mnist_dir, tmp_path):
    out = tmp_path / "elastic"
    cmd = [str(TORCHRUN), "--nproc-per-node", "2", "--max-restarts", "1", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m", "mnistgan", *train_args(out, mnist_dir)]
    _, err = kill_a_worker_mid_run(cmd, out)
    resumes = [json.loads(line) for line in (out / "resumes.jsonl").read_text().splitlines()]
    assert len(resumes) == 1 and resumes[0]["images_seen"] >= 20000 and resumes[0]["changes"] == {}
    assert_same_run(two_ranks, out)


API_SCRIPT = """
import sys

import mnistgan

_, _, out, data = sys.argv  # argv[1] is the word mnistgan, so that workers_of finds this process
run = mnistgan.train("seed", out=out, data_dir=data, download=False, progress=False, device="cpu",
                     train_images=20000, epochs=2)
print("images seen", run.images_seen)
"""


def test_3b_the_python_api_under_torchrun_restarts_and_resumes_by_itself(two_ranks, mnist_dir, tmp_path):
    """mnistgan.train() under `torchrun --max-restarts` behaves as `mnistgan train` does: it
    joins the group, and after a worker is killed the restarted group continues the run from
    its checkpoint, ending bit-identical to the uninterrupted two-rank run."""
    script = tmp_path / "train_api.py"
    script.write_text(API_SCRIPT)
    out = tmp_path / "api"
    cmd = [str(TORCHRUN), "--nproc-per-node", "2", "--max-restarts", "1", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{free_port()}", str(script), "mnistgan", str(out), str(mnist_dir)]
    stdout, err = kill_a_worker_mid_run(cmd, out)
    assert "restart 1 of the group: resuming" in err and "images seen 40000" in stdout
    resumes = [json.loads(line) for line in (out / "resumes.jsonl").read_text().splitlines()]
    assert len(resumes) == 1 and resumes[0]["images_seen"] >= 20000
    assert_same_run(two_ranks, out)


def test_4_two_nodes_on_localhost_end_identical_to_two_ranks(two_ranks, mnist_dir, tmp_path):
    out = tmp_path / "nodes"
    port = free_port()
    common = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
              "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", f"mnistgan-{port}"]
    procs = []
    for r in (0, 1):  # node 0 hosts the rendezvous store (both would match 127.0.0.1)
        procs.append(subprocess.Popen([str(TORCHRUN), *common, "--rdzv-conf", f"is_host={'true' if r == 0 else 'false'}",
                                       "--node-rank", str(r), "-m", "mnistgan", *train_args(out, mnist_dir)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()))
        time.sleep(1.0 if r == 0 else 0)
    errors = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            errors.append(err)
    finally:
        for p in procs:
            p.kill()
    for p, err in zip(procs, errors):
        assert p.returncode == 0, err[-4000:]
    assert_same_run(two_ranks, out)


def test_5_rank_0_alone_writes(two_ranks):
    rows = read_log(two_ranks)
    assert [r["epoch"] for r in rows] == [1, 2]                      # no duplicated rows
    assert sorted(p.name for p in (two_ranks / "samples").iterdir()) == ["001.png", "002.png",
                                                                       "grid-001.png", "grid-002.png"]
    assert len(ckpt.list_checkpoints(two_ranks / "checkpoints")) == 2
    _, meta = final(two_ranks)
    assert meta["world_size"] == 2


def test_batch_size_must_divide_among_processes(mnist_dir, tmp_path):
    proc = torchrun(train_args(tmp_path / "r", mnist_dir, "seed", 3000, 1, "--batch-size", "99"), check=False)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("mnistgan: error:")]
    assert ours and all("batch_size 99 is the global batch; it must divide evenly among the 2 processes" in line
                        for line in ours), proc.stderr[-3000:]
    # one line per failing process; the only traceback is torchrun's own report of the failure
    assert proc.stderr.count("Traceback") <= 1 and "ChildFailedError" in proc.stderr


def test_evaluate_and_the_quality_probe_share_their_work_with_the_same_numbers(two_ranks, mnist_dir, tmp_path):
    """evaluate under torchrun: each process draws and measures its share of the forgeries,
    rank 0 gathers them: metrics.json holds exactly the numbers of one process."""
    # --count: torchrun would read --n as an abbreviation of one of its own options
    args = ["evaluate", str(two_ranks), "--count", "1500", "--metrics", "fid,kid,coverage,prdc,memorization",
            "--data-dir", str(mnist_dir)]
    torchrun([*args, "--out", str(tmp_path / "two.json")])
    single([*args, "--out", str(tmp_path / "one.json")])
    two, one = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("two", "one"))
    assert two["n"] == one["n"] == 1500 and two["metrics"] == one["metrics"]
    assert (tmp_path / "two-novelty.png").exists()
    # the in-training probe: a share of eval_n forgeries each, FID logged by rank 0
    out = tmp_path / "probe"
    torchrun(train_args(out, mnist_dir, "seed", 2000, 2, "--set", "eval_every=1", "--set", "eval_n=300"))
    rows = read_log(out)
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 < r["fid"] < 5000 for r in rows)
