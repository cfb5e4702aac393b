"""The runner in parts (issue 19, item 5): the run builder (spec -> settings, task, model,
teacher handle, switch policy, Loop arguments), the teacher builder, the run recorder, and
`launch` (executor dispatch and the DDP relaunch that `cli.py run` used to own)."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import pytest
import torch
from conftest import tiny_suite_dict

from benchmark.errors import UserError
from benchmark.runner.build import build_run, followed_switch, run_settings
from benchmark.runner.launch import RunOptions, check_options, ddp_args, launch
from benchmark.runner.plan import plan
from benchmark.runner.record import Recorder, discarded_work, teacher_generations
from benchmark.runner.teachers import TeacherBuilder
from benchmark.store import write_json
from benchmark.suite import run_specs, validate_dict


@pytest.fixture(autouse=True)
def _env(inproc_env):
    pass


def _suite(**kw):
    # w2s: fixed switch with a ramp; w2s_small: the same teacher name on a 400-image subset
    # (so another teacher id) with 2 threads
    d = tiny_suite_dict(arms={"baseline": {"distill": None},
                              "w2s": {"distill": {"switch": {"fixed_epoch": 1}, "ramp": {"epochs": 0.5}}},
                              "w2s_small": {"data": {"train_subset": 400}, "threads": 2}}, **kw)
    return validate_dict(d, "<test>", check_paths=False)


def _spec(suite, arm):
    (spec,) = run_specs(suite, [arm], [0])
    return spec


class LoadedTeacher:
    """The teacher handle build_run asks for: a fresh teacher built from its own spec by the
    real teacher builder, with a stated held-out accuracy (no records on disk needed)."""

    def __init__(self, suite, holdout=42.0):
        self.real = TeacherBuilder(suite, "/nonexistent")
        self.holdout = holdout
        self.asked: list[dict] = []

    def for_run(self, spec):
        return self.real.for_run(spec)

    def load(self, tspec, device):
        self.asked.append(tspec)
        task, model = self.real.build(tspec, self.real.settings(tspec), device)
        return model, {"metrics": {"holdout": {"accuracy": self.holdout}}, "generation": 3, "n": task.info}


def test_run_settings_are_built_from_the_runs_own_spec():
    suite = _suite()
    for arm in suite.arm_names():
        s = run_settings(suite, _spec(suite, arm))
        # what the arm resolves to, field for field (teachers enter through the teacher builder)
        assert s.model_dump(exclude={"teachers"}) == suite.arm_settings[arm].model_dump(exclude={"teachers"})
    s = run_settings(suite, _spec(suite, "w2s_small"), device="cpu", threads=3)
    assert (s.device, s.threads, s.data.train_subset) == ("cpu", 3, 400)
    with pytest.raises(UserError, match="does not have"):
        run_settings(suite, {**_spec(suite, "w2s"), "arm": "nope"})


def test_loop_kwargs_say_what_the_spec_says():
    suite = _suite()
    dev = torch.device("cpu")
    spec = _spec(suite, "w2s")
    teachers = LoadedTeacher(suite)
    parts = build_run(spec, run_settings(suite, spec), dev, teachers=teachers)
    kw = parts.loop_kwargs()
    assert set(kw) == {"task", "model", "train_cfg", "device", "teacher", "switch", "thresholds"}
    assert kw["train_cfg"].model_dump(mode="json") == spec["train"]
    assert kw["thresholds"] == spec["targets"]["thresholds"] == [20, 30]
    assert kw["device"] == dev and kw["task"] is parts.task and kw["model"] is parts.model
    # the teacher the spec names, through the teacher builder, and its held-out accuracy
    assert [t["teacher_id"] for t in teachers.asked] == [spec["teacher"]["id"]]
    assert kw["teacher"] is parts.teacher and parts.teacher_info["generation"] == 3
    sw = kw["switch"]
    assert sw.teacher_holdout == 42.0 and sw.ramp_epochs == spec["distill"]["ramp"]["epochs"] == 0.5
    assert sw.should_switch(epoch=0.9, step=9, student_holdout=0.0) is None
    assert sw.should_switch(epoch=1.0, step=10, student_holdout=0.0)  # fixed_epoch 1
    # budget in steps: 500 training images (600 less the 100 held out) / batch 50, 2 epochs
    assert parts.record_spec["budget"] == {"epochs": 2.0, "steps": 20, "steps_per_epoch": 10}
    assert parts.record_spec["run_id"] == spec["run_id"]
    # the baseline: no teacher asked for, no switch
    base = _spec(suite, "baseline")
    kb = build_run(base, run_settings(suite, base), dev).loop_kwargs()
    assert kb["teacher"] is None and kb["switch"] is None
    # paired: same seed, same initial weights
    for a, b in zip(kb["model"].state_dict().values(), kw["model"].state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="teacher builder"):
        build_run(spec, run_settings(suite, spec), dev)


def test_teacher_is_built_on_its_own_data_subset():
    suite = _suite()
    dev = torch.device("cpu")
    builder = TeacherBuilder(suite, "/nonexistent")
    small = _spec(suite, "w2s_small")
    tspec = builder.for_run(small)
    assert tspec["data"]["train_subset"] == 400
    task, model = builder.build(tspec, builder.settings(tspec), dev)
    # the teacher sees the 400-image subset the arm sees (its id hashes it), not the full set
    assert task.info["n_train"] == 400
    run_task = build_run(small, run_settings(suite, small), dev, teachers=LoadedTeacher(suite)).task
    assert task.info == run_task.info
    full = builder.for_run(_spec(suite, "w2s"))
    assert full["teacher_id"] != tspec["teacher_id"]
    ftask, _ = builder.build(full, builder.settings(full), dev)
    assert ftask.info["n_train"] == 500  # 600 less the 100 held out
    # the id the run names must be the one the suite resolves
    wrong = {**small, "teacher": {**small["teacher"], "id": "weak-000000000000"}}
    with pytest.raises(UserError, match="not from this suite"):
        builder.for_run(wrong)


def test_followed_switch_waits_for_the_followed_run(tmp_path):
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {},
                              "matched": {"distill": {"teacher": None, "loss": "tfkd",
                                                      "switch": {"same_as": "w2s"}}}})
    suite = validate_dict(d, "<test>", check_paths=False)
    follower, leader = _spec(suite, "matched"), _spec(suite, "w2s")
    s = run_settings(suite, follower)
    assert followed_switch(suite, tmp_path, leader, run_settings(suite, leader)) == (True, None)  # not same_as
    assert followed_switch(suite, tmp_path, follower, s) == (False, None)  # leader not run yet
    ldir = tmp_path / "runs" / leader["run_id"]
    write_json(ldir / "manifest.json", {"status": "running"})
    assert followed_switch(suite, tmp_path, follower, s) == (False, None)
    write_json(ldir / "manifest.json", {"status": "complete"})
    (ldir / "events.jsonl").write_text(json.dumps({"event": "threshold_crossed", "step": 4}) + "\n")
    assert followed_switch(suite, tmp_path, follower, s) == (True, None)  # it never switched off
    with open(ldir / "events.jsonl", "a") as f:
        f.write(json.dumps({"event": "switch_off", "step": 8}) + "\n")
    assert followed_switch(suite, tmp_path, follower, s) == (True, 8)


class _FakeLoop:
    def __init__(self, path):
        self.ckpt_path = path / "checkpoints" / "last.pt"
        self.events = []

    def event(self, name, **kw):
        self.events.append((name, kw))


def test_recorder_start_finish_fail_and_clean_start(tmp_path):
    rec = Recorder(tmp_path, "r1", log=lambda *a: None)
    assert rec.prepare(_FakeLoop(tmp_path)) == {}  # nothing earlier: a clean start, no event
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n')
    (tmp_path / "events.jsonl").write_text('{"event": "x"}\n')
    loop = _FakeLoop(tmp_path)
    # an earlier attempt without a checkpoint: its rows go; a row without clocks counts nothing
    assert rec.prepare(loop) == {"restarted": 1, "lost_wall_s": 0.0, "lost_steps": 0}
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "events.jsonl").exists()
    assert loop.events == [("restart", {"reason": "no checkpoint to resume from", "lost_wall_s": 0.0,
                                        "lost_steps": 0})]
    rec.fail(RuntimeError("before any manifest"))  # nothing to mark yet: no file written
    assert not rec.manifest_path.exists()
    m = rec.start(torch.device("cpu"), 1, {"resumed": 2, "note": "kept"})
    assert m["status"] == "running" and m["run_id"] == "r1" and m["resumed"] == 2 and m["threads"] == 1
    started = m["started"]
    rec.start(torch.device("cpu"), 1)  # a restart keeps the start time and the resume count
    assert rec.read_manifest()["started"] == started and rec.read_manifest()["resumed"] == 2
    assert "restarted" not in rec.read_manifest()  # additive: only where an attempt was discarded
    try:
        raise ValueError("boom")
    except ValueError as e:
        rec.fail(e)
    man = rec.read_manifest()
    assert man["status"] == "failed" and man["reason"] == "ValueError: boom" and "boom" in man["traceback"]
    rec.fail(KeyboardInterrupt())
    assert rec.read_manifest()["reason"].startswith("interrupted")
    rec.finish("complete", switch_step=12)
    man = rec.read_manifest()
    assert man["status"] == "complete" and man["switch_step"] == 12 and man["ended"]


def test_restart_without_checkpoint_counts_the_discarded_attempt(tmp_path):
    """A run whose checkpoint did not travel (a fresh clone) restarts clean: the earlier
    attempt's clocks at its last evaluation are counted as lost, and the counts survive a
    later process start."""
    rows = [{"step": 0, "train_wall_s": 0.0, "eval_wall_s": 2.5},
            {"step": 46, "train_wall_s": 240.75, "eval_wall_s": 71.5}]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 69, "tra')  # torn line
    assert discarded_work(metrics) == (312.25, 46)
    assert discarded_work(tmp_path / "missing.jsonl") == (0.0, 0)
    rec = Recorder(tmp_path, "r1", log=lambda *a: None)
    write_json(rec.manifest_path, {"started": "t0", "resumed": 1, "lost_wall_s": 10.0, "lost_steps": 2})
    loop = _FakeLoop(tmp_path)
    extra = rec.prepare(loop)
    assert extra == {"restarted": 1, "lost_wall_s": 322.25, "lost_steps": 48}
    assert loop.events[0][1]["lost_wall_s"] == 312.25 and loop.events[0][1]["lost_steps"] == 46
    rec.start(torch.device("cpu"), 1, extra)
    rec.start(torch.device("cpu"), 1)  # a later process (e.g. a resume that adds nothing)
    man = rec.read_manifest()
    assert (man["started"], man["resumed"], man["restarted"], man["lost_wall_s"], man["lost_steps"]) == (
        "t0", 1, 1, 322.25, 48)


def test_git_dirty_is_about_code_not_the_committed_records(tmp_path):
    """A campaign that commits results/ starts each run beside the previous run's uncommitted
    rows: that is not a dirty checkout. A changed source file is."""
    import subprocess

    from benchmark.runner.provenance import git_info

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True,
                       capture_output=True)

    for f in ("results/s/runs/r/metrics.jsonl", "reports/s/report.md", "benchmark/x.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    info = git_info(tmp_path)
    assert len(info["sha"]) == 40 and info["dirty"] is False
    (tmp_path / "results/s/runs/r/metrics.jsonl").write_text("a\nb\n")
    (tmp_path / "reports/s/report.md").unlink()
    (tmp_path / "scratch.txt").write_text("untracked\n")
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "benchmark/x.py").write_text("b\n")
    assert git_info(tmp_path)["dirty"] is True


def test_plan_says_whether_an_unfinished_run_resumes_or_restarts(tmp_path, write_suite):
    from click.testing import CliRunner

    from benchmark.cli import main
    from benchmark.runner.plan import next_attempt

    d = tmp_path / "r"
    assert next_attempt(d, "pending") == "" and next_attempt(d, "failed") == ""  # nothing written yet
    d.mkdir()
    (d / "metrics.jsonl").write_text("{}\n")
    assert next_attempt(d, "failed") == "restarts from scratch (no checkpoint here)"
    assert next_attempt(d, "complete") == "" and next_attempt(d, "diverged") == ""
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "last.pt").write_bytes(b"x")
    assert next_attempt(d, "running") == "resumes from its checkpoint"

    path = write_suite(tiny_suite_dict(arms={"baseline": {"distill": None}}))
    (sp,) = run_specs(validate_dict(tiny_suite_dict(arms={"baseline": {"distill": None}})), None, None)
    rdir = tmp_path / "res" / "tiny" / "runs" / sp["run_id"]
    rdir.mkdir(parents=True)
    write_json(rdir / "manifest.json", {"status": "failed"})
    (rdir / "metrics.jsonl").write_text("{}\n")
    res = CliRunner().invoke(main, ["plan", str(path), "--results-dir", str(tmp_path / "res")],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "failed: restarts from scratch (no checkpoint here)" in res.output


def test_teacher_generations_span_a_resume():
    assert teacher_generations({}, {"generation": 2}) == [2]
    assert teacher_generations({"teacher_generations": [1]}, {"generation": 2}) == [1, 2]
    assert teacher_generations({"teacher_generations": [1]}, {}) == [1]


def test_check_options_refuses_what_does_not_combine(tmp_path):
    suite = _suite()
    ok = RunOptions("s.yaml", tmp_path)
    check_options(suite, ok)
    cases = [
        (dict(arms=["nope"]), "no arm 'nope'"),
        (dict(seeds=[7]), "not pre-registered"),
        (dict(executor="slurm", jobs=2), "--jobs/--gpus are for --executor local"),
        (dict(nproc_per_node=2, jobs=2), "does not combine"),
        (dict(nproc_per_node=2, executor="slurm"), "does not combine"),
        (dict(gpus="0,0"), "lists a device twice"),
    ]
    for kw, msg in cases:
        with pytest.raises(UserError, match=msg):
            check_options(suite, RunOptions("s.yaml", tmp_path, **kw))


def test_ddp_args_rerun_the_same_run_without_nproc(tmp_path):
    opts = RunOptions("suites/x.yaml", tmp_path / "res", data_root="/data", new_results="v2", arms=["w2s"],
                      seeds=[0, 1], device="cuda", threads=4, nproc_per_node=4)
    args = ddp_args(opts)
    assert args[:2] == ["run", str(Path("suites/x.yaml").resolve())]
    assert not any(a.startswith("--nproc-per-node") for a in args)
    pairs = list(zip(args[2::2], args[3::2]))
    # --new-results folds into the results folder every rank writes to
    assert pairs == [("--results-dir", str((tmp_path / "res" / "v2").resolve())), ("--data-root", "/data"),
                     ("--arm", "w2s"), ("--seed", "0"), ("--seed", "1"), ("--threads", "4"),
                     ("--device", "cuda")]


def test_launch_runs_in_this_process_and_skips_what_is_complete(tmp_path, write_suite):
    from rich.console import Console

    d = tiny_suite_dict(arms={"baseline": {"distill": None}}, train={"epochs": 0.5})
    path = write_suite(d)
    buf = io.StringIO()
    term = signal.getsignal(signal.SIGTERM)
    try:
        out = launch(RunOptions(str(path), tmp_path / "res"), console=Console(file=buf, width=200))
        assert out.exit_code is None and not out.quiet and out.not_done == {}
        assert out.sdir == tmp_path / "res" / "tiny"
        (run_id,) = out.statuses
        assert out.statuses[run_id] == "complete" and [it.status for it in out.before] == ["pending"]
        assert "suite tiny ->" in buf.getvalue()
        again = launch(RunOptions(str(path), tmp_path / "res"), console=Console(file=io.StringIO()))
        assert again.statuses == {run_id: "complete"} and [it.status for it in again.before] == ["complete"]
        assert [it.id for it in plan(validate_dict(d), tmp_path / "res")] == [run_id]
    finally:
        signal.signal(signal.SIGTERM, term)
