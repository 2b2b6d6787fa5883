"""Training on several processes with the PyTorch world's own engine: torchrun sets the
environment, torch.distributed the process group (NCCL on GPUs, gloo on CPUs), and
DistributedDataParallel all-reduces the gradients. This module holds the few pieces the
loop needs around them: who this process is, the wrappers, batch norm synchronised across
processes (torch's SyncBatchNorm runs on GPUs only; the CPU version here is built on
torch.distributed's autograd-aware all_reduce), and the collectives for statistics and for
agreeing on a stop. Without torchrun (WORLD_SIZE unset or 1) nothing here is used.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm


@dataclass(frozen=True)
class Dist:
    """This process's place in the group (rank 0 of 1 without torchrun)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched() -> bool:
    """Whether torchrun (or another launcher setting WORLD_SIZE) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank in torchrun's launch (0 alone), whether or not it has joined the group."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def current() -> Dist:
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Dist()


def init(device: str = "auto") -> Dist:
    """Joins the process group torchrun describes (idempotent): NCCL when this process trains
    on CUDA, else gloo. Returns this process's place in it."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return current()
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(minutes=10)
    env = os.environ
    # The store torchrun describes, as torch's env:// would open it, with this restart's own
    # prefix: a group restarted after a failure must not read the addresses its failed
    # predecessor left in a store that outlived it.
    agent = env.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    store = dist.TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), world, is_master=not agent and rank == 0,
                          timeout=timeout, multi_tenant=not agent)
    store = dist.PrefixStore(f"mnistgan/restart-{env.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    dist.init_process_group("nccl" if cuda else "gloo", store=store, rank=rank, world_size=world, timeout=timeout)
    return current()


def shutdown(together: bool = False) -> None:
    """Leaves the process group. `together` (after work that ended well): first wait for every
    process, so that none tears its connections down while rank 0 still draws the end-of-run
    figures (a rank leaving early was once seen to abort in gloo's teardown)."""
    if dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(device: str = "auto") -> Iterator[Dist]:
    """torchrun's group for the block: joined on entry when this process was launched by
    torchrun and has not joined yet, and left on exit (after waiting for every process when
    the block ended well). Alone, or when the caller joined already, it changes nothing."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield current()
        return
    place = init(device)
    try:
        yield place
    except BaseException:
        shutdown()
        raise
    shutdown(together=True)


def device_for(name: str, d: Dist) -> str:
    """Each process's own GPU (cuda:LOCAL_RANK) when training on CUDA under torchrun."""
    if d.active and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        return f"cuda:{d.local_rank}"
    return name


def batch_part(batch_size: int, d: Dist, pack: int = 1) -> slice:
    """This process's contiguous slice of every global batch (and of every random draw);
    each share whole packs of `pack` images (PacGAN's D judges packs)."""
    from ..errors import ConfigError

    if batch_size % d.world:
        raise ConfigError(f"batch_size {batch_size} is the global batch; it must divide evenly among "
                          f"the {d.world} processes")
    share = batch_size // d.world
    if share % pack:
        raise ConfigError(f"each of the {d.world} processes gets {share} images of batch_size {batch_size}; "
                          f"with pack={pack} that must be whole packs (a multiple of {pack})")
    return slice(d.rank * share, (d.rank + 1) * share)


def parallel(G: torch.nn.Module, D: torch.nn.Module, device: torch.device, d: Dist):
    """(what the step calls for G, for D in the D phase): the modules themselves alone; under
    torchrun G with batch norm synchronised across processes, and each in DDP (D's wrapper
    is for the D phase only: the G phase and the penalties call the plain D, whose
    parameters are frozen there, so D's gradients are all-reduced once a step)."""
    if not d.active:
        return G, None
    sync_batch_norm(G, device)
    return wrap(G, device), wrap(D, device)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around module. Buffers are not broadcast: batch norm is
    synchronised (so running statistics agree), and spectral norm's vectors follow from
    weights that agree."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    try:  # torch >= 2.13's name for it; the buffers agree at the start anyway
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    except TypeError:
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def sync_batch_norm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """module with every batch norm computing its statistics over all processes' rows, so
    that N processes normalise as one process with the whole batch would. Parameters and
    buffers are kept (the optimiser and checkpoints see the same tensors and names)."""
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, CPUSyncBatchNorm):
            child.__class__ = CPUSyncBatchNorm  # same parameters, buffers and hyper-parameters
        else:
            sync_batch_norm(child, device)
    return module


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm over the rows of every process, on CPUs (torch's SyncBatchNorm refuses
    them): each process sums its rows and their squares, one autograd-aware all_reduce adds
    the sums of all processes, and the gradient flows back through the same sum. Outside
    training, or alone, it is an ordinary batch norm."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        C = x.shape[1]
        count = torch.full((1,), x.numel() // C, dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = total[-1]
        mean = total[:C] / n
        var = total[C:2 * C] / n - mean * mean            # biased, as batch norm normalises
        shape = [1, C] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)  # unbiased
        return y


def gather(x: torch.Tensor) -> torch.Tensor:
    """The rows of x of every process, concatenated in rank order, on every process (the
    processes may hold different numbers of rows)."""
    world = dist.get_world_size()
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = torch.zeros((max(counts), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def share(n_chunks: int, d: Dist) -> slice:
    """This process's contiguous share of n_chunks chunks of work (the first processes take
    one more when they do not divide evenly)."""
    base, extra = divmod(n_chunks, d.world)
    start = d.rank * base + min(d.rank, extra)
    return slice(start, start + base + (d.rank < extra))


def share_and_gather(n_chunks: int, work, device: torch.device) -> tuple[torch.Tensor, ...] | None:
    """Work shared out among the processes: each runs work(its share, a slice of
    range(n_chunks)), which returns a tuple of tensors with one row per item; returns every
    process's rows concatenated in rank order, on the CPU, on rank 0, and None on the others.
    The same rows as one process doing work(all chunks) would make. Alone: that."""
    d = current()
    if not d.active:
        return tuple(work(slice(0, n_chunks)))
    gathered = tuple(gather(torch.as_tensor(t).to(device)).cpu() for t in work(share(n_chunks, d)))
    return gathered if d.main else None


def mean_over_processes(t: torch.Tensor) -> torch.Tensor:
    """t averaged over all processes, in place (no autograd)."""
    dist.all_reduce(t)
    return t.div_(dist.get_world_size())


def agree(out_of_time: bool, stop: bool, signum: int | None, device: torch.device) -> tuple[bool, bool, int | None]:
    """(out of time, stop, signal) for every process: true where any process says so (and
    the signal one received), so that all stop after the same step, whichever got the signal
    or ran out of time first."""
    flags = torch.tensor([int(out_of_time), int(stop), signum or 0], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0]), bool(flags[1]), (int(flags[2]) or None)
