"""One run across several processes (GPUs, or CPU processes with gloo) with PyTorch DDP.

`w2s-bench run SUITE --nproc-per-node N` relaunches the same command under
`torch.distributed.run` (torchrun). Every rank walks the same plan and trains the same run:
each takes its 1/N slice of every global batch (so the optimisation matches one process
with the suite's batch size, up to BatchNorm statistics being per slice), gradients are
averaged by DDP, and every rank evaluates the same weights, so switch decisions agree.
Only rank 0 writes files and holds locks (the results store is read-only elsewhere);
decisions that depend on the file system are broadcast from rank 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def active() -> bool:
    import torch.distributed as dist

    return world()[1] > 1 and dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    return world()[0] == 0


def init() -> None:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA)."""
    import torch
    import torch.distributed as dist

    from .store import set_read_only

    if world()[1] <= 1 or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("W2S_DDP_BACKEND") != "gloo" else "gloo"
    dist.init_process_group(backend)
    set_read_only(not is_main())


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


def relaunch(args: list[str], nproc: int) -> int:
    """Run `w2s-bench <args>` under torchrun with `nproc` processes on this node."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "benchmark.cli", *args]
    return subprocess.call(cmd)
