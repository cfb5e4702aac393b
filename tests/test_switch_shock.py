"""quality.switch_shock: the change of a run's test curve across its switch-off, against the
baseline of its seed over the same two evaluations, and its median in the LaTeX switch table;
exact on tiny tables."""
from types import SimpleNamespace

import numpy as np
import pandas as pd

from benchmark.analysis.latex import _switch_tex
from benchmark.analysis.quality import switch_shock


def _evals(rows):
    return pd.DataFrame(
        [{"run_id": rid, "arm": rid.split("-")[0], "seed": int(rid.split("-s")[1][0]), "epoch": e,
          "split": split, "metric": metric, "value": v}
         for rid, e, v, split, metric in rows])


def _switch(rows):
    return pd.DataFrame([{"arm": rid.split("-")[0], "seed": int(rid.split("-s")[1][0]),
                          "run_id": rid, "switch_epoch": e} for rid, e in rows])


def test_change_to_the_next_test_evaluation_against_the_baseline_of_the_same_seed():
    t = "test"
    ev = _evals([
        # w2s seed 0 switches off at 1.0; its next test evaluation is 1.5 (holdout rows and
        # another metric at the same epochs must not count)
        ("w2s-s0", 0.5, 60.0, t, "acc"), ("w2s-s0", 1.0, 70.0, t, "acc"),
        ("w2s-s0", 1.5, 65.0, t, "acc"), ("w2s-s0", 2.0, 72.0, t, "acc"),
        ("w2s-s0", 1.5, 99.0, "holdout", "acc"), ("w2s-s0", 1.5, 1.0, t, "loss"),
        ("baseline-s0", 1.0, 68.0, t, "acc"), ("baseline-s0", 1.5, 71.0, t, "acc"),
        # seed 1: the switch-off is the run's last evaluation -> no next one
        ("w2s-s1", 1.0, 70.0, t, "acc"), ("baseline-s1", 1.0, 69.0, t, "acc"),
        # seed 2: the baseline was not evaluated at the next epoch -> its change is NaN
        ("w2s-s2", 2.0, 80.0, t, "acc"), ("w2s-s2", 2.5, 84.5, t, "acc"),
        ("baseline-s2", 2.0, 79.0, t, "acc"), ("baseline-s2", 3.0, 81.0, t, "acc"),
        # seed 3: two baseline runs (a changed spec) -> ambiguous, NaN
        ("w2s-s3", 1.0, 70.0, t, "acc"), ("w2s-s3", 1.5, 66.0, t, "acc"),
        ("baseline-s3", 1.0, 60.0, t, "acc"), ("baseline-s3", 1.5, 61.0, t, "acc"),
        ("baseline-s3x", 1.0, 60.0, t, "acc"), ("baseline-s3x", 1.5, 63.0, t, "acc"),
        # a run that never switched off
        ("kd-s0", 1.0, 71.0, t, "acc"), ("kd-s0", 1.5, 72.0, t, "acc"),
    ])
    sw = _switch([("w2s-s0", 1.0), ("w2s-s1", 1.0), ("w2s-s2", 2.0), ("w2s-s3", 1.0),
                  ("kd-s0", np.nan)])
    out = switch_shock(sw, ev, "acc")
    assert list(out.columns) == [*sw.columns, "next_change", "baseline_next_change"]
    np.testing.assert_array_equal(out["next_change"], [-5.0, np.nan, 4.5, -4.0, np.nan])
    np.testing.assert_array_equal(out["baseline_next_change"], [3.0, np.nan, np.nan, np.nan, np.nan])
    assert out[sw.columns].equals(sw)  # the switch table itself is untouched


def test_epochs_match_to_rounding_not_bitwise():
    """A switch-off epoch read back from events.jsonl may differ from the metrics row's epoch
    in the last bits (0.1 * 7 != 0.7)."""
    assert 0.1 * 7 != 0.7
    ev = _evals([("w2s-s0", 0.7, 50.0, "test", "acc"), ("w2s-s0", 1.2, 47.0, "test", "acc"),
                 ("baseline-s0", 0.7, 40.0, "test", "acc"),
                 ("baseline-s0", 1.2, 42.0, "test", "acc")])
    out = switch_shock(_switch([("w2s-s0", 0.1 * 7)]), ev, "acc")
    assert (out["next_change"].iloc[0], out["baseline_next_change"].iloc[0]) == (-3.0, 2.0)


def test_latex_row_gives_medians_and_na_for_an_arm_that_never_switched():
    sw = pd.DataFrame({
        "arm": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0],
        "switch_epoch": [1.0, 2.0, np.nan, np.nan],
        "teacher_holdout": [60.0] * 4, "teacher_test": [59.0] * 4,
        "next_change": [-2.0, -3.0, np.nan, np.nan],
        "baseline_next_change": [1.0, 0.5, np.nan, np.nan],
    })
    rows = _switch_tex(SimpleNamespace(switch=sw, suite=SimpleNamespace(metric="accuracy")))
    assert "a & 2/3 & 1.5 & 60 & 59 & -2.5 (+0.75) \\\\" in rows
    assert "b & 0/1 & n/a & 60 & 59 & n/a \\\\" in rows
