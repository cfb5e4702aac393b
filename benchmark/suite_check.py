"""Checks of a suite that its schema cannot express, and pydantic errors as YAML paths.

They run on the raw (env-expanded, arm-merged) dicts, so they report alongside schema errors
instead of waiting for the schema to pass: every problem at once, each with its YAML path.
Torch-free, a leaf: what a component must check itself (task options, where a dataset is) is
named by import string and imported when needed, and every registered component that declares
an options model (registry meta `options`) has its options validated against it here.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError

from .registry import DATASETS, LOSSES, MODELS, SWITCHES, is_timm_name
from .suite_schema import (
    CLASSIFICATION_METRICS,
    METRIC_RANGES,
    RunSettings,
    TrainCfg,
    deep_merge,
    join,
)


def _within(override: dict, parts) -> bool:
    """Whether the YAML path `parts` (keys and list indices) points into what an override sets."""
    node: Any = override
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return node is not override and not isinstance(node, (dict, list))
    return True


def _in_override(override: dict, path: str) -> bool:
    """Whether a dotted YAML path points into what an arm's override sets."""
    return _within(override, [part.rstrip("]") for part in re.split(r"\.|\[", path)])


def _loc_parts(loc: tuple) -> list:
    """pydantic's error location as YAML keys and indices (union-branch labels dropped)."""
    return [part for part in loc if not (isinstance(part, str) and part.startswith(
        ("function-after", "literal[", "FixedEpoch", "SameAs")))]


def _path(parts: list) -> str:
    out = ""
    for part in parts:
        out = join(out, "''" if part == "" else part)  # an empty key stays visible in the path
    return out


def pydantic_problems(err: ValidationError, prefix: str = "", within: dict | None = None) -> list[tuple[str, str]]:
    """A pydantic ValidationError as [(YAML path under `prefix`, message)], one per problem;
    public so a component's own options model (task_options, ...) reports like the suite.
    `within`: an override merged into the validated mapping; keep only the problems inside
    what it sets (matched on pydantic's location, so any key, even an empty one, matches)."""
    out = []
    for e in err.errors():
        parts = _loc_parts(e["loc"])
        if within is not None and not (parts and _within(within, parts)):
            continue
        loc = _path(parts)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        out.append((join(prefix, loc) if prefix and loc else (prefix or loc), msg))
    # a value that fails every union branch yields one error per branch: keep the first
    seen, uniq = set(), []
    for p, m in out:
        if (p, m) not in seen:
            seen.add((p, m))
            uniq.append((p, m))
    return uniq


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
    task = s.get("task")
    teachers = s.get("teachers") if isinstance(s.get("teachers"), dict) else {}
    probs = _data_problems(s, pre, task, check_paths, seen_paths)
    probs += _model_problems(s, pre, task, teachers, timm_names)
    probs += _teacher_problems(s, pre, teachers, check_paths)
    d = s.get("distill")
    if isinstance(d, dict):
        probs += _loss_problems(d, pre, task)
        if isinstance(d.get("teacher"), str) and d["teacher"] not in teachers:
            probs.append((f"{pre}distill.teacher", f"no teacher named {d['teacher']!r} under `teachers`"))
        probs += _switch_problems(s, d, pre, arms, arm)
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
            probs += [(f"{pre}{p}", m) for p, m in getattr(importlib.import_module(module), fn)(settings)]
    elif s.get("task_options"):
        probs.append((f"{pre}task_options", f"task {task} takes no task_options"))
    return probs


def _data_problems(s: dict, pre: str, task: Any, check_paths: bool, seen_paths: set) -> list[tuple[str, str]]:
    ds = _g(s, "data", "dataset")
    if not isinstance(ds, str):
        return []
    if ds not in DATASETS:
        return [(f"{pre}data.dataset", DATASETS.unknown(ds))]
    if isinstance(task, str) and task not in _tasks_of(DATASETS[ds]):
        return [(f"{pre}data.dataset", f"{ds!r} is a dataset for {'/'.join(_tasks_of(DATASETS[ds]))}, not {task}")]
    if kw_probs := _data_kwargs_problems(ds, _g(s, "data", "kwargs"), pre):
        return kw_probs  # where the data is depends on its kwargs: looked for once they are right
    if not check_paths:
        return []
    data = s["data"]
    key = json.dumps([ds, data.get("root"), data.get("kwargs"), data.get("download")], sort_keys=True, default=str)
    if key in seen_paths:
        return []
    seen_paths.add(key)
    ns = SimpleNamespace(dataset=ds, root=data.get("root"), download=bool(data.get("download")),
                         kwargs=data.get("kwargs") if isinstance(data.get("kwargs"), dict) else {})
    msg = data_path_problem(ns)
    return [(f"{pre}data.root", msg)] if msg else []


def _model_problems(s: dict, pre: str, task: Any, teachers: dict, timm_names: list) -> list[tuple[str, str]]:
    probs = []
    models = [(f"{pre}student", s.get("student"))]
    models += [(f"{pre}teachers.{k}.model", _g(t, "model")) for k, t in teachers.items()]
    for path, cfg in models:
        name = _g(cfg, "name")
        if not isinstance(name, str):
            continue
        if is_timm_name(name):
            timm_names.append((re.sub(r"^arms\.[^.]+\.", "", f"{path}.name"), name[5:]))
        elif name not in MODELS:
            same = [n for n in MODELS.names() if task in _tasks_of(MODELS[n])]
            probs.append((f"{path}.name", f"unknown model {name!r}; registered for {task}: {', '.join(same)} "
                          "(or timm:<name>)"))
        elif isinstance(task, str) and task not in _tasks_of(MODELS[name]):
            probs.append((f"{path}.name", f"{name!r} is a model for {'/'.join(_tasks_of(MODELS[name]))}, not {task}"))
        else:
            probs += options_problems(MODELS[name], _g(cfg, "kwargs", default={}), f"{path}.kwargs")
    return probs


def _teacher_problems(s: dict, pre: str, teachers: dict, check_paths: bool) -> list[tuple[str, str]]:
    probs = []
    for k, t in teachers.items():
        ck = _g(t, "checkpoint")
        if isinstance(ck, str) and check_paths and not Path(ck).is_file():
            probs.append((f"{pre}teachers.{k}.checkpoint", f"file not found: {ck}"))
        if isinstance(s.get("train"), dict) and isinstance(_g(t, "train"), dict):
            try:
                TrainCfg.model_validate(deep_merge(s["train"], t["train"]))
            except ValidationError as e:
                # only the keys this teacher overrides: the suite's own train reports where it stands
                probs += pydantic_problems(e, f"{pre}teachers.{k}.train", within=t["train"])
    return probs


def _loss_problems(d: dict, pre: str, task: Any) -> list[tuple[str, str]]:
    loss = d.get("loss", "kd")
    if not isinstance(loss, str):
        return []
    if loss not in LOSSES:
        return [(f"{pre}distill.loss", LOSSES.unknown(loss))]
    entry, probs = LOSSES[loss], []
    if isinstance(task, str) and task not in _tasks_of(entry):
        probs.append((f"{pre}distill.loss", f"{loss!r} is a loss for {'/'.join(_tasks_of(entry))}, not {task}"))
    if entry.meta.get("needs_teacher") and d.get("teacher") is None:
        probs.append((f"{pre}distill.teacher", f"loss {loss!r} needs a teacher"))
    probs += options_problems(entry, d.get("kwargs") or {}, f"{pre}distill.kwargs")
    if d.get("beta") is not None and not entry.meta.get("reads_beta"):
        # only losses registered with reads_beta use the det/mse + beta*kd form
        probs.append((f"{pre}distill.beta", f"loss {loss!r} does not read beta (it mixes with alpha); "
                      "remove beta"))
    if "tfkd_a" in d and loss != "tfkd":
        probs.append((f"{pre}distill.tfkd_a", f"tfkd_a is an option of the tfkd loss only; loss {loss!r} would ignore it"))
    return probs


def options_problems(entry, options: Any, path: str) -> list[tuple[str, str]]:
    """The options a suite gives a registered component (a mapping at `path`) checked against
    the pydantic model the component declares (registry meta `options`); none declared: not
    checked here (a model's constructor arguments are then checked by `validate --deep`)."""
    try:
        model = entry.options_model()
    except Exception as e:  # noqa: BLE001 - a plugin's broken declaration is a problem, not a traceback
        return [(path, f"{entry.title()}: its options model does not load: {type(e).__name__}: {e}")]
    if model is None or not isinstance(options, dict):
        return []
    try:
        model.model_validate(options)
    except ValidationError as e:
        known = ", ".join(model.model_fields) or "none"
        return [(p, f"{entry.title()} has no option {p.rsplit('.', 1)[-1]!r} (its options: {known})"
                 if m == "unknown key" else m) for p, m in pydantic_problems(e, path)]
    return []


def _switch_problems(s: dict, d: dict, pre: str, arms: dict[str, dict], arm: str) -> list[tuple[str, str]]:
    """What a switch rule needs (a teacher, a held-out split) and the built-in rules' own
    checks; the rule's name and options are checked by the schema (suite_schema.parse_switch)."""
    switch = d.get("switch", "surpass_teacher")
    name = switch if isinstance(switch, str) else next(iter(switch)) if isinstance(switch, dict) and len(switch) == 1 else None
    if not isinstance(name, str) or name not in SWITCHES:
        return []
    probs, meta = [], SWITCHES[name].meta
    if meta.get("needs_teacher") and d.get("teacher") is None:
        probs.append((f"{pre}distill.switch", f"{name} needs a teacher"))
    if meta.get("uses_holdout") and _g(s, "data", "holdout", default=1000) == 0:
        probs.append((f"{pre}data.holdout", f"{name} decides on the held-out split: holdout must be > 0"))
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


def data_path_problem(data: Any) -> str | None:
    """Where a dataset should be and is not (`data`: a DataCfg or anything with its fields);
    None when it is there (or synthetic)."""
    module, _, fn = DATA_PATH_CHECK.partition(":")
    return getattr(importlib.import_module(module), fn)(data)

