"""Baseline references for the health check (health.py): built by ``w2s-bench reference
build`` from the complete baseline runs of a suite (suites/reference/<suite>.json), read back
by the report.

A reference stores, per run, the time to every pre-registered threshold in
REFERENCE_UNITS (censored at the budget when never reached) and the final test value. The
report finds it on the command line (``--reference``) or in the suite's lock
(``resolved.reference``, recorded when the suite is run); never in the suite file, which may
have been edited since the runs (the report reads only the results contract).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import __version__
from benchmark.analysis.crossing import time_to_threshold
from benchmark.analysis.load import ResultsError, SuiteData

REFERENCE_FORMAT = "w2s-bench-baseline-reference"
REFERENCE_VERSION = 1
REFERENCE_UNITS = ("epochs", "steps", "flops")  # hardware-independent units only
BASELINE = "baseline"


def final_values(suite: SuiteData, run_ids: list[str]) -> dict[str, float]:
    """Last test evaluation of the target metric per run (NaN if none or NaN)."""
    ev = suite.evals[
        (suite.evals["split"] == "test")
        & (suite.evals["metric"] == suite.metric)
        & (suite.evals["run_id"].isin(run_ids))
    ]
    last = ev.sort_values(["run_id", "step"], kind="stable").groupby("run_id", observed=True)
    vals = last["value"].last()
    return {rid: float(vals.get(rid, np.nan)) for rid in run_ids}


def evals_of(suite: SuiteData, runs: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows of a subset of runs (run_id categories trimmed to that subset,
    as crossing.curve_arrays expects)."""
    ev = suite.evals[suite.evals["run_id"].isin(runs["run_id"])].copy()
    if isinstance(ev["run_id"].dtype, pd.CategoricalDtype):
        ev["run_id"] = ev["run_id"].cat.remove_unused_categories()
    return ev


def _describe(x: np.ndarray) -> dict[str, float | None]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return {"min": None, "median": None, "mean": None, "max": None}
    return {
        "min": float(x.min()),
        "median": float(np.median(x)),
        "mean": float(x.mean()),
        "max": float(x.max()),
    }


def build_reference(suite: SuiteData, *, arm: str = BASELINE, source: str = "") -> dict:
    """Reference dict from the complete runs of ``arm`` in a loaded suite.

    Stores per run: seed, git sha, budget, time to every pre-registered threshold in
    REFERENCE_UNITS (with reached = False and the budget / last evaluation as censoring time
    when never reached) and the final test value; plus a per-threshold distribution summary
    for people reading the file. Raises ResultsError when there is no complete run.
    """
    runs = suite.runs[(suite.runs["arm"] == arm) & (suite.runs["status"] == "complete")]
    if runs.empty:
        raise ResultsError(
            f"{suite.path}: no complete '{arm}' run to build a reference from "
            f"(statuses: {suite.runs[suite.runs['arm'] == arm]['status'].tolist()})"
        )
    if not suite.thresholds:
        raise ResultsError(f"{suite.path}: suite.lock.json has no thresholds")
    units = list(REFERENCE_UNITS)
    cross = time_to_threshold(
        evals_of(suite, runs), runs, suite.metric, suite.direction, suite.thresholds, units
    )
    final = final_values(suite, list(runs["run_id"]))
    out_runs = []
    for r in runs.itertuples(index=False):
        c = cross[cross["run_id"] == r.run_id]
        out_runs.append(
            {
                "run_id": r.run_id,
                "seed": int(r.seed),
                "git_sha": r.git_sha,
                "budget_epochs": _none_if_nan(r.budget_epochs),
                "budget_steps": _none_if_nan(r.budget_steps),
                "final_value": _none_if_nan(final[r.run_id]),
                "time_to_threshold": [
                    {
                        "threshold": float(x.threshold),
                        "unit": str(x.unit),
                        "time": _none_if_nan(x.time),
                        "reached": bool(x.event),
                    }
                    for x in c.itertuples(index=False)
                ],
            }
        )
    dist = []
    for t in suite.thresholds:
        for u in units:
            c = cross[(cross["threshold"] == t) & (cross["unit"] == u)]
            reached = c["event"].to_numpy(bool)
            dist.append(
                {
                    "threshold": float(t),
                    "unit": u,
                    "n": int(len(c)),
                    "n_censored": int((~reached).sum()),
                    "reached": _describe(c["time"].to_numpy(float)[reached]),
                }
            )
    return {
        "format": REFERENCE_FORMAT,
        "format_version": REFERENCE_VERSION,
        "suite": suite.name,
        "suite_sha256": suite.lock.get("suite_sha256"),
        "protocol_sha256": protocol_sha256(suite),
        "arm": arm,
        "metric": suite.metric,
        "direction": suite.direction,
        "thresholds": [float(t) for t in suite.thresholds],
        "units": units,
        "crossing_rule": {"interpolate": False, "sustained": 1},
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "w2s_bench_version": __version__,
        "source": source or str(suite.path),
        "n_runs": len(out_runs),
        "runs": out_runs,
        "distribution": {
            "time_to_threshold": dist,
            "final_value": _describe(np.array([final[r] for r in runs["run_id"]], dtype=float)),
        },
    }


def protocol_sha256(suite: SuiteData) -> str | None:
    """sha256 of the lock's pre-registered protocol (``locked``: targets, seeds, recipe), which
    unlike suite_sha256 does not change when only the description or reference key does."""
    locked = suite.lock.get("locked")
    if locked is None:
        return None
    blob = json.dumps(locked, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def _none_if_nan(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def write_reference(ref: dict, path: Path) -> Path:
    """Write a reference dict as indented JSON (the only writer in this module)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(ref, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_reference(path: Path) -> dict:
    """Read and validate a reference file; ResultsError when it is not one."""
    path = Path(path)
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: cannot read reference ({e})") from e
    if not isinstance(ref, dict) or ref.get("format") != REFERENCE_FORMAT:
        raise ResultsError(f"{path}: not a w2s-bench baseline reference")
    if ref.get("format_version") != REFERENCE_VERSION:
        raise ResultsError(
            f"{path}: reference format_version {ref.get('format_version')!r}, this w2s-bench "
            f"reads {REFERENCE_VERSION}; rebuild it with `w2s-bench reference build`"
        )
    for key in ("metric", "direction", "thresholds", "runs"):
        if key not in ref:
            raise ResultsError(f"{path}: reference has no {key!r}")
    return ref


def find_reference(suite: SuiteData, explicit: Path | str | None = None) -> Path | None:
    """The reference file for a suite: ``explicit`` (CLI --reference) if given, else the
    suite's ``reference:`` key as the lock records it (resolved.reference). Never the suite
    file the lock was made from: it may have been edited since the runs, and the report of
    finished runs must not change with it (a reference built after the lock was written is
    passed with --reference, or recorded in the lock when the suite is run again). Looked up
    relative to the working directory, then to the repository root. None when neither names
    one. A named but missing file is returned as is (the check then fails, saying so)."""
    if explicit:
        return Path(explicit)
    name = (suite.lock.get("resolved") or {}).get("reference")
    if not name:
        return None
    p = Path(name)
    if p.is_absolute() or p.exists():
        return p
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root / p if (repo_root / p).exists() else p
