"""Report figures. Each function is pure: tidy tables in, matplotlib Figure out, nothing
written (report.py saves them). matplotlib is imported lazily with the Agg backend so
importing the analysis package stays cheap and works without a display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.analysis.crossing import UNIT_LABELS, kaplan_meier

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Two-sided 95% Student-t critical values for df = 1..30 (scipy is a test-only dependency);
# df > 30 uses 1.96 (within 4% of the exact value).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t975(df: np.ndarray) -> np.ndarray:
    """Two-sided 95% t critical value for integer df (array); NaN for df < 1."""
    df = np.asarray(df, dtype=int)
    table = np.array((np.nan, *_T975))
    return np.where(df > 30, 1.96, table[np.clip(df, 0, 30)])


def _figure(figsize=(7.0, 4.5)) -> tuple[Figure, object]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _colors(arms: list[str]) -> dict[str, object]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {a: cmap(i % 10) for i, a in enumerate(arms)}


def _arms(df: pd.DataFrame, arms: list[str] | None) -> list[str]:
    present = list(pd.unique(df["arm"])) if len(df) else []
    if arms is None:
        return sorted(present, key=lambda a: (a != "baseline", a))
    return [a for a in arms if a in present]


def plot_learning_curves(
    curves: pd.DataFrame,
    *,
    metric: str,
    thresholds: list[float],
    post_hoc: list[bool] | None = None,
    switches: pd.DataFrame | None = None,
    x: str = "epoch",
    arms: list[str] | None = None,
) -> Figure:
    """Mean test curve per arm with a 95% t-interval band over seeds (>= 3 seeds; with 2
    seeds the band is their min-max range, since a 1-df t-interval says nothing).

    curves:   rows with columns arm, seed, <x>, value (one split and metric).
    switches: optional rows with columns arm, seed, <x>, value: switch-off points (marked x).
    Artists: one Line2D per arm, one band (PolyCollection) per arm with >= 2 seeds, one
    horizontal line per threshold (dashed if post hoc), one scatter of switch-off points.
    """
    fig, ax = _figure()
    arms = _arms(curves, arms)
    colors = _colors(arms)
    post_hoc = post_hoc or [False] * len(thresholds)
    for arm in arms:
        sub = curves[curves["arm"] == arm]
        xs = sub[x].astype(float).round(9)
        g = sub.assign(_x=xs).groupby("_x")["value"]
        mean, sd, n = g.mean(), g.std(ddof=1), g.count()
        ax.plot(
            mean.index,
            mean.to_numpy(),
            color=colors[arm],
            label=f"{arm} (n={sub['seed'].nunique()})",
        )
        if sub["seed"].nunique() >= 3:
            half = t975(n.to_numpy() - 1) * sd.to_numpy() / np.sqrt(n.to_numpy())
            ax.fill_between(
                mean.index, mean - half, mean + half, color=colors[arm], alpha=0.2, linewidth=0
            )
        elif sub["seed"].nunique() == 2:
            # a t-interval on 2 seeds (1 df) is ~13 sd wide and meaningless: show their range
            ax.fill_between(mean.index, g.min(), g.max(), color=colors[arm], alpha=0.2, linewidth=0)
    for thr, ph in zip(thresholds, post_hoc):
        ax.axhline(thr, color="0.3", linestyle="--" if ph else ":", linewidth=1)
        ax.annotate(
            f"{thr:g}" + (" (post hoc)" if ph else ""),
            (1.0, thr),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    if switches is not None and len(switches):
        sw = switches[switches["arm"].isin(arms)]
        ax.scatter(
            sw[x].astype(float),
            sw["value"].astype(float),
            marker="x",
            color="k",
            zorder=5,
            label="switch-off",
        )
    ax.set_xlabel({"epoch": "epochs", "step": "optimizer steps"}.get(x, x))
    ax.set_ylabel(f"test {metric}")
    few = curves.groupby("arm")["seed"].nunique().min() < 3 if len(curves) else False
    ax.set_title("Learning curves (mean; band: " + ("range of 2 seeds" if few else "95% CI over seeds") + ")")
    if arms:
        ax.legend(fontsize=8)
    return fig


def plot_speedup_sweep(
    sweep: pd.DataFrame,
    *,
    unit: str,
    thresholds: list[float],
    post_hoc: list[bool] | None = None,
    arms: list[str] | None = None,
) -> Figure:
    """Speedup vs threshold per arm with its CI band.

    sweep: rows with columns arm, threshold, point, ci_low, ci_high (optional: bound).
    Artists: one Line2D per arm, a band per arm with a finite CI, a hollow-circle scatter per
    arm over the points bounded by censoring (bound != ""), a vertical line per
    threshold (dotted pre-registered, dashed post hoc), a horizontal line at 1 (no speedup).
    """
    fig, ax = _figure()
    arms = _arms(sweep, arms)
    colors = _colors(["baseline", *arms])
    post_hoc = post_hoc or [False] * len(thresholds)
    ax.axhline(1.0, color="0.5", linewidth=1)
    for arm in arms:
        sub = sweep[sweep["arm"] == arm].sort_values("threshold")
        ax.plot(sub["threshold"], sub["point"], color=colors[arm], marker=".", label=arm)
        bounded = sub["bound"].fillna("").to_numpy(str) != "" if "bound" in sub else None
        if bounded is not None and bounded.any():
            ax.scatter(
                sub["threshold"][bounded],
                sub["point"][bounded],
                marker="o",
                s=36,
                facecolors="none",
                edgecolors=colors[arm],
                zorder=4,
            )
        ok = np.isfinite(sub["ci_low"].to_numpy(float)) & np.isfinite(
            sub["ci_high"].to_numpy(float)
        )
        if ok.any():
            ax.fill_between(
                sub["threshold"],
                sub["ci_low"],
                sub["ci_high"],
                where=ok,
                color=colors[arm],
                alpha=0.2,
                linewidth=0,
            )
    for thr, ph in zip(thresholds, post_hoc):
        ax.axvline(thr, color="0.3", linestyle="--" if ph else ":", linewidth=1)
        ax.annotate(
            f"{thr:g}" + (" post hoc" if ph else " pre-reg."),
            (thr, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            ha="right",
            va="top",
            fontsize=7,
            color="0.3",
        )
    ax.set_xlabel("threshold")
    ax.set_ylabel(f"speedup over baseline ({UNIT_LABELS.get(unit, unit)})")
    ax.set_title("Speedup vs threshold (ratio of mean times, 95% CI; o = censoring bound)")
    if arms:
        ax.legend(fontsize=8)
    return fig


def plot_per_seed(
    crossings: pd.DataFrame, *, unit: str, threshold: float, arms: list[str] | None = None
) -> Figure:
    """Per-seed time to one threshold as a dot plot (one column per arm).

    crossings: rows with columns arm, seed, time, event (one threshold and unit).
    Artists: per arm one scatter of crossed runs (filled), if any one of censored runs
    (hollow up-triangles at their censoring time: the true time is later), and a short
    horizontal line (LineCollection) at the arm's mean time (censored at their censoring time).
    """
    fig, ax = _figure()
    arms = _arms(crossings, arms)
    colors = _colors(arms)
    jitter = np.random.default_rng(0)  # fixed, cosmetic only
    for i, arm in enumerate(arms):
        sub = crossings[crossings["arm"] == arm]
        ev = sub["event"].to_numpy(bool)
        xs = i + jitter.uniform(-0.15, 0.15, size=len(sub))
        ax.scatter(xs[ev], sub["time"].to_numpy(float)[ev], color=colors[arm], zorder=3)
        if (~ev).any():
            ax.scatter(
                xs[~ev],
                sub["time"].to_numpy(float)[~ev],
                marker="^",
                facecolors="none",
                edgecolors=colors[arm],
                zorder=3,
            )
        if len(sub):
            ax.hlines(sub["time"].astype(float).mean(), i - 0.3, i + 0.3, color=colors[arm])
    ax.set_xlim(-0.5, max(len(arms), 1) - 0.5)
    ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
    ax.set_ylabel(f"time to {threshold:g} ({UNIT_LABELS.get(unit, unit)})")
    ax.set_title("Per-seed time to threshold (hollow = censored, never reached)")
    return fig


def plot_km(
    crossings: pd.DataFrame, *, unit: str, threshold: float, arms: list[str] | None = None
) -> Figure:
    """Kaplan-Meier estimate of the fraction of runs that have reached the threshold.

    crossings: rows with columns arm, time, event (one threshold and unit).
    Artists: one step Line2D per arm (1 - S(t)); censoring times marked "+" (one more
    Line2D per arm with censored runs).
    """
    fig, ax = _figure()
    arms = _arms(crossings, arms)
    colors = _colors(arms)
    for arm in arms:
        sub = crossings[crossings["arm"] == arm]
        t_all, e = sub["time"].to_numpy(float), sub["event"].to_numpy(bool)
        t, s = kaplan_meier(t_all, e)
        end = np.nanmax(t_all) if len(t_all) else 0.0
        xs = np.concatenate([[0.0], t, [max(end, t[-1] if len(t) else 0.0)]])
        ys = 1.0 - np.concatenate([[1.0], s, [s[-1] if len(s) else 1.0]])
        ax.step(xs, ys, where="post", color=colors[arm], label=arm)
        if (~e).any():
            tc = t_all[~e]
            sc = np.array([s[t <= v][-1] if (t <= v).any() else 1.0 for v in tc])
            ax.plot(tc, 1.0 - sc, linestyle="none", marker="+", color=colors[arm], markersize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(UNIT_LABELS.get(unit, unit))
    ax.set_ylabel(f"fraction of runs past {threshold:g}")
    ax.set_title("Kaplan-Meier: time to threshold (+ = censored)")
    if arms:
        ax.legend(fontsize=8)
    return fig


def plot_speedup_map(
    summary: pd.DataFrame,
    *,
    unit: str,
    thresholds: list[float],
    post_hoc: list[bool] | None = None,
    arms: list[str] | None = None,
) -> Figure:
    """Every arm's speedup at every threshold in one grid: where the effect lives.

    summary: rows with columns arm, threshold, point, ci_low, ci_high, bound, verdict (one
    unit). Rows of the grid: arms; columns: thresholds. Colour: log2 of the speedup
    (blue: sooner, red: slower, white: 1; saturated at 2x either way; grey: n/a). Each cell is
    labelled with the speedup (with its censoring bound) and its 95% CI; a black frame marks a
    cell whose verdict is 'sooner' or 'slower' (CI excludes 1).
    Artists: one AxesImage, one Text per cell, one Rectangle patch per framed cell.
    """
    from matplotlib.patches import Rectangle

    arms = [a for a in _arms(summary, arms) if a != "baseline"]
    post_hoc = post_hoc or [False] * len(thresholds)
    fig, ax = _figure((1.2 + 1.15 * max(len(thresholds), 1), 1.0 + 0.55 * max(len(arms), 1)))
    grid = np.full((len(arms), len(thresholds)), np.nan)
    cell = {(r.arm, float(r.threshold)): r for r in summary.itertuples(index=False)}
    lim = 1.0  # log2: colours saturate at 2x either way
    for i, arm in enumerate(arms):
        for j, thr in enumerate(thresholds):
            r = cell.get((arm, float(thr)))
            p = float(r.point) if r is not None else np.nan
            if not np.isfinite(p):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.3")
                continue
            if p > 0:
                grid[i, j] = np.clip(np.log2(p), -lim, lim)
            bound = {">=": ">=", "<=": "<=", "?": "~"}.get(str(r.bound), "")
            lo, hi = float(r.ci_low), float(r.ci_high)
            ci = f"\n[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
            strong = abs(grid[i, j]) > 0.6 * lim
            ax.text(
                j, i, f"{bound}{p:.2f}x{ci}", ha="center", va="center", fontsize=7,
                color="white" if strong else "black",
            )  # fmt: skip
            if r.verdict in ("sooner", "slower"):
                ax.add_patch(
                    Rectangle(
                        (j - 0.48, i - 0.48), 0.96, 0.96, fill=False, edgecolor="black",
                        linewidth=1.5,
                    )  # fmt: skip
                )
    from matplotlib import colormaps

    cmap = colormaps["RdBu"].with_extremes(bad="0.85")
    ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto",
        interpolation="nearest",
    )  # fmt: skip
    ax.set_xticks(
        range(len(thresholds)),
        [f"{t:g}" + (" (post hoc)" if ph else "") for t, ph in zip(thresholds, post_hoc)],
    )
    ax.set_yticks(range(len(arms)), arms)
    ax.set_xlabel("threshold")
    ax.set_title(
        f"Speedup over baseline ({UNIT_LABELS.get(unit, unit)}): blue sooner, red slower; "
        "framed: 95% CI excludes 1",
        fontsize=9,
    )
    return fig
