"""threads: the intra-op thread count chosen from the CPUs and the load, the override honoured,
and a real busy process beside real work making the count fall and rise again."""
import subprocess
import sys
import time

import pytest
import torch

from mnistgan.system import runtime, threads
from mnistgan.config import from_preset
from mnistgan.errors import ConfigError

BUSY = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nwhile time.monotonic() < end: pass\n"


@pytest.mark.parametrize("cpus, others, ceiling, expected", [
    (2, 0.0, 2, 2), (2, 0.39, 2, 2),   # a little other work: both cores
    (2, 0.4, 2, 1), (2, 0.67, 2, 1),   # a busy process beside 2 spinning threads gets 2/3 of a core
    (2, 1.0, 2, 1), (2, 2.0, 2, 1),    # never fewer than one
    (16, 3.2, 16, 13), (8, 0.5, 8, 7),
    (4, 1.0, 2, 2), (2, 0.0, 1, 1),    # never above the count torch had (a user's set_num_threads)
])
def test_choice_from_cpus_and_load(cpus, others, ceiling, expected):
    assert threads.choose(cpus, others, ceiling) == expected


def test_setting_is_auto_or_a_count():
    assert threads.parse("auto") == threads.parse(" AUTO ") == "auto"
    assert threads.parse("3") == threads.parse(3) == 3
    for bad in ("0", "-1", "2.5", "x", "", "5000"):
        with pytest.raises(ConfigError, match="threads must be auto or a thread count"):
            threads.parse(bad)
    with pytest.raises(ConfigError, match="threads must be auto"):
        from_preset("seed", {"threads": "0"})


def test_a_given_count_is_used_while_open_and_the_process_count_restored():
    before = torch.get_num_threads()
    with runtime.process_settings(torch.device("cpu"), False, True, threads=1) as governor:
        assert torch.get_num_threads() == 1 and not governor.adapting
        assert governor.describe() == "1 threads (as set)"
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("name", threads.ENVIRONMENT)
def test_the_environment_fixes_the_count(monkeypatch, name):
    for each in threads.ENVIRONMENT:  # (the suite sets OMP_NUM_THREADS: tests/conftest.py)
        monkeypatch.delenv(each, raising=False)
    monkeypatch.setenv(name, str(torch.get_num_threads()))
    with threads.Governor("auto") as governor:
        assert not governor.adapting and name in governor.describe()


needs_two = pytest.mark.skipif(len(threads.allowed_cpus()) < 2 or not threads.CpuMeter().readable,
                               reason="needs 2 CPUs and /proc/stat")


@needs_two
def test_the_meter_sees_a_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", BUSY, "2.5"])
    try:
        time.sleep(0.5)  # (the interpreter starting)
        meter = threads.CpuMeter()
        time.sleep(1.5)
        others = meter.others()
    finally:
        busy.wait()
    assert 0.7 <= others <= 1.3, others


@needs_two
def test_the_count_gives_way_to_a_busy_process_and_comes_back(monkeypatch):
    for name in threads.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    counts = []

    def work(seconds, governor):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            torch.mm(a, b)
            governor.tick()
            counts.append(torch.get_num_threads())

    try:
        with runtime.process_settings(torch.device("cpu"), False, True, threads="auto") as governor:
            governor.interval = 0.3
            assert governor.adapting and governor.ceiling == 2
            busy = subprocess.Popen([sys.executable, "-c", BUSY, "3"])
            try:
                work(3.5, governor)
            finally:
                busy.wait()
            during = counts.copy()
            counts.clear()
            work(2.5, governor)
            assert torch.get_num_threads() == 2
            assert runtime._denormals_flushed(2)  # the thread taken back flushes denormals too
        assert 1 in during, "the count did not fall beside a busy process"
        assert counts[-1] == 2 and governor.changes >= 2
    finally:
        torch.set_num_threads(before)
