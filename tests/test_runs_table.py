"""The per-run table (quality.runs_table): exact values on a hand-built tree, and the same
rows in report.md, index.html and runs.csv."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_analysis_tree import write_run, write_suite, write_teacher

from benchmark.analysis.load import load_suite
from benchmark.analysis.quality import RUNS_COLUMNS, runs_table
from benchmark.analysis.report import write_report


def _tree(tmp_path):
    s = write_suite(tmp_path, seeds=(0, 1))
    write_teacher(s)
    # eval_wall_s in the builder is 0.1 x epoch (cumulative), train_wall_s 2 x epoch
    write_run(s, "kd", 0, [(0, 10.0), (1, 50.0), (2, 70.0), (4, 90.0)], teacher="t1",
              switch_epoch=2.0)
    write_run(s, "baseline", 1, [(0, 10.0), (1, 40.0)], budget_epochs=4, status="failed")
    write_run(s, "baseline", 0, [(0, 10.0), (1, 50.0), (2, 60.0), (4, 80.0)])
    return s


def test_runs_table_exact(tmp_path):
    t = runs_table(load_suite(_tree(tmp_path)))
    assert list(t.columns) == list(RUNS_COLUMNS)
    # lock order of arms (baseline, kd), then seed
    assert list(zip(t["arm"], t["seed"])) == [("baseline", 0), ("baseline", 1), ("kd", 0)]
    b0, b1, k0 = (t.iloc[i] for i in range(3))
    # complete: 4 test evaluations; the 3 before the last cost 0.2 s together, the last 0.2 s
    assert (b0.last_value, b0.last_epoch, b0.train_wall_s, b0.n_evals) == (80.0, 4.0, 8.0, 4)
    assert b0.s_per_eval == pytest.approx(0.2 / 3) and b0.final_eval_s == pytest.approx(0.2)
    assert math.isnan(b0.switch_epoch)
    # stopped part way: its last evaluation is not a final one, so all of them are averaged
    assert (b1.status, b1.last_value, b1.last_epoch, b1.n_evals) == ("failed", 40.0, 1.0, 2)
    assert b1.s_per_eval == pytest.approx(0.1 / 2) and math.isnan(b1.final_eval_s)
    assert (k0.last_value, k0.switch_epoch) == (90.0, 2.0)


def test_runs_table_in_every_report_file(tmp_path):
    s = _tree(tmp_path)
    out = tmp_path / "reports"
    write_report([s], out, reps=200)
    d = out / "toy"
    csv = pd.read_csv(d / "runs.csv")
    assert list(csv["run_id"]) == ["baseline-s0", "baseline-s1", "kd-s0"]
    md = (d / "report.md").read_text()
    runs = md.split("## Runs", 1)[1]
    assert "| baseline-s1 | failed | 40 (1) |  | 2 | 0.05 | - |" in runs
    assert "| kd-s0 | complete | 90 (4) | 2 | 8 | 0.0667 | 0.2 |" in runs
    html = (d / "index.html").read_text()
    assert 'id="runs"' in html and "<td>baseline-s1</td><td>failed</td>" in html
