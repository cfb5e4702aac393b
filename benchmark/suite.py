"""Suite schema, YAML loading, ${ENV} expansion and expansion into run specs.

A suite is data (DESIGN.md convention 1): `yaml.safe_load`, a strict pydantic schema where
unknown keys are errors, and `validate_suite` reports *every* problem at once with its YAML
path before any compute is spent. Nothing here imports torch.

Arms are a name plus overrides of the suite's settings (deep-merged), so control arms need
no schema change: `baseline: {distill: null}`, `kd_always: {distill: {switch: never}}`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import SCHEMA_VERSION
from .errors import SuiteError
from .registry import DATASETS, LOSSES, MODELS, is_timm_name


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
    fixed_epoch: float = Field(gt=0)


class SameAs(Strict):
    same_as: str


Switch = Literal["surpass_teacher", "never"] | FixedEpoch | SameAs


class DistillCfg(Strict):
    teacher: str | None = Field(None, description="a key of `teachers`; null for teacher-free losses")
    loss: str = "kd"
    alpha: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(4.0, gt=0)
    beta: float | None = Field(None, ge=0, description="det + beta*kd instead of the alpha mix")
    switch: Switch = "surpass_teacher"
    ramp: RampCfg | None = None
    tfkd_a: float = Field(0.9, gt=0, lt=1, description="tfkd: probability on the true class")
    kwargs: dict[str, Any] = Field(default_factory=dict)


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


# --------------------------------------------------------------------- env expansion
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(obj: Any, path: str = "", problems: list | None = None, env=None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string; unset VAR without default is a problem."""
    env = os.environ if env is None else env
    problems = [] if problems is None else problems
    if isinstance(obj, dict):
        return {k: expand_env(v, _join(path, k), problems, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [expand_env(v, _join(path, i), problems, env) for i, v in enumerate(obj)]
    if isinstance(obj, str):

        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in env and env[var] != "":
                return env[var]
            if default is not None:
                return default
            problems.append((path, f"environment variable {var} is not set and has no default"))
            return m.group(0)

        return _ENV.sub(sub, obj)
    return obj


def _join(path: str, key: Any) -> str:
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


# --------------------------------------------------------------------------- loading
def _in_override(override: dict, path: str) -> bool:
    """Whether a dotted YAML path points into what an arm's override sets."""
    node: Any = override
    for part in re.split(r"\.|\[", path):
        part = part.rstrip("]")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return node is not override and not isinstance(node, (dict, list))
    return True


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-after", "literal[", "FixedEpoch", "SameAs")):
            continue  # union-branch labels from pydantic, not YAML keys
        out = _join(out, part)
    return out


def pydantic_problems(err: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """A pydantic ValidationError as [(YAML path under `prefix`, message)], one per problem;
    public so a component's own options model (task_options, ...) reports like the suite."""
    out = []
    for e in err.errors():
        loc = _loc(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        out.append((_join(prefix, loc) if prefix and loc else (prefix or loc), msg))
    # a value that fails every union branch yields one error per branch: keep the first
    seen, uniq = set(), []
    for p, m in out:
        if (p, m) not in seen:
            seen.add((p, m))
            uniq.append((p, m))
    return uniq


def load_yaml(path: str | Path) -> dict:
    """Read a suite file with safe_load; syntax errors become a SuiteError with line/column."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(str(path), [("", "file not found")])
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        if isinstance(e, yaml.constructor.ConstructorError):
            # safe_load refuses tags such as !!python/object: configs are data, never code
            problem += " (a suite is plain data: YAML tags that build Python objects are refused)"
        raise SuiteError(str(path), [(where, f"malformed YAML: {problem}")]) from None
    except UnicodeDecodeError:
        raise SuiteError(str(path), [("", "file is not UTF-8 text")]) from None
    if not isinstance(raw, dict):
        raise SuiteError(str(path), [("", "a suite must be a YAML mapping")])
    return raw


class Suite:
    """A validated suite: the resolved config plus one RunSettings per arm."""

    def __init__(self, cfg: SuiteCfg, raw: dict, source: str, arm_settings: dict[str, RunSettings]):
        self.cfg = cfg
        self.raw = raw  # after env expansion
        self.source = source
        self.arm_settings = arm_settings

    @property
    def name(self) -> str:
        return self.cfg.name

    def resolved(self) -> dict:
        return self.cfg.model_dump(mode="json")

    def sha256(self) -> str:
        return sha256_json(self.resolved())

    def arm_names(self) -> list[str]:
        return list(self.cfg.arms)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_suite(path: str | Path, *, data_root: str | None = None, check_paths: bool = True, env=None) -> Suite:
    """Load, expand and validate a suite; raises SuiteError listing every problem."""
    raw = load_yaml(path)
    return validate_dict(raw, str(path), data_root=data_root, check_paths=check_paths, env=env)


def validate_dict(raw: dict, source: str = "<suite>", *, data_root: str | None = None,
                  check_paths: bool = True, env=None) -> Suite:
    problems: list[tuple[str, str]] = []
    raw = expand_env(raw, problems=problems, env=env)
    if data_root is not None and isinstance(raw.get("data"), dict):
        raw = deep_merge(raw, {"data": {"root": data_root}})
    elif isinstance(raw.get("data"), dict) and not raw["data"].get("root"):
        env_map = os.environ if env is None else env
        if env_map.get("W2S_DATA_ROOT"):
            raw = deep_merge(raw, {"data": {"root": env_map["W2S_DATA_ROOT"]}})
    cfg = None
    try:
        cfg = SuiteCfg.model_validate(raw)
    except ValidationError as e:
        problems += pydantic_problems(e)
    arm_settings: dict[str, RunSettings] = {}
    merged_arms: dict[str, dict] = {}
    arms = raw.get("arms") if isinstance(raw.get("arms"), dict) else {}
    base = {k: v for k, v in raw.items() if k not in SUITE_ONLY_KEYS}
    for arm, override in arms.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]*", str(arm)):
            problems.append((f"arms.{arm}", "arm names use letters, digits, _ . @ -"))
        if override is not None and not isinstance(override, dict):
            problems.append((f"arms.{arm}", "an arm is a mapping of overrides (or empty)"))
            continue
        override = override or {}
        bad = [k for k in override if k in SUITE_ONLY_KEYS]
        for k in bad:
            problems.append((f"arms.{arm}.{k}", "cannot be overridden per arm"))
        merged = deep_merge(base, {k: v for k, v in override.items() if k not in bad})
        merged_arms[str(arm)] = merged
        try:
            arm_settings[arm] = RunSettings.model_validate(merged)
        except ValidationError as e:
            # errors in the suite body are reported once above; here only what the arm set
            for p, m in pydantic_problems(e):
                if _in_override(override, p):
                    problems.append((f"arms.{arm}.{p}", m))
    problems += semantic_problems(raw, merged_arms, check_paths=check_paths)
    if problems:
        raise SuiteError(source, problems)
    return Suite(cfg, raw, source, arm_settings)


# ------------------------------------------------------------------ semantic checks
# These run on the raw (env-expanded, arm-merged) dicts, so they report alongside schema
# errors instead of waiting for the schema to pass: every problem at once.
def _g(d: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def semantic_problems(raw: dict, merged: dict[str, dict], *, check_paths: bool) -> list[tuple[str, str]]:
    """Checks pydantic cannot express: names that must exist, ranges that depend on the metric."""
    probs: list[tuple[str, str]] = []
    arms = raw.get("arms") if isinstance(raw.get("arms"), dict) else {}
    if arms and "baseline" not in arms:
        probs.append(("arms", "an arm named `baseline` is required (speedups are measured against it)"))
    seeds = raw.get("seeds")
    if isinstance(seeds, list) and len({repr(x) for x in seeds}) != len(seeds):
        probs.append(("seeds", "seeds must be distinct"))
    metric, direction = _g(raw, "targets", "metric"), _g(raw, "targets", "direction")
    thresholds = _g(raw, "targets", "thresholds")
    if isinstance(thresholds, list):
        lo_hi = METRIC_RANGES.get(metric) if isinstance(metric, str) else None
        for i, t in enumerate(thresholds):
            t = _num(t)
            if t is None:
                continue
            if lo_hi and not (lo_hi[0] <= t <= lo_hi[1]):
                probs.append((f"targets.thresholds[{i}]", f"{t:g} is outside [{lo_hi[0]:g}, {lo_hi[1]:g}] for {metric}"))
            if direction == "lower" and t < 0:
                probs.append((f"targets.thresholds[{i}]", "must be >= 0"))
        if len({repr(t) for t in thresholds}) != len(thresholds):
            probs.append(("targets.thresholds", "thresholds must be distinct"))
    timm_names: list[tuple[str, str]] = []
    seen_paths: set[str] = set()
    for arm, s in merged.items():
        pre = f"arms.{arm}."
        probs += _settings_problems(s, pre, merged, arm, timm_names, check_paths, seen_paths)
    # a problem that comes from the suite body is reported once, without an arm prefix;
    # one that an arm's own override causes keeps the arm's path
    uniq, seen = [], set()
    for p, m in probs:
        m_arm = re.match(r"^arms\.([^.]+)\.(.*)$", p)
        if m_arm and m_arm.group(1) in arms:
            override = arms[m_arm.group(1)] if isinstance(arms[m_arm.group(1)], dict) else {}
            if not _in_override(override, m_arm.group(2)):
                p = m_arm.group(2)
        if (p, m) not in seen:
            seen.add((p, m))
            uniq.append((p, m))
    # timm names are looked up by `validate --deep` and by `run` before the lock
    # (runner/deep_check.py): importing timm imports torch, and this schema stays torch-free
    uniq += [(p, "timm: needs a model name, e.g. timm:resnet50") for p, n in dict(timm_names).items() if not n]
    return uniq


def _settings_problems(s: dict, pre: str, arms: dict[str, dict], arm: str,
                       timm_names: list, check_paths: bool, seen_paths: set) -> list[tuple[str, str]]:
    from types import SimpleNamespace

    probs = []
    task = s.get("task")
    ds = _g(s, "data", "dataset")
    if isinstance(ds, str):
        if ds not in DATASETS:
            probs.append((f"{pre}data.dataset", f"unknown dataset {ds!r}; known: {', '.join(DATASETS.names())}"))
        elif isinstance(task, str) and task not in _tasks_of(DATASETS[ds]):
            probs.append((f"{pre}data.dataset", f"{ds!r} is a dataset for {'/'.join(_tasks_of(DATASETS[ds]))}, not {task}"))
        elif kw_probs := _data_kwargs_problems(ds, _g(s, "data", "kwargs"), pre):
            probs += kw_probs  # where the data is depends on its kwargs: looked for once they are right
        elif check_paths:
            data = s["data"]
            key = json.dumps([ds, data.get("root"), data.get("kwargs"), data.get("download")], sort_keys=True, default=str)
            if key not in seen_paths:
                seen_paths.add(key)
                ns = SimpleNamespace(dataset=ds, root=data.get("root"), download=bool(data.get("download")),
                                     kwargs=data.get("kwargs") if isinstance(data.get("kwargs"), dict) else {})
                msg = data_path_problem(ns)
                if msg:
                    probs.append((f"{pre}data.root", msg))
    teachers = s.get("teachers") if isinstance(s.get("teachers"), dict) else {}
    models = [(f"{pre}student.name", _g(s, "student", "name"))]
    models += [(f"{pre}teachers.{k}.model.name", _g(t, "model", "name")) for k, t in teachers.items()]
    for path, name in models:
        if not isinstance(name, str):
            continue
        if is_timm_name(name):
            timm_names.append((re.sub(r"^arms\.[^.]+\.", "", path), name[5:]))
        elif name not in MODELS:
            same = [n for n in MODELS.names() if task in _tasks_of(MODELS[n])]
            probs.append((path, f"unknown model {name!r}; registered for {task}: {', '.join(same)} (or timm:<name>)"))
        elif isinstance(task, str) and task not in _tasks_of(MODELS[name]):
            probs.append((path, f"{name!r} is a model for {'/'.join(_tasks_of(MODELS[name]))}, not {task}"))
    for k, t in teachers.items():
        ck = _g(t, "checkpoint")
        if isinstance(ck, str) and check_paths and not Path(ck).is_file():
            probs.append((f"{pre}teachers.{k}.checkpoint", f"file not found: {ck}"))
        if isinstance(s.get("train"), dict) and isinstance(_g(t, "train"), dict):
            try:
                TrainCfg.model_validate(deep_merge(s["train"], t["train"]))
            except ValidationError as e:
                probs += [(p, m) for p, m in pydantic_problems(e, f"{pre}teachers.{k}.train")
                          if p.split(f"{pre}teachers.{k}.train.")[-1].split(".")[0] in t["train"]]
    d = s.get("distill")
    if isinstance(d, dict):
        loss, teacher, switch = d.get("loss", "kd"), d.get("teacher"), d.get("switch", "surpass_teacher")
        if isinstance(loss, str):
            if loss not in LOSSES:
                probs.append((f"{pre}distill.loss", f"unknown loss {loss!r}; known: {', '.join(LOSSES.names())}"))
            else:
                entry = LOSSES[loss]
                if isinstance(task, str) and task not in _tasks_of(entry):
                    probs.append((f"{pre}distill.loss", f"{loss!r} is a loss for {'/'.join(_tasks_of(entry))}, not {task}"))
                if entry.meta.get("needs_teacher") and teacher is None:
                    probs.append((f"{pre}distill.teacher", f"loss {loss!r} needs a teacher"))
                opts = entry.meta.get("options")
                kw = d.get("kwargs") or {}
                if opts is not None and isinstance(kw, dict):
                    # a loss that declares its options: every kwargs key must be one of them
                    for key, val in kw.items():
                        if key not in opts:
                            known = ", ".join(opts) or "none"
                            probs.append((f"{pre}distill.kwargs.{key}", f"loss {loss!r} has no option {key!r} (its options: {known})"))
                        elif _num(val) is None or not opts[key][0] < val < opts[key][1]:
                            probs.append((f"{pre}distill.kwargs.{key}", f"must be a number in ({opts[key][0]}, {opts[key][1]}), got {val!r}"))
                if d.get("beta") is not None and not entry.meta.get("reads_beta"):
                    # only losses registered with reads_beta use the det/mse + beta*kd form
                    probs.append((f"{pre}distill.beta", f"loss {loss!r} does not read beta (it mixes with alpha); "
                                  "remove beta"))
                if "tfkd_a" in d and loss != "tfkd":
                    probs.append((f"{pre}distill.tfkd_a", f"tfkd_a is an option of the tfkd loss only; loss {loss!r} would ignore it"))
        if isinstance(teacher, str) and teacher not in teachers:
            probs.append((f"{pre}distill.teacher", f"no teacher named {teacher!r} under `teachers`"))
        if switch == "surpass_teacher":
            if teacher is None:
                probs.append((f"{pre}distill.switch", "surpass_teacher needs a teacher"))
            if _g(s, "data", "holdout", default=1000) == 0:
                probs.append((f"{pre}data.holdout", "surpass_teacher decides on the held-out split: holdout must be > 0"))
        other = _g(switch, "same_as")
        if isinstance(other, str):
            od = _g(arms.get(other), "distill")
            if other not in arms:
                probs.append((f"{pre}distill.switch.same_as", f"no arm named {other!r}"))
            elif other == arm:
                probs.append((f"{pre}distill.switch.same_as", "an arm cannot follow itself"))
            elif not isinstance(od, dict):
                probs.append((f"{pre}distill.switch.same_as", f"arm {other!r} has no distillation, so it never switches off"))
            elif _g(od, "switch", "same_as") is not None:
                probs.append((f"{pre}distill.switch.same_as", f"arm {other!r} itself follows another arm; chains are not allowed"))
        fe, ep = _num(_g(switch, "fixed_epoch")), _num(_g(s, "train", "epochs"))
        if fe is not None and ep is not None and fe > ep:
            probs.append((f"{pre}distill.switch.fixed_epoch", f"{fe:g} is past the budget of {ep:g} epochs"))
    metric = _g(s, "targets", "metric")
    if task == "classification" and isinstance(metric, str) and metric not in CLASSIFICATION_METRICS:
        probs.append((f"{pre}targets.metric", f"classification reports {' or '.join(CLASSIFICATION_METRICS)}, "
                      f"not {metric!r}"))
    if isinstance(metric, str) and metric in METRIC_RANGES and _g(s, "targets", "direction") not in (None, "higher"):
        probs.append((f"{pre}targets.direction", f"{metric} is higher-is-better"))
    if isinstance(task, str) and task in TASK_OPTION_CHECKS:
        try:
            settings = RunSettings.model_validate(s)
        except ValidationError:
            settings = None  # schema errors are reported already
        if settings is not None:
            module, _, fn = TASK_OPTION_CHECKS[task].partition(":")
            import importlib

            probs += [(f"{pre}{p}", m) for p, m in getattr(importlib.import_module(module), fn)(settings)]
    elif s.get("task_options"):
        probs.append((f"{pre}task_options", f"task {task} takes no task_options"))
    return probs


def _data_kwargs_problems(ds: str, kwargs: Any, pre: str) -> list[tuple[str, str]]:
    """A dataset that declares its options (registry meta `kwargs`): a typo is an error here,
    before the lock, not a DataError when the loader first runs (or silently ignored)."""
    known = DATASETS[ds].meta.get("kwargs")
    if known is None or not isinstance(kwargs, dict):
        return []
    return [(f"{pre}data.kwargs.{key}", f"dataset {ds!r} has no option {key!r} "
             f"(its options: {', '.join(known) or 'none'})") for key in kwargs if key not in known]


# Task-specific checks of `task_options` (and anything else a task needs): torch-free
# functions (settings) -> [(yaml path, message)], registered by import string.
TASK_OPTION_CHECKS: dict[str, str] = {}


def _tasks_of(entry) -> tuple[str, ...]:
    """Registry entries name the task(s) they serve: meta task="x" or task=("x", "y")."""
    t = entry.meta.get("task")
    return tuple(t) if isinstance(t, (tuple, list)) else (t,)


# Where a dataset should be: a torch-free function of the data layer, named by import string
# like TASK_OPTION_CHECKS, since the suite is a leaf and imports no component (pyproject.toml's
# import-linter layers).
DATA_PATH_CHECK = "benchmark.data.paths:locate_problem"


def data_path_problem(data: DataCfg) -> str | None:
    """Where a dataset should be and is not; None when it is there (or synthetic)."""
    import importlib

    module, _, fn = DATA_PATH_CHECK.partition(":")
    return getattr(importlib.import_module(module), fn)(data)


# --------------------------------------------------------------------------- run specs
STREAMS = {"init": 1, "data_order": 2, "augment": 3, "torch": 4, "sampling": 5, "bootstrap": 6}


def derive_seeds(root: int) -> dict[str, int]:
    """Independent streams from one root seed (numpy SeedSequence, DESIGN.md convention 4).

    They depend on the seed only, never on the arm: paired arms share init, data order
    and augmentation.
    """
    import numpy as np

    return {name: int(np.random.SeedSequence([root, k]).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
            for name, k in STREAMS.items()}


def teacher_spec(suite: Suite, settings: RunSettings, teacher_name: str) -> dict:
    """The resolved teacher: its id hashes everything that determines its weights."""
    t = settings.teachers[teacher_name]
    train = TrainCfg.model_validate(deep_merge(settings.train.model_dump(mode="json"), t.train))
    body = {
        "task": settings.task,
        "model": t.model.model_dump(mode="json"),
        "checkpoint": t.checkpoint,
        "snapshot_epoch": t.snapshot_epoch,
        "train": train.model_dump(mode="json"),
        "data": _data_identity(settings),
        "seed": t.seed,
        "threads": settings.threads,
        "task_options": settings.task_options,
    }
    tid = f"{teacher_name}-{sha256_json(body)[:12]}"
    return {"schema_version": SCHEMA_VERSION, "teacher_id": tid, "name": teacher_name, "suite": suite.name,
            "seeds": derive_seeds(t.seed), "targets": settings.targets.model_dump(mode="json"),
            "device": settings.device, "deterministic": settings.deterministic, **body}


def _data_identity(s: RunSettings) -> dict:
    # the root path is where the data lives, not what it is: keep it out of ids
    d = s.data.model_dump(mode="json")
    d.pop("root", None)
    d.pop("download", None)
    return d


def run_specs(suite: Suite, arms: list[str] | None = None, seeds: list[int] | None = None) -> list[dict]:
    """Every (arm, seed) run as a fully resolved spec dict; run_id hashes the spec."""
    out = []
    for arm in suite.arm_names():
        if arms and arm not in arms:
            continue
        for seed in suite.cfg.seeds:
            if seeds is not None and seed not in seeds:
                continue
            out.append(run_spec(suite, arm, seed))
    return out


def run_spec(suite: Suite, arm: str, seed: int) -> dict:
    s = suite.arm_settings[arm]
    teacher = None
    if s.distill is not None and s.distill.teacher is not None:
        ts = teacher_spec(suite, s, s.distill.teacher)
        teacher = {"id": ts["teacher_id"], "name": ts["name"], "model": ts["model"]["name"]}
    body = {
        "suite": suite.name,
        "arm": arm,
        "seed": seed,
        "task": s.task,
        "seeds": derive_seeds(seed),
        "teacher": teacher,
        "data": _data_identity(s),
        "student": s.student.model_dump(mode="json"),
        "train": s.train.model_dump(mode="json"),
        "distill": s.distill.model_dump(mode="json") if s.distill else None,
        "targets": s.targets.model_dump(mode="json"),
        "threads": s.threads,
        "deterministic": s.deterministic,
        "task_options": s.task_options,
    }
    run_id = f"{arm}-s{seed}-{sha256_json(body)[:10]}"
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, **body,
            "budget": {"epochs": s.train.epochs}, "device": s.device}


def lock_body(suite: Suite) -> dict:
    """What pre-registration fixes: thresholds, seeds and the recipe (everything but arms)."""
    r = suite.resolved()
    recipe = {k: v for k, v in r.items() if k not in ("arms", "seeds", "description", "reference", "device")}
    recipe.get("data", {}).pop("root", None)
    recipe.get("data", {}).pop("download", None)
    return {"targets": r["targets"], "seeds": r["seeds"], "recipe": recipe}


TASK_OPTION_CHECKS["diffusion"] = "benchmark.tasks.diffusion_options:check"
TASK_OPTION_CHECKS["detection"] = "benchmark.tasks.detection_options:check"
