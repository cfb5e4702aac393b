"""Per-run lock files: two `run` processes never train the same run, and a dead
process's lock (same host, pid gone) does not block forever."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.held = False

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def is_stale(self, info: dict | None) -> bool:
        if info is None:
            # unreadable: a writer died between create and write; stale after a grace period
            try:
                return time.time() - self.path.stat().st_mtime > 30
            except OSError:
                return True
        job = os.environ.get("SLURM_JOB_ID")
        if job and info.get("slurm_job_id") == job and info.get("pid") != os.getpid():
            # a requeued SLURM job (same job id, maybe another node) takes over its own lock
            return True
        if info.get("host") == socket.gethostname():
            return not _alive(int(info.get("pid", -1)))
        return False  # another host: only its owner (or a person) can clear it

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.is_stale(self.holder()):
                    self.path.unlink(missing_ok=True)
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                           "slurm_job_id": os.environ.get("SLURM_JOB_ID")}, f)
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(lock: RunLock) -> bool:
    """Take a run's lock; under DDP rank 0 takes it and every rank follows its answer."""
    from ..train import ddp

    if ddp.world()[1] > 1:
        return ddp.broadcast(lock.acquire() if ddp.is_main() else None)
    return lock.acquire()
