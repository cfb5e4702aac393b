"""The suite schema: pydantic v2 models, `extra="forbid"` everywhere, so unknown keys are
errors. Torch-free, a leaf (benchmark.suite loads YAML into it; benchmark.suite_check adds the
checks a schema cannot express; benchmark.spec expands it into run specs).

A switch rule is a name (`surpass_teacher`) or a one-key mapping `{rule: options}` naming a
rule of the SWITCHES registry (a plugin's too); its options are validated against the model
the rule declares, and the resolved value dumps back to the same YAML shape.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

from .registry import SWITCHES, resolve


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# ----------------------------------------------------------------------------- schema
class DataCfg(Strict):
    dataset: str
    root: str | None = Field(None, description="data root; default --data-root / W2S_DATA_ROOT")
    train_subset: int | None = Field(None, gt=0, description="stratified train subset size")
    holdout: int = Field(1000, ge=0, description="held-out size carved from train (switch split)")
    test_subset: int | None = Field(None, gt=0, description="stratified test subset size")
    data_seed: int = Field(0, description="fixes subset/holdout selection; independent of run seeds")
    download: bool = False
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ModelCfg(Strict):
    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class OptimCfg(Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class ScheduleCfg(Strict):
    name: Literal["cosine", "constant", "linear", "step"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    milestones: list[float] = Field(default_factory=list, description="epochs, for `step`")
    gamma: float = Field(0.1, gt=0)


class AugmentCfg(Strict):
    crop_padding: int = Field(4, ge=0)
    hflip: bool = True


class EvalCfg(Strict):
    every_epochs: float | None = Field(None, gt=0)
    every_steps: int | None = Field(None, gt=0)
    batch_size: int = Field(1000, gt=0)

    def model_post_init(self, _ctx: Any) -> None:
        if (self.every_epochs is None) == (self.every_steps is None):
            raise ValueError("give exactly one of every_epochs or every_steps")


class TrainCfg(Strict):
    epochs: float = Field(gt=0)
    batch_size: int = Field(128, gt=0)
    optimizer: OptimCfg = Field(default_factory=OptimCfg)
    schedule: ScheduleCfg = Field(default_factory=ScheduleCfg)
    augment: AugmentCfg = Field(default_factory=AugmentCfg)
    eval: EvalCfg = Field(default_factory=lambda: EvalCfg(every_epochs=1.0))
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = True
    compile: bool = False
    grad_clip: float | None = Field(None, gt=0)
    ema: float | None = Field(None, gt=0, lt=1, description="EMA decay; evaluation uses the EMA")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    checkpoint_every_eval: bool = True


class TeacherCfg(Strict):
    model: ModelCfg
    checkpoint: str | None = Field(None, description="load instead of training")
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the suite's train")
    seed: int = 0
    snapshot_epoch: float | None = Field(
        None, gt=0, description="use the checkpoint at this epoch (an early snapshot) as teacher"
    )


class RampCfg(Strict):
    epochs: float | None = Field(None, gt=0)
    evals: int | None = Field(None, gt=0)

    def model_post_init(self, _ctx: Any) -> None:
        if (self.epochs is None) == (self.evals is None):
            raise ValueError("give exactly one of epochs or evals")


class FixedEpoch(Strict):
    """`{fixed_epoch: E}`: the config of the built-in fixed_epoch rule (a scalar option)."""

    fixed_epoch: float = Field(gt=0)


class SameAs(Strict):
    """`{same_as: <arm>}`: the config of the built-in same_as rule."""

    same_as: str


_WRAPPED: dict[tuple[str, type], type[BaseModel]] = {}


def switch_config_model(name: str) -> type[BaseModel] | None:
    """The model of the mapping `{name: options}` for switch rule `name`: the rule's `config`
    (the built-ins whose option is one scalar) or its `options` model under the rule's name;
    None for a rule without options (written as its bare name)."""
    entry = SWITCHES[name]
    if entry.meta.get("config") is not None:
        return resolve(entry.meta["config"])
    opts = entry.options_model()
    if opts is None:
        return None
    if (name, opts) not in _WRAPPED:
        _WRAPPED[(name, opts)] = create_model(
            f"Switch[{name}]", __config__=ConfigDict(extra="forbid", serialize_by_alias=True),
            options=(opts, Field(alias=name)))
    return _WRAPPED[(name, opts)]


def parse_switch(value: Any) -> Any:
    """`switch:` as written -> the rule's name (a rule without options) or its validated config
    (a pydantic model whose dump is `{name: options}` again, defaults filled in)."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, str):
        name, bare = value, True
    elif isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value)), str):
        name, bare = next(iter(value)), False
    else:
        raise ValueError("a switch rule is a name (e.g. surpass_teacher) or a one-key mapping "
                         f"{{rule: options}}; rules: {', '.join(SWITCHES.names())}")
    if name not in SWITCHES:
        raise ValueError(SWITCHES.unknown(name))
    try:
        model = switch_config_model(name)
    except Exception as e:  # noqa: BLE001 - a plugin's broken declaration: a problem, not a traceback
        raise ValueError(f"{SWITCHES[name].title()}: its options model does not load: "
                         f"{type(e).__name__}: {e}") from None
    if model is None:
        if bare:
            return name
        raise ValueError(f"switch rule {name!r} takes no options: write `switch: {name}`")
    if bare:
        try:
            return model.model_validate({name: {}})
        except ValidationError:
            raise ValueError(f"switch rule {name!r} needs options: write `switch: {{{name}: ...}}`") from None
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise _named_unknown_options(e, SWITCHES[name], model) from None


def _named_unknown_options(err: ValidationError, entry, model: type[BaseModel]) -> ValidationError:
    """`err` with each unknown key said as "switch rule 'x' has no option 'y' (its options: ...)"."""
    inner = model.model_fields.get("options")
    opts = inner.annotation if inner is not None and inner.alias == entry.name else None
    known = ", ".join(opts.model_fields) if isinstance(opts, type) and issubclass(opts, BaseModel) else "none"
    errors = []
    for e in err.errors():
        if e["type"] == "extra_forbidden":
            msg = f"{entry.title()} has no option {str(e['loc'][-1])!r} (its options: {known})"
            e = {**e, "type": PydanticCustomError("unknown_option", msg.replace("{", "{{").replace("}", "}}"))}
        errors.append(e)
    return ValidationError.from_exception_data(err.title, errors)


def switch_choice(switch: Any) -> tuple[str, Any]:
    """(rule name, options) of a parsed switch: options is None for a bare name, the scalar
    of fixed_epoch / same_as, or the rule's options model instance."""
    if isinstance(switch, str):
        return switch, None
    (field, info), = type(switch).model_fields.items()
    return info.alias or field, getattr(switch, field)


class DistillCfg(Strict):
    teacher: str | None = Field(None, description="a key of `teachers`; null for teacher-free losses")
    loss: str = "kd"
    alpha: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(4.0, gt=0)
    beta: float | None = Field(None, ge=0, description="det + beta*kd instead of the alpha mix")
    switch: Any = Field("surpass_teacher", description="a rule of the SWITCHES registry: its name or "
                                                     "{rule: options}")
    ramp: RampCfg | None = None
    tfkd_a: float = Field(0.9, gt=0, lt=1, description="tfkd: probability on the true class")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("switch", mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:
        return parse_switch(v)


class TargetsCfg(Strict):
    metric: str
    direction: Literal["higher", "lower"]
    thresholds: list[float] = Field(min_length=1)


class RunSettings(Strict):
    """What one run needs: the suite with an arm's overrides applied."""

    task: Literal["classification", "detection", "diffusion"]
    data: DataCfg
    student: ModelCfg
    teachers: dict[str, TeacherCfg] = Field(default_factory=dict)
    train: TrainCfg
    distill: DistillCfg | None = None
    targets: TargetsCfg
    threads: int = Field(gt=0, description="torch CPU threads; results depend on it")
    device: str = "auto"
    deterministic: bool = True
    task_options: dict[str, Any] = Field(default_factory=dict, description="task-specific")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return v


class SuiteCfg(RunSettings):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    arms: dict[str, dict[str, Any] | None] = Field(min_length=1)
    reference: str | None = Field(None, description="baseline health-check reference json")


SUITE_ONLY_KEYS = ("name", "description", "seeds", "arms", "reference")

# what tasks/classification.py evaluates (top-1 and top-5 accuracy, in %)
CLASSIFICATION_METRICS = ("accuracy", "top5")

METRIC_RANGES = {"accuracy": (0.0, 100.0), "AP": (0.0, 100.0), "AP50": (0.0, 100.0), "AP75": (0.0, 100.0)}


# ------------------------------------------------------------------------- dict helpers
def join(path: str, key: Any) -> str:
    """A YAML path one key or index deeper: `a.b`, `a[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def deep_merge(base: Any, override: Any) -> Any:
    """Dicts merge key by key; anything else (lists, scalars, null) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)
