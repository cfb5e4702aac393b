"""Speedup of each arm over the baseline: time-to-threshold ratios over paired seeds, their
intervals and the verdicts read from them. Pure: crossing tables in, DataFrames out.

Randomness: each bootstrap (one per arm-vs-baseline comparison) uses a fresh
``numpy.random.default_rng(seed)``, so an arm's interval does not depend on which other arms
exist, and the sweep and the headline share resamples.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.analysis.calibration import holds, min_calibrated_n, too_few
from benchmark.analysis.crossing import restricted_mean
from benchmark.analysis.load import ResultsError
from benchmark.analysis.stats import (
    BOOTSTRAP_METHODS,
    DEFAULT_CI_METHOD,
    MIN_SEEDS_FOR_CI,
    holm,
    p_sooner,
    ratio_interval,
    resample_counts,
    safe_ratio,
)

BASELINE = "baseline"
SWEEP_POINTS = 41
SUMMARY_COLUMNS = [
    "suite", "arm", "baseline", "metric", "direction", "threshold", "post_hoc", "unit",
    "headline", "n_seeds", "n_censored_arm", "n_censored_base", "mean_time_arm",
    "mean_time_base", "point", "ci_low", "ci_high", "ci_method", "reps", "bound", "p_sooner",
    "tau", "rmst_arm", "rmst_base", "rmst_ratio", "per_seed_ratios", "p_value", "p_holm",
    "verdict_pointwise", "verdict", "notes",
]  # fmt: skip

# The plain-words reading of one speedup row. summary.csv `verdict_pointwise`: its own 95%
# interval; `verdict`: the same, read with the arm's other pre-registered thresholds in that
# unit as one family (Holm), which is what the verdict lines and table show.
SOONER, SLOWER, NO_DIFF = "sooner", "slower", "no clear difference"
CENSORED, FEW_SEEDS, NA, NO_CI = "inconclusive (censored)", "too few seeds", "n/a", "CI n/a"
UNCALIBRATED = "uncalibrated CI"
FAMILY_ALPHA = 0.05
VERDICT_RULE = (
    "Read mechanically from the tables below: 'sooner' / 'slower' where the 95% interval of "
    "the speedup excludes 1 (and censoring cannot overturn it) and, with the arm's other "
    "pre-registered thresholds in the same unit as one family, its test of 'speedup = 1' "
    "survives Holm's correction at family level 0.05 (post hoc thresholds: pointwise, "
    "exploratory); 'no clear difference' otherwise; 'too few seeds' where the interval is "
    "not calibrated at that number of paired seeds (e.g. '3 seeds: too few for a calibrated "
    "interval'), so no verdict is given. Arms and units are not corrected against each "
    "other. Final quality: the paired delta's 95% CI against 0."
)




def is_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def resolve_thresholds(
    preregistered: list[float], requested: list[float] | None
) -> tuple[list[float], list[bool]]:
    """Thresholds to report and whether each is post hoc.

    The pre-registered thresholds (suite.lock.json) are always reported, so choosing other
    thresholds cannot hide them; requested ones not among them are appended, flagged post hoc.
    """
    out, flags = [float(t) for t in preregistered], [False] * len(preregistered)
    for t in requested or []:
        if not any(is_close(float(t), p) for p in out):
            out.append(float(t))
            flags.append(True)
    return out, flags


def sweep_grid(
    evals: pd.DataFrame,
    runs: pd.DataFrame,
    metric: str,
    direction: str,
    thresholds: list[float],
    points: int = SWEEP_POINTS,
) -> np.ndarray:
    """Fine grid of thresholds between the lowest informative level and the highest level
    every arm reaches.

    Low end: the best first-evaluation value over runs (below it every run crosses at its
    first evaluation, so the speedup there only reflects the evaluation schedule). High end:
    the hardest level every arm reaches, an arm reaching a level when at least half of its
    runs do (median over its runs of each run's best value; runs with status complete if
    any, else all), so a few censored seeds do not empty the sweep; they show up as bounds.
    The reported thresholds inside that range are added so the sweep passes through them
    exactly. Returns (G,) ascending; empty when the range is empty.
    """
    sub = evals[(evals["split"] == "test") & (evals["metric"] == metric)]
    sub = sub[np.isfinite(sub["value"].to_numpy(float))]
    if sub.empty:
        return np.zeros(0)
    complete = set(runs.loc[runs["status"] == "complete", "run_id"])
    g = sub.sort_values(["run_id", "step"], kind="stable").groupby("run_id")["value"]
    first = g.first()
    best = g.max() if direction == "higher" else g.min()
    if complete & set(best.index):
        best = best[best.index.isin(complete)]
    arm_of = runs.set_index("run_id")["arm"]
    arm_best = best.groupby(best.index.map(arm_of)).median()
    if direction == "higher":
        lo, hi = first.max(), arm_best.min()
    else:
        lo, hi = arm_best.max(), first.min()
    if not lo < hi:
        return np.zeros(0)
    grid = np.linspace(lo, hi, points)
    extra = [t for t in thresholds if lo <= t <= hi]
    return np.unique(np.concatenate([grid, extra]))


def _bound(n_cens_arm: np.ndarray, n_cens_base: np.ndarray) -> np.ndarray:
    """'' exact, '>=' baseline censored only (true ratio is larger), '<=' arm censored only,
    '?' both censored (bounded in neither direction; use the restricted mean ratio)."""
    out = np.full(n_cens_arm.shape, "", dtype=object)
    out[(n_cens_base > 0) & (n_cens_arm == 0)] = ">="
    out[(n_cens_arm > 0) & (n_cens_base == 0)] = "<="
    out[(n_cens_arm > 0) & (n_cens_base > 0)] = "?"
    return out


def verdict(
    point: float,
    ci_low: float,
    ci_high: float,
    bound: str,
    n_seeds: int,
    method: str | None = DEFAULT_CI_METHOD,
) -> str:
    """Sooner / slower only when the 95% CI excludes 1, and censoring cannot overturn it: a
    '>=' ratio (baseline censored: the true ratio is larger) can show 'sooner' but never
    'slower', a '<=' ratio the reverse, a '?' ratio neither. No verdict where `method` does
    not hold its level at n_seeds (calibration.holds; method None skips that check): 'too
    few seeds' if it does with more seeds, 'uncalibrated CI' if it never does."""
    if not math.isfinite(point):
        return NA
    if n_seeds < MIN_SEEDS_FOR_CI:
        return FEW_SEEDS
    if method is not None and not holds(method, n_seeds):
        return FEW_SEEDS if min_calibrated_n(method) is not None else UNCALIBRATED
    if math.isnan(ci_low) or math.isnan(ci_high):  # an infinite end is a valid CI end
        return NO_CI
    if ci_low > 1 and bound in ("", ">="):
        return SOONER
    if ci_high < 1 and bound in ("", "<="):
        return SLOWER
    return NO_DIFF if bound == "" else CENSORED


def _seed_ratio_strings(seeds, bt, be, at, ae) -> list[str]:
    """Per-column 'seed:ratio;...' with the per-seed censoring direction as a prefix."""
    out = []
    r = safe_ratio(bt, at)  # 0/0: both at the first evaluation, equal (1)
    for k in range(bt.shape[1]):
        parts = []
        for i, s in enumerate(seeds):
            pre = (
                "" if be[i, k] and ae[i, k] else (">=" if ae[i, k] else ("<=" if be[i, k] else "?"))
            )
            parts.append(f"{s}:{pre}{r[i, k]:.4g}")
        out.append(";".join(parts))
    return out


def _wide(df: pd.DataFrame, seeds: list, cols: list) -> tuple:
    """One arm's crossing rows as (seeds x cols) arrays: time, event, horizon, plus each
    seed's status. Column order: thresholds ascending, then units in name order."""
    df = df[df["seed"].isin(seeds)]
    order = np.lexsort(
        (
            df["unit"].to_numpy(dtype=object).astype(str),
            df["threshold"].to_numpy(float),
            df["seed"].to_numpy(),
        )
    )
    n, k = len(seeds), len(cols)
    if len(order) != n * k:
        raise ResultsError("crossing table is not one row per run x threshold x unit")

    def get(c, dtype):
        return df[c].to_numpy(dtype=dtype)[order].reshape(n, k)

    status = df["status"].to_numpy(dtype=object)[order].reshape(n, k)[:, 0] if n else []
    return get("time", float), get("event", bool), get("horizon", float), status


def _restricted_means(bt, be, bh, bst, at, ae, ah, ast, k: int):
    """(tau, RMST arm, RMST baseline) per column. tau: the smallest horizon among the paired
    *complete* runs (all runs if none is complete), so both KM curves are observed up to it."""
    done = np.concatenate([np.asarray(bst, dtype=object) == "complete",
                           np.asarray(ast, dtype=object) == "complete"])
    hor = np.concatenate([bh, ah], axis=0)
    if done.any():
        hor = hor[done]
    tau = np.nanmin(hor, axis=0) if len(hor) else np.full(k, np.nan)
    rm_a = np.array([restricted_mean(at[:, j], ae[:, j], tau[j]) for j in range(k)])
    rm_b = np.array([restricted_mean(bt[:, j], be[:, j], tau[j]) for j in range(k)])
    return tau, rm_a, rm_b


def _notes(n_seeds: int, ci_method: str, n_ca: np.ndarray, n_cb: np.ndarray) -> list[str]:
    out = []
    for k in range(len(n_ca)):
        note = []
        if n_seeds < MIN_SEEDS_FOR_CI:
            note.append(f"CI not meaningful with {n_seeds} paired seed(s)")
        elif not holds(ci_method, n_seeds):
            note.append(too_few(n_seeds))
        if n_ca[k] or n_cb[k]:
            note.append(f"censored: {n_ca[k]} arm, {n_cb[k]} baseline")
        out.append("; ".join(note))
    return out


def compare_arm(
    cross: pd.DataFrame,
    arm: str,
    *,
    baseline: str = BASELINE,
    reps: int = 10_000,
    seed: int = 0,
    ci_method: str = DEFAULT_CI_METHOD,
    with_seed_ratios: bool = True,
    counts_cache: dict | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """Speedup of one arm over the baseline for every (threshold, unit) in ``cross``.

    cross: crossing table rows (time_to_threshold) for both arms.
    ci_method: one of stats.CI_METHODS; reps / seed / counts_cache serve the bootstrap ones.
    counts_cache: optional dict reused across calls; holds resample_counts for a fresh
        default_rng(seed) per number of seeds, i.e. exactly the draws a fresh generator
        would make, computed once.
    returns (one row per threshold x unit with the statistics columns, paired seeds). Its
    `verdict` is pointwise (this cell's own interval); analyze_suite reads the family.
    """
    arms_col = cross["arm"].to_numpy(dtype=object)
    a = cross[arms_col == arm]
    b = cross[arms_col == baseline]
    seeds = sorted(set(a["seed"]) & set(b["seed"]))
    # Column order: thresholds ascending, then units in name order (both arms come from the
    # same time_to_threshold call, so every seed has one row per column).
    ths = np.unique(b["threshold"].to_numpy(float))
    us = np.unique(b["unit"].to_numpy(dtype=object).astype(str))
    cols = [(t, u) for t in ths for u in us]
    bt, be, bh, bst = _wide(b, seeds, cols)
    at, ae, ah, ast = _wide(a, seeds, cols)

    counts = None
    if (counts_cache is not None and len(seeds) >= MIN_SEEDS_FOR_CI
            and ci_method in BOOTSTRAP_METHODS):
        key = (seed, len(seeds), reps)
        if key not in counts_cache:
            counts_cache[key] = resample_counts(np.random.default_rng(seed), len(seeds), reps)
        counts = counts_cache[key]
    # Censored runs enter at their censoring time (the budget): the interval is then one of
    # the ratio of restricted means, which bounds the true ratio ('<=' / '>=', _bound).
    res = ratio_interval(
        bt, at, np.random.default_rng(seed), method=ci_method, reps=reps, counts=counts
    )
    n_ca, n_cb = (~ae).sum(axis=0), (~be).sum(axis=0)
    tau, rm_a, rm_b = _restricted_means(bt, be, bh, bst, at, ae, ah, ast, len(cols))
    with np.errstate(invalid="ignore", divide="ignore"):
        rm_ratio = rm_b / rm_a
    out = pd.DataFrame({
        "threshold": [c[0] for c in cols], "unit": [c[1] for c in cols],
        "n_seeds": len(seeds), "n_censored_arm": n_ca, "n_censored_base": n_cb,
        "mean_time_arm": at.mean(axis=0) if len(seeds) else np.nan,
        "mean_time_base": bt.mean(axis=0) if len(seeds) else np.nan,
        "point": res.point, "ci_low": res.ci_low, "ci_high": res.ci_high,
        "bound": _bound(n_ca, n_cb), "p_sooner": p_sooner(bt, be, at, ae),
        "tau": tau, "rmst_arm": rm_a, "rmst_base": rm_b, "rmst_ratio": rm_ratio,
        "per_seed_ratios": _seed_ratio_strings(seeds, bt, be, at, ae) if with_seed_ratios
        else "",
        "p_value": res.p_value,
        "notes": _notes(len(seeds), ci_method, n_ca, n_cb),
    })  # fmt: skip
    out["verdict"] = [
        verdict(p, lo, hi, b, len(seeds), ci_method)
        for p, lo, hi, b in zip(out["point"], out["ci_low"], out["ci_high"], out["bound"])
    ]
    return out, seeds


def family_verdicts(summary: pd.DataFrame, alpha: float = FAMILY_ALPHA) -> pd.DataFrame:
    """Read each arm's pre-registered thresholds in one unit as one family.

    summary: compare_arm rows with columns arm, unit, threshold, post_hoc, p_value, bound,
    verdict (pointwise). Within each (arm, unit), the p-values of the pre-registered rows are
    Holm-adjusted (stats.holm); a pointwise 'sooner' / 'slower' stands only where the adjusted
    p is <= alpha, else it reads 'no clear difference' ('inconclusive (censored)' for a
    censored cell). Post hoc rows keep their pointwise verdict (p_holm NaN). The method's
    interval excludes 1 exactly when its own p < 1 - level, so with one threshold this is the
    pointwise verdict. returns a copy with p_holm, verdict_pointwise and verdict (family).
    """
    out = summary.copy()
    out["verdict_pointwise"] = out["verdict"]
    out["p_holm"] = np.nan
    pre = ~out["post_hoc"].astype(bool)
    for _, g in out[pre].groupby(["arm", "unit"], sort=False):
        out.loc[g.index, "p_holm"] = holm(g["p_value"].to_numpy(float))
    sig = out["p_holm"].to_numpy(float) <= alpha
    decided = out["verdict"].isin([SOONER, SLOWER]).to_numpy()
    drop = pre.to_numpy() & decided & ~sig
    out.loc[drop, "verdict"] = np.where(out.loc[drop, "bound"] == "", NO_DIFF, CENSORED)
    return out

