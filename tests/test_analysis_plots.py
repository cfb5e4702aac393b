"""Every plot function returns a matplotlib Figure with the expected artists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.figure import Figure

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
    assert any("post hoc" in t.get_text() for t in ax.texts)


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
