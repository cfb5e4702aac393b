"""One suite's analysis, as tables: ``analyze_suite`` (pure, nothing written) assembles the
speedups (speedup.py), the threshold sweep, final quality and switch-off (quality.py), the
baseline health check (health.py) and the warnings into a SuiteAnalysis, which the renderers
(markdown.py, latex.py, html.py) only format and writers.py writes.

Every number printed in report.md is a row of summary.csv / quality.csv / switch.csv /
runs.csv. summary.csv is recomputable from crossings.csv (per run x threshold x unit times),
which is recomputable from evaluations.csv (every raw evaluation row) plus the run specs
(budgets); runs.csv from evaluations.csv plus each run's status and switch-off epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.calibration import holds, min_calibrated_n, too_few
from benchmark.analysis.crossing import UNITS, WALL_UNITS, time_to_threshold
from benchmark.analysis.health import HealthResult, assess
from benchmark.analysis.load import SuiteData, find_suites, load_suite
from benchmark.analysis.options import ReportOptions
from benchmark.analysis.quality import (
    device_kinds,
    final_quality,
    noisy_seconds,
    other_device_seeds,
    provenance_warnings,
    runs_table,
    switch_table,
    teacher_device_seeds,
)
from benchmark.analysis.speedup import (
    BASELINE,
    NA,
    SUMMARY_COLUMNS,
    compare_arm,
    family_verdicts,
    is_close,
    resolve_thresholds,
    sweep_grid,
)
from benchmark.analysis.stats import MIN_SEEDS_FOR_CI

SWEEP_COLUMNS = ["arm", "threshold", "unit", "point", "ci_low", "ci_high", "bound"]


@dataclass(frozen=True)
class SuiteAnalysis:
    """Everything report.md shows, as tables; built once by analyze_suite, never changed after.

    summary:   one row per arm x threshold x unit (SUMMARY_COLUMNS).
    sweep:     one row per arm x grid threshold (headline unit) with point/CI/bound.
    crossings: one row per run x threshold x unit (crossing.time_to_threshold + post_hoc).
    quality:   one row per arm x test metric: final value mean [CI], delta vs baseline [CI].
    switch:    one row per run with a teacher: switch-off epoch/step, teacher metrics.
    per_run:   one row per run: last test value, switch-off, seconds (quality.runs_table).
    health:    the baseline health check, when a reference is named (options or the lock).
    """

    suite: SuiteData
    unit: str
    thresholds: list[float]
    post_hoc: list[bool]
    options: ReportOptions
    summary: pd.DataFrame
    sweep: pd.DataFrame
    crossings: pd.DataFrame
    quality: pd.DataFrame
    switch: pd.DataFrame
    per_run: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    health: HealthResult | None = None

    @property
    def arms(self) -> list[str]:
        """The suite's arms that have runs, in lock order."""
        present = set(self.suite.runs["arm"])
        return [a for a in self.suite.arms if a in present]

    @property
    def main_threshold(self) -> float | None:
        """The hardest pre-registered threshold (else the hardest reported one): the level a
        paper's headline is usually about, and where censoring (hence KM) matters most."""
        pre = [t for t, ph in zip(self.thresholds, self.post_hoc) if not ph] or self.thresholds
        if not pre:
            return None
        return max(pre) if self.suite.direction == "higher" else min(pre)


def _crossings(suite: SuiteData, thr, post_hoc, opts: ReportOptions):
    """(crossing table of every reported threshold in every unit, with post_hoc; crossing
    table of the sweep grid in the headline unit, or None when the grid is empty)."""
    rule = {"interpolate": opts.interpolate, "sustained": opts.sustained}
    cross = time_to_threshold(
        suite.evals, suite.runs, suite.metric, suite.direction, thr, list(UNITS), **rule
    )
    ph_map = {t: p for t, p in zip(thr, post_hoc)}
    cross["post_hoc"] = cross["threshold"].map(ph_map).astype(bool)
    grid = sweep_grid(suite.evals, suite.runs, suite.metric, suite.direction, thr)
    sweep_cross = (
        time_to_threshold(
            suite.evals, suite.runs, suite.metric, suite.direction, grid,
            [opts.headline_unit], **rule,
        )
        if len(grid)
        else None
    )  # fmt: skip
    return cross, sweep_cross


def _seconds_na(df: pd.DataFrame, other: list[int], units=WALL_UNITS,
                why: str = "ran on another device than their baseline run") -> None:
    """A ratio of wall-clock times from two machines measures the machines: n/a (in place)."""
    sec = df["unit"].isin(units)
    df.loc[sec, ["point", "ci_low", "ci_high", "rmst_ratio", "p_sooner", "p_value"]] = np.nan
    df.loc[sec, "verdict"] = NA
    df.loc[sec, "notes"] = [
        "; ".join(x for x in (n, f"n/a: seed(s) {', '.join(map(str, other))} {why}") if x)
        for n in df.loc[sec, "notes"]
    ]


def _pairing_messages(suite: SuiteData, arm: str, seeds: list, ci_method: str) -> list[str]:
    msgs = []
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
    return msgs


def _compare_arms(suite, cross, sweep_cross, compare, opts: ReportOptions, msgs: list[str]):
    """compare_arm for every arm against the baseline: (summary parts, sweep parts); the
    pairing messages are appended to msgs."""
    summ, sweeps = [], []
    cache: dict = {}
    kinds = device_kinds(suite)
    stats = {"reps": opts.reps, "seed": opts.seed, "ci_method": opts.ci_method,
             "counts_cache": cache}
    for arm in compare:
        df, seeds = compare_arm(cross, arm, **stats)
        other = other_device_seeds(suite, arm, seeds, kinds)
        if other:
            _seconds_na(df, other)
        elif t_other := teacher_device_seeds(suite, arm, seeds, kinds):
            _seconds_na(df, t_other, units=("seconds_teacher_train",),
                        why="were charged a teacher's training seconds from another device")
        df.insert(0, "arm", arm)
        summ.append(df)
        msgs += _pairing_messages(suite, arm, seeds, opts.ci_method)
        if sweep_cross is not None:
            sw, _ = compare_arm(sweep_cross, arm, with_seed_ratios=False, **stats)
            sw.insert(0, "arm", arm)
            sweeps.append(sw.drop(columns=["per_seed_ratios", "verdict"]))  # no grid verdicts
    return summ, sweeps


def _summary_table(suite, summ, thr, post_hoc, arms, opts: ReportOptions) -> pd.DataFrame:
    """The summary parts as one table (SUMMARY_COLUMNS), Holm-read per arm and unit, ordered
    by threshold (as reported), arm (as in the lock), unit (as in UNITS)."""
    ph_map = {t: p for t, p in zip(thr, post_hoc)}
    if summ:
        summary = pd.concat(summ, ignore_index=True)
        summary["post_hoc"] = summary["threshold"].map(ph_map).astype(bool)
        summary["headline"] = summary["unit"] == opts.headline_unit
        summary = family_verdicts(summary)  # Holm over each arm's thresholds per unit
    else:
        summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary["suite"], summary["baseline"] = suite.name, BASELINE
    summary["metric"], summary["direction"] = suite.metric, suite.direction
    summary["ci_method"], summary["reps"] = opts.ci_method, opts.reps
    summary = summary[SUMMARY_COLUMNS]
    if not len(summary):
        return summary
    return (
        summary.assign(
            _t=summary["threshold"].map({t: i for i, t in enumerate(thr)}),
            _a=summary["arm"].map({a: i for i, a in enumerate(arms)}),
            _u=summary["unit"].map({u: i for i, u in enumerate(UNITS)}),
        )
        .sort_values(["_t", "_a", "_u"])
        .drop(columns=["_t", "_a", "_u"])
        .reset_index(drop=True)
    )


def _censoring_messages(summary: pd.DataFrame, headline: str) -> list[str]:
    if not len(summary):
        return []
    cens = summary[
        (summary["unit"] == headline)
        & ((summary["n_censored_arm"] > 0) | (summary["n_censored_base"] > 0))
    ]
    return [
        f"threshold {r.threshold:g}, arm {r.arm}: {r.n_censored_arm} arm and "
        f"{r.n_censored_base} baseline run(s) never reached it (censored); "
        f"speedup is bounded '{r.bound or '='}', see the restricted mean"
        for r in cens.itertuples(index=False)
    ]


def _sweep_table(sweeps, suite: SuiteData, thr, post_hoc) -> pd.DataFrame:
    sweep = pd.concat(sweeps, ignore_index=True) if sweeps else pd.DataFrame(columns=SWEEP_COLUMNS)
    # The sweep's band is each grid threshold's own interval: pointwise, not simultaneous
    # (the chance that the whole curve lies inside it is lower than 95%).
    sweep["band"] = "pointwise 95%"
    if len(sweep):
        sweep["pre_registered"] = [
            any(is_close(t, p) for p in suite.thresholds) for t in sweep["threshold"]
        ]
        sweep["post_hoc"] = [
            any(is_close(t, p) for p, f in zip(thr, post_hoc) if f) for t in sweep["threshold"]
        ]
    return sweep


def _threshold_messages(thr, post_hoc) -> list[str]:
    msgs = [] if thr else ["no thresholds: the lock has none and none were given"]
    msgs += [f"threshold {t:g} is POST HOC (not pre-registered in suite.lock.json)"
             for t, ph in zip(thr, post_hoc) if ph]
    return msgs


def analyze_suite(
    suite: SuiteData, options: ReportOptions | None = None, **overrides
) -> SuiteAnalysis:
    """All tables of one suite's report, no files written.

    options: ReportOptions (default: its defaults); overrides: fields of it by name
    (``analyze_suite(data, reps=2000, unit="steps")``). unit None -> headline in epochs.
    Raises ResultsError for a bad option."""
    opts = ReportOptions.build(options, **overrides)
    headline = opts.headline_unit
    thr, post_hoc = resolve_thresholds(suite.thresholds, opts.thresholds)
    msgs = list(suite.warnings) + _threshold_messages(thr, post_hoc)
    cross, sweep_cross = _crossings(suite, thr, post_hoc, opts)
    arms = [a for a in suite.arms if a in set(suite.runs["arm"])]
    compare = [a for a in arms if a != BASELINE]
    if BASELINE not in arms:
        msgs.append(f"no '{BASELINE}' arm: no speedups computed")
        compare = []
    summ, sweeps = _compare_arms(suite, cross, sweep_cross, compare, opts, msgs)
    summary = _summary_table(suite, summ, thr, post_hoc, arms, opts)
    msgs += _censoring_messages(summary, headline)
    switch = switch_table(suite)
    msgs += provenance_warnings(suite, switch)
    if suite.runs[["teacher_train_flops", "teacher_train_s"]].isna().any(axis=None):
        msgs.append(
            "teacher training cost unknown for some runs: 'FLOPs + teacher training' and "
            "'train seconds + teacher training' speedups are NaN there"
        )
    warnings = list(dict.fromkeys(msgs))
    health = assess(suite, unit=headline, reference=opts.reference, alpha=opts.health_alpha,
                    seed=opts.seed)
    if health is not None and not health.passed:
        warnings.insert(0, health.headline())
    summary, noisy = noisy_seconds(suite, summary)
    return SuiteAnalysis(
        suite=suite,
        unit=headline,
        thresholds=thr,
        post_hoc=post_hoc,
        options=opts,
        summary=summary,
        sweep=_sweep_table(sweeps, suite, thr, post_hoc),
        crossings=cross,
        quality=final_quality(suite, reps=opts.reps, seed=opts.seed),
        switch=switch,
        per_run=runs_table(suite),
        warnings=warnings + noisy,
        health=health,
    )


def analyze(
    results_dirs: list[Path], options: ReportOptions | None = None, **overrides
) -> list[SuiteAnalysis]:
    """analyze_suite for every suite found under results_dirs (see load.find_suites)."""
    opts = ReportOptions.build(options, **overrides)
    return [analyze_suite(load_suite(p), opts) for p in find_suites(results_dirs)]


def summarize(
    results_dirs: list[Path], options: ReportOptions | None = None, **overrides
) -> pd.DataFrame:
    """The summary table (SUMMARY_COLUMNS) of every suite, concatenated; nothing written."""
    frames = [a.summary for a in analyze(results_dirs, options, **overrides) if len(a.summary)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUMMARY_COLUMNS)
