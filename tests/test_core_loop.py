"""The training loop: pairing, the teacher skipped once KD is off, the metrics contract.

The loop is driven here without the runner (built by runner/build.py with plain arguments),
and through the runner for what the runner adds around it (records, lock, divergence)."""

import json

import pytest
import torch
from conftest import tiny_suite_dict

from benchmark.contract import METRIC_ROW_KEYS
from benchmark.runner.execute import run_suite
from benchmark.suite import derive_seeds, validate_dict
from benchmark.tasks.classification import build


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch, w2s_cache):
    monkeypatch.setenv("W2S_CACHE", str(w2s_cache))
    torch.set_num_threads(1)


def test_paired_arms_start_identical_and_see_identical_batches():
    suite = validate_dict(tiny_suite_dict())
    seeds = derive_seeds(0)
    dev = torch.device("cpu")
    tb = build(suite.arm_settings["baseline"], seeds=seeds, device=dev)
    tw = build(suite.arm_settings["w2s"], seeds=seeds, device=dev)
    mb = tb.build_model(suite.arm_settings["baseline"].student, seeds["init"])
    mw = tw.build_model(suite.arm_settings["w2s"].student, seeds["init"])
    for a, b in zip(mb.state_dict().values(), mw.state_dict().values()):
        assert torch.equal(a, b)
    for (xa, ya), (xb, yb) in zip(list(tb.batches(0, 0))[:3], list(tw.batches(0, 0))[:3]):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # a resumed epoch continues with exactly the batches it would have seen
    assert torch.equal(list(tb.batches(1, 2))[0][0], list(tb.batches(1, 0))[2][0])
    # another seed: different init
    other = tb.build_model(suite.arm_settings["baseline"].student, derive_seeds(1)["init"])
    assert not torch.equal(next(iter(other.state_dict().values())), next(iter(mb.state_dict().values())))


class CountingTeacher(torch.nn.Module):
    """Wraps a teacher and counts its forward passes (those after the switch separately)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls_after_switch = 0
        self.calls = 0
        self.switched = False

    def forward(self, x):
        self.calls += 1
        self.calls_after_switch += self.switched
        return self.inner(x)


class StubTeachers:
    """Stands in for the suite's teacher builder (runner/teachers.py): the teacher handle a run
    is built with, here a fresh (untrained) teacher built from the teacher's own spec and
    counted, with a chosen held-out metric."""

    def __init__(self, suite, holdout: float):
        from benchmark.runner.teachers import TeacherBuilder

        self.real = TeacherBuilder(suite, "/nonexistent")
        self.holdout = holdout
        self.counters: list[CountingTeacher] = []

    def for_run(self, spec):
        return self.real.for_run(spec)

    def load(self, tspec, device):
        _, model = self.real.build(tspec, self.real.settings(tspec), device)
        c = CountingTeacher(model.eval())
        self.counters.append(c)
        return c, {"metrics": {"holdout": {"accuracy": self.holdout}, "test": {}}, "generation": 1}


def _loop_for(suite, arm, run_dir, teachers=None):
    """The Loop of `arm` seed 0, built by the run builder alone (no Executor, no records)."""
    from benchmark.runner.build import build_run, run_settings
    from benchmark.suite import run_specs
    from benchmark.train.loop import Loop

    (spec,) = run_specs(suite, [arm], [0])
    settings = run_settings(suite, spec)
    parts = build_run(spec, settings, torch.device("cpu"), teachers=teachers)
    run_dir.mkdir(parents=True, exist_ok=True)
    return Loop(**parts.loop_kwargs(), run_dir=run_dir), parts


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_loop_alone_switches_off_skips_the_teacher_and_writes_the_contract(tmp_path):
    # the loop driven with plain arguments from the run builder: no runner, no monkeypatching
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {"distill": {"switch": {"fixed_epoch": 1}}}},
                        targets={"metric": "accuracy", "direction": "higher", "thresholds": [1, 20, 30]})
    suite = validate_dict(d)
    teachers = StubTeachers(suite, holdout=50.0)
    loop, parts = _loop_for(suite, "w2s", tmp_path / "w2s", teachers)
    (c,) = teachers.counters
    orig_fire = parts.switch.fire

    def fire(**kw):
        orig_fire(**kw)
        c.switched = True

    parts.switch.fire = fire
    res = loop.run()
    assert res.status == "complete"
    # fixed_epoch 1 fires at the first evaluation at or after epoch 1: step 12 (evals every 4
    # steps, 10 steps an epoch); one more call is the one-off FLOPs measurement of the teacher
    off = 12
    assert res.switch_step == off
    assert c.calls == off + 1 and c.calls_after_switch == 0
    rows = _lines(tmp_path / "w2s" / "metrics.jsonl")
    assert all(tuple(sorted(r)) == tuple(sorted(METRIC_ROW_KEYS)) for r in rows)
    assert [r["step"] for r in rows if r["split"] == "test"] == [0, 4, 8, 12, 16, 20]
    assert {r["split"] for r in rows} == {"test", "holdout"}
    for r in rows:
        assert r["epoch"] == pytest.approx(r["step"] / 10)
        assert r["samples"] == r["step"] * 50
        assert r["kd_active"] == (0 < r["step"] <= off)
    events = _lines(tmp_path / "w2s" / "events.jsonl")
    assert [(e["event"], e["step"]) for e in events if e["event"] == "switch_off"] == [("switch_off", off)]
    # a crossing event for each threshold at the first test evaluation at or past it, and
    # none for a threshold never reached
    test = [r for r in rows if r["split"] == "test" and r["metric"] == "accuracy"]
    expected = {t: next((r["step"] for r in test if r["value"] >= t), None) for t in (1, 20, 30)}
    crossed = {e["threshold"]: e["step"] for e in events if e["event"] == "threshold_crossed"}
    assert crossed == {t: s for t, s in expected.items() if s is not None}
    assert crossed[1] == 0  # 10 classes: any model is right on more than 1% of them
    assert (tmp_path / "w2s" / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("teacher_holdout, switch_step", [(0.0, 4), (101.0, None)])
def test_loop_alone_surpass_teacher_compares_with_the_teachers_holdout(tmp_path, teacher_holdout, switch_step):
    # surpass_teacher: off at the first evaluation after the start where the student's held-out
    # accuracy reaches the teacher's; a teacher nobody reaches (101%) keeps KD on throughout
    suite = validate_dict(tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {}}, train={"epochs": 1}))
    loop, parts = _loop_for(suite, "w2s", tmp_path, StubTeachers(suite, holdout=teacher_holdout))
    assert parts.switch.teacher_holdout == teacher_holdout
    res = loop.run()
    assert res.status == "complete" and res.switch_step == switch_step
    offs = [e for e in _lines(tmp_path / "events.jsonl") if e["event"] == "switch_off"] \
        if (tmp_path / "events.jsonl").exists() else []
    assert [e["step"] for e in offs] == ([] if switch_step is None else [switch_step])
    if offs:
        assert offs[0]["teacher_holdout"] == teacher_holdout
    rows = [r for r in _lines(tmp_path / "metrics.jsonl") if r["split"] == "test"]
    assert [r["kd_active"] for r in rows] == [r["step"] > 0 and (switch_step is None or r["step"] <= switch_step)
                                              for r in rows]


def test_runner_records_the_distilled_run(tmp_path):
    """The same run through the runner: the contract files around the loop's rows."""
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {"distill": {"switch": {"fixed_epoch": 1}}}})
    suite = validate_dict(d)
    out = run_suite(suite, tmp_path, log=lambda *a: None)
    assert set(out.values()) == {"complete"}
    run = next((tmp_path / "tiny" / "runs").glob("w2s-*"))
    rows = _lines(run / "metrics.jsonl")
    flops = [r["flops"] for r in rows if r["split"] == "test"]
    assert all(b > a for a, b in zip(flops, flops[1:]))
    base = next((tmp_path / "tiny" / "runs").glob("baseline-*"))
    # the teacher's forwards are charged: w2s spent more FLOPs than baseline for the same steps
    assert rows[-1]["flops"] > _lines(base / "metrics.jsonl")[-1]["flops"]
    assert [e["step"] for e in _lines(run / "events.jsonl") if e["event"] == "switch_off"] == [12]
    lock = json.loads((tmp_path / "tiny" / "suite.lock.json").read_text())
    assert lock["targets"]["thresholds"] == [20, 30] and lock["seeds"] == [0]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["threads"] == 1 and manifest["switch_step"] == 12
    assert manifest["teacher_generations"] == [1]
    spec = json.loads((run / "spec.json").read_text())
    assert spec["budget"] == {"epochs": 2.0, "steps": 20, "steps_per_epoch": 10}
    assert spec["data_info"]["n_train"] == 500
    assert (run / "checkpoints" / "last.pt").exists()
    teacher = next((tmp_path / "tiny" / "teachers").glob("*/teacher.json"))
    tj = json.loads(teacher.read_text())
    assert set(tj["metrics"]) == {"holdout", "test"} and tj["cost"]["flops"] > 0


def test_lock_mismatch_stops_with_a_clear_message(tmp_path):
    from benchmark.errors import LockMismatch

    suite = validate_dict(tiny_suite_dict(train={"epochs": 0.5}))
    run_suite(suite, tmp_path, arms=["baseline"], log=lambda *a: None)
    changed = validate_dict(tiny_suite_dict(train={"epochs": 0.5},
                                            targets={"thresholds": [20, 31]}))
    with pytest.raises(LockMismatch, match="new-results"):
        run_suite(changed, tmp_path, log=lambda *a: None)


def test_description_edit_is_recorded_in_the_lock_and_printed_by_the_report(tmp_path):
    from benchmark.analysis.report import write_report

    suite = validate_dict(tiny_suite_dict(train={"epochs": 0.5}))
    run_suite(suite, tmp_path, arms=["baseline"], log=lambda *a: None)
    lock_path = tmp_path / "tiny" / "suite.lock.json"
    assert "amendments" not in json.loads(lock_path.read_text())
    text = "EXPLORATORY: a map,\nnot evidence."
    edited = validate_dict(tiny_suite_dict(train={"epochs": 0.5}, description=text))
    out = run_suite(edited, tmp_path, arms=["baseline"], log=lambda *a: None)
    assert set(out.values()) == {"complete"}  # nothing trained again
    lock = json.loads(lock_path.read_text())
    assert lock["resolved"]["description"] == text
    assert [a["description"] for a in lock["amendments"]] == [text]
    md = write_report([tmp_path / "tiny"], tmp_path / "reports", reps=100)[0]
    assert "> EXPLORATORY: a map,\n> not evidence.\n" in md.read_text()
    assert '<p class="description">EXPLORATORY: a map,\nnot evidence.</p>' in (
        md.parent / "index.html"
    ).read_text()
    # the same description again: no new amendment
    run_suite(edited, tmp_path, arms=["baseline"], log=lambda *a: None)
    assert len(json.loads(lock_path.read_text())["amendments"]) == 1


def test_nan_loss_marks_run_diverged_and_suite_goes_on(tmp_path):
    d = tiny_suite_dict(train={"epochs": 1})
    d["arms"]["baseline"] = {"distill": None, "train": {"optimizer": {"lr": 1.0e12}}}
    suite = validate_dict(d)
    out = run_suite(suite, tmp_path, log=lambda *a: None)
    statuses = {k.split("-")[0]: v for k, v in out.items()}
    assert statuses["baseline"] == "diverged" and statuses["w2s"] == "complete"
    run = next((tmp_path / "tiny" / "runs").glob("baseline-*"))
    assert json.loads((run / "manifest.json").read_text())["status"] == "diverged"
    assert "divergence" in (run / "events.jsonl").read_text()


def test_diverged_teacher_blocks_its_students_but_not_the_suite(tmp_path):
    d = tiny_suite_dict(train={"epochs": 0.5})
    d["teachers"]["weak"]["train"] = {"epochs": 0.5, "optimizer": {"lr": 1.0e12}}
    suite = validate_dict(d)
    out = run_suite(suite, tmp_path, log=lambda *a: None)
    statuses = {k.split("-")[0]: v for k, v in out.items()}
    assert statuses["weak"] == "diverged" and statuses["baseline"] == "complete"
    assert statuses["w2s"].startswith("blocked")
