"""The one distillation-loss interface, used by every task, and the one place the
distillation weight is applied.

A registered loss (a LOSSES entry whose target is a class) is built from its own settings
and called on what the task computed:

    loss = Cls.from_config(distill, options)          # plain keyword arguments to Cls(...)
    terms = loss(Outputs(student, teacher, targets))  # the distillation term(s) only

It returns the *unweighted distillation term*: a scalar tensor (recorded as part "kd") or a
dict of named scalar terms (their sum is the term). It never sees the task's own loss nor
the weights. What the three fields hold is each task's (see its `loss` method):

    task            student / teacher                          targets
    classification  logits (B, K)                              labels (B,)
    detection       distill.detection.DetectorOutputs          list of {boxes, labels}
    diffusion       predicted noise eps (B, C, H, W)           the true noise eps

`teacher` is None for a loss registered with needs_teacher=False (the teacher is then not
run). A loss that needs more than a task computes by default names it in `extra_outputs`
(detection: "logits", the dense class logits). Registry meta, read torch-free by `validate`:
needs_teacher, reads_beta, options (the pydantic model of `distill.kwargs`).

The weight (`combine`, called through `Distillation.apply` by every task):

    distill.beta set (losses registered with reads_beta):  L = task + w * beta * kd
    otherwise:                                              L = (1 - a) * task + a * kd,  a = w * alpha

with w in [0, 1] the switch/ramp weight. When the effective weight is 0 (w = 0, alpha = 0
in the alpha form, beta = 0) the term is not computed and the teacher is not run: L = task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..errors import UserError
from ..registry import LOSSES


@dataclass(frozen=True)
class Outputs:
    """What a distillation loss receives: the student's outputs, the teacher's outputs of the
    same kind (None when the loss needs no teacher) and the batch's targets."""

    student: Any
    teacher: Any | None
    targets: Any


class DistillLoss(ABC):
    """Base of the built-in losses. A plugin's loss class may subclass it or only provide
    the same three things: `from_config`, `__call__` and (optionally) `extra_outputs`."""

    extra_outputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_config(cls, distill: Any, options: dict[str, Any]) -> DistillLoss:
        """Build from the run's `distill` settings; `options` is `distill.kwargs` as validated
        by the loss's options model (defaults filled in). The default passes only `options`."""
        return cls(**options)

    @abstractmethod
    def __call__(self, out: Outputs) -> torch.Tensor | dict[str, torch.Tensor]:
        """The unweighted distillation term(s) of a batch."""


class TemperatureLoss(DistillLoss):
    """Base of the losses that read the run's `distill.temperature`: built as
    Cls(temperature=distill.temperature, **options). A subclass with more settings takes them
    as keyword arguments and passes `temperature` on."""

    def __init__(self, *, temperature: float):
        self.temperature = temperature

    @classmethod
    def from_config(cls, distill: Any, options: dict[str, Any]) -> DistillLoss:
        return cls(temperature=distill.temperature, **options)


def combine(task_loss: torch.Tensor, kd: torch.Tensor, weight: float, *, alpha: float,
            beta: float | None) -> torch.Tensor:
    """The task's loss with the distillation term `kd` mixed in at switch/ramp weight
    `weight` (see the module docstring). The only place the weight is applied; the operation
    order is the one every committed run was trained with."""
    if beta is not None:
        return task_loss + weight * beta * kd
    a = alpha * weight
    return (1 - a) * task_loss + a * kd


@dataclass(frozen=True)
class Distillation:
    """A run's distillation objective: the registered loss, built, and how it is weighted."""

    name: str
    loss: Any  # a DistillLoss (or any callable on Outputs with the same contract)
    needs_teacher: bool
    alpha: float
    beta: float | None  # None: the alpha mix

    @property
    def extra_outputs(self) -> frozenset[str]:
        return frozenset(getattr(self.loss, "extra_outputs", ()))

    def active(self, teacher: Any, weight: float) -> bool:
        """Whether this step computes the term: its effective weight is not 0 and a loss that
        needs a teacher was handed one (the loop hands none at weight 0)."""
        if weight == 0 or (self.needs_teacher and teacher is None):
            return False
        return self.beta != 0 if self.beta is not None else self.alpha != 0

    def apply(self, task_loss: torch.Tensor, parts: dict, out: Outputs, weight: float
              ) -> tuple[torch.Tensor, dict]:
        """(weighted loss, parts): the loss's terms on `out`, recorded in `parts` (detached),
        mixed into `task_loss` by `combine`."""
        terms = self.loss(out)
        if isinstance(terms, torch.Tensor):
            terms = {"kd": terms}
        if not isinstance(terms, dict) or not terms:
            raise UserError(f"loss {self.name!r} must return a scalar tensor or a non-empty dict of "
                            f"them, got {type(terms).__name__}")
        values = list(terms.values())
        kd = values[0] if len(values) == 1 else torch.stack(values).sum()
        parts = {**parts, **{k: v.detach() for k, v in terms.items()}, "kd": kd.detach()}
        return combine(task_loss, kd, weight, alpha=self.alpha, beta=self.beta), parts


def build_distillation(distill: Any) -> Distillation | None:
    """The run's `distill` settings (None: no distillation) -> its Distillation: the LOSSES
    entry's class built by `from_config` from its validated options; needs_teacher and
    reads_beta from the entry's meta (beta is ignored by a loss that does not read it)."""
    if distill is None:
        return None
    try:
        entry = LOSSES[distill.loss]
    except KeyError as e:
        raise UserError(str(e.args[0])) from None
    cls = entry.load()
    options = _options(entry, dict(distill.kwargs))
    build = getattr(cls, "from_config", None)
    try:
        loss = build(distill, options) if build is not None else cls(**options)
    except TypeError as e:
        raise UserError(f"{entry.title()}: cannot be built from distill.kwargs {dict(distill.kwargs)}: {e}") from None
    return Distillation(
        name=distill.loss,
        loss=loss,
        needs_teacher=bool(entry.meta.get("needs_teacher", True)),
        alpha=distill.alpha,
        beta=distill.beta if entry.meta.get("reads_beta") else None,
    )


def _options(entry: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`distill.kwargs` through the loss's declared options model (defaults filled in), or
    as written when it declares none."""
    from pydantic import ValidationError

    model = entry.options_model()
    if model is None:
        return kwargs
    try:
        return model.model_validate(kwargs).model_dump()
    except ValidationError as e:
        raise UserError(f"{entry.title()}: bad distill.kwargs {kwargs}: {e}") from None
