"""Detection end to end: suites/coco-smoke.yaml on the real coco128 images through the CLI
(teacher, baseline and w2s runs, the results contract with AP/AP50/AP75 on both splits),
then the unchanged report on those results; and the other detection suites validate/plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA_HINT, data_root, write_coco_standin

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = data_root()
HAVE_COCO128 = (DATA_ROOT / "coco128" / "annotations" / "instances.json").is_file()
needs_coco128 = pytest.mark.skipif(
    not HAVE_COCO128,
    reason=f"needs coco128 (128 COCO train2017 images, COCO-format boxes) under {DATA_ROOT}: "
    + DATA_HINT,
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


def test_coco_standin_is_coco_format(tmp_path):
    """The stand-in the validation test uses without coco128 is a real COCO-format dataset:
    pycocotools reads it and every box lies inside its image."""
    from pycocotools.coco import COCO

    from benchmark.data.coco_paths import coco_problem
    from benchmark.suite import DataCfg

    root = write_coco_standin(tmp_path / "coco128", n_images=4).parent
    coco = COCO(str(root / "coco128" / "annotations" / "instances.json"))
    assert len(coco.getImgIds()) == 4 and len(coco.getCatIds()) == 2
    assert len(coco.getAnnIds()) == 6  # 1 + i % 2 boxes on image i = 1..4: 2 + 1 + 2 + 1
    for a in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64 and a["area"] == w * h
    cfg = DataCfg(dataset="coco_json", kwargs={"path": "coco128"})
    assert coco_problem(cfg, root) is None


@pytest.mark.parametrize("suite", ["coco.yaml", "detection-synthetic.yaml", "coco-smoke.yaml"])
def test_detection_suites_validate(suite, tmp_path):
    from benchmark.runner.execute import plan
    from benchmark.suite import load_suite

    root = DATA_ROOT
    if suite == "coco-smoke.yaml" and not HAVE_COCO128:
        # a fresh clone has no coco128: validate against a small stand-in in the same layout
        root = write_coco_standin(tmp_path / "data" / "coco128").parent
    # coco.yaml needs COCO on disk; validate its schema and plan without the path check
    s = load_suite(ROOT / "suites" / suite, data_root=str(root), check_paths=suite != "coco.yaml")
    items = plan(s, tmp_path)
    assert items[0].kind == "teacher"
    assert len([i for i in items if i.kind == "run"]) == len(s.cfg.seeds) * len(s.cfg.arms)
    assert s.cfg.targets.metric == "AP" and s.cfg.targets.direction == "higher"
