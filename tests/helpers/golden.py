"""Golden hashes of short real-MNIST runs, one per preset (and a few option mixes).

    python tests/helpers/golden.py DATA_DIR OUT_JSON

Trains each variant through the command line (`mnistgan.cli.main`, the one interface that
every version of the code keeps), then hashes every tensor of the final checkpoint (G, D,
EMA, both optimisers' state, the RNG states) and the bytes of `sample --seed 0 --n 64`.
test_golden.py compares these with hashes recorded before the redesign; because it only
calls the CLI, the same script also runs against an older checkout of src/ (see the test).
Exact floats depend on the CPU's vector extensions and the torch version: see
`machine_kind`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

# name -> extra command-line arguments; every run trains on the first 320 real training images.
VARIANTS: dict[str, list[str]] = {
    "seed": ["--preset", "seed", "--epochs", "3"],
    "dcgan": ["--preset", "dcgan", "--epochs", "2"],
    # `cdcgan` and `best` as they were until they took class-conditional batch norm, so that
    # the recorded hashes still pin that code path (the class concatenated to z).
    "cdcgan": ["--preset", "cdcgan", "--set", "g_conditioning=concat", "--epochs", "2"],
    "wgan-gp": ["--preset", "wgan-gp", "--epochs", "2"],
    "best": ["--preset", "cdcgan", "--set", "g_conditioning=concat", "--set", "aux_weight=0", "--epochs", "2"],
    # Options no preset uses, so that every term of the objectives is covered.
    "dcgan-r1-smooth": ["--preset", "dcgan", "--epochs", "2", "--set", "r1_gamma=1", "--set", "label_smoothing=0.1"],
    "mlp-info-hinge": ["--preset", "seed", "--epochs", "2", "--set", "info_code=true", "--set", "objective=hinge",
                       "--set", "ema_half_life=500"],
    "mlp-aux-lsgan": ["--preset", "seed", "--epochs", "2", "--set", "conditional=true", "--set", "aux_weight=1",
                      "--set", "objective=lsgan", "--set", "layers=2", "--set", "lr_d=4e-4"],
    "mlp-minimax-dsteps": ["--preset", "seed", "--epochs", "2", "--set", "objective=minimax", "--set", "d_steps=2"],
}


# Options added after the golden commit, with the value that gives the behaviour the code had
# before them: against a src/ that lacks the option (the golden commit's, rebuilt on a machine
# kind with no recorded hashes), `--set KEY=VALUE` is left out.
ADDED_LATER = {"g_conditioning": "concat"}


def _for_this_src(args: list[str]) -> list[str]:
    """args without the `--set KEY=VALUE` pairs of ADDED_LATER options this src/ does not know."""
    from mnistgan.config import TrainConfig

    known = set(TrainConfig.__dataclass_fields__)
    out, i = [], 0
    while i < len(args):
        key, _, value = args[i + 1].partition("=") if args[i] == "--set" and i + 1 < len(args) else ("", "", "")
        if key in ADDED_LATER and key not in known:
            if value != ADDED_LATER[key]:
                raise SystemExit(f"{key}={value} cannot be run on a src/ that predates {key}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def machine_kind() -> str:
    """What exact float results depend on: torch's version, the CPU kernels it dispatches to
    (AVX2 or AVX512), whether the CPU has AMX/AVX512-BF16, and the thread count."""
    import torch

    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    extra = "+amx" if "amx_bf16" in flags else ("+bf16" if "avx512_bf16" in flags else "")
    return (f"torch-{torch.__version__}/{torch.backends.cpu.get_cpu_capability()}{extra}/"
            f"{torch.get_num_threads()}threads")


def _digest(tensors: dict) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def run_variants(data_dir: str, names: list[str] | None = None) -> dict[str, dict[str, str]]:
    from safetensors.torch import load_file

    from mnistgan.cli import main

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(VARIANTS):
            run = Path(tmp) / name
            # fp32 pinned: on CPUs with native bf16 the conv presets now default to bf16 autocast
            # (precision=auto), while these hashes pin the float32 maths of the golden commit.
            args = ["train", *_for_this_src(VARIANTS[name]), "--out", str(run), "--data-dir", data_dir, "--device", "cpu",
                    "--no-progress", "--no-download", "--set", "train_images=320", "--set", "precision=fp32"]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                rc = main(args)
            if rc != 0:
                raise SystemExit(f"{name}: train exited {rc}: {err.getvalue()}")
            ckpt = sorted((run / "checkpoints").glob("ckpt-*.safetensors"))[-1]
            npy = Path(tmp) / f"{name}.npy"
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                rc = main(["sample", str(run), "--seed", "0", "--n", "64", "--out", str(npy)])
            if rc != 0:
                raise SystemExit(f"{name}: sample exited {rc}: {err.getvalue()}")
            out[name] = {"state": _digest(load_file(ckpt)), "sample": hashlib.sha256(npy.read_bytes()).hexdigest()}
    return out


if __name__ == "__main__":
    data, dest = sys.argv[1], sys.argv[2]
    result = {"kind": machine_kind(), "hashes": run_variants(data)}
    Path(dest).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
