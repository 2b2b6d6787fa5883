"""The whole training step as CUDA graphs (`--set cuda_graph=true`).

On a GPU the small networks of this project are launch-bound: the seed's step is ~60
kernels of a few microseconds each, and the host's time to launch them, not the GPU's time
to run them, sets the pace (docs/MEASUREMENTS.md has the one GPU's figures). A CUDA graph records
the kernels of one whole step once (G's forward, D's phase, both backward passes, both
optimiser updates, the EMA, the step's random draws) and replays them with one launch.

What a capture needs, and how the step provides it:
- Static shapes and addresses. Every batch has batch_size rows (an epoch's last partial
  batch is dropped); each batch is copied into one fixed input tensor before a replay, and
  the step's statistics are copied out of the graph's output.
- No host reads of device values inside the step. Options that read one are refused by
  config.validate (mode_seeking's test for same-class pairs), torchrun is refused here
  (its all-reduce is outside this capture), and the optimisers keep their step counts on
  the device (capturable Adam; TF1's step-dependent epsilon computed on the device by
  the device form of `optim.AdamTF1`).
- The run's own noise generator registered with every graph: a replay advances its Philox
  offset by what the captured draws used, so the numbers are those an uncaptured step would
  draw, and a checkpoint's generator state stays right.
- One graph per kind of step: with d_steps > 1 a D-only step and a D-then-G step (with
  reg_every > 1, each with and without R1 and R2), sharing one memory pool.
- Warm-up: the first 3 x cycle steps (cycle: every kind of step once, lcm(d_steps, reg_every)) run uncaptured on a side stream (they are real steps
  of the run), so that both optimisers' state exists and cuBLAS/cuDNN have chosen their
  kernels before anything is recorded.

Where the device is not CUDA, the option does nothing (the run says so). What it gives on a
GPU is in docs/MEASUREMENTS.md; `benchmarks/cuda_graph_check.py` is the check: same seed
with and without graphs, weights compared, images/s of both.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError

WARMUP_ROUNDS = 3  # uncaptured steps before capture, per step of a d_steps cycle


def refusal(device: torch.device, distributed: bool) -> str | None:
    """Why this run's step cannot be captured where it runs (None: it can). Refusals that
    depend on the config alone are config.validate's."""
    if device.type != "cuda":
        return None  # nothing to capture; the caller says so and runs uncaptured
    if distributed:
        return "cuda_graph does not capture torchrun's gradient all-reduce; run one process, or drop cuda_graph"
    return None


class GraphedStep:
    """Replays the captured step; `step(real, labels, g_step) -> stats` is the uncaptured one.

    `capture(g_step) -> (graph, stats)` records the step reading `self.inputs`; by default
    into a torch.cuda.CUDAGraph. The CPU tests pass one whose replay calls the step, to check
    the plumbing around the capture (warm-up, fixed inputs, one graph per kind of step)."""

    kind = "cuda-graph"

    def __init__(self, step: Callable, generator: torch.Generator, cycle: int, device: torch.device,
                 capture: Callable | None = None):
        self.step, self.generator, self.device = step, generator, device
        self.warmup = WARMUP_ROUNDS * cycle
        self.calls = 0
        self.inputs: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.graphs: dict[tuple[bool, bool], tuple[object, torch.Tensor]] = {}  # (g_step, reg_step) -> (graph, its stats)
        self.pool = None
        self._capture = capture or self._cuda_capture

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, g_step: bool,
                 reg_step: bool = True) -> torch.Tensor:
        if self.calls < self.warmup:
            self.calls += 1
            return self._warm(real, labels, g_step, reg_step)
        if self.inputs is None:
            self.inputs = (real.clone(), None if labels is None else labels.clone())
        else:
            if real.shape != self.inputs[0].shape:
                raise ConfigError(f"cuda_graph needs batches of one shape: got {tuple(real.shape)}, "
                                  f"captured {tuple(self.inputs[0].shape)}")
            self.inputs[0].copy_(real)
            if labels is not None:
                self.inputs[1].copy_(labels)
        kind = (g_step, reg_step)
        if kind not in self.graphs:
            self.graphs[kind] = self._capture(*kind)
        graph, stats = self.graphs[kind]
        graph.replay()
        return stats.clone()

    def _warm(self, real, labels, g_step, reg_step) -> torch.Tensor:
        if self.device.type != "cuda":
            return self.step(real, labels, g_step, reg_step)
        side, main = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            stats = self.step(real, labels, g_step, reg_step)
        main.wait_stream(side)
        return stats

    def _cuda_capture(self, g_step: bool, reg_step: bool):
        """Records one step into a new graph (nothing runs until its replay)."""
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        with torch.cuda.graph(graph, pool=self.pool):
            stats = self.step(*self.inputs, g_step, reg_step)
        self.pool = graph.pool()
        return graph, stats
