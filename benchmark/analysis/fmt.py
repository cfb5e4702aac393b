"""Number formatting shared by every renderer (Markdown, LaTeX, HTML): one function per kind of
cell, so the three formats print the same strings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.analysis.stats import MIN_SEEDS_FOR_CI


def fmt_num(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    x = float(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def fmt_signed(x: float) -> str:
    """A change with its sign forced and no unit ('+2.1', '-0.35'); 'n/a' if not finite."""
    return "n/a" if not np.isfinite(x) else f"{x:+.4g}"


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


def thr_label(t: float, post_hoc: bool) -> str:
    return f"{t:g}" + (" (post hoc)" if post_hoc else "")


def fmt_ci(m, lo, hi, digits=4) -> str:
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



def distinct(values: pd.Series) -> str:
    """One value, or each distinct one (an arm whose runs used two builds of its teacher);
    n/a when there is none (a teacher-free arm)."""
    vals = dict.fromkeys(values.astype(float).dropna())
    return " / ".join(fmt_num(v, 4) for v in vals) if vals else "n/a"

