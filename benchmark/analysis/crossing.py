"""Time to threshold per run, with right-censoring; Kaplan-Meier and restricted mean time.

Definitions (DESIGN.md, "The results contract"):

* A run's curve is its test-split evaluations of the target metric, ordered by step.
* It *reaches* a threshold at an evaluation whose value is >= threshold (direction "higher",
  accuracy / AP) or <= threshold (direction "lower", FID). NaN values never reach.
* Time to threshold is the time of the first evaluation that reaches it, in one of the units
  of UNITS. With ``sustained=k`` the crossing is the first evaluation of the first run of k
  consecutive reaching evaluations (the time the student got there *and stayed*; a trailing
  stretch shorter than k at the end of the run does not count). With ``interpolate=True`` the
  time is linearly interpolated between that evaluation and the one before it (which by
  construction does not reach), by the metric value: frac = (thr - v0) / (v1 - v0); every unit
  uses the same fraction. The first evaluation of a run is never interpolated (no bracket).
* A run that never reaches the threshold is right-censored, never dropped or imputed. Its
  censoring time is the horizon we know it did not cross by:
    - status "complete", units epochs / steps: the spec budget (budget.epochs / budget.steps);
    - status "complete", units seconds / FLOPs: the value at its last evaluation row (there is
      no budget in those units; the run stopped there);
    - status "diverged" / "failed": the budget, as for a complete run that never got there. A
      failed run never reaches the threshold, so censoring it at its divergence time would
      treat it as a run that might still cross (Kaplan-Meier would redistribute its mass to
      the runs that did) and make the arm look better for failing. In seconds / FLOPs, where
      there is no budget, its horizon is the median last-evaluation value of the complete runs
      of its arm (what the budget cost there), else of every complete run, else its own last
      evaluation;
    - status "running": the value at its last evaluation row in every unit (it has not yet
      got further than that, and may still cross).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# unit name -> column of the evaluations table. "flops" includes the teacher's forward passes
# (as logged by training); "seconds_teacher_train" / "flops_teacher_train" also charge the
# teacher's training cost (its teacher.json: seconds on the machine that trained it).
UNITS: dict[str, str] = {
    "epochs": "epoch",
    "steps": "step",
    "seconds": "train_wall_s",
    "seconds_teacher_train": "seconds_teacher_train",
    "flops": "flops",
    "flops_teacher_train": "flops_teacher_train",
}
UNIT_LABELS: dict[str, str] = {
    "epochs": "epochs",
    "steps": "steps",
    "seconds": "train seconds",
    "seconds_teacher_train": "train seconds + teacher training",
    "flops": "FLOPs",
    "flops_teacher_train": "FLOPs + teacher training",
}
# units that read a wall clock (the machine and what shared it are in the number)
WALL_UNITS = ("seconds", "seconds_teacher_train")
BUDGET_COLUMNS = {"epochs": "budget_epochs", "steps": "budget_steps"}
# Run statuses that will never reach a threshold they have not reached: censored at the budget.
FAILED_STATUSES = ("diverged", "failed")


def reaches(values: np.ndarray, threshold: np.ndarray | float, direction: str) -> np.ndarray:
    """Boolean mask: value at or past threshold. NaN -> False. Broadcasts."""
    with np.errstate(invalid="ignore"):
        if direction == "higher":
            return values >= threshold
        if direction == "lower":
            return values <= threshold
    raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")


def crossing_indices(
    values: np.ndarray, thresholds: np.ndarray, direction: str, sustained: int = 1
) -> np.ndarray:
    """Index of the first (sustained) crossing per threshold and curve.

    values:     (R, M) float, curves padded with NaN at the end.
    thresholds: (T,) float.
    returns:    (T, R) int, -1 where the curve never crosses.
    """
    values = np.asarray(values, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    if sustained < 1:
        raise ValueError("sustained must be >= 1")
    ok = reaches(values[None, :, :], thresholds[:, None, None], direction)  # (T, R, M)
    if sustained > 1:
        m = ok.shape[-1]
        if m < sustained:
            return np.full(ok.shape[:2], -1, dtype=int)
        c = np.concatenate(
            [np.zeros(ok.shape[:2] + (1,), dtype=np.int32), np.cumsum(ok, axis=-1, dtype=np.int32)],
            axis=-1,
        )
        ok = (c[..., sustained:] - c[..., :-sustained]) == sustained  # (T, R, M - k + 1)
    first = ok.argmax(axis=-1)
    return np.where(ok.any(axis=-1), first, -1)


def crossing_times(
    values: np.ndarray,
    times: np.ndarray,
    idx: np.ndarray,
    thresholds: np.ndarray,
    interpolate: bool = False,
) -> np.ndarray:
    """Crossing time given crossing indices.

    values:     (R, M) float curves (NaN-padded).
    times:      (U, R, M) float, the same evaluations in U units.
    idx:        (T, R) int from crossing_indices (-1 = not crossed).
    thresholds: (T,) float.
    returns:    (U, T, R) float, NaN where not crossed.
    """
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    r = np.arange(values.shape[0])[None, :]
    i = np.maximum(idx, 0)
    t1 = times[:, r, i]  # (U, T, R)
    out = np.where(idx[None] >= 0, t1, np.nan)
    if interpolate:
        j = np.maximum(idx - 1, 0)
        v0, v1 = values[r, j], values[r, i]  # (T, R)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (thresholds[:, None] - v0) / (v1 - v0)
        usable = (idx > 0) & np.isfinite(frac)
        frac = np.clip(np.where(usable, frac, 1.0), 0.0, 1.0)
        t0 = times[:, r, j]
        interp = t0 + frac[None] * (t1 - t0)
        out = np.where(usable[None], interp, out)
    return out


def curve_arrays(
    evals: pd.DataFrame, metric: str, units: list[str], split: str = "test"
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Pad every run's curve of (split, metric) into arrays.

    evals: the tidy evaluations table (load.EVAL_COLUMNS).
    returns run_ids (R,), values (R, M), times (U, R, M) for the given units, n (R,) number
            of evaluations per run; padding is NaN.
    """
    sub = evals[(evals["split"] == split) & (evals["metric"] == metric)]
    sub = sub.sort_values(["run_id", "step", "epoch"], kind="stable")
    run_ids = list(pd.unique(sub["run_id"]))
    if not run_ids:
        return [], np.zeros((0, 0)), np.zeros((len(units), 0, 0)), np.zeros(0, dtype=int)
    codes = pd.Categorical(sub["run_id"], categories=run_ids).codes
    pos = sub.groupby("run_id", sort=False).cumcount().to_numpy()
    n = np.bincount(codes, minlength=len(run_ids))
    r, m = len(run_ids), int(n.max())
    values = np.full((r, m), np.nan)
    values[codes, pos] = sub["value"].to_numpy(dtype=float)
    times = np.full((len(units), r, m), np.nan)
    for u, unit in enumerate(units):
        times[u, codes, pos] = sub[UNITS[unit]].to_numpy(dtype=float)
    return run_ids, values, times, n


def time_to_threshold(
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    metric: str,
    direction: str,
    thresholds: list[float] | np.ndarray,
    units: list[str] | None = None,
    *,
    interpolate: bool = False,
    sustained: int = 1,
) -> pd.DataFrame:
    """Tidy crossing table: one row per run x threshold x unit.

    Columns: run_id, arm, seed, status, threshold, unit, time (crossing time, or the censoring
    time when not crossed), event (True = crossed), horizon (the censoring time the run would
    have if it had not crossed; used as the restricted-mean horizon).
    Runs with no test evaluation of the metric are censored at time 0 with horizon 0.
    """
    units = list(UNITS) if units is None else list(units)
    thr = np.asarray(thresholds, dtype=float)
    run_ids, values, times, n = curve_arrays(evals, metric, units)
    runs_i = runs.set_index("run_id")
    missing = [rid for rid in runs["run_id"] if rid not in set(run_ids)]
    all_ids = run_ids + missing
    R = len(all_ids)
    if run_ids:
        idx = crossing_indices(values, thr, direction, sustained)
        t = crossing_times(values, times, idx, thr, interpolate)  # (U, T, R0)
        last = times[:, np.arange(len(run_ids)), n - 1]  # (U, R0)
    else:
        t = np.zeros((len(units), len(thr), 0))
        last = np.zeros((len(units), 0))
    t = np.concatenate([t, np.full((len(units), len(thr), len(missing)), np.nan)], axis=2)
    last = np.concatenate([last, np.zeros((len(units), len(missing)))], axis=1)

    status = runs_i.loc[all_ids, "status"].to_numpy()
    complete = status == "complete"
    failed = np.isin(status, FAILED_STATUSES)
    arm_of = runs_i.loc[all_ids, "arm"].to_numpy(dtype=object)
    horizon = last.copy()  # (U, R)
    for u, unit in enumerate(units):
        if unit in BUDGET_COLUMNS:
            budget = runs_i.loc[all_ids, BUDGET_COLUMNS[unit]].to_numpy(dtype=float)
            use = (complete | failed) & np.isfinite(budget)
            horizon[u] = np.where(use, budget, last[u])
        elif failed.any():
            horizon[u] = _failed_horizon(last[u], complete, failed, arm_of)
    event = np.isfinite(t)
    time = np.where(event, t, horizon[:, None, :])

    U, T = len(units), len(thr)
    out = pd.DataFrame({
        "run_id": np.tile(np.asarray(all_ids, dtype=object), U * T),
        "threshold": np.tile(np.repeat(thr, R), U),
        "unit": np.repeat(np.asarray(units, dtype=object), T * R),
        "time": time.ravel(),
        "event": event.ravel(),
        "horizon": np.repeat(horizon[:, None, :], T, axis=1).ravel(),
    })  # fmt: skip
    meta = runs_i.loc[all_ids, ["arm", "seed", "status"]].reset_index()
    out = out.merge(meta, on="run_id", how="left", sort=False)
    return out[["run_id", "arm", "seed", "status", "threshold", "unit", "time", "event", "horizon"]]


def _failed_horizon(
    last: np.ndarray, complete: np.ndarray, failed: np.ndarray, arm: np.ndarray
) -> np.ndarray:
    """Horizons (R,) in a unit with no budget: a failed run gets the median last value of the
    complete runs of its arm, else of every complete run, else keeps its own (see the module
    doc). last, complete, failed, arm: (R,)."""
    out = last.copy()
    done = complete & np.isfinite(last)
    overall = float(np.median(last[done])) if done.any() else np.nan
    for r in np.flatnonzero(failed):
        mine = done & (arm == arm[r])
        h = float(np.median(last[mine])) if mine.any() else overall
        if np.isfinite(h):
            out[r] = max(h, last[r])  # never before the run's own last evaluation
    return out


def kaplan_meier(times: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of S(t) = P(T > t), T = time to threshold.

    times:  (n,) float, crossing or censoring times.
    events: (n,) bool, True = crossed (event), False = censored.
    returns (t, s): (k,) distinct event times ascending and S just after each; S is 1 before
            t[0]. At tied times events are counted before censorings (the usual convention:
            a run censored at t was at risk at t).
    """
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=bool)
    ok = np.isfinite(times)
    times, events = times[ok], events[ok]
    t = np.unique(times[events])
    if t.size == 0:
        return t, np.ones(0)
    at_risk = (times[None, :] >= t[:, None]).sum(axis=1)
    d = (events[None, :] & (times[None, :] == t[:, None])).sum(axis=1)
    return t, np.cumprod(1.0 - d / at_risk)


def restricted_mean(times: np.ndarray, events: np.ndarray, tau: float) -> float:
    """Restricted mean time to threshold: integral_0^tau S(t) dt (area under the KM curve).

    times, events: (n,) as in kaplan_meier; tau: horizon (e.g. the budget). Royston &
    Parmar (2013), BMC Med Res Methodol 13:152. If every run crosses before tau it equals
    the mean crossing time. Returns NaN for an empty sample or non-finite tau.
    """
    times = np.asarray(times, dtype=float)
    if times.size == 0 or not np.isfinite(tau):
        return float("nan")
    t, s = kaplan_meier(times, events)
    keep = t < tau
    t, s = t[keep], s[keep]
    knots = np.concatenate([[0.0], t, [tau]])
    heights = np.concatenate([[1.0], s])
    return float(np.sum(heights * np.diff(knots)))
