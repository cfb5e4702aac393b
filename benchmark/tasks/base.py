"""The contract between a task and the training loop.

A task runtime is built once per run (or teacher) and owns data, model construction,
loss terms and evaluation. The loop owns everything else: optimisation, LR schedule,
AMP, EMA, the KD weight schedule and switch, clocks, FLOPs, metrics rows, checkpoints.

Determinism and pairing: `batches(epoch, start)` must be a pure function of
(seeds, epoch, batch index), so two arms with the same seed see identical batches and a
resumed run continues exactly where it stopped, with no generator state to save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch


class TaskRuntime(Protocol):
    metric: str  # primary metric name written to metrics.jsonl, e.g. "accuracy"
    direction: str  # "higher" | "lower"
    steps_per_epoch: int
    batch_size: int
    info: dict  # dataset sizes etc., recorded in the manifest
    # Optional, read by the loop with getattr: `recipe` (classification task_options.recipe:
    # decoupled SGD, lr scales, triangular LR, lookahead, freeze_after; None = none), and
    # `eval_final`, which the loop sets before every evaluation (True at the last step) so a
    # task may evaluate a cheaper subset before the end.

    def build_model(self, model_cfg: Any, init_seed: int) -> torch.nn.Module:
        """A freshly initialised model on the runtime's device (same seed -> same weights)."""

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The training batches of `epoch` from index `start` on, already on the device."""

    def loss(self, model: torch.nn.Module, batch: Any, teacher: torch.nn.Module | None,
             weight: float, step: int) -> tuple[torch.Tensor, dict]:
        """Scalar loss and detached parts. `teacher` is None whenever `weight` == 0: the
        loop guarantees the teacher is not run then.

        Every task computes its own loss (CE, the detector's losses, L_simple), builds the
        registered distillation loss once (distill.losses.build_distillation) and, when
        `Distillation.active(teacher, weight)`, calls `Distillation.apply` on an
        `Outputs(student, teacher or None, targets)`: the weight is applied there only."""

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        """{metric: value} on "test" or "holdout"; the primary metric must be present."""

    def flops(self, model: torch.nn.Module, teacher: torch.nn.Module | None) -> dict[str, float]:
        """FLOPs per optimizer step: {"student_step", "teacher_step"} (teacher 0 if None)."""


def count_flops(fn) -> float:
    """FLOPs of running fn() once, counted by torch.utils.flop_counter (matmul/conv only)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def stream_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (SeedSequence hashing, so nearby inputs decorrelate):
    every per-epoch / per-batch generator of every task is seeded through this."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return int(state.view(np.uint64)[0] >> 1)


_DATA_CACHE: dict[str, Any] = {}


def memo_data(key: str, load: Callable[[], Any]) -> Any:
    """Load a run's dataset once per process (teacher and student runs share it); one dataset
    at a time keeps memory bounded."""
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load()
    return _DATA_CACHE[key]

