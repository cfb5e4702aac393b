"""`task_options` of the classification task: fast-training recipe options (issue 20).

Registered in suite.TASK_OPTION_CHECKS, so `w2s-bench validate` reports every problem with its
YAML path before any compute. Torch-free. Every option defaults to "off", which is exactly the
behaviour of a classification suite without `task_options` (run ids hash the options as
written, so suites that leave them out keep their ids).

airbench94's recipe (K. Jordan, arXiv 2404.00498) written with these options:

    task_options:
      recipe:
        decoupled: true                 # train.optimizer lr / weight_decay are per 1024 examples
        lr_scale: {norm_bias: 64.0}     # lr multiplier of norm-layer biases (decay not scaled)
        schedule: {start: 0.2, peak: 0.23, end: 0.07}   # triangular LR (replaces train.schedule)
        lookahead: {start_epoch: 3, every_steps: 5, decay: 0.95, power: 3.0}
        freeze_after: {whiten.bias: 3}  # parameter name -> epochs it trains
        data_init: {images: 5000}       # the model's init_from_data hook sees these train images
      augment: {pad_mode: reflect, flip: alternating}
      eval: {tta_test: 2, tta_holdout: 0, test_subset: 2000}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Triangular(_Strict):
    """LR multiplier: `start` at step 0, 1 at int(peak * total steps), `end` at the last step."""

    start: float = Field(0.2, ge=0)
    peak: float = Field(0.23, ge=0, le=1)
    end: float = Field(0.07, ge=0)


class LookaheadOpt(_Strict):
    """From epoch `start_epoch`, every `every_steps` steps the weights (and BN statistics) move to
    an EMA of themselves with decay decay^every_steps * (step/total)^power and are copied back;
    after the last step the weights become the EMA."""

    start_epoch: int = Field(3, ge=0)
    every_steps: int = Field(5, ge=1)
    decay: float = Field(0.95, gt=0, lt=1)
    power: float = Field(3.0, ge=0)


class DataInitOpt(_Strict):
    images: int = Field(5000, ge=1, description="normalised training images shown to init_from_data")


class Recipe(_Strict):
    decoupled: bool = Field(False, description="optimizer lr and weight_decay are per 1024 examples "
                                               "(airbench): lr = lr/(1024 (1 + 1/(1-m))) x batch for the "
                                               "mean loss; decay per step not scaled by lr_scale")
    lr_scale: dict[Literal["norm_bias"], float] = Field(default_factory=dict)
    schedule: Triangular | None = None
    lookahead: LookaheadOpt | None = None
    freeze_after: dict[str, float] = Field(default_factory=dict, description="param name -> epochs it trains")
    data_init: DataInitOpt | None = None

    @model_validator(mode="after")
    def _positive(self):
        for k, v in self.lr_scale.items():
            if not v > 0:
                raise ValueError(f"lr_scale.{k} must be > 0")
        for k, v in self.freeze_after.items():
            if not v >= 0:
                raise ValueError(f"freeze_after.{k} must be >= 0 epochs")
        return self


class AugmentOpt(_Strict):
    pad_mode: Literal["zero", "reflect"] = Field("zero", description="padding before the random crop")
    flip: Literal["random", "alternating"] = Field(
        "random", description="alternating: one random flip per image drawn once, every odd epoch all flipped")


class EvalOpt(_Strict):
    tta_test: Literal[0, 1, 2] = Field(0, description="test-time augmentation of the test split: 0 none, "
                                                      "1 mirror (2 views), 2 mirror + 1-px translations (6)")
    tta_holdout: Literal[0, 1, 2] = Field(0, description="the same for the held-out (switch) split")
    test_subset: int | None = Field(None, ge=1, description="evaluations before the last one use a fixed "
                                                             "class-stratified subset of this many test images")


class ClassificationOptions(_Strict):
    recipe: Recipe = Field(default_factory=Recipe)
    augment: AugmentOpt = Field(default_factory=AugmentOpt)
    eval: EvalOpt = Field(default_factory=EvalOpt)


def parse(task_options: dict) -> ClassificationOptions:
    """The validated options (raises pydantic's ValidationError; `check` reports them nicely)."""
    return ClassificationOptions.model_validate(task_options or {})


def check(settings) -> list[tuple[str, str]]:
    """Every problem of a classification RunSettings' task_options, as (yaml path, message)."""
    from ..suite import pydantic_problems

    try:
        opts = parse(settings.task_options)
    except ValidationError as e:
        return pydantic_problems(e, "task_options")
    probs: list[tuple[str, str]] = []
    r, t = opts.recipe, settings.train
    if r.decoupled and t.optimizer.name != "sgd":
        probs.append(("task_options.recipe.decoupled", f"decoupled hyperparameters are defined for sgd, "
                                                       f"not {t.optimizer.name}"))
    if r.schedule is not None and t.schedule.model_dump(exclude_defaults=True):
        probs.append(("task_options.recipe.schedule", "the triangular schedule replaces train.schedule; "
                                                      "remove train.schedule"))
    if r.lookahead is not None and t.ema:
        probs.append(("task_options.recipe.lookahead", "lookahead and train.ema are two different weight "
                                                       "averages; use one"))
    if opts.augment.pad_mode == "reflect" and t.augment.crop_padding == 0:
        probs.append(("task_options.augment.pad_mode", "reflect padding needs train.augment.crop_padding > 0"))
    if opts.augment.flip == "alternating" and not t.augment.hflip:
        probs.append(("task_options.augment.flip", "alternating flip needs train.augment.hflip: true"))
    return probs
