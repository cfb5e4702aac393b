"""The report's figures (plots.py draws them): which ones, from which tables, their titles,
file names and captions. Nothing is written here (writers.py saves them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.analysis.analyze import SuiteAnalysis
from benchmark.analysis.crossing import UNIT_LABELS
from benchmark.analysis.fmt import thr_label

# figure key -> (title, file name), in the order the reports show them
FIGURES = {
    "map": ("Speedup map", "speedup_map.png"),
    "sweep": ("Threshold sweep", "speedup_vs_threshold.png"),
    "curves": ("Learning curves", "learning_curves.png"),
    "per_seed": ("Per-seed time to the main threshold", "per_seed.png"),
    "km": ("Kaplan-Meier: time to the main threshold", "km.png"),
}
PLOT_TITLES = {k: title for k, (title, _) in FIGURES.items()}

PLOT_NOTES = {
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
        f"Threshold {thr_label(an.main_threshold, False)} (the hardest pre-registered one), "
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


def _sort_like_pandas(x: np.ndarray) -> np.ndarray:
    """The order DataFrame.sort_values(col) gives (quicksort, NaN last), on the column's own
    dtype, so the switch-off points are interpolated on exactly the arrays they were."""
    nan = pd.isna(x)
    idx = np.arange(len(x))
    return np.concatenate([idx[~nan][x[~nan].argsort(kind="quicksort")], idx[nan]])


def switch_points(curves: pd.DataFrame, runs: pd.DataFrame, x: str) -> pd.DataFrame | None:
    """Switch-off points on the learning curves: per run that switched off, its test value
    interpolated at the switch-off time (columns arm, seed, <x>, value); None if none.

    curves: one split and metric of the evaluations table; runs: load.RUN_COLUMNS."""
    sw = runs[np.isfinite(runs[f"switch_{x}"].astype(float))]
    if not len(sw):
        return None
    codes, uniques = pd.factorize(curves["run_id"].astype(object), sort=False)
    order = np.argsort(codes, kind="stable")  # each run's rows, in curve order
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    where = {rid: i for i, rid in enumerate(uniques)}
    xs_native, vals = curves[x].to_numpy(), curves["value"].to_numpy(float)
    pts = []
    for r in sw.itertuples(index=False):
        i = where.get(r.run_id)
        if i is None or bounds[i] == bounds[i + 1]:
            continue
        rows = order[bounds[i]:bounds[i + 1]]
        srt = rows[_sort_like_pandas(xs_native[rows])]
        xv = float(getattr(r, f"switch_{x}"))
        v = np.interp(xv, xs_native[srt].astype(float), vals[srt])
        pts.append({"arm": r.arm, "seed": r.seed, x: xv, "value": v})
    return pd.DataFrame(pts) if pts else None


def make_figures(an: SuiteAnalysis) -> dict[str, object]:
    """The report's figures (name -> matplotlib Figure); nothing written."""
    from benchmark.analysis import plots

    su = an.suite
    arms = an.arms
    figs: dict[str, object] = {}
    x = "step" if an.unit == "steps" else "epoch"
    curves = su.evals[(su.evals["split"] == "test") & (su.evals["metric"] == su.metric)]
    figs["curves"] = plots.plot_learning_curves(
        curves,
        metric=su.metric,
        thresholds=an.thresholds,
        post_hoc=an.post_hoc,
        switches=switch_points(curves, su.runs, x),
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
