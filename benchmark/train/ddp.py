"""The collectives one training loop needs under DDP (see runner/ddp.py for how a run is
launched across processes): which rank this is, rank 0's decisions broadcast, a NaN on any
rank seen by all, and each rank's slice of a global batch. Everything is the identity
outside torchrun, so the loop calls these unconditionally.
"""

from __future__ import annotations

import os
from typing import Any


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def active() -> bool:
    import torch.distributed as dist

    return world()[1] > 1 and dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    return world()[0] == 0


def broadcast(obj: Any) -> Any:
    """rank 0's value of `obj` on every rank (identity outside DDP)."""
    if not active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_true(flag):
    """Logical OR of a 0-d bool tensor over ranks (a NaN on one rank stops every rank)."""
    if not active():
        return flag
    import torch
    import torch.distributed as dist

    t = flag.to(torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.bool()


def shard(batch: Any, rank: int, n: int) -> Any:
    """This rank's contiguous slice (dim 0) of every tensor/list in a global batch."""
    import torch

    if isinstance(batch, torch.Tensor):
        k = batch.shape[0] // n
        return batch[rank * k:(rank + 1) * k]
    if isinstance(batch, tuple):
        return tuple(shard(b, rank, n) for b in batch)
    if isinstance(batch, list):
        k = len(batch) // n
        return batch[rank * k:(rank + 1) * k]
    if isinstance(batch, dict):
        return {key: shard(v, rank, n) for key, v in batch.items()}
    return batch
