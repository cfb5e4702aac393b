"""Every plot function returns a matplotlib Figure with the expected artists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

from benchmark.analysis import plots


def curves():
    rows = []
    for arm, rate in (("baseline", 10.0), ("kd", 20.0)):
        for seed in range(3):
            for e in range(1, 6):
                rows.append(
                    {
                        "arm": arm,
                        "seed": seed,
                        "epoch": float(e),
                        "value": min(100.0, rate * e + seed),
                    }
                )
    return pd.DataFrame(rows)


def crossings():
    return pd.DataFrame(
        {
            "arm": ["baseline"] * 3 + ["kd"] * 3,
            "seed": [0, 1, 2] * 2,
            "time": [4.0, 6.0, 10.0, 2.0, 2.0, 5.0],
            "event": [True, True, False, True, True, True],
        }
    )


def test_learning_curves_artists():
    sw = pd.DataFrame(
        {
            "arm": ["kd"] * 3,
            "seed": [0, 1, 2],
            "epoch": [1.0, 2.0, 2.0],
            "value": [20.0, 41.0, 42.0],
        }
    )
    fig = plots.plot_learning_curves(
        curves(), metric="accuracy", thresholds=[50.0, 80.0], post_hoc=[False, True], switches=sw
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # 2 arm lines + 2 threshold lines
    assert len(ax.lines) == 4
    assert [ln.get_linestyle() for ln in ax.lines[2:]] == [":", "--"]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2  # CI bands
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 1  # switch-offs
    assert ax.get_legend() is not None


def test_speedup_sweep_artists():
    th = np.linspace(50, 90, 9)
    sweep = pd.DataFrame(
        {
            "arm": "kd",
            "threshold": th,
            "point": np.linspace(1, 3, 9),
            "ci_low": np.linspace(0.8, 2, 9),
            "ci_high": np.linspace(1.2, 4, 9),
            "bound": [""] * 8 + [">="],
        }
    )
    fig = plots.plot_speedup_sweep(
        sweep, unit="epochs", thresholds=[80.0, 65.0], post_hoc=[False, True]
    )
    ax = fig.axes[0]
    # y=1 reference, 1 arm line, 2 threshold lines
    assert len(ax.lines) == 4
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 1  # bounded points
    # the thresholds label a secondary x axis on top (post hoc ones starred)
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["80", "65*"]
    assert "post hoc" in top.get_xlabel()
    assert "shaded: pointwise 95% CI, not simultaneous" in fig.get_suptitle().replace("\n", " ")


def test_per_seed_dot_plot_artists():
    fig = plots.plot_per_seed(crossings(), unit="epochs", threshold=80.0)
    ax = fig.axes[0]
    # baseline: crossed + censored scatters; kd: crossed only
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 3
    assert sum(isinstance(c, LineCollection) for c in ax.collections) == 2  # mean ticks
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "kd"]


def test_km_artists():
    fig = plots.plot_km(crossings(), unit="epochs", threshold=80.0)
    ax = fig.axes[0]
    # one step line per arm + censoring marks for baseline
    assert len(ax.lines) == 3
    base = ax.lines[0]
    assert base.get_ydata()[-1] == pytest.approx(2 / 3)  # 2 of 3 crossed, KM: 1 - S
    assert sum(ln.get_marker() == "+" for ln in ax.lines) == 1


def test_plots_handle_empty_input():
    empty = pd.DataFrame(columns=["arm", "seed", "epoch", "value", "time", "event"])
    assert isinstance(plots.plot_learning_curves(empty, metric="m", thresholds=[]), Figure)
    assert isinstance(plots.plot_km(empty, unit="epochs", threshold=1.0), Figure)
    assert isinstance(plots.plot_per_seed(empty, unit="epochs", threshold=1.0), Figure)


def test_t975_table():
    assert plots.t975(np.array([1, 2, 30, 100])).tolist() == [12.706, 4.303, 2.042, 1.96]
    assert np.isnan(plots.t975(np.array([0]))[0])


def test_speedup_map_cells_colours_and_frames():
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    summary = pd.DataFrame(
        {
            "arm": ["kd", "kd", "ramp", "ramp"],
            "threshold": [50.0, 70.0, 50.0, 70.0],
            "point": [2.0, 0.5, 1.0, np.nan],
            "ci_low": [1.5, 0.4, 0.8, np.nan],
            "ci_high": [2.5, 0.9, 1.3, np.nan],
            "bound": ["", "<=", "", ""],
            "verdict": ["sooner", "slower", "no clear difference", "n/a"],
        }
    )
    fig = plots.plot_speedup_map(
        summary, unit="epochs", thresholds=[50.0, 70.0], post_hoc=[False, True]
    )
    ax = fig.axes[0]
    (img,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    grid = np.ma.getdata(img.get_array())
    # log2 of the speedup, one row per arm, one column per threshold; n/a masked
    np.testing.assert_allclose(grid[0], [1.0, -1.0])
    assert grid[1, 0] == 0.0 and np.ma.getmaskarray(img.get_array())[1, 1]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["2.00x\n[1.50, 2.50]", "<=0.50x\n[0.40, 0.90]", "1.00x\n[0.80, 1.30]", "n/a"]
    # frames only where the CI excludes 1
    frames = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [(f.get_x() + 0.48, f.get_y() + 0.48) for f in frames] == [(0, 0), (1, 0)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["kd", "ramp"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["50", "70 (post hoc)"]


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # as savefig to PNG does
    return fig.canvas.get_renderer()


def _inside(fig, artist, renderer) -> bool:
    bb = artist.get_window_extent(renderer)
    return bb.x0 >= -0.5 and bb.y0 >= -0.5 and bb.x1 <= fig.bbox.width + 0.5 and bb.y1 <= fig.bbox.height + 0.5


def _summary(arms, thresholds, point=1.3):
    rows = [{"arm": a, "threshold": t, "point": point, "ci_low": 1.1, "ci_high": 1.5, "bound": "",
             "verdict": "sooner"} for a in arms for t in thresholds]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_arms,n_thr", [(1, 3), (10, 6), (3, 1)])
def test_speedup_map_title_never_clipped_and_has_a_colour_bar(n_arms, n_thr):
    """The quickstart's 1 arm x 3 thresholds and cifar10-cpu's 10 x 6: the whole title inside
    the figure, a colour bar in speedup units, no text under 8 pt."""
    arms = [f"arm_with_a_long_name_{i}" for i in range(n_arms)]
    thr = [50.0 + 5 * j for j in range(n_thr)]
    fig = plots.plot_speedup_map(_summary(arms, thr), unit="epochs", thresholds=thr)
    r = _drawn(fig)
    ax = fig.axes[0]
    assert _inside(fig, fig._suptitle, r)
    assert "Speedup over baseline (epochs)" in fig.get_suptitle().replace("\n", " ")
    (bar,) = [a for a in fig.axes if a is not ax]  # the colour bar's axes
    assert [t.get_text() for t in bar.get_yticklabels()] == ["<=0.5x", "0.71x", "1x", "1.41x", ">=2x"]
    assert "speedup" in bar.get_ylabel()
    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text()) >= plots.SMALL


def test_sweep_without_intervals_says_no_band():
    sweep = pd.DataFrame({"arm": "kd", "threshold": [50.0, 60.0, 70.0], "point": [1.5, 1.2, 1.0],
                          "ci_low": np.nan, "ci_high": np.nan, "bound": ""})
    fig = plots.plot_speedup_sweep(sweep, unit="epochs", thresholds=[60.0])
    ax = fig.axes[0]
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    title = fig.get_suptitle().replace("\n", " ")
    assert "no CI band: fewer than 3 paired seeds" in title and "95% CI" not in title
    assert _inside(fig, fig._suptitle, _drawn(fig))


def test_per_seed_names_threshold_and_says_what_the_bars_are():
    fig = plots.plot_per_seed(crossings(), unit="epochs", threshold=80.0, metric="accuracy")
    assert fig.get_suptitle() == "Time to test accuracy 80 per seed, in epochs"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-1].startswith("bar: mean over seeds")
    assert any(lab.startswith("censored") for lab in labels)  # baseline seed 2 is censored
    assert _inside(fig, fig.legends[0], _drawn(fig))


def test_km_axis_runs_to_the_budget():
    """Every run crosses by 2.5 epochs of a 4-epoch budget: the curve is drawn flat to 4."""
    c = pd.DataFrame({"arm": ["baseline", "baseline", "kd", "kd"], "seed": [0, 1, 0, 1],
                      "time": [2.5, 2.0, 1.0, 1.5], "event": [True] * 4, "horizon": [4.0] * 4})
    fig = plots.plot_km(c, unit="epochs", threshold=60.0, metric="accuracy")
    ax = fig.axes[0]
    assert ax.get_xlim()[1] >= 4.0
    assert ax.lines[0].get_xdata()[-1] == 4.0 and ax.lines[0].get_ydata()[-1] == 1.0
    assert "test accuracy 60" in fig.get_suptitle().replace("\n", " ")


def test_learning_curves_threshold_labels_readable_and_colours_distinct():
    rows = []
    arms = ["baseline"] + [f"a{i}" for i in range(10)]  # 11 arms, as in cifar10-cpu
    for k, arm in enumerate(arms):
        for seed in range(2):
            for e in range(1, 4):
                rows.append({"arm": arm, "seed": seed, "epoch": float(e), "value": 10.0 * e + k})
    fig = plots.plot_learning_curves(pd.DataFrame(rows), metric="accuracy",
                                     thresholds=[20.0, 25.0], post_hoc=[False, True])
    ax = fig.axes[0]
    colours = {tuple(ln.get_color()) for ln in ax.lines[: len(arms)]}
    assert len(colours) == len(arms)
    (right,) = ax.child_axes
    assert [t.get_text() for t in right.get_yticklabels()] == ["20", "25*"]
    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text()) >= plots.SMALL
    r = _drawn(fig)
    # 11 arms + switch-off: the legend sits below the axes, inside the figure, clear of the title
    (leg,) = fig.legends
    assert _inside(fig, fig._suptitle, r) and _inside(fig, leg, r)
    assert not leg.get_window_extent(r).overlaps(fig._suptitle.get_window_extent(r))
    assert not leg.get_window_extent(r).overlaps(ax.get_window_extent(r))


def test_sweep_range_follows_the_points_not_unbounded_intervals():
    """Few seeds can give a 50x or unbounded interval: the log-scale axis spans the points
    (and 1) with a 1.25x margin, and the title says the bands are cut there."""
    sweep = pd.DataFrame({"arm": "kd", "threshold": [50.0, 60.0, 70.0], "point": [0.8, 1.5, 3.0],
                          "ci_low": [0.5, 1.0, 1.2], "ci_high": [2.0, 50.0, np.inf], "bound": ""})
    fig = plots.plot_speedup_sweep(sweep, unit="epochs", thresholds=[60.0])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim() == pytest.approx((0.8 / 1.25, 3.0 * 1.25))
    assert "cut at the plot's edge" in fig.get_suptitle().replace("\n", " ")


def test_label_rows_exact():
    # 10-pt labels: 5 pt apart overlap, 10 apart just clear
    assert plots.label_rows([0, 5, 10, 100], [10] * 4) == [0, 1, 0, 0]
    assert plots.label_rows([100, 0, 5], [10] * 3) == [0, 0, 1]  # in position order
    assert plots.label_rows([0, 1, 2, 3, 30], [10] * 5) == [0, 1, 2, 2, 0]  # 3 rows at most
    assert plots.label_rows([0, 6], [4, 20]) == [0, 1]  # extents are per label
    assert plots.label_rows([], []) == []


@pytest.mark.parametrize("which", ["curves", "sweep"])
def test_close_threshold_labels_do_not_overlap(which):
    """The airbench suite's thresholds 88 and 89.5 on a 10-90 % axis: drawn, no two threshold
    labels overlap (the closer one moves one label further out)."""
    thr = [70.0, 85.0, 88.0, 89.5]
    if which == "curves":
        rows = [{"arm": "baseline", "seed": s, "epoch": float(e), "value": 10.0 + 8.0 * e}
                for s in range(3) for e in range(11)]
        fig = plots.plot_learning_curves(pd.DataFrame(rows), metric="accuracy", thresholds=thr)
    else:
        sweep = pd.DataFrame({"arm": "kd", "threshold": np.linspace(10, 90, 20), "point": 1.1,
                              "ci_low": 0.9, "ci_high": 1.3, "bound": ""})
        fig = plots.plot_speedup_sweep(sweep, unit="epochs", thresholds=thr)
    (sec,) = fig.axes[0].child_axes
    r = _drawn(fig)
    labels = sec.get_yticklabels() if which == "curves" else sec.get_xticklabels()
    assert [t.get_text() for t in labels] == ["70", "85", "88", "89.5"]
    boxes = [t.get_window_extent(r) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(_inside(fig, t, r) for t in labels)
