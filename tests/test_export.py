"""Tracker export: `report --tensorboard DIR --mlflow-uri URI` writes every run (metrics,
switch-off event, resolved spec) and the seed-grouped summary, read back with TensorBoard's
EventAccumulator and MLflow's client API; without the trackers nothing of them is imported."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from test_analysis_report import build

from benchmark.cli import main

CURVES = {  # test accuracy per (arm, seed) as test_analysis_report.build writes it
    ("baseline", 0): [60, 60, 60, 90, 90, 90, 90, 90, 90, 90],
    ("kd", 2): [60, 60, 60, 60, 90, 90, 90, 90, 90, 90],
}


def _report(tmp_path, *extra: str) -> tuple:
    s = build(tmp_path / "res")
    out = tmp_path / "reports"
    res = CliRunner().invoke(main, ["report", str(s), "--out", str(out), "--reps", "200", *extra])
    assert res.exit_code == 0, res.output
    return s, out / "toy"


def test_tensorboard_export_reads_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = tmp_path / "tb"
    _, rep = _report(tmp_path, "--tensorboard", str(tb))
    dirs = sorted(p.parent.relative_to(tb / "toy").as_posix() for p in tb.glob("toy/*/*/events*"))
    assert dirs == [f"{a}/seed{s}_{a}-s{s}" for a in ("baseline", "kd") for s in range(3)]
    assert list((tb / "toy" / "_summary").glob("events.out.tfevents.*"))

    def acc(d):
        ea = EventAccumulator(str(d), size_guidance={"scalars": 0, "tensors": 0})
        ea.Reload()
        return ea

    b0 = acc(tb / "toy" / "baseline" / "seed0_baseline-s0")
    test = b0.Scalars("test/accuracy")
    assert [e.step for e in test] == list(range(10, 101, 10))
    assert [e.value for e in test] == CURVES[("baseline", 0)]
    assert [e.value for e in b0.Scalars("holdout/accuracy")] == [
        v - 1 for v in CURVES[("baseline", 0)]
    ]
    assert [e.value for e in b0.Scalars("clock/epoch")] == [float(e) for e in range(1, 11)]
    # Event wall times: run start (2026-01-01T00:00:00Z) + train (2 s/epoch) + eval (0.1 s/epoch).
    assert test[0].wall_time == pytest.approx(1767225600.0 + 2.0 + 0.1)
    spec = json.loads(_text(b0, "spec"))
    assert spec["arm"] == "baseline" and spec["seed"] == 0 and spec["budget"]["epochs"] == 10
    assert "events/switch_off_epoch" not in b0.Tags()["scalars"]

    k2 = acc(tb / "toy" / "kd" / "seed2_kd-s2")
    assert [e.value for e in k2.Scalars("test/accuracy")] == CURVES[("kd", 2)]
    sw = k2.Scalars("events/switch_off_epoch")
    assert [(e.step, e.value) for e in sw] == [(30, 3.0)]  # switch_epoch = 1 + seed
    assert json.loads(_text(k2, "events/switch_off"))["reason"] == "surpass_teacher"
    assert [e.value for e in k2.Scalars("kd_active")][:4] == [1.0, 1.0, 1.0, 0.0]

    # The summary: point and CI of every arm x threshold x unit, as in summary.csv.
    summ = acc(tb / "toy" / "_summary")
    df = pd.read_csv(rep / "summary.csv")
    assert len(df) == 2 * 6  # 1 arm x 2 thresholds x 6 units
    for r in df.itertuples(index=False):
        for stat in ("point", "ci_low", "ci_high"):
            tag = f"speedup/{r.arm}/{r.unit}/thr{r.threshold:g}/{stat}"
            want = getattr(r, stat)
            if not math.isfinite(want):  # an unbounded interval (e.g. 3 seeds) is not a scalar
                assert tag not in summ.Tags()["scalars"]
                continue
            assert summ.Scalars(tag)[0].value == pytest.approx(want, rel=1e-6)
    assert "| 80 | kd | 3 | 2.00x" in _text(summ, "summary")

    # Re-exporting replaces, never duplicates.
    _report(tmp_path / "again", "--tensorboard", str(tb))
    assert len(acc(tb / "toy" / "baseline" / "seed0_baseline-s0").Scalars("test/accuracy")) == 10


def _text(ea, tag: str) -> str:
    t = ea.Tensors(tag)[0].tensor_proto
    s = t.string_val[0].decode("utf-8")
    # spec / events are markdown code blocks (4-space indent); the summary is plain markdown.
    return "\n".join(line[4:] if line.startswith("    ") else line for line in s.splitlines())


def test_mlflow_export_reads_back(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    _, rep = _report(tmp_path, "--mlflow-uri", str(store))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: file store opt-in
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    exp = client.get_experiment_by_name("w2s-bench/toy")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`w2s.kind` = 'run'")
    assert sorted(r.data.tags["w2s.run_id"] for r in runs) == [
        f"{a}-s{s}" for a in ("baseline", "kd") for s in range(3)
    ]
    parents = {
        r.data.tags["w2s.arm"]: r
        for r in client.search_runs([exp.experiment_id], filter_string="tags.`w2s.kind` = 'arm'")
    }
    assert sorted(parents) == ["baseline", "kd"]
    for r in runs:
        arm, seed = r.data.tags["w2s.arm"], int(r.data.tags["w2s.seed"])
        assert r.data.tags["mlflow.parentRunId"] == parents[arm].info.run_id
        assert r.data.tags["w2s.suite"] == "toy" and r.info.status == "FINISHED"
        # params = the resolved spec, flattened
        assert r.data.params["arm"] == arm and r.data.params["seed"] == str(seed)
        assert r.data.params["budget.epochs"] == "10" and r.data.params["task"] == "classification"
        hist = client.get_metric_history(r.info.run_id, "test/accuracy")
        assert sorted(m.step for m in hist) == list(range(10, 101, 10))
        if (arm, seed) in CURVES:
            assert [m.value for m in sorted(hist, key=lambda m: m.step)] == CURVES[(arm, seed)]
        if arm == "kd":
            assert r.data.metrics["switch_off_epoch"] == 1.0 + seed
            assert r.data.metrics["switch_off_step"] == 10 * (1 + seed)
            assert json.loads(r.data.tags["w2s.switch_off"])["reason"] == "surpass_teacher"
        else:
            assert "switch_off_epoch" not in r.data.metrics
        arts = [a.path for a in client.list_artifacts(r.info.run_id)]
        assert arts == ["spec.json"]

    df = pd.read_csv(rep / "summary.csv")
    kd = parents["kd"].data.metrics
    (summ,) = client.search_runs([exp.experiment_id], filter_string="tags.`w2s.kind` = 'summary'")
    for r in df.itertuples(index=False):
        for stat in ("point", "ci_low", "ci_high"):
            want = getattr(r, stat)
            key = f"speedup/{r.arm}/{r.unit}/thr{r.threshold:g}/{stat}"
            if not math.isfinite(want):  # an unbounded interval (e.g. 3 seeds) is not logged
                assert f"speedup/{r.unit}/thr{r.threshold:g}/{stat}" not in kd
                assert key not in summ.data.metrics
                continue
            assert kd[f"speedup/{r.unit}/thr{r.threshold:g}/{stat}"] == pytest.approx(want)
            assert summ.data.metrics[key] == pytest.approx(want)
    assert summ.data.tags["w2s.health"] == "none"
    assert sorted(a.path for a in client.list_artifacts(summ.info.run_id)) == [
        "index.html",
        "report.md",
        "summary.csv",
    ]

    # Re-exporting replaces the suite's runs instead of adding a second copy.
    _report(tmp_path / "again", "--mlflow-uri", str(store))
    again = client.search_runs([exp.experiment_id], filter_string="tags.`w2s.suite` = 'toy'")
    assert len(again) == 6 + 2 + 1


def test_trackers_not_imported_without_options(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path.parent)!r})
sys.path.insert(0, "tests")
from pathlib import Path
from test_analysis_report import build
from benchmark.analysis.report import write_report
s = build(Path({str(tmp_path)!r}) / "res")
write_report([s], Path({str(tmp_path)!r}) / "reports", reps=50)
bad = [m for m in sys.modules if m.split(".")[0] in ("tensorboard", "mlflow", "tensorflow")]
assert not bad, bad
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
    assert (tmp_path / "reports" / "toy" / "index.html").is_file()
