"""Detection end to end: suites/coco-smoke.yaml on the real coco128 images through the CLI
(teacher, baseline and w2s runs, the results contract with AP/AP50/AP75 on both splits),
then the unchanged report on those results; and the other detection suites validate/plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("W2S_DATA_ROOT") or ROOT.parent / "shared" / "datasets")
needs_coco128 = pytest.mark.skipif(
    not (DATA_ROOT / "coco128" / "annotations" / "instances.json").is_file(),
    reason=f"coco128 not found under {DATA_ROOT}",
)


@pytest.mark.slow
@needs_coco128
def test_coco_smoke_end_to_end_and_report(run_cli, tmp_path):
    res_dir = tmp_path / "results"
    r = run_cli(
        "run",
        ROOT / "suites" / "coco-smoke.yaml",
        "--results-dir",
        res_dir,
        "--threads",
        "1",
        "--device",
        "cpu",
        timeout=900,
        env={"W2S_DATA_ROOT": str(DATA_ROOT)},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sdir = res_dir / "coco-smoke"
    assert (sdir / "suite.lock.json").is_file()
    teachers = list((sdir / "teachers").iterdir())
    assert len(teachers) == 1
    tinfo = json.loads((teachers[0] / "teacher.json").read_text())
    assert set(tinfo["metrics"]["holdout"]) == {"AP", "AP50", "AP75"}
    runs = sorted((sdir / "runs").iterdir())
    assert [p.name.split("-")[0] for p in runs] == ["baseline", "w2s"]
    for rd in runs:
        assert json.loads((rd / "manifest.json").read_text())["status"] == "complete"
        spec = json.loads((rd / "spec.json").read_text())
        assert spec["task"] == "detection" and spec["data_info"]["test_images"] == 32
        rows = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
        seen = {(x["split"], x["metric"]) for x in rows}
        assert seen == {(s, m) for s in ("test", "holdout") for m in ("AP", "AP50", "AP75")}
        assert all(0.0 <= x["value"] <= 100.0 for x in rows)
        steps = sorted({x["step"] for x in rows})
        assert steps[0] == 0 and steps[-1] == spec["budget"]["steps"]
        assert all(x["eval_wall_s"] > 0 for x in rows if x["step"] > 0)
        flops = [x["flops"] for x in rows if x["split"] == "test" and x["metric"] == "AP"]
        assert flops == sorted(flops) and flops[-1] > 0
    w2s_rows = [json.loads(x) for x in (runs[1] / "metrics.jsonl").read_text().splitlines()]
    assert any(x["kd_active"] for x in w2s_rows)  # PKD ran

    # the report reads detection results unchanged (AP, higher is better)
    from benchmark.analysis.report import write_report

    out = tmp_path / "reports"
    paths = write_report([sdir], out, reps=200)
    text = "\n".join(Path(p).read_text() for p in paths)
    assert "AP" in text and "w2s" in text


@pytest.mark.parametrize("suite", ["coco.yaml", "detection-synthetic.yaml", "coco-smoke.yaml"])
def test_detection_suites_validate(suite, tmp_path):
    from benchmark.runner.execute import plan
    from benchmark.suite import load_suite

    # coco.yaml needs COCO on disk; validate its schema and plan without the path check
    s = load_suite(
        ROOT / "suites" / suite, data_root=str(DATA_ROOT), check_paths=suite != "coco.yaml"
    )
    items = plan(s, tmp_path)
    assert items[0].kind == "teacher"
    assert len([i for i in items if i.kind == "run"]) == len(s.cfg.seeds) * len(s.cfg.arms)
    assert s.cfg.targets.metric == "AP" and s.cfg.targets.direction == "higher"
