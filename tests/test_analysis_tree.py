"""Builders for hand-made results trees (used by the other test_analysis_* modules) and
tests of benchmark.analysis.load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import SCHEMA_VERSION
from benchmark.analysis.load import ResultsError, ResultsWarning, find_suites, load_suite

STEPS_PER_EPOCH = 10
SEC_PER_EPOCH = 2.0
FLOPS_PER_EPOCH = 1e12


def write_suite(
    root: Path,
    name: str = "toy",
    *,
    metric: str = "accuracy",
    direction: str = "higher",
    thresholds=(50.0, 80.0),
    seeds=(0, 1, 2),
    arms=("baseline", "kd"),
    schema_version: int = SCHEMA_VERSION,
) -> Path:
    d = root / name
    (d / "runs").mkdir(parents=True, exist_ok=True)
    lock = {
        "schema_version": schema_version,
        "suite": name,
        "suite_sha256": "ab" * 32,
        "created": "2026-01-01T00:00:00Z",
        "resolved": {},
        "targets": {"metric": metric, "direction": direction, "thresholds": list(thresholds)},
        "seeds": list(seeds),
        "arms": list(arms),
    }
    (d / "suite.lock.json").write_text(json.dumps(lock))
    return d


def write_teacher(
    suite_dir: Path,
    tid: str = "t1",
    *,
    metric: str = "accuracy",
    holdout: float = 60.0,
    test: float = 59.0,
    flops: float = 5e12,
) -> None:
    d = suite_dir / "teachers" / tid
    d.mkdir(parents=True, exist_ok=True)
    (d / "teacher.json").write_text(
        json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "teacher_id": tid,
                "name": "weak",
                "model": "r18",
                "metrics": {"holdout": {metric: holdout}, "test": {metric: test}},
                "cost": {
                    "epochs": 5,
                    "steps": 50,
                    "samples": 500,
                    "train_wall_s": 10.0,
                    "eval_wall_s": 1.0,
                    "flops": flops,
                },
                "source": "trained",
            }
        )
    )


def write_run(
    suite_dir: Path,
    arm: str,
    seed: int,
    curve,
    *,
    metric: str = "accuracy",
    status: str = "complete",
    budget_epochs: float | None = None,
    teacher: str | None = None,
    switch_epoch: float | None = None,
    sec_per_epoch: float = SEC_PER_EPOCH,
    flops_per_epoch: float = FLOPS_PER_EPOCH,
    run_id: str | None = None,
    truncate_last: bool = False,
    schema_version: int = SCHEMA_VERSION,
    manifest_extra: dict | None = None,
) -> str:
    """curve: [(epoch, test value), ...]; one holdout row (value - 1) per evaluation too."""
    run_id = run_id or f"{arm}-s{seed}"
    d = suite_dir / "runs" / run_id
    d.mkdir(parents=True, exist_ok=True)
    if budget_epochs is None:
        budget_epochs = max(e for e, _ in curve)
    spec = {
        "schema_version": schema_version,
        "run_id": run_id,
        "suite": suite_dir.name,
        "arm": arm,
        "seed": seed,
        "task": "classification",
        "teacher": {"id": teacher, "name": "weak", "model": "r18"} if teacher else None,
        "budget": {"epochs": budget_epochs, "steps": int(budget_epochs * STEPS_PER_EPOCH)},
        "targets": {},
        "train": {"epochs": budget_epochs},
    }
    (d / "spec.json").write_text(json.dumps(spec))
    man = {
        "schema_version": schema_version,
        "run_id": run_id,
        "status": status,
        "git": {"sha": "0123456789abcdef", "dirty": False},
        "versions": {"python": "3.11", "torch": "2.5.0"},
        "device": "cpu",
        "threads": 2,
        "started": f"2026-01-01T00:00:{seed:02d}Z",
        "ended": None,
        "resumed": 0,
        "lost_wall_s": 0.0,
        "host": "h",
        **(manifest_extra or {}),
    }
    (d / "manifest.json").write_text(json.dumps(man))
    lines = []
    for epoch, value in curve:
        for split, v in (("test", value), ("holdout", value - 1)):
            lines.append(
                json.dumps(
                    {
                        "epoch": epoch,
                        "step": int(round(epoch * STEPS_PER_EPOCH)),
                        "samples": int(round(epoch * 1000)),
                        "train_wall_s": epoch * sec_per_epoch,
                        "eval_wall_s": epoch * 0.1,
                        "flops": epoch * flops_per_epoch,
                        "split": split,
                        "metric": metric,
                        "value": v,
                        "kd_active": switch_epoch is not None and epoch <= switch_epoch,
                    }
                )
            )
    text = "\n".join(lines) + "\n"
    if truncate_last:
        text += '{"epoch": 99, "step": 9'
    (d / "metrics.jsonl").write_text(text)
    ev = []
    if switch_epoch is not None:
        ev.append(
            json.dumps(
                {
                    "event": "switch_off",
                    "epoch": switch_epoch,
                    "step": int(switch_epoch * STEPS_PER_EPOCH),
                    "wall": 0.0,
                    "student_holdout": 61.0,
                    "teacher_holdout": 60.0,
                    "reason": "surpass_teacher",
                }
            )
        )
    (d / "events.jsonl").write_text("\n".join(ev) + ("\n" if ev else ""))
    return run_id


def test_load_tree(tmp_path):
    s = write_suite(tmp_path)
    write_teacher(s)
    write_run(s, "baseline", 0, [(1, 10), (2, 60)])
    write_run(s, "kd", 0, [(1, 55), (2, 85)], teacher="t1", switch_epoch=1.5)
    data = load_suite(s)
    assert data.name == "toy" and data.metric == "accuracy" and data.direction == "higher"
    assert data.thresholds == [50.0, 80.0]
    assert len(data.evals) == 8 and set(data.evals["split"]) == {"test", "holdout"}
    kd = data.runs.set_index("arm").loc["kd"]
    assert kd["switch_epoch"] == 1.5 and kd["switch_step"] == 15
    assert kd["teacher_train_flops"] == 5e12 and kd["teacher_train_s"] == 10.0 and kd["n_evals"] == 2
    ev = data.evals[data.evals["arm"] == "kd"]
    assert (ev["flops_teacher_train"] - ev["flops"] == 5e12).all()
    assert (ev["seconds_teacher_train"] - ev["train_wall_s"] == 10.0).all()
    base = data.evals[data.evals["arm"] == "baseline"]
    assert (base["flops_teacher_train"] == base["flops"]).all()
    assert (base["seconds_teacher_train"] == base["train_wall_s"]).all()


def test_teacher_without_teacher_json_leaves_charged_costs_unknown(tmp_path):
    s = write_suite(tmp_path)
    write_run(s, "baseline", 0, [(1, 10), (2, 60)])
    write_run(s, "kd", 0, [(1, 55), (2, 85)], teacher="t1")
    with pytest.warns(ResultsWarning, match="teacher-training-charged FLOPs and seconds unknown"):
        data = load_suite(s)
    ev = data.evals[data.evals["arm"] == "kd"]
    assert ev["flops_teacher_train"].isna().all() and ev["seconds_teacher_train"].isna().all()
    assert ev["flops"].notna().all() and ev["train_wall_s"].notna().all()


def test_truncated_jsonl_line_skipped_with_warning(tmp_path):
    s = write_suite(tmp_path)
    write_run(s, "baseline", 0, [(1, 10), (2, 60)], truncate_last=True)
    with pytest.warns(ResultsWarning, match="truncated last line"):
        data = load_suite(s)
    assert len(data.evals) == 4
    assert any("truncated" in w for w in data.warnings)


def test_schema_version_mismatch_raises(tmp_path):
    s = write_suite(tmp_path, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ResultsError, match="schema_version"):
        load_suite(s)
    s2 = write_suite(tmp_path, name="other")
    write_run(s2, "baseline", 0, [(1, 10)], schema_version=0)
    with pytest.raises(ResultsError, match="schema_version"):
        load_suite(s2)


def test_find_suites_parent_and_single(tmp_path):
    a = write_suite(tmp_path, "a")
    b = write_suite(tmp_path, "b")
    assert find_suites([tmp_path]) == [a, b]
    assert find_suites([a, a]) == [a]
    with pytest.raises(ResultsError):
        find_suites([tmp_path / "a" / "runs"])


def test_running_and_failed_runs_kept_and_flagged(tmp_path):
    s = write_suite(tmp_path)
    write_run(s, "baseline", 0, [(1, 10), (2, 60)], status="running")
    write_run(s, "kd", 0, [(1, 10)], status="failed")
    with pytest.warns(ResultsWarning):
        data = load_suite(s)
    assert set(data.runs["status"]) == {"running", "failed"}
    assert any("running" in w for w in data.warnings)
    assert any("failed" in w for w in data.warnings)
