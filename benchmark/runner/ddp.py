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

# the collectives live with the loop (train/ddp.py); launching and joining stay here
from ..train.ddp import is_main, world


def init() -> None:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA)."""
    import torch
    import torch.distributed as dist

    from ..store import set_read_only

    if world()[1] <= 1 or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("W2S_DDP_BACKEND") != "gloo" else "gloo"
    dist.init_process_group(backend)
    set_read_only(not is_main())


def relaunch(args: list[str], nproc: int) -> int:
    """Run `w2s-bench <args>` under torchrun with `nproc` processes on this node."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "benchmark.cli", *args]
    return subprocess.call(cmd)
