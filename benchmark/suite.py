"""Suite YAML loading, ${ENV} expansion and validation; the public face of the suite schema.

A suite is data (DESIGN.md convention 1): `yaml.safe_load`, a strict pydantic schema where
unknown keys are errors, and `validate_dict` reports *every* problem at once with its YAML
path before any compute is spent. Nothing here imports torch. The schema is in suite_schema,
the checks it cannot express in suite_check, the expansion into run specs in spec; their
public names are importable from here as well.

Arms are a name plus overrides of the suite's settings (deep-merged), so control arms need
no schema change: `baseline: {distill: null}`, `kd_always: {distill: {switch: never}}`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import SuiteError
from .registry import plugin_problems
from .spec import (  # noqa: F401 - re-exported: benchmark.suite is the public import path
    STREAMS,
    derive_seeds,
    lock_body,
    run_spec,
    run_specs,
    sha256_json,
    teacher_spec,
)
from .suite_check import (  # noqa: F401 - re-exported
    DATA_PATH_CHECK,
    TASK_OPTION_CHECKS,
    data_path_problem,
    options_problems,
    pydantic_problems,
    semantic_problems,
)
from .suite_schema import (  # noqa: F401 - re-exported
    CLASSIFICATION_METRICS,
    METRIC_RANGES,
    SUITE_ONLY_KEYS,
    AugmentCfg,
    DataCfg,
    DistillCfg,
    EvalCfg,
    FixedEpoch,
    ModelCfg,
    OptimCfg,
    RampCfg,
    RunSettings,
    SameAs,
    ScheduleCfg,
    Strict,
    SuiteCfg,
    TargetsCfg,
    TeacherCfg,
    TrainCfg,
    deep_merge,
    join,
    parse_switch,
    switch_choice,
)

# --------------------------------------------------------------------- env expansion
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(obj: Any, path: str = "", problems: list | None = None, env=None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string; unset VAR without default is a problem."""
    env = os.environ if env is None else env
    problems = [] if problems is None else problems
    if isinstance(obj, dict):
        return {k: expand_env(v, join(path, k), problems, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [expand_env(v, join(path, i), problems, env) for i, v in enumerate(obj)]
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


def load_suite(path: str | Path, *, data_root: str | None = None, check_paths: bool = True, env=None) -> Suite:
    """Load, expand and validate a suite; raises SuiteError listing every problem."""
    raw = load_yaml(path)
    return validate_dict(raw, str(path), data_root=data_root, check_paths=check_paths, env=env)


def validate_dict(raw: dict, source: str = "<suite>", *, data_root: str | None = None,
                  check_paths: bool = True, env=None) -> Suite:
    # a plugin that failed to load is named first: what it registers is unknown below
    problems: list[tuple[str, str]] = [("plugins", m) for m in plugin_problems()]
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
            problems += pydantic_problems(e, f"arms.{arm}", within=override)
    problems += semantic_problems(raw, merged_arms, check_paths=check_paths)
    if problems:
        raise SuiteError(source, problems)
    return Suite(cfg, raw, source, arm_settings)


TASK_OPTION_CHECKS["diffusion"] = "benchmark.tasks.diffusion_options:check"
TASK_OPTION_CHECKS["detection"] = "benchmark.tasks.detection_options:check"
TASK_OPTION_CHECKS["classification"] = "benchmark.tasks.classification_options:check"
