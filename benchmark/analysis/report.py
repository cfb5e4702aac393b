"""`w2s-bench report`: assemble the analysis of each suite and write reports/<suite>/.

Computation (``analyze_suite``, ``summarize``) is pure and returns DataFrames; ``write_report``
is the only function in benchmark.analysis that writes files. Every number printed in
report.md is a row of summary.csv / quality.csv / switch.csv, and those are recomputable
from crossings.csv (per run x threshold x unit times), which is recomputable from
evaluations.csv (every raw evaluation row) plus the run specs (budgets).

Randomness: each bootstrap (one per arm-vs-baseline comparison, one per final-quality
statistic) uses a fresh ``numpy.random.default_rng(seed)``, so an arm's interval does not
depend on which other arms exist, and the sweep and the headline share resamples.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import __version__
from benchmark.analysis.calibration import (
    METHOD_LABELS,
    holds,
    interval_statement,
    min_calibrated_n,
    too_few,
)
from benchmark.analysis.crossing import (
    FAILED_STATUSES,
    UNIT_LABELS,
    UNITS,
    restricted_mean,
    time_to_threshold,
)
from benchmark.analysis.load import ResultsError, SuiteData, find_suites, load_suite, teacher_build
from benchmark.analysis.seeds import seeds_note, seeds_table
from benchmark.analysis.stats import (
    BOOTSTRAP_METHODS,
    CI_METHODS,
    DEFAULT_CI_METHOD,
    MIN_SEEDS_FOR_CI,
    holm,
    p_sooner,
    ratio_interval,
    resample_counts,
    safe_ratio,
    t_mean,
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


@dataclass
class SuiteAnalysis:
    """Everything report.md shows, as tables.

    summary:   one row per arm x threshold x unit (SUMMARY_COLUMNS).
    sweep:     one row per arm x grid threshold (headline unit) with point/CI/bound.
    crossings: one row per run x threshold x unit (crossing.time_to_threshold + post_hoc).
    quality:   one row per arm x test metric: final value mean [CI], delta vs baseline [CI].
    switch:    one row per run with a teacher: switch-off epoch/step, teacher metrics.
    """

    suite: SuiteData
    unit: str
    thresholds: list[float]
    post_hoc: list[bool]
    options: dict[str, object]
    summary: pd.DataFrame
    sweep: pd.DataFrame
    crossings: pd.DataFrame
    quality: pd.DataFrame
    switch: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    health: object | None = None  # health.HealthResult when a baseline reference is checked

    @property
    def main_threshold(self) -> float | None:
        """The hardest pre-registered threshold (else the hardest reported one): the level a
        paper's headline is usually about, and where censoring (hence KM) matters most."""
        pre = [t for t, ph in zip(self.thresholds, self.post_hoc) if not ph] or self.thresholds
        if not pre:
            return None
        return max(pre) if self.suite.direction == "higher" else min(pre)


# --------------------------------------------------------------------------- computation


def _is_close(a: float, b: float) -> bool:
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
        if not any(_is_close(float(t), p) for p in out):
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

    def wide(df: pd.DataFrame):
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

    bt, be, bh, bst = wide(b)
    at, ae, ah, ast = wide(a)
    bst, ast = np.asarray(bst, dtype=object), np.asarray(ast, dtype=object)

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
    # Restricted-mean horizon: the smallest horizon among the paired *complete* runs (all
    # runs if none is complete), so both KM curves are observed up to tau.
    done = np.concatenate([bst == "complete", ast == "complete"])
    hor = np.concatenate([bh, ah], axis=0)
    if done.any():
        hor = hor[done]
    tau = np.nanmin(hor, axis=0) if len(hor) else np.full(len(cols), np.nan)
    rm_a = np.array([restricted_mean(at[:, k], ae[:, k], tau[k]) for k in range(len(cols))])
    rm_b = np.array([restricted_mean(bt[:, k], be[:, k], tau[k]) for k in range(len(cols))])
    with np.errstate(invalid="ignore", divide="ignore"):
        rm_ratio = rm_b / rm_a
    notes = []
    for k in range(len(cols)):
        note = []
        if len(seeds) < MIN_SEEDS_FOR_CI:
            note.append(f"CI not meaningful with {len(seeds)} paired seed(s)")
        elif not holds(ci_method, len(seeds)):
            note.append(too_few(len(seeds)))
        if n_ca[k] or n_cb[k]:
            note.append(f"censored: {n_ca[k]} arm, {n_cb[k]} baseline")
        notes.append("; ".join(note))
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
        "notes": notes,
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


FINISHED = ("complete", "diverged")  # run statuses whose last evaluation is final
QUALITY_NOTE = (
    "Last test evaluation of each finished run (complete or diverged; a run still running or "
    "stopped part way has no final value yet); mean over seeds [95% percentile bootstrap CI]; "
    "delta = arm - baseline paired by seed. Diverged and failed runs are counted next to n; "
    "one without a finite final value is left out of the mean, which then flatters its arm "
    "(survivorship: the run that failed would have scored worst)."
)


def final_quality(
    suite: SuiteData, *, reps: int = 10_000, seed: int = 0, baseline: str = BASELINE
) -> pd.DataFrame:
    """Final test value per arm and metric: mean [CI] over seeds and paired delta vs baseline.

    The final value of a run is its last test evaluation of that metric (for a diverged run
    that may be NaN; NaNs are excluded and counted in n_nan). Only finished runs (complete or
    diverged) count: a run still running, or stopped part way, has no final value yet.
    n_diverged: the arm's runs that diverged or failed; n_left_out: those of its diverged /
    failed / finished runs with no finite final value (n_nan plus failed runs), left out of
    the mean, which is then biased in the arm's favour (quality_rows says which way).
    """
    status_of = suite.runs.groupby("arm")["status"]
    n_div = status_of.apply(lambda x: int(x.isin(FAILED_STATUSES).sum()))
    n_failed = status_of.apply(lambda x: int((x == "failed").sum()))
    finished = suite.runs.loc[suite.runs["status"].isin(FINISHED), "run_id"]
    ev = suite.evals[(suite.evals["split"] == "test") & suite.evals["run_id"].isin(finished)]
    if ev.empty:
        return pd.DataFrame()
    last = (  # tail(1), not last(): last() skips NaN, and a diverged run may end on NaN
        ev.sort_values(["run_id", "step"], kind="stable")
        .groupby(["arm", "seed", "metric"], as_index=False)
        .tail(1)
    )
    rows = []

    def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
        # Student-t, not a percentile bootstrap: at 3-5 seeds the bootstrap interval of a mean
        # is too narrow (no t factor), which read small final-quality deltas as real
        return t_mean(x)

    metrics = sorted(last["metric"].unique(), key=lambda m: (m != suite.metric, m))
    for metric in metrics:
        lm = last[last["metric"] == metric]
        base = lm[lm["arm"] == baseline].set_index("seed")["value"]
        for arm in [a for a in suite.arms if a in set(lm["arm"])]:
            v = lm[lm["arm"] == arm].set_index("seed")["value"].astype(float)
            mean, lo, hi = mean_ci(v.to_numpy())
            row = {
                "arm": arm,
                "metric": metric,
                "n": int(np.isfinite(v).sum()),
                "n_nan": int((~np.isfinite(v)).sum()),
                "n_diverged": int(n_div.get(arm, 0)),
                "n_left_out": int((~np.isfinite(v)).sum()) + int(n_failed.get(arm, 0)),
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "delta": np.nan,
                "delta_ci_low": np.nan,
                "delta_ci_high": np.nan,
                "n_paired": 0,
            }
            if arm != baseline and len(base):
                common = sorted(set(v.index) & set(base.index))
                d = v.reindex(common).to_numpy(float) - base.reindex(common).to_numpy(float)
                dm, dlo, dhi = mean_ci(d)
                row.update(
                    delta=dm,
                    delta_ci_low=dlo,
                    delta_ci_high=dhi,
                    n_paired=int(np.isfinite(d).sum()),
                )
            rows.append(row)
    return pd.DataFrame(rows)


def switch_table(suite: SuiteData) -> pd.DataFrame:
    """One row per run that distils (from a teacher, or with a teacher-free loss such as
    tfkd): switch-off epoch/step (NaN = never switched) and the teacher's holdout/test value
    of the target metric (teacher.json; NaN without a teacher)."""
    runs = suite.runs[suite.runs["teacher_id"].notna() | suite.runs["distill_loss"].notna()]
    rows = []
    for r in runs.itertuples(index=False):
        m, gens = {}, None
        if not pd.isna(r.teacher_id):
            gens = str(r.teacher_generation or "1")
            # the build the run learned from (a run resumed across a rebuild: the last one)
            t = teacher_build(suite.teachers.get(r.teacher_id) or {}, int(gens.split(",")[-1]))
            m = t.get("metrics") or {}
        rows.append(
            {
                "arm": r.arm,
                "seed": r.seed,
                "run_id": r.run_id,
                "status": r.status,
                "switch_epoch": r.switch_epoch,
                "switch_step": r.switch_step,
                "teacher_id": r.teacher_id,
                "teacher_name": r.teacher_name if gens else f"none ({r.distill_loss})",
                "teacher_generation": gens,
                "teacher_holdout": (m.get("holdout") or {}).get(suite.metric, np.nan),
                "teacher_test": (m.get("test") or {}).get(suite.metric, np.nan),
            }
        )
    cols = [
        "arm",
        "seed",
        "run_id",
        "status",
        "switch_epoch",
        "switch_step",
        "teacher_id",
        "teacher_name",
        "teacher_generation",
        "teacher_holdout",
        "teacher_test",
    ]
    return pd.DataFrame(rows, columns=cols)


def provenance_warnings(suite: SuiteData, switch: pd.DataFrame) -> list[str]:
    """What a reader must know about where the runs came from: an arm whose runs learned from
    different builds of a teacher (a teacher trained again, e.g. on another CPU, is not
    bit-identical), and arms whose runs ran on other devices than their paired baseline runs
    (wall-clock seconds then compare machine speeds too; epochs, steps and FLOPs do not)."""
    out = []
    runs = suite.runs[suite.runs["status"] == "complete"]
    # switch: one row per distilling run, with the metrics of the teacher build it learned from
    done = switch[switch["status"] == "complete"]
    for arm, g in done.groupby("arm", sort=False):
        if g["teacher_generation"].nunique() < 2:
            continue
        tid = g["teacher_id"].iloc[0]
        parts = []
        for gen, gg in g.groupby("teacher_generation", sort=True):
            parts.append(
                f"seed(s) {', '.join(str(x) for x in sorted(gg['seed']))} from build {gen} (held-out "
                f"{fmt_num(gg['teacher_holdout'].iloc[0], 4)}, test {fmt_num(gg['teacher_test'].iloc[0], 4)})"
            )
        out.append(
            f"arm {arm}: runs learned from different builds of teacher {tid} (it was trained again "
            f"after its weights were lost; earlier records under teachers/{tid}/superseded/): "
            + "; ".join(parts)
        )
    for arm in dict.fromkeys(runs.loc[runs["arm"] != BASELINE, "arm"]):
        seeds = _other_device_seeds(suite, arm, sorted(set(runs.loc[runs["arm"] == arm, "seed"])))
        if seeds:
            out.append(
                f"arm {arm}: seed(s) {', '.join(map(str, seeds))} ran on another device than the "
                "baseline run of the same seed (provenance table), so its speedups in seconds are "
                "not computed (n/a); epochs, steps and FLOPs do not depend on the machine"
            )
    return out


def machine_kind(device) -> str:
    """A manifest's device without the GPU index: "cuda:3 NVIDIA H100" -> "cuda NVIDIA H100"
    (two GPUs of one model are the same kind of machine)."""
    return re.sub(r"^cuda:\d+ ", "cuda ", str(device))


def _other_device_seeds(suite: SuiteData, arm: str, seeds) -> list[int]:
    """Seeds whose `arm` run and baseline run ran on different kinds of device."""
    runs = suite.runs.drop_duplicates(["arm", "seed"], keep="last")
    dev = runs.set_index(["arm", "seed"])["device"].map(machine_kind)
    return [int(s) for s in seeds if (arm, s) in dev.index and (BASELINE, s) in dev.index
            and dev[(arm, s)] != dev[(BASELINE, s)]]


def analyze_suite(
    suite: SuiteData,
    *,
    unit: str | None = None,
    thresholds: list[float] | None = None,
    reps: int = 10_000,
    seed: int = 0,
    interpolate: bool = False,
    sustained: int = 1,
    ci_method: str = DEFAULT_CI_METHOD,
) -> SuiteAnalysis:
    """All tables of one suite's report, no files written. unit=None -> headline in epochs."""
    headline = unit or "epochs"
    if headline not in UNITS:
        raise ResultsError(f"unknown unit {headline!r}; choose from {', '.join(UNITS)}")
    if ci_method not in CI_METHODS:
        raise ResultsError(f"unknown CI method {ci_method!r}; choose from {CI_METHODS}")
    if reps < 1 or sustained < 1:
        raise ResultsError("--reps and --sustained must be >= 1")
    thr, post_hoc = resolve_thresholds(suite.thresholds, thresholds)
    msgs = list(suite.warnings)
    if not thr:
        msgs.append("no thresholds: the lock has none and none were given")
    for t, ph in zip(thr, post_hoc):
        if ph:
            msgs.append(f"threshold {t:g} is POST HOC (not pre-registered in suite.lock.json)")
    units = list(UNITS)
    cross = time_to_threshold(
        suite.evals,
        suite.runs,
        suite.metric,
        suite.direction,
        thr,
        units,
        interpolate=interpolate,
        sustained=sustained,
    )
    ph_map = {t: p for t, p in zip(thr, post_hoc)}
    cross["post_hoc"] = cross["threshold"].map(ph_map).astype(bool)

    grid = sweep_grid(suite.evals, suite.runs, suite.metric, suite.direction, thr)
    sweep_cross = (
        time_to_threshold(
            suite.evals,
            suite.runs,
            suite.metric,
            suite.direction,
            grid,
            [headline],
            interpolate=interpolate,
            sustained=sustained,
        )
        if len(grid)
        else None
    )

    arms = [a for a in suite.arms if a in set(suite.runs["arm"])]
    compare = [a for a in arms if a != BASELINE]
    summ, sweeps = [], []
    if BASELINE not in arms:
        msgs.append(f"no '{BASELINE}' arm: no speedups computed")
        compare = []
    cache: dict = {}
    for arm in compare:
        df, seeds = compare_arm(
            cross, arm, reps=reps, seed=seed, ci_method=ci_method, counts_cache=cache
        )
        other = _other_device_seeds(suite, arm, seeds)
        if other:
            # a ratio of wall-clock times from two machines measures the machines
            sec = df["unit"] == "seconds"
            df.loc[sec, ["point", "ci_low", "ci_high", "rmst_ratio", "p_sooner", "p_value"]] = np.nan
            df.loc[sec, "verdict"] = NA
            df.loc[sec, "notes"] = [
                "; ".join(x for x in (n, f"n/a: seed(s) {', '.join(map(str, other))} ran on another "
                                         "device than their baseline run") if x)
                for n in df.loc[sec, "notes"]
            ]
        df.insert(0, "arm", arm)
        summ.append(df)
        n_arm = int((suite.runs["arm"] == arm).sum())
        if len(seeds) < n_arm or len(seeds) < int((suite.runs["arm"] == BASELINE).sum()):
            msgs.append(
                f"arm {arm}: only {len(seeds)} seed(s) paired with {BASELINE}; "
                "unpaired runs are left out of its speedups"
            )
        if len(seeds) < MIN_SEEDS_FOR_CI:
            msgs.append(
                f"arm {arm}: {len(seeds)} paired seed(s) -> CI not meaningful "
                f"(need >= {MIN_SEEDS_FOR_CI})"
            )
        elif not holds(ci_method, len(seeds)):
            mn = min_calibrated_n(ci_method)
            msgs.append(
                f"arm {arm}: {too_few(len(seeds))} (the {ci_method} interval holds its 95% "
                + (f"level from {mn} paired seeds" if mn else "level at no simulated number of "
                   "seeds") + ", docs/coverage.md): no sooner/slower verdict"
            )
        if sweep_cross is not None:
            sw, _ = compare_arm(
                sweep_cross,
                arm,
                reps=reps,
                seed=seed,
                ci_method=ci_method,
                with_seed_ratios=False,
                counts_cache=cache,
            )
            sw.insert(0, "arm", arm)
            sweeps.append(sw.drop(columns=["per_seed_ratios", "verdict"]))  # no grid verdicts
    if summ:
        summary = pd.concat(summ, ignore_index=True)
        summary["post_hoc"] = summary["threshold"].map(ph_map).astype(bool)
        summary["headline"] = summary["unit"] == headline
        summary = family_verdicts(summary)  # Holm over each arm's thresholds per unit
    else:
        summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary["suite"], summary["baseline"] = suite.name, BASELINE
    summary["metric"], summary["direction"] = suite.metric, suite.direction
    summary["ci_method"], summary["reps"] = ci_method, reps
    summary = summary[SUMMARY_COLUMNS]
    # Order: threshold (as reported), arm (as in the lock), unit (as in UNITS).
    if len(summary):
        summary = (
            summary.assign(
                _t=summary["threshold"].map({t: i for i, t in enumerate(thr)}),
                _a=summary["arm"].map({a: i for i, a in enumerate(arms)}),
                _u=summary["unit"].map({u: i for i, u in enumerate(units)}),
            )
            .sort_values(["_t", "_a", "_u"])
            .drop(columns=["_t", "_a", "_u"])
            .reset_index(drop=True)
        )
        cens = summary[
            (summary["unit"] == headline)
            & ((summary["n_censored_arm"] > 0) | (summary["n_censored_base"] > 0))
        ]
        for r in cens.itertuples(index=False):
            msgs.append(
                f"threshold {r.threshold:g}, arm {r.arm}: {r.n_censored_arm} arm and "
                f"{r.n_censored_base} baseline run(s) never reached it (censored); "
                f"speedup is bounded '{r.bound or '='}', see the restricted mean"
            )
    sweep = (
        pd.concat(sweeps, ignore_index=True)
        if sweeps
        else pd.DataFrame(
            columns=["arm", "threshold", "unit", "point", "ci_low", "ci_high", "bound"]
        )
    )
    # The sweep's band is each grid threshold's own interval: pointwise, not simultaneous
    # (the chance that the whole curve lies inside it is lower than 95%).
    sweep["band"] = "pointwise 95%"
    if len(sweep):
        sweep["pre_registered"] = [
            any(_is_close(t, p) for p in suite.thresholds) for t in sweep["threshold"]
        ]
        sweep["post_hoc"] = [
            any(_is_close(t, p) for p, f in zip(thr, post_hoc) if f) for t in sweep["threshold"]
        ]
    switch = switch_table(suite)
    msgs += provenance_warnings(suite, switch)
    bad_tt = suite.runs[suite.runs["teacher_train_flops"].isna()]
    if len(bad_tt):
        msgs.append(
            "teacher training cost unknown for some runs: 'FLOPs + teacher training' "
            "speedups are NaN there"
        )
    options = {
        "unit": unit,
        "thresholds": thresholds,
        "reps": reps,
        "seed": seed,
        "interpolate": interpolate,
        "sustained": sustained,
        "ci_method": ci_method,
    }
    return SuiteAnalysis(
        suite=suite,
        unit=headline,
        thresholds=thr,
        post_hoc=post_hoc,
        options=options,
        summary=summary,
        sweep=sweep,
        crossings=cross,
        quality=final_quality(suite, reps=reps, seed=seed),
        switch=switch,
        warnings=list(dict.fromkeys(msgs)),
    )


def analyze(results_dirs: list[Path], **options) -> list[SuiteAnalysis]:
    """analyze_suite for every suite found under results_dirs (see load.find_suites)."""
    return [analyze_suite(load_suite(p), **options) for p in find_suites(results_dirs)]


def summarize(
    results_dirs: list[Path],
    *,
    unit: str | None = None,
    thresholds: list[float] | None = None,
    reps: int = 10_000,
    seed: int = 0,
    interpolate: bool = False,
    sustained: int = 1,
    ci_method: str = DEFAULT_CI_METHOD,
) -> pd.DataFrame:
    """The summary table (SUMMARY_COLUMNS) of every suite, concatenated; nothing written."""
    res = analyze(
        results_dirs,
        unit=unit,
        thresholds=thresholds,
        reps=reps,
        seed=seed,
        interpolate=interpolate,
        sustained=sustained,
        ci_method=ci_method,
    )
    frames = [a.summary for a in res if len(a.summary)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- formatting


def fmt_num(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    x = float(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def fmt_speedup(row, *, ci: bool = True, tex: bool = False) -> str:
    """'>= 2.10x [1.80, 2.40]' style: bound, point, CI (or a note when n < 3)."""
    if not np.isfinite(row.point):
        return "n/a"
    bound = {"": "", ">=": ">= ", "<=": "<= ", "?": "~ "}[row.bound]
    if tex:
        bound = {"": "", ">=": "$\\geq$ ", "<=": "$\\leq$ ", "?": "$\\sim$ "}[row.bound]
    times = "$\\times$" if tex else "x"
    s = f"{bound}{row.point:.2f}{times}"
    if ci:
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
            s += f" [{row.ci_low:.2f}, {row.ci_high:.2f}]"
        elif np.isfinite(row.ci_low) and row.ci_high == np.inf:
            # an unbounded interval (Fieller's when the arm's mean is not clearly above 0, or
            # an arm crossing at time 0) is a result, not a missing one
            inf = "$\\infty$" if tex else "inf"
            s += f" [{row.ci_low:.2f}, {inf}]"
        elif row.n_seeds < MIN_SEEDS_FOR_CI:
            # '<' in LaTeX text mode (OT1 fonts) prints an inverted exclamation mark
            s += f" (CI n/a, {'$n<3$' if tex else 'n<3'})"
    return s


def _thr_label(t: float, post_hoc: bool) -> str:
    return f"{t:g}" + (" (post hoc)" if post_hoc else "")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def clean(c: object) -> str:
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def regenerate_command(an: SuiteAnalysis, out_dir: Path) -> str:
    o = an.options
    parts = ["w2s-bench", "report", str(an.suite.path), "--out", str(out_dir)]
    if o["unit"]:
        parts += ["--unit", str(o["unit"])]
    for t in o["thresholds"] or []:
        parts += ["--threshold", f"{t:g}"]
    parts += ["--reps", str(o["reps"]), "--seed", str(o["seed"])]
    if o["interpolate"]:
        parts.append("--interpolate")
    if o["sustained"] != 1:
        parts += ["--sustained", str(o["sustained"])]
    if o["ci_method"] != DEFAULT_CI_METHOD:
        parts += ["--ci-method", str(o["ci_method"])]
    if o.get("reference"):
        parts += ["--reference", str(o["reference"])]
    return shlex.join(parts)


def headline_header(an: SuiteAnalysis) -> tuple[list[str], list[str]]:
    """Units (headline unit first) and header of the headline table (Markdown and HTML)."""
    units = [an.unit] + [u for u in UNITS if u != an.unit]
    header = [
        "Threshold",
        "Arm",
        "n",
        f"Speedup ({UNIT_LABELS[an.unit]}) [pointwise 95% CI]",
        *[UNIT_LABELS[u] for u in units[1:]],
        "P(arm sooner)",
        f"RMST ratio ({UNIT_LABELS[an.unit]})",
    ]
    return units, header


def _headline_md(an: SuiteAnalysis) -> str:
    s = an.summary
    units, header = headline_header(an)
    rows = []
    for (t, arm), g in s.groupby(["threshold", "arm"], sort=False):
        by = {r.unit: r for r in g.itertuples(index=False)}
        h = by[an.unit]
        rows.append(
            [
                _thr_label(t, h.post_hoc),
                arm,
                str(h.n_seeds),
                fmt_speedup(h),
                *[fmt_speedup(by[u]) if u in by else "n/a" for u in units[1:]],
                fmt_num(h.p_sooner, 2),
                fmt_num(h.rmst_ratio),
            ]
        )
    return _md_table(header, rows)


def verdict_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Arm x threshold rows of verdicts, one column per unit (Markdown and HTML)."""
    units, _ = headline_header(an)
    header = ["Arm", "Threshold", *[UNIT_LABELS[u] for u in units]]
    rows = []
    for arm, ga in an.summary.groupby("arm", sort=False):
        for t, g in ga.groupby("threshold", sort=False):
            by = {r.unit: r for r in g.itertuples(index=False)}
            ph = next(iter(by.values())).post_hoc
            rows.append([arm, _thr_label(t, ph), *[by[u].verdict if u in by else NA for u in units]])
    return header, rows


def verdict_table_line(an: SuiteAnalysis) -> str | None:
    """One line instead of the verdict table when every cell of it says 'too few seeds'
    (a grid of identical cells tells the reader nothing the line does not); else None."""
    _, rows = verdict_rows(an)
    cells = {c for r in rows for c in r[2:]}
    if not rows or cells != {FEW_SEEDS}:
        return None
    n = int(an.summary["n_seeds"].max()) if len(an.summary) else 0
    method = str(an.options.get("ci_method") or DEFAULT_CI_METHOD)
    mn = min_calibrated_n(method)
    why = (f"fewer than the {MIN_SEEDS_FOR_CI} a confidence interval needs" if n < MIN_SEEDS_FOR_CI
           else f"{too_few(n)}: the {method} interval holds its 95% level from {mn} paired "
           "seeds (docs/coverage.md)")
    return (
        f"All {len(rows)} rows of the verdict table (arm x threshold, every unit) read "
        f"'{FEW_SEEDS}': at most {n} paired seed(s), {why}. "
        "The point estimates are in the headline table; they are a map, not evidence."
    )


def verdict_sentences(an: SuiteAnalysis) -> list[tuple[str, str]]:
    """(arm, sentence) per arm: where it is sooner / slower in the report's unit, where other
    units disagree (e.g. once the teacher's cost is charged), and its final quality."""
    out = []
    s = an.summary
    m = an.suite.metric
    q = an.quality[an.quality["metric"] == m] if not an.quality.empty else an.quality
    for arm, g in s.groupby("arm", sort=False):
        head = g[g["unit"] == an.unit]
        n = int(head["n_seeds"].max()) if len(head) else 0
        def grouped(rows) -> str:
            groups: dict[str, list[str]] = {}
            for r in rows:
                groups.setdefault(r.verdict, []).append(f"{r.threshold:g}")
            return "; ".join(f"{v} at {', '.join(ts)}" for v, ts in groups.items())

        pre = [r for r in head.itertuples(index=False) if not r.post_hoc]
        post = [r for r in head.itertuples(index=False) if r.post_hoc]
        text = f"vs baseline, {n} paired seed(s), in {UNIT_LABELS[an.unit]}: " + (
            grouped(pre) or "no pre-registered thresholds"
        )
        if post:
            text += f" (post hoc thresholds, exploratory only: {grouped(post)})"
        differ = []
        for u in [u for u in UNITS if u != an.unit]:
            gu = dict(zip(g.loc[g["unit"] == u, "threshold"], g.loc[g["unit"] == u, "verdict"]))
            if gu and set(gu.values()) == {NA} and set(head["verdict"]) != {NA}:
                differ.append(f"{UNIT_LABELS[u]} not computed (see the warnings)")
                continue
            changed = [
                f"{_thr_label(r.threshold, r.post_hoc)} is {gu[r.threshold]}"
                for r in head.itertuples(index=False)
                if r.threshold in gu and gu[r.threshold] != r.verdict
            ]
            if changed:
                differ.append(f"in {UNIT_LABELS[u]} {', '.join(changed)}")
        if differ:
            text += "; otherwise " + "; ".join(differ)
        qa = q[q["arm"] == arm] if len(q) else q
        if len(qa):
            r = qa.iloc[0]
            d, lo, hi = float(r["delta"]), float(r["delta_ci_low"]), float(r["delta_ci_high"])
            if math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0):
                better = (lo > 0) == (an.suite.direction == "higher")
                word = "better" if better else "worse"
            else:
                word = "no clear difference" if math.isfinite(lo) else ""
            text += f". Final test {m}: {fmt_delta(d, lo, hi, m)} vs baseline" + (
                f" ({word})" if word else ""
            )
        out.append((arm, text + "."))
    return out


def censoring_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """The censoring / restricted-mean table in the report's unit (Markdown and HTML)."""
    s = an.summary[an.summary["unit"] == an.unit]
    header = [
        "Threshold", "Arm", "censored arm / base", "bound", "mean time arm", "mean time base",
        "tau", "RMST arm", "RMST base", "RMST ratio", "per-seed ratios (seed:baseline/arm)",
    ]  # fmt: skip
    rows = [
        [
            _thr_label(r.threshold, r.post_hoc),
            r.arm,
            f"{r.n_censored_arm} / {r.n_censored_base}",
            r.bound or "exact",
            fmt_num(r.mean_time_arm),
            fmt_num(r.mean_time_base),
            fmt_num(r.tau),
            fmt_num(r.rmst_arm),
            fmt_num(r.rmst_base),
            fmt_num(r.rmst_ratio),
            str(r.per_seed_ratios).replace(";", "; "),
        ]
        for r in s.itertuples(index=False)
    ]
    return header, rows


def interval_text(an: SuiteAnalysis, short: bool = False) -> str:
    """The report's statement of its interval method and that method's measured coverage at
    the numbers of paired seeds its comparisons have (calibration.interval_statement); short:
    the method and its settings only."""
    o = an.options
    method = str(o.get("ci_method") or DEFAULT_CI_METHOD)
    boot = (f" over seeds, {o['reps']} resamples, rng seed {o['seed']}"
            if method in BOOTSTRAP_METHODS else "")
    if short:
        label = METHOD_LABELS.get(method, method)
        return f"{label}{boot}; its measured coverage is in the Verdict section."
    ns = sorted({int(x) for x in an.summary["n_seeds"]}) if len(an.summary) else []
    return interval_statement(method, ns) + (f" Bootstrap: {boot.strip()}." if boot else "")


def seeds_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]], str]:
    """Header, rows and note of the 'How many seeds' table (Markdown and HTML): per arm and
    pre-registered threshold, in the report's unit, the SD of the per-seed log speedup and the
    paired seeds that would give a 95% interval within x/1.1 and 80% power at 1.2x
    (seeds.seeds_table, its assumptions in seeds.seeds_note)."""
    pre = [t for t, ph in zip(an.thresholds, an.post_hoc) if not ph]
    method = str(an.options.get("ci_method") or DEFAULT_CI_METHOD)
    mn = min_calibrated_n(method)
    arms = list(dict.fromkeys(an.summary["arm"]))
    tab = seeds_table(an.crossings, an.unit, pre, arms, baseline=BASELINE, min_seeds=mn)
    header = ["Arm", "paired seeds", *[f"{t:g}" for t in pre]]
    n_of = an.summary.groupby("arm")["n_seeds"].max()
    rows = []
    for arm, g in tab.groupby("arm", sort=False):
        cells = []
        for r in g.itertuples(index=False):
            if not np.isfinite(r.sd):
                cells.append(f"n/a ({r.pairs} uncensored pair(s))")
                continue
            nh = "n/a" if not np.isfinite(r.n_half_width) else str(int(r.n_half_width))
            npw = "n/a" if not np.isfinite(r.n_power) else str(int(r.n_power))
            cells.append(f"{r.sd:.3f}: {nh} / {npw}")
        rows.append([arm, str(int(n_of.get(arm, 0))), *cells])
    return header, rows, seeds_note(min_seeds=mn)


def _seeds_md(an: SuiteAnalysis) -> list[str]:
    header, rows, note = seeds_rows(an)
    if not rows:
        return []
    return [f"## How many seeds ({UNIT_LABELS[an.unit]})", "", note, "", _md_table(header, rows), ""]


def _censoring_md(an: SuiteAnalysis) -> str:
    return _md_table(*censoring_rows(an))


def _ci(m, lo, hi, digits=4) -> str:
    if not np.isfinite(m):
        return "n/a"
    s = f"{m:.{digits}g}"
    return s + (f" [{lo:.{digits}g}, {hi:.{digits}g}]" if np.isfinite(lo) else " (CI n/a)")


# Metrics the tasks report in percent (contract.py): a difference of two is in percentage points.
PERCENT_METRICS = ("accuracy", "top5", "AP", "AP50", "AP75")


def delta_unit(metric: str) -> str:
    """'points' (percentage points) for percent metrics, else the metric's own name (FID)."""
    return "points" if metric in PERCENT_METRICS else str(metric)


def fmt_delta(d, lo, hi, metric: str, digits: int = 4) -> str:
    """A paired difference with its sign and unit, read at a glance: '-0.44 points [-0.92,
    +0.03]'; '(CI n/a)' when there is no interval (fewer than 3 pairs)."""
    if d is None or not np.isfinite(d):
        return "n/a"
    s = f"{d:+.{digits}g} {delta_unit(metric)}"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        return s + f" [{lo:+.{digits}g}, {hi:+.{digits}g}]"
    return s + " (CI n/a)"


def _quality_n(r, suite: SuiteData) -> str:
    """The n cell of the final-quality table: finite runs, diverged/failed runs, and which way
    leaving out runs without a final value biases the mean (in the arm's favour)."""
    s = str(r.n)
    div, out = int(getattr(r, "n_diverged", 0)), int(getattr(r, "n_left_out", r.n_nan))
    extra = [f"{div} diverged/failed"] if div else []
    if out:
        way = ""
        if r.metric == suite.metric:
            way = " up" if suite.direction == "higher" else " down"
        extra.append(f"{out} without a final value left out: mean biased{way}, in the arm's favour")
    return s + (f" ({'; '.join(extra)})" if extra else "")


def quality_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the final-quality table (shared by the Markdown and HTML reports)."""
    header = ["Metric", "Arm", "n", "final test value [95% CI]", "delta vs baseline [95% CI]"]
    rows = [
        [
            r.metric,
            r.arm,
            _quality_n(r, an.suite),
            _ci(r.mean, r.ci_low, r.ci_high),
            "-" if r.arm == BASELINE
            else fmt_delta(r.delta, r.delta_ci_low, r.delta_ci_high, r.metric),
        ]
        for r in an.quality.itertuples(index=False)
    ]
    return header, rows


def _quality_md(an: SuiteAnalysis) -> str:
    if an.quality.empty:
        return "_No test evaluations._"
    return _md_table(*quality_rows(an))


def switch_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the switch-off table (shared by the Markdown and HTML reports)."""
    m = an.suite.metric
    header = ["Arm", "teacher", f"teacher holdout {m}", f"teacher test {m}", "switched",
              "median switch epoch", "median switch step", "per seed: epoch (step)"]
    rows = []
    for arm, g in an.switch.groupby("arm", sort=False):
        e = g["switch_epoch"].astype(float)
        per = "; ".join(
            f"{r.seed}: " + ("never" if not np.isfinite(r.switch_epoch)
                              else f"{r.switch_epoch:.4g} ({r.switch_step:.0f})")
            for r in g.itertuples(index=False)
        )
        rows.append([
            arm,
            ", ".join(sorted({str(x) for x in g["teacher_name"].fillna(g["teacher_id"])})),
            _distinct(g["teacher_holdout"]),
            _distinct(g["teacher_test"]),
            f"{int(np.isfinite(e).sum())}/{len(g)}",
            fmt_num(e.median(), 4),
            fmt_num(g["switch_step"].astype(float).median(), 6),
            per,
        ])
    return header, rows


def _distinct(values: pd.Series) -> str:
    """One value, or each distinct one (an arm whose runs used two builds of its teacher);
    n/a when there is none (a teacher-free arm)."""
    vals = dict.fromkeys(values.astype(float).dropna())
    return " / ".join(fmt_num(v, 4) for v in vals) if vals else "n/a"


def _switch_md(an: SuiteAnalysis) -> str:
    if an.switch.empty:
        return "_No arm distils._"
    header, rows = switch_rows(an)
    return (_md_table(header, rows) + "\n\n"
            + "Medians are over runs that switched off; 'never' = no switch_off event.")


def _provenance_md(an: SuiteAnalysis) -> str:
    header = [
        "run id",
        "arm",
        "seed",
        "status",
        "git sha",
        "dirty",
        "device",
        "torch",
        "threads",
        "resumed",
        "lost wall s",
    ]
    rows = []
    for r in an.suite.runs.itertuples(index=False):
        rows.append(
            [
                r.run_id,
                r.arm,
                str(r.seed),
                r.status,
                str(r.git_sha or "?")[:12],
                str(r.git_dirty),
                str(r.device),
                str(r.torch_version),
                str(r.threads),
                str(r.resumed),
                str(r.lost_wall_s),
            ]
        )
    return _md_table(header, rows)


_PLOT_NOTES = {
    "map": lambda an: [
        f"Every arm's speedup in {UNIT_LABELS[an.unit]} at every threshold of the headline "
        "table, with its 95% CI: blue = sooner, red = slower (colour: log2 of the speedup, "
        "saturated at 2x), grey = n/a; a black frame marks a verdict ('sooner' / 'slower': the "
        "CI excludes 1 and the test survives Holm's correction across the arm's thresholds). "
        "'<=' / '>=' / '~': censoring bounds, as in the table.",
        "",
    ],
    "sweep": lambda an: [
        f"Speedup in {UNIT_LABELS[an.unit]} over a grid from the best first-evaluation value "
        "to the worst best value over runs (the hardest level every run reaches); dotted "
        "lines: pre-registered thresholds, dashed: post hoc. Values in sweep.csv.",
        "",
    ],
    "curves": lambda an: [
        "Mean test curve per arm with a 95% t-interval over seeds (with only 2 seeds the "
        "band is their range instead); horizontal lines: thresholds (dashed = post hoc); "
        "x: switch-off points.",
        "",
    ],
    "per_seed": lambda an: [
        f"Threshold {_thr_label(an.main_threshold, False)} (the hardest pre-registered one), "
        f"in {UNIT_LABELS[an.unit]}: one dot per seed; hollow triangles: censored (never "
        "reached) at that time; bar: mean over seeds, a censored run counted at its censoring "
        "time (so a lower bound where there is one).",
        "",
    ],
    "km": lambda an: [
        "Fraction of runs that have reached the main threshold (1 - Kaplan-Meier survival); "
        "+ marks censoring; the x axis runs to the budget.",
        "",
    ],
}


def suite_description(suite: SuiteData) -> str:
    """The suite's free-text description (the latest one, as recorded in the lock)."""
    return str((suite.lock.get("resolved") or {}).get("description") or "").strip()


def render_markdown(an: SuiteAnalysis, out_dir: Path, plots: dict[str, str]) -> str:
    su = an.suite
    o = an.options
    direction = "higher is better" if su.direction == "higher" else "lower is better"
    pre = [t for t, ph in zip(an.thresholds, an.post_hoc) if not ph]
    ph = [t for t, p in zip(an.thresholds, an.post_hoc) if p]
    stamp = results_stamp(su)  # a time from the results, not the clock: no churn on rerun
    n_status = su.runs["status"].value_counts().to_dict()
    lines = [f"# w2s-bench report: {su.name}", ""]
    desc = suite_description(su)
    if desc:
        lines += [f"> {x}" if x else ">" for x in desc.splitlines()] + [""]
    if an.health is not None:
        lines += [f"**{an.health.headline()}**", ""]
        lines += [f"- {n}" for n in an.health.notes] + ([""] if an.health.notes else [])
    lines += [
        "Regenerate with:",
        "",
        f"    {regenerate_command(an, out_dir)}",
        "",
        f"Results as of {stamp['results_as_of']} (end of the last finished run; fingerprint "
        f"`{stamp['results_fingerprint']}`), reported by w2s-bench {__version__} from `{su.path}` "
        f"(suite sha256 `{su.lock.get('suite_sha256', '?')}`, locked {su.lock.get('created', '?')}).",
        f"Target metric: test **{su.metric}** ({direction}). Pre-registered thresholds: "
        f"{', '.join(f'{t:g}' for t in pre) or 'none'}."
        + (
            f" **Post hoc thresholds** (not in the lock): {', '.join(f'{t:g}' for t in ph)}."
            if ph
            else ""
        ),
        f"Runs: {len(su.runs)} ({', '.join(f'{v} {k}' for k, v in n_status.items())}); arms: "
        f"{', '.join(a for a in su.arms if a in set(su.runs['arm']))}.",
        f"Crossing rule: first test evaluation with {su.metric} "
        f"{'>=' if su.direction == 'higher' else '<='} threshold"
        + (
            f", sustained for {o['sustained']} consecutive evaluations"
            if o["sustained"] > 1
            else ""
        )
        + (", linearly interpolated between the bracketing evaluations" if o["interpolate"] else "")
        + ".",
        "",
        "## Warnings",
        "",
    ]
    lines += [f"- {w}" for w in an.warnings] or ["- none"]
    if len(an.summary):
        lines += ["", "## Verdict", "", VERDICT_RULE, "", interval_text(an), ""]
        lines += [f"- **{arm}** {x}" for arm, x in verdict_sentences(an)]
        lines += ["", verdict_table_line(an) or _md_table(*verdict_rows(an))]
    lines += [
        "",
        "## Headline: speedup over baseline",
        "",
        "Speedup = mean(baseline time to threshold) / mean(arm time to threshold) over seeds "
        "paired by seed value (> 1: the arm gets there sooner). "
        f"[pointwise 95% CI]: {interval_text(an, short=True)} FLOPs include the teacher's "
        "forward passes; 'FLOPs + teacher "
        "training' also charges the teacher's training cost. '>= x': some baseline runs never "
        "reached the threshold (censored), so the true speedup is at least x; '<= x': some arm "
        "runs were censored; '~ x': both were, the point estimate is bounded in neither "
        "direction (use the restricted mean ratio). P(arm sooner): fraction of paired seeds "
        "where the arm crossed first (undecidable pairs count 1/2). RMST ratio: ratio of "
        "restricted mean times (area under the Kaplan-Meier curve up to tau).",
        "",
        _headline_md(an) if len(an.summary) else "_No speedups (no baseline or no other arm)._",
        "",
        f"## Censoring and restricted mean time ({UNIT_LABELS[an.unit]})",
        "",
        "A run that never reaches a threshold is censored at its budget (epochs/steps, for "
        "complete runs) or at its last evaluation (seconds/FLOPs, and a run still running); "
        "a run that diverged or failed never reaches it and is censored at the budget too "
        "(in seconds/FLOPs: what its arm's complete runs spent), not where it stopped. It is "
        "never dropped. tau = the smallest horizon among "
        "the paired complete runs. Per-seed ratios are baseline/arm time, seed:ratio.",
        "",
        _censoring_md(an) if len(an.summary) else "_n/a_",
        "",
        *(_seeds_md(an) if len(an.summary) else []),
        "## Final quality",
        "",
        QUALITY_NOTE,
        "",
        _quality_md(an),
        "",
        "## Switch-off",
        "",
        _switch_md(an),
        "",
    ]
    for key, title in (
        ("map", "Speedup map"),
        ("sweep", "Threshold sweep"),
        ("curves", "Learning curves"),
        ("per_seed", "Per-seed time to the main threshold"),
        ("km", "Kaplan-Meier: time to the main threshold"),
    ):
        if key in plots:
            lines += [f"## {title}", "", *_PLOT_NOTES[key](an), f"![{title}]({plots[key]})", ""]
    lines += [
        "## Provenance",
        "",
        _provenance_md(an),
        "",
        "## Files",
        "",
        "- `summary.csv`: one row per arm x threshold x unit; every speedup above.",
        "- `crossings.csv`: time to each threshold per run and unit (event=False: censored).",
        "- `evaluations.csv`: every raw evaluation row (run_id, arm, seed, ...).",
        "- `sweep.csv`, `quality.csv`, `switch.csv`, `tables.tex` (booktabs).",
        "- `results_stamp.json`: the results this report was made from (`w2s-bench report` with "
        "no arguments skips a suite whose finished runs have not changed since).",
        "",
    ]
    return "\n".join(lines)


_TEX_ESC = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # OT1 text fonts have no < > |: they print as inverted punctuation; math mode has them
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
}


def tex_escape(s: object) -> str:
    return "".join(_TEX_ESC.get(c, c) for c in str(s))


def render_tex(an: SuiteAnalysis) -> str:
    """booktabs tables: headline speedups, final quality, switch-off."""
    out = [
        f"% w2s-bench {__version__} report for suite {tex_escape(an.suite.name)}",
        "% requires \\usepackage{booktabs}",
        "",
    ]
    units = [an.unit] + [u for u in UNITS if u != an.unit]
    if len(an.summary):
        out += [
            "\\begin{table}[t]",
            "\\centering",
            "\\small",
            "\\begin{tabular}{ll" + "c" * len(units) + "}",
            "\\toprule",
            "Threshold & Arm & " + " & ".join(tex_escape(UNIT_LABELS[u]) for u in units) + " \\\\",
            "\\midrule",
        ]
        for (t, arm), g in an.summary.groupby(["threshold", "arm"], sort=False):
            by = {r.unit: r for r in g.itertuples(index=False)}
            ph = bool(g["post_hoc"].iloc[0])
            cells = [fmt_speedup(by[u], tex=True) if u in by else "n/a" for u in units]
            dagger = "$^\\dagger$" if ph else ""
            out.append(f"{t:g}{dagger} & {tex_escape(arm)} & " + " & ".join(cells) + " \\\\")
        out += [
            "\\bottomrule",
            "\\end{tabular}",
            f"\\caption{{Speedup over baseline in time to test {tex_escape(an.suite.metric)} "
            f"threshold: ratio of mean times over paired seeds [pointwise 95\\% CI: "
            f"{tex_escape(interval_text(an, short=True).split(';')[0])}]. "
            "$\\geq$/$\\leq$: bounded by censoring."
            + (" $^\\dagger$post hoc threshold." if any(an.post_hoc) else "")
            + "}",
            "\\end{table}",
            "",
        ]
    if not an.quality.empty:
        out += [
            "\\begin{table}[t]",
            "\\centering",
            "\\small",
            "\\begin{tabular}{llrll}",
            "\\toprule",
            "Metric & Arm & $n$ & Final test [95\\% CI] & $\\Delta$ vs baseline \\\\",
            "\\midrule",
        ]
        for r in an.quality.itertuples(index=False):
            d = (
                "--" if r.arm == BASELINE
                else fmt_delta(r.delta, r.delta_ci_low, r.delta_ci_high, r.metric)
            )
            out.append(
                f"{tex_escape(r.metric)} & {tex_escape(r.arm)} & {r.n} & "
                f"{_ci(r.mean, r.ci_low, r.ci_high)} & {d} \\\\"
            )
        out += [
            "\\bottomrule",
            "\\end{tabular}",
            "\\caption{Final test quality per arm (mean over seeds).}",
            "\\end{table}",
            "",
        ]
    if not an.switch.empty:
        out += [
            "\\begin{table}[t]",
            "\\centering",
            "\\small",
            "\\begin{tabular}{lrrrr}",
            "\\toprule",
            "Arm & switched & median epoch & teacher holdout & teacher test \\\\",
            "\\midrule",
        ]
        for arm, g in an.switch.groupby("arm", sort=False):
            e = g["switch_epoch"].astype(float)
            out.append(
                f"{tex_escape(arm)} & {int(np.isfinite(e).sum())}/{len(g)} & "
                f"{fmt_num(e.median(), 4)} & "
                f"{_distinct(g['teacher_holdout'])} & "
                f"{_distinct(g['teacher_test'])} \\\\"
            )
        out += [
            "\\bottomrule",
            "\\end{tabular}",
            "\\caption{Switch-off of distillation and teacher quality.}",
            "\\end{table}",
            "",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------- figures + files


def make_figures(an: SuiteAnalysis) -> dict[str, object]:
    """The report's figures (name -> matplotlib Figure); nothing written."""
    from benchmark.analysis import plots

    su = an.suite
    arms = [a for a in su.arms if a in set(su.runs["arm"])]
    figs: dict[str, object] = {}
    x = "step" if an.unit == "steps" else "epoch"
    curves = su.evals[(su.evals["split"] == "test") & (su.evals["metric"] == su.metric)]
    sw = su.runs[np.isfinite(su.runs[f"switch_{x}"].astype(float))]
    switches = None
    if len(sw):
        pts = []
        by_run = {rid: g for rid, g in curves.groupby("run_id", observed=True, sort=False)}
        for r in sw.itertuples(index=False):
            c = by_run.get(r.run_id)
            xv = float(getattr(r, f"switch_{x}"))
            if c is not None and len(c):
                c = c.sort_values(x)
                v = np.interp(xv, c[x].to_numpy(float), c["value"].to_numpy(float))
                pts.append({"arm": r.arm, "seed": r.seed, x: xv, "value": v})
        switches = pd.DataFrame(pts) if pts else None
    figs["curves"] = plots.plot_learning_curves(
        curves,
        metric=su.metric,
        thresholds=an.thresholds,
        post_hoc=an.post_hoc,
        switches=switches,
        x=x,
        arms=arms,
    )
    if len(an.summary):
        figs["map"] = plots.plot_speedup_map(
            an.summary[an.summary["unit"] == an.unit],
            unit=an.unit,
            thresholds=an.thresholds,
            post_hoc=an.post_hoc,
            arms=arms,
        )
    if len(an.sweep):
        figs["sweep"] = plots.plot_speedup_sweep(
            an.sweep, unit=an.unit, thresholds=an.thresholds, post_hoc=an.post_hoc, arms=arms
        )
    main = an.main_threshold
    if main is not None:
        c = an.crossings[(an.crossings["unit"] == an.unit) & (an.crossings["threshold"] == main)]
        figs["per_seed"] = plots.plot_per_seed(
            c, unit=an.unit, threshold=main, arms=arms, metric=su.metric
        )
        figs["km"] = plots.plot_km(c, unit=an.unit, threshold=main, arms=arms, metric=su.metric)
    return figs


def _parse_time(s: object) -> _dt.datetime | None:
    """A manifest/lock time ('2026-11-27T17:14:04+0000') as an aware datetime; None if not."""
    try:
        return _dt.datetime.strptime(str(s), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def results_stamp(suite: SuiteData) -> dict[str, str]:
    """What a report is made from, derived from the results alone (never the clock, so a
    report regenerated from unchanged results is byte-identical):

    results_as_of:       the latest end time of a finished (complete or diverged) run, in UTC
                         ('2026-11-27 17:14 UTC'); the lock's creation time when none finished.
    results_fingerprint: sha256 (16 hex digits) of the finished runs (id, status, end), the
                         teachers' builds, the locked protocol and the suite description.
    A run still in progress changes neither: it is not a result yet.
    """
    import hashlib
    import json

    fin = suite.runs[suite.runs["status"].isin(FINISHED)]
    ends = [t for t in (_parse_time(e) for e in fin["ended"]) if t is not None]
    last = max(ends) if ends else _parse_time(suite.lock.get("created"))
    as_of = last.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if last else "?"
    body = {
        "runs": sorted([str(r.run_id), str(r.status), str(r.ended)] for r in fin.itertuples()),
        "teachers": sorted([str(k), int(v.get("generation", 1))] for k, v in suite.teachers.items()),
        "locked": suite.lock.get("locked"),
        "description": suite_description(suite),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return {"results_as_of": as_of, "results_fingerprint": digest[:16]}


STAMP_NAME = "results_stamp.json"


def report_is_current(suite: SuiteData, report_dir: Path) -> tuple[bool, str]:
    """(True, why) when report_dir/report.md was made from the suite's current results, else
    (False, why). Reads the stamp written with the report; a report from before stamps existed
    is current when no finished run ended after the minute its 'Generated ... UTC' line gives."""
    import json

    md = Path(report_dir) / "report.md"
    if not md.is_file():
        return False, "no report yet"
    stamp = results_stamp(suite)
    sp = Path(report_dir) / STAMP_NAME
    if sp.is_file():
        try:
            old = json.loads(sp.read_text(encoding="utf-8"))
        except ValueError:
            return False, f"{sp} is unreadable"
        if old.get("results_fingerprint") == stamp["results_fingerprint"]:
            return True, f"results unchanged since the report, as of {stamp['results_as_of']}"
        return False, (f"results changed: finished runs as of {stamp['results_as_of']}, report "
                       f"made from results as of {old.get('results_as_of', '?')}")
    m = re.search(r"^Generated (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", md.read_text("utf-8"), re.M)
    if not m:
        return False, "the report has no record of the results it was made from"
    made = _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=_dt.timezone.utc)
    fin = suite.runs[suite.runs["status"].isin(FINISHED)]
    ends = [t for t in (_parse_time(e) for e in fin["ended"]) if t is not None]
    newer = [t for t in ends if t >= made + _dt.timedelta(minutes=1)]
    if newer:
        return False, f"{len(newer)} run(s) finished after the report was generated"
    return True, "no run finished after the report was generated"


def find_report_suites(results_dirs: list[Path]) -> list[Path]:
    """Suite folders under each path: the path itself if it is one, its children that are, and
    the children of its children that are (results/<NAME>/<suite>, made by `run --new-results
    NAME`). A path with none raises ResultsError (load.find_suites' message)."""
    from benchmark.analysis.load import LOCK_NAME

    out: list[Path] = []
    for d in map(Path, results_dirs):
        found: list[Path] = []
        if d.is_dir() and not (d / LOCK_NAME).is_file():
            for c in sorted(p for p in d.iterdir() if p.is_dir()):
                if (c / LOCK_NAME).is_file():
                    found.append(c)
                else:
                    found += sorted(g for g in c.iterdir() if g.is_dir() and (g / LOCK_NAME).is_file())
        out += found or find_suites([d])
    return list(dict.fromkeys(out))


def report_subdir(suite_dir: Path, results_root: Path | None) -> Path:
    """Where under the output folder a suite's report goes, mirroring the results layout:
    results/<suite> -> <out>/<suite>, results/<NAME>/<suite> (run --new-results NAME) ->
    <out>/<NAME>/<suite>, so a separately named protocol never overwrites the main report.
    A suite outside results_root (any --results-dir) -> <out>/<suite>. Returns the part
    before <suite> (Path('') or Path('<NAME>'))."""
    if results_root is not None:
        try:
            rel = Path(suite_dir).resolve().relative_to(Path(results_root).resolve())
        except ValueError:
            return Path()
        return rel.parent
    return Path()


def mark_noisy_seconds(an: SuiteAnalysis) -> None:
    """Mark an arm's speedups in train seconds unreliable where a paired run's wall time per
    unit of work left the noise band of the suite's own baseline seeds (timing.noisy_pairs,
    per kind of machine): a note on its seconds rows of the summary and a warning that says to
    read epochs, steps or FLOPs. Numbers are left as computed; arms whose seconds are already
    n/a (runs on another device) are left alone."""
    from benchmark.analysis.timing import cost_rates, noisy_pairs

    s = an.summary
    rates = cost_rates(an.suite.evals, an.suite.runs)
    if rates.empty or not len(s):
        return
    rates = rates.assign(kind=rates["device"].map(machine_kind))
    rates = rates.drop_duplicates(["arm", "seed"], keep="last")
    base = rates[rates["arm"] == BASELINE]
    for arm in dict.fromkeys(s["arm"]):
        sec = (s["arm"] == arm) & (s["unit"] == "seconds")
        if not np.isfinite(s.loc[sec, "point"].astype(float)).any():
            continue
        a = rates[rates["arm"] == arm]
        found, bands = {}, []
        for (kind, per), b in base.groupby(["kind", "per"], sort=True):
            ak = a[(a["kind"] == kind) & (a["per"] == per)]
            band, ratios, flagged = noisy_pairs(dict(zip(b["seed"], b["rate"])),
                                                dict(zip(ak["seed"], ak["rate"])))
            found.update({sd: ratios[sd] for sd in flagged})
            bands.append((band, per, len(b)))
        if not found:
            continue
        band, per, nb = max(bands)
        what = ", ".join(f"seed {sd} at {q:.2f}x" for sd, q in sorted(found.items()))
        note = (f"unreliable in seconds: wall time per {'FLOP' if per == 'flop' else 'epoch'} vs "
                f"the paired baseline run {what}, outside the {band:.2f}x spread of {nb} baseline "
                "seed(s); read epochs, steps or FLOPs")
        s.loc[sec, "notes"] = [
            "; ".join(x for x in (n if isinstance(n, str) else "", note) if x)
            for n in s.loc[sec, "notes"]
        ]
        an.warnings.append(
            f"arm {arm}: speedups in train seconds are unreliable ({what} the baseline's wall time "
            f"per {'FLOP' if per == 'flop' else 'epoch'}, beyond the {band:.2f}x the baseline "
            "seeds differ among themselves: other work probably shared the machine); read the "
            "speedups in epochs, steps or FLOPs instead"
        )


def write_suite_report(an: SuiteAnalysis, out_dir: Path, *, subdir: Path | str = "") -> Path:
    """Write <out_dir>/<subdir>/<suite>/ for one analysed suite; returns the report.md path.

    Nothing written depends on the clock (times come from the results: results_stamp), so
    unchanged results give byte-identical files; results_stamp.json records what the report
    was made from, for report_is_current."""
    import json

    d = Path(out_dir) / subdir / an.suite.name
    d.mkdir(parents=True, exist_ok=True)
    an.summary.to_csv(d / "summary.csv", index=False)
    an.crossings.to_csv(d / "crossings.csv", index=False)
    an.sweep.to_csv(d / "sweep.csv", index=False)
    an.quality.to_csv(d / "quality.csv", index=False)
    an.switch.to_csv(d / "switch.csv", index=False)
    an.suite.evals.to_csv(d / "evaluations.csv", index=False)
    plots: dict[str, str] = {}
    for name, fig in make_figures(an).items():
        fname = {
            "map": "speedup_map.png",
            "curves": "learning_curves.png",
            "sweep": "speedup_vs_threshold.png",
            "per_seed": "per_seed.png",
            "km": "km.png",
        }[name]
        fig.savefig(d / fname, dpi=110)
        plots[name] = fname
    (d / "tables.tex").write_text(render_tex(an), encoding="utf-8")
    if an.health is not None:
        an.health.tests.to_csv(d / "health.csv", index=False)
        (d / "health.json").write_text(an.health.to_json(), encoding="utf-8")
    md = d / "report.md"
    md.write_text(render_markdown(an, Path(out_dir), plots), encoding="utf-8")
    from benchmark.analysis.html import render_html

    html = render_html(an, d, plots, regenerate=regenerate_command(an, Path(out_dir)))
    (d / "index.html").write_text(html, encoding="utf-8")
    stamp = {"suite": an.suite.name, **results_stamp(an.suite), "w2s_bench": __version__}
    (d / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", "utf-8")
    return md


def write_report(
    results_dirs: list[Path],
    out_dir: Path,
    *,
    unit: str | None = None,
    thresholds: list[float] | None = None,
    reps: int = 10000,
    seed: int = 0,
    interpolate: bool = False,
    sustained: int = 1,
    ci_method: str = DEFAULT_CI_METHOD,
    reference: Path | str | None = None,
    health_alpha: float = 0.05,
    tensorboard_dir: Path | str | None = None,
    mlflow_uri: str | None = None,
    results_root: Path | str | None = None,
    only_stale: bool = False,
    on_skip=None,
) -> list[Path]:
    """Analyse every suite under results_dirs and write <out_dir>/<suite>/ for each.

    reference: baseline reference JSON for the health check (default: the suite's own
        ``reference:`` key, from suite.lock.json; no check when neither names one).
    tensorboard_dir / mlflow_uri: also export every run and the summary to these trackers
        (optional extras; imported only when asked for).
    results_root: the folder `run` writes to (results/): a suite under <root>/<NAME>/ (run
        --new-results NAME) reports to <out_dir>/<NAME>/<suite>/ (report_subdir).
    only_stale: skip a suite whose report is current (report_is_current); on_skip(suite_dir,
        report_dir, why) is called for each skipped one.
    Returns the report.md paths written. Raises ResultsError for an unreadable tree or bad
    option.
    """
    from benchmark.analysis.health import assess

    written = []
    for path in find_report_suites(results_dirs):
        data = load_suite(path)
        sub = report_subdir(path, Path(results_root) if results_root is not None else None)
        if only_stale:
            current, why = report_is_current(data, Path(out_dir) / sub / data.name)
            if current:
                if on_skip is not None:
                    on_skip(path, Path(out_dir) / sub / data.name, why)
                continue
        an = analyze_suite(
            data,
            unit=unit,
            thresholds=thresholds,
            reps=reps,
            seed=seed,
            interpolate=interpolate,
            sustained=sustained,
            ci_method=ci_method,
        )
        an.options["reference"] = str(reference) if reference else None
        an.health = assess(
            an.suite, unit=an.unit, reference=reference, alpha=health_alpha, seed=seed
        )
        if an.health is not None and not an.health.passed:
            an.warnings.insert(0, an.health.headline())
        mark_noisy_seconds(an)
        written.append(write_suite_report(an, Path(out_dir), subdir=sub))
        if tensorboard_dir is not None:
            from benchmark.export.tensorboard import export_tensorboard

            export_tensorboard(an, Path(tensorboard_dir))
        if mlflow_uri is not None:
            from benchmark.export.mlflow import export_mlflow

            export_mlflow(an, mlflow_uri, report_dir=written[-1].parent)
    return written
