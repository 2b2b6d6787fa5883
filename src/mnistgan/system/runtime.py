"""Where and how a run executes: the device, TF32, denormal floats and the allocator. One
place decides these for every command (the random streams are `seeds`'s)."""
from __future__ import annotations

import contextlib
import ctypes
import os
import warnings
from typing import Iterator

import torch

from . import threads as threads_
from ..errors import ConfigError

def channels_last(setting: str, device: torch.device, family: str) -> bool | None:
    """The memory layout a run's networks get: True channels-last (NHWC), False NCHW, None
    the family's own (dcgan builds its networks channels-last, measured faster on every kind;
    the others NCHW). As the setting says (nhwc, nchw), or for auto: channels-last for the
    residual family (its grouped and depthwise convolutions) on a CPU whose kernels are
    AVX-512, where it was measured faster (docs/MEASUREMENTS.md); the family's own elsewhere."""
    if setting != "auto":
        return setting == "nhwc"
    avx512 = device.type == "cpu" and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return True if family == "resnet" and avx512 else None


def native_bf16(device: torch.device) -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), where oneDNN's bf16
    convolutions run at up to twice the fp32 rate; False off the CPU (see bf16_autocast)."""
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def bf16_autocast(setting: str, device: torch.device, family: str) -> bool:
    """Whether a run's forward passes run under bf16 autocast: as the setting says (bf16,
    fp32), or for auto: yes for the convolutional families (dcgan, resnet) on a CPU with
    native bf16, where the step was measured 1.3-1.7x faster at the same quality for the
    same images seen (docs/MEASUREMENTS.md, "bf16 by default where the CPU has it"); no for
    the mlp family (its small products gain nothing, and the seed preset stays exact fp32),
    on CPUs without native bf16 (there it is emulated, ~14x slower) and on GPUs (not measured
    there yet)."""
    if setting != "auto":
        return setting == "bf16"
    return family != "mlp" and native_bf16(device)


def resolve_device(name: str) -> torch.device:
    """The one place that decides the device ('auto': CUDA when present, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name) if isinstance(name, (str, torch.device)) else None
    except RuntimeError:  # (torch's own message names every device type it knows)
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available here; use --device cpu")
    return dev


@contextlib.contextmanager
def process_settings(device: torch.device, tf32: bool, flush: bool = True,
                     threads: str | int = "auto") -> Iterator["threads_.Governor"]:
    """While open, the process-wide settings a run's maths asks for; on exit, what the process
    had before. On a CPU, the intra-op thread count (`threads`: a count, or auto: following
    the load, see threads.py; yields the Governor whose tick() the loop calls) and denormal
    floats flushed to zero on every thread (flush_denormals) or IEEE gradual underflow; on
    CUDA, TF32 matmuls only when the config allows them (they round fp32 inputs to 10
    mantissa bits, and the seed preset is exact), and the thread count only when one is
    given. These settings are the process's, not the run's: a notebook's other float work
    sees them while a run trains, and not after."""
    cpu = device.type == "cpu"
    # (off a CPU, "auto" keeps the count the process has: a governor that fixes it as it is)
    governor = threads_.Governor(threads if cpu or threads != "auto" else torch.get_num_threads(),
                                 on_resize=(lambda _: flush_denormals(flush)) if cpu else None)
    with contextlib.ExitStack() as stack:  # (undone in reverse: the count before the float flags,
        if cpu:                            # so that the flags are restored on every thread)
            stack.callback(flush_denormals, _denormals_flushed(torch.get_num_threads()))
        stack.enter_context(governor)
        if cpu and not flush_denormals(flush) and flush:
            warnings.warn("denormal floats could not be flushed to zero on every CPU thread: training runs "
                          "with IEEE gradual underflow on some (slower once values below 1.2e-38 appear)",
                          RuntimeWarning, stacklevel=3)
        if device.type == "cuda":
            matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32

            def untf32():
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
            stack.callback(untf32)
        yield governor


def flush_denormals(on: bool) -> bool:
    """Flush-to-zero and denormals-are-zero (FTZ/DAZ) on the calling thread and on every thread
    of PyTorch's intra-op pool, or IEEE gradual underflow again (on=False). Returns whether
    every thread now does as asked.

    Why: late in training some of Adam's second moments and gradients fall below float32's
    smallest normal number (1.2e-38), and x86 CPUs take a slow microcode path for each such
    operand: the seed's step slows down by a quarter once they appear, and flushed, the 100
    epochs end with the same weights (docs/MEASUREMENTS.md, "Denormal floats").
    TensorFlow runs every op with FTZ/DAZ on, the seed tutorial's TF1 graph included. Values
    this small change no update: Adam divides by sqrt(v) + 1e-8.

    torch.set_flush_denormal sets the flag of the calling thread only, and the pool's threads
    keep the flag they were created with (they inherit it only if they are created after it is
    set). So each pool thread is asked to set it itself, from inside one OpenMP parallel region
    entered through the OpenMP runtime PyTorch loaded (GNU's GOMP_parallel entry, which LLVM's
    and Intel's runtimes also export). A parallel multiply into the denormal range checks the
    result on every thread."""
    if not torch.set_flush_denormal(on):  # not an x86 CPU with SSE3 or an ARM CPU
        return False
    threads = torch.get_num_threads()
    if threads > 1:
        parallel = _omp_parallel()
        if parallel is not None:
            callback = _OMP_TASK(lambda _: torch.set_flush_denormal(on))
            parallel(callback, None, threads, 0)
    return _denormals_flushed(threads) == on


_OMP_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _omp_parallel():
    """GOMP_parallel(fn, data, threads, flags) of the OpenMP runtime in this process, or None."""
    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    libraries = []
    try:
        with open("/proc/self/maps") as maps:  # the runtime torch loaded (a wheel ships its own)
            libraries = sorted({line.split()[-1] for line in maps
                                if any(n in line for n in ("libgomp", "libiomp", "libomp"))})
    except OSError:
        pass
    for name in libraries + [None]:  # None: symbols already visible to the whole process
        try:
            parallel = ctypes.CDLL(name).GOMP_parallel
        except (OSError, AttributeError):
            continue
        parallel.argtypes = [_OMP_TASK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        parallel.restype = None
        return parallel
    return None


def _denormals_flushed(threads: int) -> bool:
    """Whether a multiply whose every product is denormal (1e-30 * 1e-10), split over all the
    intra-op threads, gives zeros in every thread's share."""
    x = torch.full(((1 << 15) * 4 * max(threads, 1),), 1e-30)  # 4 x ATen's grain of 32,768 a thread
    return not bool(x.mul_(1e-10).count_nonzero())


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Asks glibc's malloc to keep freed memory for reuse instead of returning it to the
    system after every step. A conv training step allocates and frees activations of up to
    ~6 MB; with glibc's defaults those are mapped afresh (or the heap top trimmed) each time,
    and the CPU spends thousands of page faults a step zeroing new pages (docs/MEASUREMENTS.md,
    "glibc malloc told to keep freed memory"; tests/unit/test_training.py counts the faults). PyTorch's CPU tuning guide suggests preloading jemalloc or tcmalloc for
    the same reason; this does it without an extra library. Process-wide, for the rest of
    the process (glibc cannot say what the thresholds were, so they cannot be restored), and
    glibc-only (elsewhere it does nothing); the CLI's training does it, the Python API's
    unless told not to (tune_malloc=False), and MNISTGAN_MALLOC_TUNING=0 turns it off
    everywhere. Peak memory is unchanged: the memory kept is what the step needs again.
    Returns whether the settings are in force."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("MNISTGAN_MALLOC_TUNING", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    # Both are needed: fixing only the trim threshold also freezes the mmap threshold at its
    # 128 KiB default, which maps every activation afresh (docs/MEASUREMENTS.md counts the faults).
    # 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems.
    _MALLOC_TUNED = bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    return _MALLOC_TUNED
