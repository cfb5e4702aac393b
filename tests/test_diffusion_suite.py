"""The diffusion task through the suite format, the one loop, the runner and the report:
option checks, paired and resumable batches, the teacher skipped at weight 0, and the smoke
suite end to end with its lower-is-better thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import SuiteError
from benchmark.suite import load_suite, validate_dict

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "diffusion-smoke.yaml"

torch.set_num_threads(1)


def smoke_dict() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def tiny_dict() -> dict:
    """The smoke suite shrunk further, for in-process unit tests of the runtime."""
    d = smoke_dict()
    d["data"]["kwargs"] = {"train": 300, "test": 100}
    d["data"]["holdout"] = 60
    d["task_options"]["fid"].update(num_samples=16, batch_size=16,
                                    feature_net={"width": 8, "epochs": 1, "batch_size": 60})
    d["task_options"]["sampler"]["steps"] = 2
    d["train"]["batch_size"] = 16
    return d


# ---------------------------------------------------------------------------- validation
def test_suites_validate_and_the_gpu_suite_plans(tmp_path, monkeypatch):
    load_suite(SMOKE)
    load_suite(ROOT / "suites" / "diffusion-cpu.yaml", check_paths=False)
    s = load_suite(ROOT / "suites" / "diffusion-cifar10.yaml", check_paths=False)
    from benchmark.runner.execute import plan

    items = plan(s, tmp_path)
    assert items[0].kind == "teacher" and len(items) == 1 + 3 * 3
    assert s.cfg.targets.direction == "lower"


def test_option_and_target_problems_are_reported_together():
    d = smoke_dict()
    d["task_options"]["sampler"] = {"name": "ddim", "steps": 5000, "bogus": 1}
    d["task_options"]["fid"].pop("num_samples")
    d["task_options"]["fid"]["weights"] = "/nonexistent/inception.pth"
    d["targets"] = {"metric": "accuracy", "direction": "higher", "thresholds": [50]}
    d["student"]["kwargs"]["image_size"] = 32
    with pytest.raises(SuiteError) as e:
        validate_dict(d)
    paths = {p for p, _ in e.value.problems}
    assert "task_options.sampler.bogus" in paths
    assert "task_options.fid.num_samples" in paths
    assert "targets.metric" in paths
    assert "student.kwargs.image_size" in paths
    d = smoke_dict()
    d["targets"]["direction"] = "higher"
    d["task_options"]["sampler"]["steps"] = 5000
    d["task_options"]["image_size"] = 5  # 2 levels need a size divisible by 2, 3 levels by 4
    d["teachers"]["weak"]["model"]["kwargs"]["ch_mult"] = [1, 2, 2]
    with pytest.raises(SuiteError) as e:
        validate_dict(d)
    msgs = dict(e.value.problems)
    assert "lower-is-better" in msgs["targets.direction"]
    assert "exceed T=1000" in msgs["task_options.sampler.steps"]
    assert "divisible" in msgs["student.kwargs.ch_mult"]
    assert "divisible" in msgs["teachers.weak.model.kwargs.ch_mult"]


def test_diffusion_components_are_not_accepted_by_classification():
    d = smoke_dict()
    d["task"] = "classification"
    d.pop("task_options")
    d["targets"] = {"metric": "accuracy", "direction": "higher", "thresholds": [50]}
    with pytest.raises(SuiteError) as e:
        validate_dict(d)
    msgs = dict(e.value.problems)
    assert "not classification" in msgs["student.name"]
    assert "not classification" in msgs["distill.loss"]


# ------------------------------------------------------------------------------- runtime
@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    import os

    os.environ["W2S_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    from benchmark.suite import derive_seeds
    from benchmark.tasks import get_task

    s = validate_dict(tiny_dict()).arm_settings["w2s"]
    task = get_task("diffusion").build(s, seeds=derive_seeds(0), device=torch.device("cpu"))
    return s, task


def test_batches_are_a_pure_function_of_seed_epoch_index(runtime):
    from benchmark.suite import derive_seeds
    from benchmark.tasks import get_task

    s, task = runtime
    a = list(task.batches(1, 0))
    b = list(task.batches(1, 3))  # resume in the middle of the epoch
    for (x1, t1, n1), (x2, t2, n2) in zip(a[3:], b):
        assert torch.equal(x1, x2) and torch.equal(t1, t2) and torch.equal(n1, n2)
    # a paired arm (baseline) with the same seed sees identical (x_0, t, eps)
    base = get_task("diffusion").build(validate_dict(tiny_dict()).arm_settings["baseline"],
                                       seeds=derive_seeds(0), device=torch.device("cpu"))
    c = next(iter(base.batches(1, 0)))
    assert all(torch.equal(u, v) for u, v in zip(a[0], c))
    other = next(iter(task.batches(2, 0)))
    assert not torch.equal(a[0][2], other[2])
    x0, t, eps = a[0]
    assert x0.shape == (16, 3, 8, 8) and float(x0.min()) >= -1 and float(x0.max()) <= 1
    assert t.dtype == torch.long and int(t.min()) >= 0 and int(t.max()) < 1000


def test_loss_uses_teacher_only_when_weighted(runtime):
    s, task = runtime
    student = task.build_model(s.student, 0)
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, x, t):
            calls.append(1)
            return torch.zeros_like(x)

    batch = next(iter(task.batches(0, 0)))
    l0, parts0 = task.loss(student, batch, None, 0.0, 0)
    assert "kd" not in parts0 and not calls
    l1, parts1 = task.loss(student, batch, Spy(), 1.0, 0)
    assert calls and "kd" in parts1
    # lambda form with a zero teacher: mse + lambda * mean(eps_s^2)
    assert l1.item() == pytest.approx(parts1["mse"].item() + 1.0 * parts1["kd"].item(), rel=1e-5)
    assert torch.isfinite(l0)


def test_evaluation_is_fixed_seed_and_shared_between_splits(runtime):
    s, task = runtime
    m = task.build_model(s.student, 1).eval()
    rng = torch.get_rng_state()
    a = task.evaluate(m, "test")
    h = task.evaluate(m, "holdout")
    assert torch.equal(rng, torch.get_rng_state())  # sampling never touches the global RNG
    assert set(a) == {"fid_cifarnet"} and set(h) == {"fid_cifarnet"} and a["fid_cifarnet"] > 0
    task._sample_cache = None
    assert task.evaluate(m, "test") == a  # fixed sampling seed: identical samples
    fl = task.flops(m, m)
    assert fl["student_step"] > fl["teacher_step"] > 0 and fl["eval_per_sample"] > 0


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_smoke_suite_end_to_end_and_report(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    from benchmark.analysis.report import write_report
    from benchmark.runner.execute import run_suite

    suite = load_suite(SMOKE)
    out = run_suite(suite, tmp_path / "results", log=lambda *a: None)
    assert set(out.values()) == {"complete"}, out
    sdir = tmp_path / "results" / "diffusion-smoke"
    runs = sorted((sdir / "runs").iterdir())
    assert len(runs) == 2
    rows = {}
    for r in runs:
        lines = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
        assert {x["metric"] for x in lines} == {"fid_cifarnet"}
        assert {x["split"] for x in lines} == {"test", "holdout"}
        rows[r.name.split("-")[0]] = lines
    # the students learn: the final test FID is below the initial one
    for lines in rows.values():
        test = [x["value"] for x in lines if x["split"] == "test"]
        assert test[-1] < test[0]
    # the w2s arm starts with the teacher and (if the switch fired) ends without it
    assert any(x["kd_active"] for x in rows["w2s"] if x["step"] > 0)
    assert not any(x["kd_active"] for x in rows["baseline"])
    teacher = json.loads(next((sdir / "teachers").glob("*/teacher.json")).read_text())
    assert teacher["metric"] == "fid_cifarnet" and teacher["metrics"]["holdout"]["fid_cifarnet"] > 0
    md = write_report([tmp_path / "results"], tmp_path / "reports", reps=200)
    text = md[0].read_text()
    assert "lower is better" in text and "fid_cifarnet" in text
    assert "<=" in text
