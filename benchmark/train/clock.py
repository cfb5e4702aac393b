"""Time accounting. Units: epochs (float, steps / steps_per_epoch), optimizer steps,
samples, seconds (wall clock, training and evaluation kept apart) and FLOPs (cumulative,
the teacher's forward passes included while distillation is on)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass
class Clock:
    step: int = 0
    samples: int = 0
    train_wall_s: float = 0.0
    eval_wall_s: float = 0.0
    flops: float = 0.0
    teacher_flops: float = 0.0  # the part of `flops` spent in teacher forwards

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, d: dict) -> Clock:
        return cls(**d)


class Stopwatch:
    """Accumulates perf_counter intervals; `sync` (e.g. torch.cuda.synchronize) runs before
    each reading so queued GPU work is charged to the interval that launched it."""

    def __init__(self, sync=None):
        self.sync = sync or (lambda: None)
        self._t0: float | None = None

    def start(self) -> None:
        self.sync()
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        self.sync()
        dt = time.perf_counter() - (self._t0 or time.perf_counter())
        self._t0 = None
        return dt
