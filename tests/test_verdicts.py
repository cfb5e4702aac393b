"""Issue 18 verdicts: calibration gate (too few seeds), Holm across an arm's thresholds,
failures in final quality, the interval statement in every report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_analysis_tree import write_run, write_suite

from benchmark.analysis.calibration import min_calibrated_n
from benchmark.analysis.load import ResultsWarning, load_suite
from benchmark.analysis.report import (
    CENSORED,
    FEW_SEEDS,
    NO_DIFF,
    SLOWER,
    SOONER,
    UNCALIBRATED,
    analyze_suite,
    family_verdicts,
    final_quality,
    quality_rows,
    render_markdown,
    verdict,
)
from benchmark.analysis.stats import DEFAULT_CI_METHOD


def test_verdict_needs_a_calibrated_interval():
    mn = min_calibrated_n(DEFAULT_CI_METHOD)
    assert mn is not None and mn > 3  # docs/coverage.md: no method holds at 3 seeds
    assert verdict(1.8, 1.2, 2.4, "", 3) == FEW_SEEDS
    assert verdict(1.8, 1.2, 2.4, "", mn) == SOONER
    assert verdict(1.8, 1.2, 2.4, "", 3, method=None) == SOONER  # the CI reading alone
    # the percentile bootstrap holds its level at no simulated number of seeds
    assert verdict(1.8, 1.2, 2.4, "", 10, method="percentile") == UNCALIBRATED
    assert verdict(1.8, 1.2, 2.4, "", 1000, method="percentile") == UNCALIBRATED


def test_family_verdicts_holm_across_thresholds_by_hand():
    """p = 0.01, 0.04, 0.03 at three pre-registered thresholds, each 'sooner' on its own:
    Holm-adjusted 0.03, 0.06, 0.06, so only the first stands. A post hoc threshold keeps its
    pointwise verdict; a censored cell that loses its verdict reads 'inconclusive'."""
    s = pd.DataFrame({
        "arm": ["kd"] * 5 + ["w2s"],
        "unit": ["epochs"] * 4 + ["steps", "epochs"],
        "threshold": [50.0, 60.0, 70.0, 65.0, 50.0, 50.0],
        "post_hoc": [False, False, False, True, False, False],
        "p_value": [0.01, 0.04, 0.03, 0.04, 0.04, 0.2],
        "bound": ["", "", "<=", "", "", ""],
        "verdict": [SOONER, SOONER, SLOWER, SOONER, SOONER, NO_DIFF],
    })  # fmt: skip
    out = family_verdicts(s)
    assert out["p_holm"].iloc[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert out["verdict"].tolist() == [SOONER, NO_DIFF, CENSORED, SOONER, SOONER, NO_DIFF]
    assert out["verdict_pointwise"].tolist() == s["verdict"].tolist()
    assert np.isnan(out["p_holm"].iloc[3])  # post hoc: not in the family
    assert out["p_holm"].iloc[4] == pytest.approx(0.04)  # its own family (steps)


def _curve(c50: float, c80: float, epochs: int = 10):
    return [(float(e), 90.0 if e >= c80 else (60.0 if e >= c50 else 10.0))
            for e in range(1, epochs + 1)]


def _suite(tmp_path, n: int):
    s = write_suite(tmp_path, seeds=tuple(range(n)))
    for seed in range(n):
        write_run(s, "baseline", seed, _curve(2, 8 + seed % 2), budget_epochs=10)
        write_run(s, "kd", seed, _curve(1, 4 + seed % 2), budget_epochs=10)
    return s


def test_three_seeds_get_no_verdict_and_the_report_says_why(tmp_path):
    an = analyze_suite(load_suite(_suite(tmp_path, 3)))
    assert set(an.summary["verdict"]) == {FEW_SEEDS}
    assert (an.summary["ci_method"] == DEFAULT_CI_METHOD).all()
    # the interval is still computed and shown; only the verdict is withheld
    assert np.isfinite(an.summary["ci_low"]).all()
    assert any("3 seeds: too few for a calibrated interval" in w for w in an.warnings)
    md = render_markdown(an, tmp_path / "rep", {})  # the text alone (no figures)
    assert "3 seeds: too few for a calibrated interval" in md
    assert "Fieller's interval for a ratio of paired means" in md
    assert "Measured coverage" in md and "docs/coverage.md" in md
    assert "[pointwise 95% CI]" in md and "## How many seeds" in md
    assert set(an.sweep["band"]) == {"pointwise 95%"}


def test_enough_seeds_give_holm_verdicts(tmp_path):
    n = min_calibrated_n(DEFAULT_CI_METHOD)
    an = analyze_suite(load_suite(_suite(tmp_path, max(n, 5))))
    s = an.summary[an.summary["unit"] == "epochs"].set_index("threshold")
    # every seed of kd is 4 epochs sooner at 80 and 1 sooner at 50: 'sooner' at both, and
    # the p-values are tiny, so Holm keeps both
    assert s.loc[80.0, "verdict"] == SOONER and s.loc[50.0, "verdict"] == SOONER
    assert (s["p_holm"] >= s["p_value"]).all() and (s["p_holm"] <= 0.05).all()
    assert s.loc[80.0, "point"] == pytest.approx(8.5 / 4.5, rel=0.05)


def test_final_quality_counts_failures_and_says_which_way_they_bias(tmp_path):
    s = write_suite(tmp_path, seeds=(0, 1, 2))
    for seed in range(3):
        write_run(s, "baseline", seed, _curve(2, 8), budget_epochs=10)
    write_run(s, "kd", 0, _curve(1, 4), budget_epochs=10)
    write_run(s, "kd", 1, _curve(1, 4), budget_epochs=10)
    write_run(s, "kd", 2, [(1.0, 10.0), (2.0, math.nan)], budget_epochs=10, status="diverged")
    with pytest.warns(ResultsWarning, match="diverged"):
        data = load_suite(s)
    q = final_quality(data, reps=200)
    kd = q[(q["arm"] == "kd") & (q["metric"] == "accuracy")].iloc[0]
    assert kd["n"] == 2 and kd["n_diverged"] == 1 and kd["n_left_out"] == 1
    assert kd["mean"] == pytest.approx(90.0)  # over the finite runs only
    an = analyze_suite(data, reps=200)
    cells = {r[1]: r[2] for r in quality_rows(an)[1] if r[0] == "accuracy"}
    assert cells["kd"] == ("2 (1 diverged/failed; 1 without a final value left out: mean "
                           "biased up, in the arm's favour)")
    assert cells["baseline"] == "3"
