"""When distillation stops, and how its weight falls to zero.

A switch rule is consulted after every evaluation and answers whether KD switches off *now*.
Once off it stays off. The weight schedule then is 1 before the switch and, with a ramp,
decays linearly to 0 over the stated epochs or evaluations; without one it drops at once.

The rules are registered in benchmark.registry.SWITCHES (a plugin's too) and built by
`build_policy` from the suite's `distill.switch`; a new rule is a new registered class:

- surpass_teacher: off at the first evaluation where the student's held-out metric reaches
  the teacher's held-out metric (>= for higher-is-better, <= for lower-is-better).
- never: KD on for the whole budget.
- fixed_epoch E: off at the first evaluation at or after epoch E.
- same_as <arm>: off at the step where <arm> of the same seed switched off (read from its
  events); if that arm never switched off, this one never does either.

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import SWITCHES
from ..suite_schema import switch_choice


@dataclass
class SwitchState:
    """Checkpointed with the run: the switch is part of exact resume. `memo` is the rule's own
    state between evaluations (JSON-like values only), absent from checkpoints written before
    rules could keep one (then empty, which every built-in rule starts from)."""

    off_step: int | None = None  # optimizer step at which the policy fired
    off_epoch: float | None = None
    ramp_evals_done: int = 0  # evaluations since the switch (for ramps counted in evals)
    zero_logged: bool = False
    memo: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """What a rule sees after an evaluation. Metrics in the task's unit (accuracy in %, FID);
    `direction`: "higher" or "lower" is better; a holdout value is None when not measured."""

    epoch: float
    step: int
    student_holdout: float | None
    teacher_holdout: float | None
    direction: str

    def at_least(self, value: float, than: float) -> bool:
        """`value` as good as `than` or better, in the metric's direction."""
        return value >= than if self.direction == "higher" else value <= than


@dataclass(frozen=True)
class SwitchContext:
    """What the run builder knows when it builds a rule: the metric's direction, the teacher's
    held-out value, and for same_as the step where the followed arm switched off."""

    direction: str = "higher"
    teacher_holdout: float | None = None
    same_as_step: int | None = None


class SwitchRule:
    """Base of the switch rules. `from_config(options, ctx)` maps the suite's options (None,
    a scalar, or the rule's options model instance) to the constructor's plain arguments;
    `decide` answers after each evaluation (before the switch) with a reason string to switch
    off now, else None. `memo` persists across evaluations and resume (JSON-like values)."""

    @classmethod
    def from_config(cls, options: Any, ctx: SwitchContext) -> SwitchRule:
        if options is None:
            return cls()
        return cls(**(options.model_dump() if hasattr(options, "model_dump") else options))

    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        raise NotImplementedError


class SurpassTeacher(SwitchRule):
    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        if ev.student_holdout is None or ev.teacher_holdout is None:
            return None
        if ev.at_least(ev.student_holdout, ev.teacher_holdout):
            return "student reached the teacher on the held-out split"
        return None


class Never(SwitchRule):
    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        return None


class FixedEpochRule(SwitchRule):
    def __init__(self, epoch: float):
        self.epoch = epoch

    @classmethod
    def from_config(cls, options: Any, ctx: SwitchContext) -> SwitchRule:
        return cls(float(options))

    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        return f"fixed epoch {self.epoch}" if ev.epoch >= self.epoch - 1e-9 else None


class SameAsRule(SwitchRule):
    def __init__(self, step: int | None):
        self.step = step  # None: the followed arm never switched off

    @classmethod
    def from_config(cls, options: Any, ctx: SwitchContext) -> SwitchRule:
        return cls(ctx.same_as_step)

    def decide(self, ev: Evaluation, memo: dict) -> str | None:
        if self.step is not None and ev.step >= self.step:
            return f"schedule matched to the other arm (its switch at step {self.step})"
        return None


class SwitchPolicy:
    """A rule plus the KD weight schedule around it; what the training loop holds."""

    def __init__(self, rule: SwitchRule | str, *, direction: str = "higher", teacher_holdout: float | None = None,
                 ramp_epochs: float | None = None, ramp_evals: int | None = None, name: str = ""):
        if isinstance(rule, str):  # a rule without options by its registered name ("never")
            rule, name = build_rule(rule, SwitchContext(direction, teacher_holdout)), rule
        self.rule = rule
        self.name = name
        self.direction = direction
        self.teacher_holdout = teacher_holdout
        self.ramp_epochs = ramp_epochs
        self.ramp_evals = ramp_evals
        self.state = SwitchState()

    # --- the decision, after an evaluation -------------------------------------------
    def should_switch(self, *, epoch: float, step: int, student_holdout: float | None) -> str | None:
        """Reason string if KD switches off at this evaluation, else None."""
        if self.state.off_step is not None:
            return None
        ev = Evaluation(epoch, step, student_holdout, self.teacher_holdout, self.direction)
        return self.rule.decide(ev, self.state.memo)

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


def build_rule(switch: Any, ctx: SwitchContext) -> SwitchRule:
    """The rule a parsed `distill.switch` names (suite_schema.parse_switch), from the registry."""
    name, options = switch_choice(switch)
    cls = SWITCHES[name].load()
    rule = cls.from_config(options, ctx)
    if not callable(getattr(rule, "decide", None)):
        raise TypeError(f"{SWITCHES[name].title()}: {cls!r} built {rule!r}, which has no decide(ev, memo)")
    return rule


def build_policy(switch: Any, *, direction: str = "higher", teacher_holdout: float | None = None,
                 same_as_step: int | None = None, ramp_epochs: float | None = None,
                 ramp_evals: int | None = None) -> SwitchPolicy:
    """The switch policy of a distilled run: the registered rule `switch` names, built with
    what the run knows (`ctx`), and the ramp of `distill.ramp`."""
    ctx = SwitchContext(direction, teacher_holdout, same_as_step)
    return SwitchPolicy(build_rule(switch, ctx), direction=direction, teacher_holdout=teacher_holdout,
                        ramp_epochs=ramp_epochs, ramp_evals=ramp_evals, name=switch_choice(switch)[0])
