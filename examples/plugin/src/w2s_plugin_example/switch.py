"""Switch distillation off once the student's held-out metric stops improving: after
`patience` evaluations in a row that do not beat the best so far by more than `min_delta`
(in the metric's unit, e.g. accuracy points; "beat" follows the metric's direction).

State between evaluations lives in `memo`, which w2s-bench checkpoints with the run, so a
resumed run decides exactly as an uninterrupted one. Torch-free.
"""

from __future__ import annotations

from benchmark.distill.switch import Evaluation, SwitchRule


class Plateau(SwitchRule):
    def __init__(self, patience: int, min_delta: float):
        self.patience = patience
        self.min_delta = min_delta

    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        value = ev.student_holdout
        if value is None:
            return None
        best = memo.get("best")
        gain = None if best is None else (value - best if ev.direction == "higher" else best - value)
        if gain is None or gain > self.min_delta:
            memo["best"], memo["stale"] = value, 0
            return None
        memo["stale"] = memo.get("stale", 0) + 1
        if memo["stale"] >= self.patience:
            return (f"held-out {value:g} did not improve on {best:g} by more than {self.min_delta:g} "
                    f"for {self.patience} evaluation(s)")
        return None
