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


# Smallest text a report figure uses (points): at the report's 110 dpi, 8 pt is ~12 px, the
# smallest size that stays legible when index.html scales a wide figure down to its column.
SMALL = 8


def _colors(arms: list[str]) -> dict[str, object]:
    """One colour per arm: tab10 up to 10 arms, tab20 (20 distinct colours) beyond, so no two
    arms of a large suite (cifar10-cpu: 10 arms + baseline) share a colour."""
    from matplotlib import colormaps

    if len(arms) <= 10:
        return {a: colormaps["tab10"](i) for i, a in enumerate(arms)}
    # tab20 holds tab10's ten hues (even entries) and a lighter shade of each (odd ones): the
    # first ten arms get the distinct hues, the next ten the light shades
    cmap = colormaps["tab20"]
    return {a: cmap((2 * i + (i // 10) % 2) % 20) for i, a in enumerate(arms)}


def wrap_title(text: str, width_in: float, fontsize: float) -> str:
    """`text` wrapped into lines that fit `width_in` inches of figure at `fontsize` points
    (an average glyph is ~0.55 em wide), so constrained layout never clips a title."""
    import textwrap

    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False))


def _title(fig, ax, text: str, fontsize: float = 10) -> None:
    """The figure's title, wrapped to its width and centred on the figure (not the axes,
    which a colour bar or an outside legend pushes aside)."""
    fig.suptitle(wrap_title(text, fig.get_figwidth() - 0.3, fontsize), fontsize=fontsize)


def _threshold_axis(ax, thresholds, post_hoc, *, axis: str):
    """Thresholds as tick labels on a secondary axis outside the plot (right of y, or above x):
    readable at SMALL size, never overlapping the curves or each other (close ones staggered),
    and constrained layout makes room."""
    ticks = [float(t) for t in thresholds]
    labels = [f"{t:g}" + ("*" if ph else "") for t, ph in zip(thresholds, post_hoc)]
    sec = ax.secondary_yaxis("right") if axis == "y" else ax.secondary_xaxis("top")
    sec.set_ticks(ticks, labels)
    sec.tick_params(labelsize=SMALL, colors="0.3", length=3)
    _stagger(ax, sec, ticks, labels, axis)
    if any(post_hoc) and axis == "y":
        sec.set_ylabel("threshold (* post hoc)", fontsize=SMALL, color="0.3")
    elif any(post_hoc):
        sec.set_xlabel("threshold (* post hoc)", fontsize=SMALL, color="0.3")
    return sec


def label_rows(pos_pt: list[float], size_pt: list[float], max_rows: int = 3) -> list[int]:
    """Row of each tick label along an axis (0: the axis's own; k: k label extents further out):
    in position order, each label takes the first row whose last label it clears (extents
    size_pt centred on pos_pt, in points), else the last row."""
    rows, last = [0] * len(pos_pt), {}  # last: row -> index of its latest label
    for i in sorted(range(len(pos_pt)), key=lambda k: pos_pt[k]):
        rows[i] = next((r for r in range(max_rows) if r not in last or pos_pt[i] - pos_pt[last[r]]
                        >= (size_pt[i] + size_pt[last[r]]) / 2), max_rows - 1)
        last[rows[i]] = i
    return rows


def _stagger(ax, sec, ticks: list[float], labels: list[str], axis: str) -> None:
    """Move labels of thresholds too close to print side by side (88 and 89.5 on a 0-100 %
    axis) one label's extent further out, as label_rows says."""
    fig, box, char = ax.figure, ax.get_position(), SMALL * 0.62
    if axis == "y":
        (lo, hi), span = ax.get_ylim(), box.height * fig.get_figheight() * 72
        size, shift = [SMALL * 1.25] * len(ticks), max(map(len, labels)) * char + 3
    else:
        (lo, hi), span = ax.get_xlim(), box.width * fig.get_figwidth() * 72
        size, shift = [len(s) * char + 2 for s in labels], SMALL * 1.25 + 1
    if hi != lo:
        rows = label_rows([(v - lo) / (hi - lo) * span for v in ticks], size)
        for tick, row in zip((sec.yaxis if axis == "y" else sec.xaxis).get_major_ticks(len(ticks)), rows):
            tick.set_pad(tick.get_pad() + row * shift)


def _legend(fig, ax, n_entries: int) -> None:
    """Up to 6 entries: inside the axes where they cover least; more (a suite with many arms):
    below the figure in rows of 4, the figure growing by the rows' height, so the legend
    never hides the data and never runs into the title."""
    if n_entries > 6:
        rows = -(-n_entries // 4)
        fig.set_figheight(fig.get_figheight() + 0.2 * rows)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4,
                   fontsize=SMALL)
    else:
        ax.legend(fontsize=SMALL)


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
    horizontal line per threshold (dashed if post hoc), one scatter of switch-off points;
    the thresholds' values label a secondary y axis on the right.
    """
    fig, ax = _figure()
    arms = _arms(curves, arms)
    colors = _colors(arms)
    post_hoc = post_hoc or [False] * len(thresholds)
    n_seeds = []
    for arm in arms:
        sub = curves[curves["arm"] == arm]
        xs = sub[x].astype(float).round(9)
        g = sub.assign(_x=xs).groupby("_x")["value"]
        mean, sd, n = g.mean(), g.std(ddof=1), g.count()
        k = sub["seed"].nunique()
        n_seeds.append(k)
        ax.plot(mean.index, mean.to_numpy(), color=colors[arm], label=f"{arm} (n={k})")
        if k >= 3:
            half = t975(n.to_numpy() - 1) * sd.to_numpy() / np.sqrt(n.to_numpy())
            ax.fill_between(
                mean.index, mean - half, mean + half, color=colors[arm], alpha=0.2, linewidth=0
            )
        elif k == 2:
            # a t-interval on 2 seeds (1 df) is ~13 sd wide and meaningless: show their range
            ax.fill_between(mean.index, g.min(), g.max(), color=colors[arm], alpha=0.2, linewidth=0)
    for thr, ph in zip(thresholds, post_hoc):
        ax.axhline(thr, color="0.3", linestyle="--" if ph else ":", linewidth=1)
    if thresholds:
        _threshold_axis(ax, thresholds, post_hoc, axis="y")
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
    if not n_seeds or max(n_seeds) < 2:
        band = "no band (1 seed)"
    elif min(n_seeds) >= 3:
        band = "band: 95% CI over seeds"
    elif max(n_seeds) < 3:
        band = "band: range of the 2 seeds"
    else:
        band = "band: 95% CI over seeds (range where an arm has 2 seeds)"
    _title(fig, ax, f"Learning curves: mean test {metric} over seeds ({band}); x = switch-off; "
                    "dotted lines: thresholds")
    if arms:
        _legend(fig, ax, len(arms) + (switches is not None and len(switches) > 0))
    return fig


def plot_speedup_sweep(
    sweep: pd.DataFrame,
    *,
    unit: str,
    thresholds: list[float],
    post_hoc: list[bool] | None = None,
    arms: list[str] | None = None,
) -> Figure:
    """Speedup vs threshold per arm with its CI band where there is one.

    sweep: rows with columns arm, threshold, point, ci_low, ci_high (optional: bound).
    Artists: one Line2D per arm, a band per arm with a finite CI, a hollow-circle scatter per
    arm over the points bounded by censoring (bound != ""), a vertical line per
    threshold (dotted pre-registered, dashed post hoc; their values label a secondary x axis
    on top), a horizontal line at 1 (no speedup). The title says whether bands are drawn.
    """
    fig, ax = _figure()
    arms = _arms(sweep, arms)
    colors = _colors(["baseline", *arms])
    post_hoc = post_hoc or [False] * len(thresholds)
    ax.axhline(1.0, color="0.5", linewidth=1)
    bands = 0
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
            bands += 1
            ax.fill_between(
                sub["threshold"],
                sub["ci_low"],
                sub["ci_high"],
                where=ok,
                color=colors[arm],
                alpha=max(0.06, 0.2 * min(1.0, 3 / len(arms))),  # many arms: fainter bands
                linewidth=0,
            )
    for thr, ph in zip(thresholds, post_hoc):
        ax.axvline(thr, color="0.3", linestyle="--" if ph else ":", linewidth=1)
    if thresholds:
        _threshold_axis(ax, thresholds, post_hoc, axis="x")
    ax.set_xlabel("threshold (test metric)")
    ax.set_ylabel(f"speedup over baseline ({UNIT_LABELS.get(unit, unit)}, log scale)")
    # Ratios on a log scale (2x and 0.5x equally far from 1), the range set by the point
    # estimates: an interval with few seeds can reach 50x or be unbounded, and would otherwise
    # flatten every curve to a line at 1.
    from matplotlib.ticker import FuncFormatter, LogLocator

    pts = sweep["point"].to_numpy(float) if len(sweep) else np.array([])
    pts = pts[np.isfinite(pts) & (pts > 0)]
    lo = min(1.0, pts.min() if len(pts) else 1.0) / 1.25
    hi = max(1.0, pts.max() if len(pts) else 1.0) * 1.25
    ax.set_yscale("log", base=2)
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(LogLocator(base=2, subs=(1.0, 2**0.5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}x"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    cis = sweep[["ci_low", "ci_high"]].to_numpy(float) if len(sweep) else np.zeros((0, 2))
    cut = bool(((cis < lo) | (cis > hi)).any())
    if bands == len(arms) and arms:
        what = "shaded: pointwise 95% CI, not simultaneous"
    elif bands:
        what = "shaded: pointwise 95% CI (not simultaneous), where an arm has >= 3 paired seeds"
    else:
        what = "no CI band: fewer than 3 paired seeds"
    if bands and cut:
        what += ", cut at the plot's edge"
    _title(fig, ax, f"Speedup vs threshold: ratio of mean times ({what}); o = bounded by "
                    "censoring; dotted lines: the report's thresholds")
    if arms:
        _legend(fig, ax, len(arms))
    return fig


def plot_per_seed(
    crossings: pd.DataFrame,
    *,
    unit: str,
    threshold: float,
    arms: list[str] | None = None,
    metric: str = "",
) -> Figure:
    """Per-seed time to one threshold as a dot plot (one column per arm).

    crossings: rows with columns arm, seed, time, event (one threshold and unit).
    Artists: per arm one scatter of crossed runs (filled), if any one of censored runs
    (hollow up-triangles at their censoring time: the true time is later), and a short
    horizontal bar (LineCollection) at the arm's mean time over seeds (a censored run counts
    at its censoring time, so that mean is a lower bound). The title names the threshold and
    a legend says what the marks are.
    """
    from matplotlib.lines import Line2D

    fig, ax = _figure()
    arms = _arms(crossings, arms)
    colors = _colors(arms)
    jitter = np.random.default_rng(0)  # fixed, cosmetic only
    any_cens = False
    for i, arm in enumerate(arms):
        sub = crossings[crossings["arm"] == arm]
        ev = sub["event"].to_numpy(bool)
        xs = i + jitter.uniform(-0.15, 0.15, size=len(sub))
        ax.scatter(xs[ev], sub["time"].to_numpy(float)[ev], color=colors[arm], zorder=3)
        if (~ev).any():
            any_cens = True
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
    ax.set_xticks(range(len(arms)), arms, rotation=20 if len(arms) > 4 else 0,
                  ha="right" if len(arms) > 4 else "center")
    label = UNIT_LABELS.get(unit, unit)
    what = f"test {metric} {threshold:g}" if metric else f"threshold {threshold:g}"
    ax.set_ylabel(f"time to {what} ({label})")
    handles = [
        Line2D([], [], marker="o", linestyle="none", color="0.3", label="one seed"),
        Line2D([], [], color="0.3", label="bar: mean over seeds"
               + (" (censored: at the budget)" if any_cens else "")),
    ]
    if any_cens:
        handles.insert(1, Line2D([], [], marker="^", linestyle="none", markerfacecolor="none",
                                 color="0.3", label="censored: never reached"))
    if arms:
        # below the axes (inside, it would cover some arm's column), 2 entries a row so it
        # fits the figure's width
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=SMALL)
    _title(fig, ax, f"Time to {what} per seed, in {label}")
    return fig


def plot_km(
    crossings: pd.DataFrame,
    *,
    unit: str,
    threshold: float,
    arms: list[str] | None = None,
    metric: str = "",
) -> Figure:
    """Kaplan-Meier estimate of the fraction of runs that have reached the threshold.

    crossings: rows with columns arm, time, event (one threshold and unit); optional horizon
    (the run's budget or last evaluation, as time_to_threshold writes it): each curve runs to
    its arm's largest horizon and the x axis to the largest of all (the budget), so a curve
    that stops rising is seen to stay flat until the end.
    Artists: one step Line2D per arm (1 - S(t)); censoring times marked "+" (one more
    Line2D per arm with censored runs).
    """
    fig, ax = _figure()
    arms = _arms(crossings, arms)
    colors = _colors(arms)
    has_h = "horizon" in crossings.columns
    right = 0.0
    for arm in arms:
        sub = crossings[crossings["arm"] == arm]
        t_all, e = sub["time"].to_numpy(float), sub["event"].to_numpy(bool)
        t, s = kaplan_meier(t_all, e)
        ends = [np.nanmax(t_all) if len(t_all) else 0.0, t[-1] if len(t) else 0.0]
        if has_h and len(sub):
            h = sub["horizon"].to_numpy(float)
            if np.isfinite(h).any():
                ends.append(np.nanmax(h))
        end = float(max(ends))
        right = max(right, end)
        xs = np.concatenate([[0.0], t, [end]])
        ys = 1.0 - np.concatenate([[1.0], s, [s[-1] if len(s) else 1.0]])
        ax.step(xs, ys, where="post", color=colors[arm], label=arm)
        if (~e).any():
            tc = t_all[~e]
            sc = np.array([s[t <= v][-1] if (t <= v).any() else 1.0 for v in tc])
            ax.plot(tc, 1.0 - sc, linestyle="none", marker="+", color=colors[arm], markersize=9)
    ax.set_ylim(-0.02, 1.02)
    if right > 0:
        ax.set_xlim(0.0, right * 1.02)
    ax.set_xlabel(UNIT_LABELS.get(unit, unit))
    what = f"test {metric} {threshold:g}" if metric else f"threshold {threshold:g}"
    ax.set_ylabel(f"fraction of runs past {threshold:g}")
    _title(fig, ax, f"Kaplan-Meier: fraction of runs that reached {what} (+ = censored)")
    if arms:
        _legend(fig, ax, len(arms))
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
    (blue: sooner, red: slower, white: 1; saturated at 2x either way; grey: n/a), read off a
    colour bar in speedup units. Each cell is labelled with the speedup (with its censoring
    bound) and its 95% CI; a black frame marks a cell whose verdict is 'sooner' or 'slower'
    (CI excludes 1). The figure grows with the grid (at least 6.4 in wide), and the title
    wraps to its width, so neither a 1 x 3 nor a 10 x 6 grid clips it.
    Artists: one AxesImage, one Text per cell, one Rectangle patch per framed cell; a second
    axes holds the colour bar.
    """
    from matplotlib.patches import Rectangle

    arms = [a for a in _arms(summary, arms) if a != "baseline"]
    post_hoc = post_hoc or [False] * len(thresholds)
    longest = max((len(a) for a in arms), default=4)
    width = max(6.4, 1.0 + 0.075 * longest + 1.15 * max(len(thresholds), 1) + 1.2)
    fig, ax = _figure((width, 1.9 + 0.6 * max(len(arms), 1)))
    grid = np.full((len(arms), len(thresholds)), np.nan)
    cell = {(r.arm, float(r.threshold)): r for r in summary.itertuples(index=False)}
    lim = 1.0  # log2: colours saturate at 2x either way
    for i, arm in enumerate(arms):
        for j, thr in enumerate(thresholds):
            r = cell.get((arm, float(thr)))
            p = float(r.point) if r is not None else np.nan
            if not np.isfinite(p):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=SMALL, color="0.3")
                continue
            if p > 0:
                grid[i, j] = np.clip(np.log2(p), -lim, lim)
            bound = {">=": ">=", "<=": "<=", "?": "~"}.get(str(r.bound), "")
            lo, hi = float(r.ci_low), float(r.ci_high)
            ci = f"\n[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
            strong = abs(grid[i, j]) > 0.6 * lim
            ax.text(
                j, i, f"{bound}{p:.2f}x{ci}", ha="center", va="center", fontsize=SMALL,
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
    img = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto",
        interpolation="nearest",
    )  # fmt: skip
    # colour bar in speedup units: the colour is log2(speedup), saturated at 0.5x and 2x
    ticks = [-1.0, -0.5, 0.0, 0.5, 1.0]
    bar = fig.colorbar(img, ax=ax, ticks=ticks, fraction=0.08, pad=0.02, aspect=12)
    bar.ax.set_yticklabels(["<=0.5x", "0.71x", "1x", "1.41x", ">=2x"], fontsize=SMALL)
    bar.set_label(f"speedup ({UNIT_LABELS.get(unit, unit)}), log scale", fontsize=SMALL)
    ax.set_xticks(
        range(len(thresholds)),
        [f"{t:g}" + (" (post hoc)" if ph else "") for t, ph in zip(thresholds, post_hoc)],
    )
    ax.set_yticks(range(len(arms)), arms)
    ax.tick_params(labelsize=9)
    ax.set_xlabel("threshold")
    _title(
        fig, ax,
        f"Speedup over baseline ({UNIT_LABELS.get(unit, unit)}): blue sooner, red slower; "
        "framed: a verdict (CI excludes 1, Holm across thresholds)",
    )  # fmt: skip
    return fig
