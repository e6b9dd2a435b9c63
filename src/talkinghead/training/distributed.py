"""One entry point for 1 process or many: torchrun sets the environment, we read it.

    talkinghead train --data DATA --preset paper-256 --run-dir RUN                       # one process
    torchrun --nproc-per-node 8 -m talkinghead train --data DATA --preset paper-256 ...  # one node, 8 GPUs
    torchrun --nnodes 2 --node-rank R --rdzv-endpoint HOST:29500 --nproc-per-node 8 -m talkinghead train ...

Backend: NCCL on GPUs, gloo on CPU. Each rank sees its own slice of the episodes (`EpisodeSampler`) and
seeds its RNGs with ``seed + rank``; rank 0 alone logs and saves.

Gradient synchronisation is explicit (StyleGAN3's approach; style-notes §9): after each phase's backward,
the dense gradients of that phase's parameters are flattened, all-reduced and averaged in one call
(`average_gradients`). This is the same arithmetic as DDP's reducer, without its two pitfalls for
alternating GAN updates (a reducer serviced by the wrong backward; buffer broadcasts between two
forwards). The per-video table W (``discriminator.video_embeddings``) stays out of the dense all-reduce:
its sparse row gradients are all-gathered as (indices, rows) pairs, so its traffic is B rows per rank,
not ``num_videos`` rows.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> World:
    """Set up the process group when torchrun started us (``WORLD_SIZE`` > 1); otherwise a world of one.

    ``device``: "cpu", "cuda" or None (= CUDA when available).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        log.info("process group: rank %d of %d (%s, local rank %d)", rank, world_size, backend, local_rank)
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_finite(value: torch.Tensor, world: World) -> bool:
    """True when ``value`` is finite on EVERY rank (so all ranks skip or step together)."""
    flag = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if world.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


def average_gradients(parameters: Iterable[torch.nn.Parameter], world: World) -> None:
    """Average the dense gradients of ``parameters`` over ranks, in one flattened all-reduce."""
    if not world.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    if any(g.is_sparse for g in grads):
        raise ValueError("average_gradients is for dense gradients; use average_sparse_rows for W")
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def average_sparse_rows(parameter: torch.nn.Parameter, world: World) -> None:
    """Average a sparse row gradient (an ``nn.Embedding(sparse=True)`` weight) over ranks.

    Every rank contributes (row indices, rows) for its batch only: all-gathered, summed by index, divided
    by the world size. Traffic: world_size x B rows of N floats, whatever the table's size.
    """
    if not world.distributed or parameter.grad is None:
        return
    grad = parameter.grad.coalesce()
    kept_indices, kept_rows = gather_rows(grad.indices()[0], grad.values(), world)  # [nnz], [nnz, N]
    parameter.grad = torch.sparse_coo_tensor(kept_indices.unsqueeze(0), kept_rows / world.world_size,
                                             size=grad.shape, check_invariants=True).coalesce()


def gather_rows(indices: torch.Tensor, rows: torch.Tensor, world: World) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' (row indices [n_r], rows [n_r, N]) concatenated in rank order (sizes may differ per rank)."""
    if not world.distributed:
        return indices, rows
    count = torch.tensor([indices.numel()], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world.world_size)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded_indices = torch.zeros(longest, dtype=indices.dtype, device=indices.device)
    padded_rows = torch.zeros(longest, rows.shape[1], dtype=rows.dtype, device=rows.device)
    padded_indices[: indices.numel()] = indices
    padded_rows[: indices.numel()] = rows
    all_indices = [torch.empty_like(padded_indices) for _ in range(world.world_size)]
    all_rows = [torch.empty_like(padded_rows) for _ in range(world.world_size)]
    dist.all_gather(all_indices, padded_indices)
    dist.all_gather(all_rows, padded_rows)
    kept_indices = torch.cat([i[: int(c.item())] for i, c in zip(all_indices, counts, strict=True)])
    kept_rows = torch.cat([r[: int(c.item())] for r, c in zip(all_rows, counts, strict=True)])
    return kept_indices, kept_rows


class EpisodeSampler(torch.utils.data.Sampler[int]):
    """Endless, resumable, rank-sharded episode order.

    Epoch e is `torch.utils.data.DistributedSampler`'s order for ``set_epoch(e)`` (shuffled with ``seed``,
    this rank's share); epochs follow one another without end. ``start`` skips the first ``start`` indices of
    this rank's stream, so a resumed run sees exactly the episodes an uninterrupted one would.
    """

    def __init__(self, dataset_size: int, world: World, seed: int, start: int = 0):
        if dataset_size < world.world_size:
            raise ValueError(f"the dataset has {dataset_size} episodes, fewer than the {world.world_size} ranks")
        self.sampler = DistributedSampler(range(dataset_size), num_replicas=world.world_size, rank=world.rank,
                                          shuffle=True, seed=seed, drop_last=True)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        per_epoch = len(self.sampler)
        epoch, skip = divmod(self.start, per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            for position, index in enumerate(self.sampler):
                if position >= skip:
                    yield index
            epoch, skip = epoch + 1, 0
