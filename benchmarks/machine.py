"""The machine line every benchmark figure carries: CPU model, the vector extensions that
decide kernel speed (AVX2, AVX-512, AVX512-BF16, AMX), core count, and the torch and oneDNN
versions. Figures from different machine kinds are not compared; ratios are measured side by
side in one run."""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def cpu() -> str:
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_bf16", "amx_bf16"]
    return f"{model} ({', '.join(f for f in wanted if f in flags) or 'no AVX2'}), {os.cpu_count()} CPUs"


def describe() -> str:
    """One line: the CPU and the software that runs the kernels."""
    import torch

    dnn = re.search(r"MKL-DNN v([\d.]+)", torch.__config__.show())
    return (f"machine: {cpu()}; torch {torch.__version__} (kernels: {torch.backends.cpu.get_cpu_capability()}, "
            f"oneDNN {dnn.group(1) if dnn else 'unknown'}), {torch.get_num_threads()} threads; "
            f"python {platform.python_version()}")
