"""When distillation stops, and how its weight falls to zero.

A policy is consulted after every evaluation and answers whether KD switches off *now*.
Once off it stays off. The weight schedule then is 1 before the switch and, with a ramp,
decays linearly to 0 over the stated epochs or evaluations; without one it drops at once.

- surpass_teacher: off at the first evaluation where the student's held-out metric reaches
  the teacher's held-out metric (>= for higher-is-better, <= for lower-is-better).
- never: KD on for the whole budget.
- fixed_epoch E: off at the first evaluation at or after epoch E.
- same_as <arm>: off at the step where <arm> of the same seed switched off (read from its
  events); if that arm never switched off, this one never does either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SwitchState:
    """Checkpointed with the run: the switch is part of exact resume."""

    off_step: int | None = None  # optimizer step at which the policy fired
    off_epoch: float | None = None
    ramp_evals_done: int = 0  # evaluations since the switch (for ramps counted in evals)
    zero_logged: bool = False


class SwitchPolicy:
    def __init__(self, kind: str, *, direction: str = "higher", teacher_holdout: float | None = None,
                 fixed_epoch: float | None = None, same_as_step: int | None = None,
                 ramp_epochs: float | None = None, ramp_evals: int | None = None):
        self.kind = kind
        self.direction = direction
        self.teacher_holdout = teacher_holdout
        self.fixed_epoch = fixed_epoch
        self.same_as_step = same_as_step
        self.ramp_epochs = ramp_epochs
        self.ramp_evals = ramp_evals
        self.state = SwitchState()

    # --- the decision, after an evaluation -------------------------------------------
    def should_switch(self, *, epoch: float, step: int, student_holdout: float | None) -> str | None:
        """Reason string if KD switches off at this evaluation, else None."""
        if self.state.off_step is not None or self.kind == "never":
            return None
        if self.kind == "surpass_teacher":
            if student_holdout is None or self.teacher_holdout is None:
                return None
            better = (student_holdout >= self.teacher_holdout if self.direction == "higher"
                      else student_holdout <= self.teacher_holdout)
            return "student reached the teacher on the held-out split" if better else None
        if self.kind == "fixed_epoch":
            return f"fixed epoch {self.fixed_epoch}" if epoch >= self.fixed_epoch - 1e-9 else None
        if self.kind == "same_as":
            if self.same_as_step is not None and step >= self.same_as_step:
                return f"schedule matched to the other arm (its switch at step {self.same_as_step})"
            return None
        raise ValueError(self.kind)

    def fire(self, *, epoch: float, step: int) -> None:
        self.state.off_step = step
        self.state.off_epoch = epoch

    def after_eval(self) -> None:
        if self.state.off_step is not None:
            self.state.ramp_evals_done += 1

    # --- the weight, per step ----------------------------------------------------------
    def weight(self, epoch: float) -> float:
        """KD weight in [0, 1] for a step starting at `epoch`."""
        if self.state.off_step is None:
            return 1.0
        if self.ramp_epochs:
            return max(0.0, 1.0 - (epoch - self.state.off_epoch) / self.ramp_epochs)
        if self.ramp_evals:
            return max(0.0, 1.0 - self.state.ramp_evals_done / self.ramp_evals)
        return 0.0
