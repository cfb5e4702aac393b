"""Time to threshold: exact crossings, interpolation, sustained crossings, censoring, KM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_analysis_tree import write_run, write_suite

from benchmark.analysis.crossing import (
    crossing_indices,
    crossing_times,
    kaplan_meier,
    restricted_mean,
    time_to_threshold,
)
from benchmark.analysis.load import ResultsWarning, load_suite


def one(cross: pd.DataFrame, run_id: str, threshold: float, unit: str = "epochs"):
    r = cross[
        (cross["run_id"] == run_id) & (cross["threshold"] == threshold) & (cross["unit"] == unit)
    ]
    assert len(r) == 1
    return float(r["time"].iloc[0]), bool(r["event"].iloc[0])


def test_crossing_indices_higher_lower_and_never():
    v = np.array([[10.0, 40.0, 60.0, 90.0], [5.0, 6.0, np.nan, np.nan]])
    idx = crossing_indices(v, np.array([50.0, 95.0]), "higher")
    assert idx.tolist() == [[2, -1], [-1, -1]]
    fid = np.array([[80.0, 40.0, 25.0, 19.0]])
    assert crossing_indices(fid, np.array([30.0, 20.0]), "lower").tolist() == [[2], [3]]


def test_interpolation_between_bracketing_evaluations(tmp_path):
    s = write_suite(tmp_path, thresholds=[50.0])
    write_run(s, "baseline", 0, [(1, 40.0), (2, 60.0), (3, 70.0)])
    data = load_suite(s)
    plain = time_to_threshold(data.evals, data.runs, "accuracy", "higher", [50.0])
    interp = time_to_threshold(
        data.evals, data.runs, "accuracy", "higher", [50.0], interpolate=True
    )
    assert one(plain, "baseline-s0", 50.0) == (2.0, True)
    assert one(interp, "baseline-s0", 50.0) == (1.5, True)
    assert one(interp, "baseline-s0", 50.0, "steps")[0] == pytest.approx(15.0)
    assert one(interp, "baseline-s0", 50.0, "seconds")[0] == pytest.approx(3.0)
    assert one(interp, "baseline-s0", 50.0, "flops")[0] == pytest.approx(1.5e12)
    # A crossing at the very first evaluation has no bracket: not interpolated.
    t = crossing_times(
        np.array([[55.0, 60.0]]),
        np.array([[[1.0, 2.0]]]),
        np.array([[0]]),
        np.array([50.0]),
        interpolate=True,
    )
    assert t[0, 0, 0] == 1.0


def test_sustained_crossing():
    v = np.array([[10.0, 85.0, 70.0, 85.0, 90.0, 95.0], [10.0, 85.0, 70.0, 85.0, np.nan, np.nan]])
    thr = np.array([80.0])
    assert crossing_indices(v, thr, "higher", 1).tolist() == [[1, 1]]
    assert crossing_indices(v, thr, "higher", 2).tolist() == [[3, -1]]
    assert crossing_indices(v, thr, "higher", 3).tolist() == [[3, -1]]
    assert crossing_indices(v, thr, "higher", 4).tolist() == [[-1, -1]]


def test_sustained_and_interpolated_in_time_to_threshold(tmp_path):
    s = write_suite(tmp_path, thresholds=[80.0])
    write_run(s, "baseline", 0, [(1, 10), (2, 85), (3, 70), (4, 75), (5, 85), (6, 95)])
    data = load_suite(s)
    c = time_to_threshold(
        data.evals, data.runs, "accuracy", "higher", [80.0], sustained=2, interpolate=True
    )
    # Window epochs 5-6; bracket (4, 75) -> (5, 85): 4 + (80 - 75) / 10 = 4.5
    assert one(c, "baseline-s0", 80.0) == (4.5, True)


def test_censoring_times_by_unit_and_status(tmp_path):
    s = write_suite(tmp_path, thresholds=[80.0])
    write_run(s, "baseline", 0, [(1, 10), (2, 20), (4, 30)], budget_epochs=5)
    write_run(s, "baseline", 1, [(1, 10), (2, 20)], budget_epochs=5, status="diverged")
    with pytest.warns(ResultsWarning, match="diverged"):
        data = load_suite(s)
    c = time_to_threshold(data.evals, data.runs, "accuracy", "higher", [80.0])
    # complete: budget in epochs/steps, last row in seconds/flops
    assert one(c, "baseline-s0", 80.0, "epochs") == (5.0, False)
    assert one(c, "baseline-s0", 80.0, "steps") == (50.0, False)
    assert one(c, "baseline-s0", 80.0, "seconds") == (8.0, False)
    assert one(c, "baseline-s0", 80.0, "flops") == (4e12, False)
    # diverged: a failure, censored at the budget (not at its last row, epoch 2: it can never
    # cross); in seconds/flops at what its arm's complete runs spent
    assert one(c, "baseline-s1", 80.0, "epochs") == (5.0, False)
    assert one(c, "baseline-s1", 80.0, "steps") == (50.0, False)
    assert one(c, "baseline-s1", 80.0, "seconds") == (8.0, False)
    assert one(c, "baseline-s1", 80.0, "flops") == (4e12, False)
    assert one(c, "baseline-s1", 80.0, "seconds_teacher_train") == (8.0, False)  # no teacher
    assert len(c) == 2 * 6  # never dropped


def test_running_run_keeps_its_last_evaluation_and_failed_without_complete_peer(tmp_path):
    s = write_suite(tmp_path, thresholds=[80.0], arms=("baseline", "kd"))
    write_run(s, "baseline", 0, [(1, 10), (2, 20)], budget_epochs=5, status="running")
    write_run(s, "kd", 0, [(1, 10), (3, 20)], budget_epochs=5, status="failed")
    with pytest.warns(ResultsWarning):
        data = load_suite(s)
    c = time_to_threshold(data.evals, data.runs, "accuracy", "higher", [80.0])
    # running: may still cross, so only known not to have crossed by its last evaluation
    assert one(c, "baseline-s0", 80.0, "epochs") == (2.0, False)
    # failed: the budget in epochs; no complete run anywhere -> its own last row in seconds
    assert one(c, "kd-s0", 80.0, "epochs") == (5.0, False)
    assert one(c, "kd-s0", 80.0, "seconds") == (6.0, False)


def test_diverged_run_counts_as_a_failure_in_rmst_and_p_sooner(tmp_path):
    """Issue 18: arm seeds cross at 5, 5 and one diverges at epoch 1; the baseline crosses at
    6 every time; budget 10. Censored at the budget the diverged run is a failure: RMST ratio
    6 / (5 + 5/3) = 0.9 and P(sooner) = (1 + 1 + 0) / 3; censored where it stopped (epoch 1,
    the old rule) it was 6 / 5 = 1.2 and (1 + 1 + 1/2) / 3 = 0.83."""
    from benchmark.analysis.report import compare_arm

    s = write_suite(tmp_path, thresholds=[80.0], arms=("baseline", "kd"))
    for seed in range(3):
        write_run(s, "baseline", seed, [(e, 10.0 * e + 20) for e in range(1, 11)])
    write_run(s, "kd", 0, [(e, 10.0 * e + 30) for e in range(1, 11)])
    write_run(s, "kd", 1, [(e, 10.0 * e + 30) for e in range(1, 11)])
    write_run(s, "kd", 2, [(1, 30.0)], budget_epochs=10, status="diverged")
    with pytest.warns(ResultsWarning, match="diverged"):
        data = load_suite(s)
    c = time_to_threshold(data.evals, data.runs, "accuracy", "higher", [80.0], ["epochs"])
    assert one(c, "kd-s1", 80.0) == (5.0, True)
    assert one(c, "baseline-s2", 80.0) == (6.0, True)
    assert one(c, "kd-s2", 80.0) == (10.0, False)
    row = compare_arm(c, "kd")[0].iloc[0]
    assert row["tau"] == 10.0
    assert row["rmst_ratio"] == pytest.approx(0.9)
    assert row["p_sooner"] == pytest.approx(2 / 3)
    assert row["point"] == pytest.approx(6 / (20 / 3))  # mean with the budget substituted
    assert row["bound"] == "<="


def test_lower_is_better_fid(tmp_path):
    s = write_suite(tmp_path, metric="fid_cifarnet", direction="lower", thresholds=[20.0])
    write_run(s, "baseline", 0, [(e, 100.0 - 10 * e) for e in range(1, 11)], metric="fid_cifarnet")
    data = load_suite(s)
    c = time_to_threshold(data.evals, data.runs, "fid_cifarnet", "lower", [20.0, 55.0])
    assert one(c, "baseline-s0", 20.0) == (8.0, True)
    assert one(c, "baseline-s0", 55.0) == (5.0, True)


def test_kaplan_meier_and_restricted_mean_by_hand():
    # events at 4 and 6, one censored at 5 (diverged): S = 2/3 after 4, at risk at 6 is 1.
    t, s = kaplan_meier(np.array([4.0, 6.0, 5.0]), np.array([True, True, False]))
    assert t.tolist() == [4.0, 6.0]
    assert s == pytest.approx([2 / 3, 0.0])
    assert restricted_mean(
        np.array([4.0, 6.0, 5.0]), np.array([True, True, False]), 10.0
    ) == pytest.approx(4 + 2 * 2 / 3)
    # censored at tau: area = mean of the substituted times
    assert restricted_mean(
        np.array([4.0, 6.0, 10.0]), np.array([True, True, False]), 10.0
    ) == pytest.approx(20 / 3)
    # no censoring, all before tau: the mean
    assert restricted_mean(np.array([2.0, 2.0, 5.0]), np.ones(3, bool), 10.0) == pytest.approx(3)
    # tau cuts the curve
    assert restricted_mean(np.array([2.0, 8.0]), np.ones(2, bool), 4.0) == pytest.approx(3.0)
