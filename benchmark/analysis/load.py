"""Load a results tree (see benchmark/contract.py) into tidy pandas tables.

Nothing here computes statistics; it only reads, validates the schema version and flattens.
Problems that make the numbers untrustworthy but not unusable (a truncated JSONL line, a run
still running, a missing teacher.json) are raised as ``ResultsWarning`` *and* recorded in
``SuiteData.warnings`` so the report can print them. Problems that make the tree unreadable
(wrong schema version, no lock file) raise ``ResultsError``.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import SCHEMA_VERSION
from benchmark.contract import METRIC_ROW_KEYS

LOCK_NAME = "suite.lock.json"

# Columns of SuiteData.evals, in order: identity, then the contract's metric row keys, then
# cumulative FLOPs and train seconds with the teacher's *training* cost charged up front (a
# constant offset per run, from its teacher.json; equal to `flops` / `train_wall_s` for runs
# without a teacher; NaN when the teacher's cost is unknown).
EVAL_COLUMNS = ("run_id", "arm", "seed", *METRIC_ROW_KEYS, "flops_teacher_train",
                "seconds_teacher_train")

RUN_COLUMNS = (
    "run_id", "arm", "seed", "status", "task", "teacher_id", "teacher_name", "distill_loss",
    "budget_epochs", "budget_steps", "train_epochs", "n_evals",
    "switch_epoch", "switch_step", "teacher_train_flops", "teacher_train_s", "teacher_device",
    "teacher_generation",
    "git_sha", "git_dirty", "device", "torch_version", "python_version", "threads",
    "started", "ended", "resumed", "lost_wall_s", "host",
)  # fmt: skip


class ResultsError(Exception):
    """A results tree that cannot be analysed (the CLI prints the message, no traceback)."""


class ResultsWarning(UserWarning):
    """Something in a results tree that the report must mention."""


@dataclass
class SuiteData:
    """Everything analysis needs from one results/<suite>/ directory.

    evals:    one row per (run, evaluation, split, metric); columns EVAL_COLUMNS.
    runs:     one row per run; columns RUN_COLUMNS (switch_* NaN when no switch_off event).
    events:   one row per event line; columns run_id, arm, seed, event, epoch, step + extras.
    teachers: teacher_id -> parsed teacher.json, plus "superseded": the teacher.json of each
              earlier build (a teacher trained again), oldest first.
    specs:    run_id -> parsed spec.json (for provenance; analysis reads only a few keys).
    """

    name: str
    path: Path
    lock: dict[str, Any]
    metric: str
    direction: str
    thresholds: list[float]
    seeds: list[int]
    arms: list[str]
    evals: pd.DataFrame
    runs: pd.DataFrame
    events: pd.DataFrame
    teachers: dict[str, dict[str, Any]] = field(default_factory=dict)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _warn(messages: list[str], message: str) -> None:
    """Record a message and warn, attributed to the first caller outside benchmark.analysis
    (however deep in this package the problem was found)."""
    messages.append(message)
    level, frame = 1, sys._getframe(0)
    while frame is not None and Path(frame.f_code.co_filename).resolve().parent == _HERE:
        level, frame = level + 1, frame.f_back
    warnings.warn(message, ResultsWarning, stacklevel=level)


_HERE = Path(__file__).resolve().parent


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


def _check_schema(data: dict[str, Any], path: Path) -> None:
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version!r}, this w2s-bench reads schema_version "
            f"{SCHEMA_VERSION}; re-run with a matching w2s-bench version"
        )


def read_jsonl(path: Path, messages: list[str]) -> list[dict[str, Any]]:
    """Parse a JSONL file; a line that is not a JSON object is skipped with a warning.

    A truncated *last* line is the expected trace of a process killed mid-write; a bad line
    elsewhere is reported the same way but is more suspicious, so the message says which.
    """
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Fast path: one C-level parse of the whole file as a JSON array (any blank or broken
    # line makes it fail, and the line-by-line path below reports it).
    body = text.strip()
    if not body:
        return rows
    try:
        parsed = json.loads("[" + body.replace("\n", ",") + "]")
        if all(isinstance(r, dict) for r in parsed):
            return parsed
    except json.JSONDecodeError:
        pass
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            where = "truncated last line" if i == len(lines) - 1 else "malformed line"
            _warn(messages, f"{path}: {where} {i + 1} skipped")
            continue
        rows.append(row)
    return rows


def find_suites(results_dirs: Iterable[Path | str]) -> list[Path]:
    """Suite directories under the given paths, in a stable order.

    A path is a suite if it contains suite.lock.json; otherwise its direct children that do are
    taken. A path that is neither raises ResultsError (a typo should not produce no report).
    """
    found: list[Path] = []
    for d in results_dirs:
        d = Path(d)
        if not d.is_dir():
            raise ResultsError(f"{d}: not a directory")
        if (d / LOCK_NAME).is_file():
            found.append(d)
            continue
        children = sorted(c for c in d.iterdir() if c.is_dir() and (c / LOCK_NAME).is_file())
        if not children:
            hint = " (it has runs/ but no suite.lock.json)" if (d / "runs").is_dir() else ""
            raise ResultsError(f"{d}: no suite found{hint}")
        found.extend(children)
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _load_teachers(suite_dir: Path) -> dict[str, dict[str, Any]]:
    teachers: dict[str, dict[str, Any]] = {}
    root = suite_dir / "teachers"
    if not root.is_dir():
        return teachers
    for d in sorted(root.iterdir()):
        path = d / "teacher.json"
        if path.is_file():
            data = _read_json(path)
            _check_schema(data, path)
            # earlier builds of a teacher trained again (superseded/1, 2, ...; see runner)
            old = sorted((p for p in (d / "superseded").glob("*/teacher.json") if p.parent.name.isdigit()),
                         key=lambda p: int(p.parent.name))
            data["superseded"] = [_read_json(p) for p in old]
            # where the current build trained (its manifest): its seconds are that machine's
            man = d / "manifest.json"
            data["manifest_device"] = _read_json(man).get("device") if man.is_file() else None
            teachers[str(data.get("teacher_id", d.name))] = data
    return teachers


def teacher_build(teacher: dict[str, Any], generation: int) -> dict[str, Any]:
    """The teacher.json of one build of a teacher: the current one or a superseded one."""
    if int(teacher.get("generation", 1)) == generation:
        return teacher
    old = teacher.get("superseded") or []
    return old[generation - 1] if 0 < generation <= len(old) else {}


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _teacher_cost(spec: dict, teachers: dict, messages: list[str]) -> tuple[float, float, str | None]:
    """(FLOPs, train wall seconds, device) of training the run's teacher: 0 and None without
    one, NaN and None when unknown; device: the teacher manifest's (None if it has none)."""
    teacher = spec.get("teacher") or None
    if not teacher:
        return 0.0, 0.0, None
    teacher_id = str(teacher["id"])
    if teacher_id in teachers:
        cost = teachers[teacher_id].get("cost") or {}
        return _float(cost.get("flops")), _float(cost.get("train_wall_s")), teachers[teacher_id].get("manifest_device")
    _warn(
        messages,
        f"run {spec.get('run_id')}: teacher {teacher_id} has no teacher.json; "
        "teacher-training-charged FLOPs and seconds unknown",
    )
    return float("nan"), float("nan"), None


def _run_row(run_id: str, spec: dict, man: dict, switch: dict | None,
             t_cost: tuple[float, float, str | None]) -> dict:
    """One row of the runs table (RUN_COLUMNS) from a run's spec, manifest and switch-off;
    t_cost: its teacher's training (FLOPs, seconds, device)."""
    teacher = spec.get("teacher") or None
    teacher_id = str(teacher["id"]) if teacher else None
    git = man.get("git") or {}
    versions = man.get("versions") or {}
    budget = spec.get("budget") or {}
    return {
        "run_id": run_id, "arm": str(spec["arm"]), "seed": int(spec["seed"]),
        "status": str(man.get("status", "failed")),
        "task": spec.get("task"),
        "teacher_id": teacher_id,
        "teacher_name": teacher.get("name") if teacher else None,
        # the distillation loss (None: a run without one); a teacher-free loss (tfkd) has
        # a switch-off but no teacher
        "distill_loss": (spec.get("distill") or {}).get("loss"),
        "budget_epochs": _float(budget.get("epochs")),
        "budget_steps": _float(budget.get("steps")),
        "train_epochs": _float((spec.get("train") or {}).get("epochs")),
        "n_evals": 0,
        "switch_epoch": _float(switch.get("epoch")) if switch else float("nan"),
        "switch_step": _float(switch.get("step")) if switch else float("nan"),
        "teacher_train_flops": t_cost[0],
        "teacher_train_s": t_cost[1],
        "teacher_device": t_cost[2],
        # the build(s) of the teacher this run learned from; runs from before builds were
        # recorded used the first one
        "teacher_generation": (",".join(str(g) for g in man.get("teacher_generations") or [1])
                               if teacher_id else None),
        "git_sha": git.get("sha"), "git_dirty": git.get("dirty"),
        "device": man.get("device"),
        "torch_version": versions.get("torch"), "python_version": versions.get("python"),
        "threads": man.get("threads"),
        "started": man.get("started"), "ended": man.get("ended"),
        "resumed": man.get("resumed"), "lost_wall_s": man.get("lost_wall_s"),
        "host": man.get("host"),
    }  # fmt: skip


def _read_run(rd: Path, teachers: dict, messages: list[str]):
    """(spec, runs-table row, metric rows, events) of one run directory; None (with a
    warning) when it has no spec.json."""
    spec_path, man_path = rd / "spec.json", rd / "manifest.json"
    if not spec_path.is_file():
        _warn(messages, f"{rd}: no spec.json, directory ignored")
        return None
    spec = _read_json(spec_path)
    _check_schema(spec, spec_path)
    if man_path.is_file():
        man = _read_json(man_path)
        _check_schema(man, man_path)
    else:
        _warn(messages, f"{rd}: no manifest.json, status taken as 'failed'")
        man = {"status": "failed"}
    run_id = str(spec.get("run_id", rd.name))
    t_cost = _teacher_cost({**spec, "run_id": run_id}, teachers, messages)
    rows = read_jsonl(rd / "metrics.jsonl", messages)
    events = read_jsonl(rd / "events.jsonl", messages)
    switch = next((e for e in events if e.get("event") == "switch_off"), None)
    return spec, _run_row(run_id, spec, man, switch, t_cost), rows, events


def _evals_frame(all_rows: list[dict], ids: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """The tidy evaluations table (EVAL_COLUMNS order aside), sorted by run, step, epoch;
    fills runs["n_evals"] (in place)."""
    evals = pd.DataFrame.from_records(all_rows, columns=list(METRIC_ROW_KEYS))
    for i, (k, v) in enumerate(ids.items()):
        evals.insert(i, k, v)
    evals["seed"] = evals["seed"].astype(int)
    for col in ("epoch", "train_wall_s", "eval_wall_s", "flops", "value"):
        evals[col] = pd.to_numeric(evals[col], errors="coerce").astype(float)
    for col in ("step", "samples"):
        evals[col] = pd.to_numeric(evals[col], errors="coerce")
    by_run = runs.set_index("run_id")
    for col, base, cost in (("flops_teacher_train", "flops", "teacher_train_flops"),
                            ("seconds_teacher_train", "train_wall_s", "teacher_train_s")):
        evals[col] = evals[base] + evals["run_id"].map(by_run[cost]).astype(float)
    # Categoricals: filtering 10^5+ rows by run/arm/split is much faster than on strings.
    for col in ("run_id", "arm", "split", "metric"):
        evals[col] = evals[col].astype("category")
    evals = evals.sort_values(["run_id", "step", "epoch"], kind="stable", ignore_index=True)
    runs["n_evals"] = (
        runs["run_id"]
        .map(evals[evals["split"] == "test"].groupby("run_id")[["step"]].nunique()["step"])
        .fillna(0)
        .astype(int)
    )
    return evals


def _dedupe_and_warn(runs: pd.DataFrame, evals: pd.DataFrame, messages: list[str]):
    """(runs, evals) with one run per (arm, seed), runs sorted by arm and seed; warns about
    duplicates and about running / failed / diverged runs."""
    # Duplicate (arm, seed): keep the most recently started run so pairing stays 1:1.
    dup = runs.duplicated(["arm", "seed"], keep=False)
    if dup.any():
        for (arm, seed), g in runs[dup].groupby(["arm", "seed"]):
            _warn(
                messages,
                f"arm {arm} seed {seed} has {len(g)} runs "
                f"({', '.join(g['run_id'])}); using the latest started",
            )
        runs = runs.sort_values("started", kind="stable", na_position="first").drop_duplicates(
            ["arm", "seed"], keep="last"
        )
        evals = evals[evals["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    runs = runs.sort_values(["arm", "seed"], kind="stable", ignore_index=True)

    bad = runs[runs["status"] == "running"]
    if len(bad):
        _warn(
            messages,
            f"{len(bad)} run(s) running (kept, censored at their last "
            f"evaluation): {', '.join(bad['run_id'])}",
        )
    # A diverged or failed run never reaches a threshold it has not reached: it is censored at
    # the budget, like a complete run that never got there (crossing.py), not at the time it
    # stopped, which would count it as a run that might still cross.
    for status in ("failed", "diverged"):
        bad = runs[runs["status"] == status]
        if len(bad):
            _warn(
                messages,
                f"{len(bad)} run(s) {status} (kept as failures: censored at the budget, never "
                f"crossing a threshold they had not reached): {', '.join(bad['run_id'])}",
            )
    return runs, evals


def load_suite(suite_dir: Path | str) -> SuiteData:
    """Read one results/<suite>/ directory. Raises ResultsError on an unreadable tree."""
    suite_dir = Path(suite_dir)
    messages: list[str] = []
    lock_path = suite_dir / LOCK_NAME
    if not lock_path.is_file():
        raise ResultsError(f"{suite_dir}: no {LOCK_NAME} (was the suite pre-registered?)")
    lock = _read_json(lock_path)
    _check_schema(lock, lock_path)
    targets = lock.get("targets") or {}
    direction = targets.get("direction")
    if direction not in ("higher", "lower"):
        raise ResultsError(f"{lock_path}: targets.direction must be 'higher' or 'lower'")
    if "metric" not in targets:
        raise ResultsError(f"{lock_path}: targets.metric missing")
    name = str(lock.get("suite", suite_dir.name))
    teachers = _load_teachers(suite_dir)

    # Columns accumulated across runs and turned into one DataFrame at the end (fast).
    ids: dict[str, list[Any]] = {"run_id": [], "arm": [], "seed": []}
    all_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    specs: dict[str, dict[str, Any]] = {}
    runs_root = suite_dir / "runs"
    run_dirs = sorted(p for p in runs_root.iterdir() if p.is_dir()) if runs_root.is_dir() else []
    for rd in run_dirs:
        got = _read_run(rd, teachers, messages)
        if got is None:
            continue
        spec, row, rows, events = got
        run_id, arm, seed = row["run_id"], row["arm"], row["seed"]
        specs[run_id] = spec
        if rows:
            ids["run_id"].extend([run_id] * len(rows))
            ids["arm"].extend([arm] * len(rows))
            ids["seed"].extend([seed] * len(rows))
            all_rows.extend(rows)
        for e in events:
            event_rows.append({"run_id": run_id, "arm": arm, "seed": seed, **e})
        run_rows.append(row)

    runs = pd.DataFrame(run_rows, columns=list(RUN_COLUMNS))
    evals = _evals_frame(all_rows, ids, runs)
    runs, evals = _dedupe_and_warn(runs, evals, messages)

    ev_cols = ["run_id", "arm", "seed", "event", "epoch", "step"]
    events_df = pd.DataFrame(event_rows)
    for c in ev_cols:
        if c not in events_df.columns:
            events_df[c] = pd.Series(dtype=object)
    events_df = events_df[ev_cols + [c for c in events_df.columns if c not in ev_cols]]

    arms = [str(a) for a in lock.get("arms") or []]
    for a in runs["arm"].unique():
        if a not in arms:
            arms.append(str(a))
    return SuiteData(
        name=name,
        path=suite_dir,
        lock=lock,
        metric=str(targets["metric"]),
        direction=str(direction),
        thresholds=[float(t) for t in targets.get("thresholds") or []],
        seeds=[int(s) for s in lock.get("seeds") or []],
        arms=arms,
        evals=evals[list(EVAL_COLUMNS)],
        runs=runs,
        events=events_df,
        teachers=teachers,
        specs=specs,
        warnings=messages,
    )
