"""Control arms (issue 4): every control resolves from YAML overrides, plans with the right
dependencies, and runs end to end on a tiny synthetic suite; same_as follows the right switch."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_suite_dict

from benchmark.runner.execute import plan, run_suite
from benchmark.suite import validate_dict

CONTROLS = {
    "baseline": {"distill": None},
    "w2s": {},
    "kd_always": {"distill": {"switch": "never"}},
    "fixed_switch_e1": {"distill": {"switch": {"fixed_epoch": 1}}},
    "w2s_ramp": {"distill": {"ramp": {"evals": 2}}},
    "matched": {"distill": {"switch": {"same_as": "w2s"}}},
    "aux_no_teacher": {"distill": {"teacher": None, "loss": "tfkd", "tfkd_a": 0.9, "switch": {"same_as": "w2s"}}},
    "strong_teacher": {"distill": {"teacher": "strong"}},
    "strong_teacher_matched": {"distill": {"teacher": "strong", "switch": {"same_as": "w2s"}}},
    "early_teacher": {"distill": {"teacher": "early"}},
}


def _suite(seeds=(0,)):
    d = tiny_suite_dict(arms=CONTROLS)
    d["seeds"] = list(seeds)
    d["teachers"]["strong"] = {"model": {"name": "resnet8", "kwargs": {"width": 16}}, "train": {"epochs": 2}}
    d["teachers"]["early"] = {"model": {"name": "resnet8", "kwargs": {"width": 8}}, "snapshot_epoch": 0.5}
    # a barely trained (near-chance) teacher that the student passes early, so the surpass
    # switch really fires
    d["teachers"]["weak"]["train"] = {"epochs": 0.2, "optimizer": {"name": "sgd", "lr": 1.0e-4}}
    d["student"] = {"name": "tinycnn", "kwargs": {"width": 16}}  # learns fast enough to pass it
    d["data"]["kwargs"].update(noise=0.0, contrast=0.0, hue_noise=0.0)  # colour names the class
    d["train"]["epochs"] = 2
    d["train"]["optimizer"] = {"name": "adam", "lr": 0.01, "weight_decay": 0.0}
    d["train"]["eval"] = {"every_steps": 5, "batch_size": 200}
    return validate_dict(d)


@pytest.fixture(autouse=True)
def _env(monkeypatch, w2s_cache):
    monkeypatch.setenv("W2S_CACHE", str(w2s_cache))
    torch.set_num_threads(1)


def test_every_control_plans_with_expected_dependencies(tmp_path):
    suite = _suite(seeds=(0, 1))
    items = plan(suite, tmp_path)
    teachers = [it for it in items if it.kind == "teacher"]
    assert sorted(t.spec["name"] for t in teachers) == ["early", "strong", "weak"]  # each once
    runs = {it.arm: it for it in items if it.kind == "run" and it.seed == 0}
    tid = {t.spec["name"]: t.id for t in teachers}
    assert runs["baseline"].deps == []
    assert runs["kd_always"].deps == [tid["weak"]]
    assert runs["matched"].deps == [tid["weak"], runs["w2s"].id]
    assert runs["aux_no_teacher"].deps == [runs["w2s"].id]  # no teacher at all
    assert runs["strong_teacher_matched"].deps == [tid["strong"], runs["w2s"].id]
    order = [it.id for it in items]
    for it in items:
        assert all(order.index(d) < order.index(it.id) for d in it.deps)  # dependencies first
    seeds = [it.seed for it in items if it.kind == "run"]
    assert seeds == [0] * len(CONTROLS) + [1] * len(CONTROLS)  # seed by seed: a stopped suite
    # leaves whole paired seeds
    s = suite.arm_settings
    assert s["aux_no_teacher"].distill.alpha == s["w2s"].distill.alpha
    assert s["aux_no_teacher"].distill.temperature == s["w2s"].distill.temperature


def test_all_controls_run_end_to_end_and_same_as_follows_w2s(tmp_path):
    suite = _suite()
    out = run_suite(suite, tmp_path, log=lambda *a: None)
    assert set(out.values()) == {"complete"}, out
    runs = tmp_path / "tiny" / "runs"

    def events(arm):
        f = next(runs.glob(f"{arm}-s0-*")) / "events.jsonl"
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def switch_steps(arm):
        return [e["step"] for e in events(arm) if e["event"] == "switch_off"]

    w2s = switch_steps("w2s")
    assert len(w2s) == 1, "the weak teacher is passed within the budget"
    assert switch_steps("matched") == w2s
    assert switch_steps("aux_no_teacher") == w2s
    assert switch_steps("strong_teacher_matched") == w2s
    assert switch_steps("kd_always") == []
    assert switch_steps("fixed_switch_e1") == [10]  # first evaluation at/after epoch 1
    ramp = next(runs.glob("w2s_ramp-s0-*"))
    rows = [json.loads(x) for x in (ramp / "metrics.jsonl").read_text().splitlines()]
    off = switch_steps("w2s_ramp")[0]
    active_after = sorted({r["step"] for r in rows if r["kd_active"] and r["step"] > off})
    assert active_after, "a ramp keeps KD on (with a falling weight) after the policy fires"
    assert [e for e in events("w2s_ramp") if e["event"] == "kd_zero"]
    teachers = {json.loads(p.read_text())["name"]: json.loads(p.read_text())
                for p in (tmp_path / "tiny" / "teachers").glob("*/teacher.json")}
    assert teachers["early"]["cost"]["epochs"] == pytest.approx(0.5)
    # the report's switch table lists every distilling arm, the teacher-free one included
    from benchmark.analysis.load import load_suite
    from benchmark.analysis.report import switch_table

    sw = switch_table(load_suite(tmp_path / "tiny")).set_index("arm")
    assert sw.loc["aux_no_teacher", "teacher_name"] == "none (tfkd)"
    assert sw.loc["aux_no_teacher", "switch_step"] == sw.loc["w2s", "switch_step"] == w2s[0]
    assert np.isnan(sw.loc["aux_no_teacher", "teacher_test"])
    assert sw.loc["w2s", "teacher_name"] == "weak" and np.isfinite(sw.loc["w2s", "teacher_test"])
    assert "baseline" not in sw.index
