"""`task_options` of the diffusion task: schema, defaults and the torch-free suite check.

Registered in suite.TASK_OPTION_CHECKS, so `w2s-bench validate` reports every problem in a
diffusion suite's options (with its YAML path) before any compute, like the rest of the suite.

    task_options:
      image_size: 16        # images are area-resized to this (default: the dataset's size)
      schedule: {name: linear, T: 1000, beta_start: 1.0e-4, beta_end: 0.02}   # or cosine
      sampler: {name: ddim, steps: 100, eta: 0.0}                               # or ddpm
      fid:
        num_samples: 10000  # generated per evaluation; FID depends on it, so it is required
        sampling_seed: 0    # the same noise for every run, arm and the teacher
        weights: null       # InceptionV3 weights file for metric `fid` (else W2S_FID_WEIGHTS)
        kid: false          # also report kid / kid_cifarnet
        feature_net: {width: 64, epochs: 15}   # the classifier behind `fid_cifarnet`
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

METRICS = ("fid", "fid_cifarnet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleOpt(_Strict):
    name: Literal["linear", "cosine"] = "linear"
    T: int = Field(1000, ge=2, description="diffusion steps")
    beta_start: float = Field(1e-4, gt=0, lt=1)
    beta_end: float = Field(0.02, gt=0, lt=1)
    cosine_s: float = Field(0.008, gt=0)


class SamplerOpt(_Strict):
    name: Literal["ddim", "ddpm"] = "ddim"
    steps: int = Field(100, ge=1, description="DDIM steps (ddpm always uses all T)")
    eta: float = Field(0.0, ge=0, description="DDIM stochasticity: 0 deterministic, 1 DDPM-like")
    variance: Literal["fixedlarge", "fixedsmall"] = "fixedlarge"
    clip: bool = Field(True, description="clip predicted x0 to [-1, 1] at every step")


class FeatureNetOpt(_Strict):
    """The classifier trained on the run's training split whose features define fid_cifarnet."""

    width: int = Field(64, ge=4)
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(0.05, gt=0)
    seed: int = 0


class FidOpt(_Strict):
    num_samples: int = Field(ge=2, description="generated images per evaluation")
    sampling_seed: int = 0
    batch_size: int = Field(250, ge=1, description="sampling and feature batch size")
    weights: str | None = Field(None, description="InceptionV3 weights for `fid`")
    kid: bool = False
    kid_subset_size: int = Field(1000, ge=2)
    kid_subsets: int = Field(100, ge=1)
    cache_dir: str | None = Field(None, description="default: $W2S_CACHE/fid")
    feature_net: FeatureNetOpt = Field(default_factory=FeatureNetOpt)


class DiffusionOptions(_Strict):
    image_size: int | None = Field(None, ge=4, description="area-resize the dataset's images")
    schedule: ScheduleOpt = Field(default_factory=ScheduleOpt)
    sampler: SamplerOpt = Field(default_factory=SamplerOpt)
    fid: FidOpt


def parse(task_options: dict) -> DiffusionOptions:
    """The validated options (raises pydantic's ValidationError; `check` reports them nicely)."""
    return DiffusionOptions.model_validate(task_options)


def check(settings) -> list[tuple[str, str]]:
    """Every problem of a diffusion RunSettings' options and targets, as (yaml path, message)."""
    from ..suite import pydantic_problems

    probs: list[tuple[str, str]] = []
    opts = None
    try:
        opts = parse(settings.task_options)
    except ValidationError as e:
        probs += pydantic_problems(e, "task_options")
    t = settings.targets
    if t.metric not in METRICS:
        probs.append(("targets.metric", f"the diffusion task reports {' or '.join(METRICS)} "
                                        f"(fid_cifarnet: offline, on a harness-trained classifier), not {t.metric!r}"))
    elif t.direction != "lower":
        probs.append(("targets.direction", f"{t.metric} is lower-is-better"))
    if "image_size" in settings.student.kwargs:
        probs.append(("student.kwargs.image_size", "set task_options.image_size instead (data and model share it)"))
    for k, tc in settings.teachers.items():
        if "image_size" in tc.model.kwargs:
            probs.append((f"teachers.{k}.model.kwargs.image_size", "set task_options.image_size instead"))
    if opts is None:
        return probs
    if opts.schedule.name == "linear" and opts.schedule.beta_start >= opts.schedule.beta_end:
        probs.append(("task_options.schedule", "beta_start must be below beta_end"))
    if opts.sampler.name == "ddim" and opts.sampler.steps > opts.schedule.T:
        probs.append(("task_options.sampler.steps", f"{opts.sampler.steps} DDIM steps exceed T={opts.schedule.T}"))
    if opts.fid.weights and not Path(opts.fid.weights).expanduser().is_file():
        probs.append(("task_options.fid.weights", f"file not found: {opts.fid.weights}"))
    if opts.fid.weights and t.metric == "fid_cifarnet":
        probs.append(("task_options.fid.weights", "Inception weights are only used by metric `fid`"))
    if opts.image_size is not None:
        models = [("student.kwargs.ch_mult", settings.student)]
        models += [(f"teachers.{k}.model.kwargs.ch_mult", tc.model) for k, tc in settings.teachers.items()]
        for path, m in models:
            mult = m.kwargs.get("ch_mult", (1, 2, 2, 2)) if m.name == "unet" else None
            if isinstance(mult, (list, tuple)) and opts.image_size % (2 ** max(0, len(mult) - 1)):
                probs.append((path, f"image_size {opts.image_size} is not divisible by 2^{len(mult) - 1} "
                                    "(one halving per extra level)"))
    return probs
