"""How many intra-op threads CPU work uses: chosen from the CPUs this process may run on and
the load other work puts on them, and chosen again while the work runs.

Why: PyTorch's CPU operators split their work over a pool of OpenMP threads, one per core,
and every operator ends at a barrier where the threads wait for the slowest. When another
process takes one of two cores, the thread that the kernel deschedules holds up the others
at every barrier, and a barrier's waiting threads spin (GNU OpenMP's default), taking more
CPU from the other process: beside one busy process a fixed count loses most of the rate,
following the load keeps most of it (docs/MEASUREMENTS.md, "Beside a busy process").
OpenMP's passive waiting (OMP_WAIT_POLICY=PASSIVE) helps beside a busy process too, but it
must be set before torch is imported and costs speed alone, where spinning is faster; so the
pool stays spinning and its size follows the load instead.

The rule (`choose`): use the CPUs the others leave free, rounded so that a CPU the others
use 0.4 or more of counts as taken; never fewer than 1, never more than the thread count
torch had when the work started (its default is one a core; a `torch.set_num_threads` call
made before is honoured as the ceiling). The load is read from /proc/stat (the busy time of
the CPUs in this process's affinity mask, steal time included, less this process's own CPU
time) twice a second, and a new count is taken only after two readings agree, so a brief
burst (a page request, a file written) changes nothing.

A count given explicitly (`threads=N`, `--threads N`) is used as it is, and so is one that
OMP_NUM_THREADS or MKL_NUM_THREADS set (torchrun sets OMP_NUM_THREADS=1 for each of several
workers). A run's numbers depend on the count: MKL's sgemm splits some products' sums over
the threads (the seed's 100 x 784 x 256 product in G's backward differs at 1 and 2 threads, so
its weights differ after one step) and convolutions split theirs too. So a run whose count
changed midway is not bit-identical to one whose count did not: pin the count (`--threads N`
or OMP_NUM_THREADS) for bit-exact repeats and resumes on a busy machine.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

from . import numbers

AUTO = "auto"
ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the variables the ecosystem already knows
TAKEN = 0.4       # a CPU the others use this much of (in CPUs) counts as taken
INTERVAL = 0.5    # seconds between readings of the load
AGREEING = 2      # readings that must ask for the same new count before it is taken


def parse(value: str | int) -> str | int:
    """'auto' or a positive thread count, from a config value or a command-line word."""
    return numbers.threads(value)


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask; every CPU where there is none)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def cpu_quota(cgroup_root: str | os.PathLike = "/sys/fs/cgroup", own: str | os.PathLike = "/proc/self/cgroup") -> int | None:
    """The CPUs a cgroup quota allows this process (docker --cpus, Kubernetes limits), rounded
    up: the smallest `cpu.max` (cgroup v2) of its group and the groups above it, or the
    v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; None without a quota. In a container
    /proc/stat and the affinity mask show the host's CPUs, the quota what it may use."""
    root, limits = Path(cgroup_root), []
    try:
        lines = Path(own).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, controllers, group = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        v2 = hierarchy == "0"
        if not v2 and "cpu" not in controllers.split(","):
            continue
        top = root if v2 else root / "cpu"
        here = top / group.strip("/")
        for folder in [here, *here.parents]:  # its group and every group above it
            with contextlib.suppress(OSError, ValueError):
                if v2:
                    quota, period = (folder / "cpu.max").read_text().split()[:2]
                else:
                    quota, period = ((folder / f"cpu.cfs_{k}_us").read_text().strip() for k in ("quota", "period"))
                if quota not in ("max", "-1"):
                    limits.append(int(quota) / int(period))
            if folder == top:
                break
    return max(1, math.ceil(min(limits))) if limits else None


def pinned_by_environment() -> str | None:
    """The name of the environment variable that fixes the thread count, or None."""
    return next((name for name in ENVIRONMENT if os.environ.get(name, "").strip()), None)


def choose(cpus: int, others: float, ceiling: int) -> int:
    """Threads for work that may run on `cpus` CPUs while other work uses `others` of them
    (in CPUs, from 0 to cpus), at most `ceiling`: the CPUs left free, a CPU counted as taken
    once the others use TAKEN of it, and at least 1."""
    taken = math.floor(others + (1 - TAKEN))
    return max(1, min(ceiling, cpus - taken))


class CpuMeter:
    """The CPU time other work used on this process's CPUs between two readings, from
    /proc/stat (Linux). `others()` is None where /proc/stat cannot be read (then the count
    stays where it is)."""

    def __init__(self, cpus: list[int] | None = None, clock: Callable[[], float] = time.monotonic):
        self.cpus = {f"cpu{i}" for i in (allowed_cpus() if cpus is None else cpus)}
        self.clock = clock
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    @property
    def readable(self) -> bool:
        return self._last is not None

    def _read(self) -> tuple[float, float, float] | None:
        """(wall clock, busy CPU seconds of our CPUs, this process's CPU seconds), or None."""
        try:
            with open("/proc/stat", "rb") as f:
                text = f.read(1 << 20).decode("ascii", "replace")
        except OSError:
            return None
        busy = 0
        for line in text.splitlines():
            fields = line.split()
            if fields and fields[0] in self.cpus and len(fields) >= 5:
                # user nice system idle iowait irq softirq steal (guest is inside user)
                values = [int(v) for v in fields[1:9] if v.isdigit()]
                busy += sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
        return self.clock(), busy / self.tick, time.process_time()

    def others(self) -> float | None:
        """CPUs' worth of other work since the last call (0 .. len(cpus))."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] <= 0:
            return None
        wall = now[0] - last[0]
        used = (now[1] - last[1]) - (now[2] - last[2])
        return min(max(used / wall, 0.0), float(len(self.cpus)))


def available(seconds: float = 0.2) -> int:
    """How many CPUs other work leaves free now (read over `seconds`): for work that starts
    its own processes (folder conversion's workers)."""
    cpus = allowed_cpus()
    meter = CpuMeter(cpus)
    time.sleep(seconds)
    others = meter.others()
    ceiling = min(len(cpus), cpu_quota() or len(cpus))
    return ceiling if others is None else choose(len(cpus), others, ceiling)


class Governor:
    """While open (a context manager), keeps torch's intra-op thread count right for the load:
    `tick()` is cheap (a clock read) and is called between steps; every INTERVAL seconds it
    reads the load and, when AGREEING readings in a row ask for another count, sets it (`on_resize(count)` runs
    after, e.g. to set the new threads' float flags). On exit the process's count is restored.
    `setting`: AUTO, or a count to use as it is."""

    def __init__(self, setting: str | int = AUTO, on_resize: Callable[[int], None] | None = None,
                 meter: CpuMeter | None = None, interval: float = INTERVAL):
        self.setting = parse(setting)
        self.on_resize = on_resize
        self.meter = meter
        self.interval = interval
        self.before = self.ceiling = torch.get_num_threads()
        self.adapting = False
        self.changes = 0            # how many times the count changed while open
        self.last_reading: float | None = None  # the others' load at the last reading, in CPUs
        self._wanted: list[int] = []
        self._next = float("inf")

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def describe(self) -> str:
        """The policy in force, in words (the benchmarks print it)."""
        if isinstance(self.setting, int):
            return f"{self.setting} threads (as set)"
        if not self.adapting:
            pinned = pinned_by_environment()
            why = f"{pinned} is set" if pinned else "the load cannot be read here"
            return f"{self.ceiling} threads ({why})"
        return f"up to {self.ceiling} threads, fewer while other work takes CPUs"

    def __enter__(self) -> "Governor":
        self.before = torch.get_num_threads()
        if isinstance(self.setting, int):
            self._resize(self.setting)
        elif pinned_by_environment() is None:
            quota = cpu_quota()  # (a container's quota caps the count; /proc/stat shows the host)
            self.ceiling = min(self.before, quota or self.before)
            if self.ceiling != self.before:
                self._resize(self.ceiling)
            self.meter = self.meter or CpuMeter()
            self.adapting = self.ceiling > 1 and self.meter.readable
            if self.adapting:
                self._next = self.meter.clock() + self.interval
        return self

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.before:
            self._resize(self.before)
        self._next = float("inf")

    def tick(self) -> None:
        """Between steps: reads the load when a reading is due and follows it."""
        if self.meter is None or self.meter.clock() < self._next:
            return
        self._next = self.meter.clock() + self.interval
        others = self.last_reading = self.meter.others()
        if others is None:
            return
        self._wanted = (self._wanted + [choose(len(self.meter.cpus), others, self.ceiling)])[-AGREEING:]
        wanted = self._wanted[-1]
        if len(self._wanted) == AGREEING and all(w == wanted for w in self._wanted) and wanted != self.threads:
            self._resize(wanted)
            self.changes += 1

    def _resize(self, count: int) -> None:
        torch.set_num_threads(count)
        if self.on_resize is not None:
            self.on_resize(count)


_ACTIVE: list[Governor] = []


@contextlib.contextmanager
def governed(setting: str | int = AUTO, on_resize: Callable[[int], None] | None = None) -> Iterator[Governor]:
    """A Governor that module-level `tick()` reaches, for loops deep inside the library
    (evaluation's feature pass, generation in blocks) that have no Governor of their own."""
    with Governor(setting, on_resize) as governor:
        _ACTIVE.append(governor)
        try:
            yield governor
        finally:
            _ACTIVE.remove(governor)


def tick() -> None:
    """Follows the load in the innermost open `governed` block (nothing when none is open)."""
    if _ACTIVE:
        _ACTIVE[-1].tick()
