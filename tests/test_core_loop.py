"""The training loop: pairing, the teacher skipped once KD is off, the metrics contract."""

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


def test_teacher_never_called_after_switch_and_rows_follow_contract(tmp_path, monkeypatch):
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {"distill": {"switch": {"fixed_epoch": 1}}}})
    suite = validate_dict(d)
    from benchmark.runner import execute

    counters = []
    orig = execute.Executor.load_teacher

    def load_teacher(self, tspec, device):
        model, info = orig(self, tspec, device)
        c = CountingTeacher(model)
        counters.append(c)
        return c, info

    monkeypatch.setattr(execute.Executor, "load_teacher", load_teacher)
    from benchmark.distill import switch as sw

    orig_fire = sw.SwitchPolicy.fire

    def fire(self, **kw):
        orig_fire(self, **kw)
        for c in counters:
            c.switched = True

    monkeypatch.setattr(sw.SwitchPolicy, "fire", fire)
    out = run_suite(suite, tmp_path, log=lambda *a: None)
    assert set(out.values()) == {"complete"}
    (c,) = counters
    steps_per_epoch = 500 // 50
    # fixed_epoch 1 fires at the first evaluation at or after epoch 1: step 12 (evals every 4
    # steps); one more call is the one-off FLOPs measurement of the teacher's forward
    off = 12
    assert c.calls == off + 1
    assert c.calls_after_switch == 0
    run = next((tmp_path / "tiny" / "runs").glob("w2s-*"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(tuple(sorted(r)) == tuple(sorted(METRIC_ROW_KEYS)) for r in rows)
    assert {r["split"] for r in rows} == {"test", "holdout"}
    steps = [r["step"] for r in rows if r["split"] == "test"]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 2 * steps_per_epoch
    for r in rows:
        assert r["epoch"] == pytest.approx(r["step"] / steps_per_epoch)
        assert r["samples"] == r["step"] * 50
        assert r["kd_active"] == (0 < r["step"] <= off)
    flops = [r["flops"] for r in rows if r["split"] == "test"]
    assert all(b > a for a, b in zip(flops, flops[1:]))
    base = next((tmp_path / "tiny" / "runs").glob("baseline-*"))
    brows = [json.loads(line) for line in (base / "metrics.jsonl").read_text().splitlines()]
    # the teacher's forwards are charged: w2s spent more FLOPs than baseline for the same steps
    assert rows[-1]["flops"] > brows[-1]["flops"]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "switch_off"] == [off]
    lock = json.loads((tmp_path / "tiny" / "suite.lock.json").read_text())
    assert lock["targets"]["thresholds"] == [20, 30] and lock["seeds"] == [0]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["threads"] == 1
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
