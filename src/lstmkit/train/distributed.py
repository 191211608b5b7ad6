"""Data-parallel training on PyTorch's distributed engine (``torch.distributed`` + ``DistributedDataParallel``).

Launch any lstmkit training command under ``torchrun`` (``torchrun --nproc-per-node 2 -m lstmkit experiment ...``) and
the :class:`~lstmkit.train.Trainer` notices the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``), joins the process group (gloo on CPU, NCCL when the model is on a GPU) and wraps the
model in ``DistributedDataParallel``, which averages gradients across processes during ``backward``.

Sharding: every process reads the same stream of batches (same seeds, so the same order) and keeps its own contiguous
slice of the rows of each batch. The global batch is the batch the data yields, so a 2-process run takes the same
steps as a 1-process run with the same data and config (to float round-off in the gradient average), whatever the data
source is. Only rank 0 writes checkpoints, metrics and run files; all ranks read a checkpoint to resume (multi-node
runs need the run directory on a shared file system).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_reduce_sum",
    "any_flag",
    "barrier",
    "broadcast_object",
    "gather_objects",
    "init_from_env",
    "is_main_process",
    "shard_batch",
    "world_size_from_env",
    "wrap_model",
]

logger = logging.getLogger(__name__)
_warned: list[bool] = []


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it; 1 when not launched by torchrun."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: torch.device | None = None) -> DistInfo | None:
    """Join the process group torchrun describes, if there is one with more than one process.

    Args:
        device: the model's device; a CUDA device selects NCCL (and becomes the current device), otherwise gloo.

    Returns:
        The :class:`DistInfo`, or None for a single process.

    Raises:
        RuntimeError: if ``WORLD_SIZE`` > 1 but the rendezvous variables are missing (not started by torchrun).
    """
    world = world_size_from_env()
    if world <= 1:
        return None
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world} asks for distributed training, but this PyTorch build has no torch.distributed."
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(
                f"WORLD_SIZE={world} is set but {', '.join(missing)} is not: start the run with torchrun "
                "(torchrun --nproc-per-node N -m lstmkit ...) or lstmkit's --nproc N, which set them."
            )
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank)
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        logger.info("joined process group: rank %d of %d (%s)", dist.get_rank(), world, backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, str(dist.get_backend()))


def is_main_process() -> bool:
    """True on rank 0 of a distributed run, and always in a single process: the one that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def shard_batch(batch: tuple[Any, ...], rank: int, world_size: int) -> tuple[Any, ...]:
    """This rank's contiguous slice of the rows of every tensor in ``batch`` whose dim 0 is the batch size.

    Raises:
        ValueError: if the batch has fewer rows than processes.
    """
    rows = batch[0].shape[0]
    if rows % world_size and not _warned:
        _warned.append(True)
        logger.warning(
            "a batch of %d rows does not split evenly over %d processes: DDP averages the processes' mean losses, so "
            "rows weigh unequally and the run differs a little from one process; use a multiple of %d",
            rows, world_size, world_size,
        )  # fmt: skip
    if rows < world_size:
        raise ValueError(
            f"A batch of {rows} rows cannot be shared by {world_size} processes. Use a batch size of at least "
            f"{world_size} (ideally a multiple of it), or fewer processes."
        )
    return tuple(
        t.tensor_split(world_size, dim=0)[rank] if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == rows
        else t
        for t in batch
    )  # fmt: skip


def _reduce_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(values: list[float]) -> list[float]:
    """Elementwise sum of ``values`` over all processes (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_flag(flag: bool) -> bool:
    """True on every process if ``flag`` is True on any: keeps control flow identical on all ranks."""
    t = torch.tensor([1.0 if flag else 0.0], device=_reduce_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (in memory; nothing pickled reaches the disk)."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (in memory)."""
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_model(model: torch.nn.Module, dist: DistInfo | None, device: torch.device) -> torch.nn.Module:
    """The model the loss is computed with: ``DistributedDataParallel(model)`` in a distributed run (it broadcasts
    rank 0's weights to every rank, then averages gradients across ranks in each backward), else ``model``."""
    if dist is None:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
