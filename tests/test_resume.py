"""Exact resume: a suite killed with SIGKILL at random moments and rerun ends with the same
metrics.jsonl, row for row and value for value (wall-clock fields aside), as an
uninterrupted run; torn lines are dropped, resumes are counted, lost time is reported.

The kill points are random but spread over the whole suite: attempt k waits until the
suite has written at least target_k metrics rows (targets drawn without replacement from the
reference's row count, so teacher and students are hit alike), then sleeps a random fraction
of an evaluation interval (landing in training, evaluation or a checkpoint write) and sends
SIGKILL. Targets increase, so every attempt moves the suite forward. The seed is printed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli_cmd, tiny_suite_dict

from benchmark.runner.store import read_json, read_jsonl, write_json

WALL = ("train_wall_s", "eval_wall_s")
N_KILLS = 4

SUITE = tiny_suite_dict(
    name="resume",
    # 10 steps/epoch, evaluated (and checkpointed) every 3 steps: most checkpoints are
    # mid-epoch; EMA and a warm-up + cosine schedule make optimizer/scheduler/EMA state count
    train={"epochs": 2, "eval": {"every_steps": 3}, "ema": 0.9},
)


def _item_dirs(sdir: Path) -> list[Path]:
    return sorted(p for p in (sdir / "runs").glob("*") if p.is_dir()) + \
        sorted(p for p in (sdir / "teachers").glob("*") if p.is_dir())


def _rows(d: Path) -> list[dict]:
    rows, torn = read_jsonl(d / "metrics.jsonl")
    assert not torn, f"torn line left in {d}"
    return [{k: v for k, v in r.items() if k not in WALL} for r in rows]


def _events(d: Path) -> list[dict]:
    rows, _ = read_jsonl(d / "events.jsonl")
    # a kill between an item's first evaluation row and its first checkpoint makes the next
    # attempt restart it from scratch (a restart event); a later kill resumes it
    return [{k: v for k, v in r.items() if k != "wall"} for r in rows if r["event"] not in ("resume", "restart")]


def _n_rows(sdir: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in sdir.glob("*/*/metrics.jsonl"))


def _progress(sdir: Path) -> list[tuple[str, int]]:
    """(item, step of its last complete metrics row) for every item started."""
    out = []
    for d in _item_dirs(sdir):
        lines = (d / "metrics.jsonl").read_bytes().split(b"\n") if (d / "metrics.jsonl").exists() else []
        full = [json.loads(x) for x in lines[:-1] if x.strip()]
        out.append((d.name.split("-")[0], full[-1]["step"] if full else -1))
    return out


def test_sigkill_at_random_points_resumes_exactly(tmp_path, write_suite, cli_env):
    suite = write_suite(SUITE)
    ref, killed = tmp_path / "ref", tmp_path / "killed"

    def start(results: Path) -> subprocess.Popen:
        return subprocess.Popen(cli_cmd("run", suite, "--results-dir", results), env=cli_env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    t0 = time.monotonic()
    p = start(ref)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    t_ref = time.monotonic() - t0

    seed = int(os.environ.get("W2S_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill seed {seed} (rerun with W2S_KILL_SEED={seed})")
    sdir = killed / "resume"
    total = _n_rows(ref / "resume")
    targets = sorted(rng.sample(range(1, total - 1), N_KILLS))
    furthest = 0
    kills = []
    for target in targets:
        target = max(target, furthest + 1)
        p = start(killed)
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if sdir.exists() and _n_rows(sdir) >= target:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in training, eval or a checkpoint write
        if p.poll() is not None:
            break  # it finished before we got to kill it
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills.append(_progress(sdir))
        furthest = max(furthest, _n_rows(sdir))
    p = start(killed)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    print(f"reference {t_ref:.1f}s; kill points (item, last evaluated step): {kills}")
    assert len(kills) >= 2, f"the suite finished before enough kills landed: {kills}"

    ref_dirs = _item_dirs(ref / "resume")
    assert [d.name for d in ref_dirs] == [d.name for d in _item_dirs(sdir)]
    resumed = 0
    for rd in ref_dirs:
        kd = sdir / rd.parent.name / rd.name
        assert _rows(kd) == _rows(rd), f"{rd.name}: metrics differ after resume"
        assert _events(kd) == _events(rd), f"{rd.name}: events differ after resume"
        man = read_json(kd / "manifest.json")
        assert man["status"] == "complete"
        n_resume_events = sum(e["event"] == "resume" for e in read_jsonl(kd / "events.jsonl")[0])
        assert man.get("resumed", 0) == n_resume_events
        assert man.get("lost_wall_s", 0.0) >= 0.0
        resumed += man.get("resumed", 0)
        assert not (kd / "lock").exists()
    ref_t = read_json(ref_dirs[-1] / "teacher.json")
    assert read_json(sdir / "teachers" / ref_dirs[-1].name / "teacher.json")["metrics"] == ref_t["metrics"]
    assert resumed >= 1, "no kill landed after a checkpoint; nothing was resumed"


@pytest.fixture
def done_suite(tmp_path, inproc_env):
    """A tiny suite run to completion in this process (baseline arm only: fast)."""
    from benchmark.runner.execute import run_suite
    from benchmark.suite import validate_dict

    suite = validate_dict(tiny_suite_dict(name="lost", arms={"baseline": {"distill": None}}))
    out = run_suite(suite, tmp_path / "r", log=lambda *_: None)
    assert set(out.values()) == {"complete"}
    rdir = next((tmp_path / "r" / "lost" / "runs").iterdir())
    return suite, tmp_path / "r", rdir


def test_torn_line_dropped_and_lost_time_reported_on_resume_and_restart(done_suite):
    from benchmark.runner.execute import run_suite

    suite, results, rdir = done_suite
    before = (rdir / "metrics.jsonl").read_bytes()
    ck = read_json(rdir / "manifest.json")
    # a crash after the last checkpoint: a full row the checkpoint does not count, a torn
    # one, and a heartbeat 5 s and 3 steps past the checkpoint; status still "running"
    with open(rdir / "metrics.jsonl", "ab") as f:
        f.write(before.splitlines(keepends=True)[-1] + b'{"epoch": 9.0, "step": 9')
    import torch

    st = torch.load(rdir / "checkpoints" / "last.pt", weights_only=False)
    c = st["clock"]
    write_json(rdir / "checkpoints" / "heartbeat.json",
               {"step": c["step"] + 3, "train_wall_s": c["train_wall_s"] + 4.0,
                "eval_wall_s": c["eval_wall_s"] + 1.0, "time": 0})
    write_json(rdir / "manifest.json", {**ck, "status": "running"})
    out = run_suite(suite, results, log=lambda *_: None)
    assert set(out.values()) == {"complete"}
    assert (rdir / "metrics.jsonl").read_bytes() == before
    man = read_json(rdir / "manifest.json")
    assert man["resumed"] == 1 and man["lost_steps"] == 3
    assert man["lost_wall_s"] == pytest.approx(5.0, abs=1e-6)
    ev = [e for e in read_jsonl(rdir / "events.jsonl")[0] if e["event"] == "resume"]
    assert ev and ev[0]["dropped_lines"] == 2 and ev[0]["lost_steps"] == 3
    assert not (rdir / "checkpoints" / "heartbeat.json").exists()  # counted once

    # a fresh clone of committed results holds an interrupted run's rows but not its
    # checkpoint: rerunning restarts it from scratch (the same rows on CPU), logs a restart
    # event and counts the discarded attempt's clocks as lost
    before = _rows(rdir)
    rows, _ = read_jsonl(rdir / "metrics.jsonl")
    kept = rows[:4]  # the attempt got this far before it was stopped
    (rdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    write_json(rdir / "manifest.json", {**read_json(rdir / "manifest.json"), "status": "failed"})
    shutil.rmtree(rdir / "checkpoints")
    out = run_suite(suite, results, log=lambda *_: None)
    assert set(out.values()) == {"complete"}
    assert _rows(rdir) == before
    man = read_json(rdir / "manifest.json")
    assert man["restarted"] == 1 and man["resumed"] == 1 and man["lost_steps"] == 3 + kept[-1]["step"]
    lost = 5.0 + kept[-1]["train_wall_s"] + kept[-1]["eval_wall_s"]
    assert man["lost_wall_s"] == pytest.approx(lost, abs=1e-4)
    first = read_jsonl(rdir / "events.jsonl")[0][0]
    assert first["event"] == "restart" and first["step"] == 0 and first["lost_steps"] == kept[-1]["step"]
    shutil.rmtree(results)


def test_missing_teacher_weights_are_rebuilt_and_checked(tmp_path, inproc_env):
    """A fresh clone keeps the teacher's text records but not teacher.pt (weights stay out of
    git): the teacher counts as pending, is trained again, matches its record, and the runs
    still to do distill from it exactly as they would have from the original weights."""
    from benchmark.runner.execute import plan, run_suite
    from benchmark.suite import validate_dict

    suite = validate_dict(tiny_suite_dict(name="clone"))
    results = tmp_path / "r"
    assert set(run_suite(suite, results, log=lambda *_: None).values()) == {"complete"}
    sdir = results / "clone"
    tdir = next((sdir / "teachers").iterdir())
    w2s = next(p for p in (sdir / "runs").iterdir() if p.name.startswith("w2s"))
    recorded = read_json(tdir / "teacher.json")["metrics"]
    w2s_rows = _rows(w2s)
    # what a clone of the committed results looks like, with the distilled run still to do
    (tdir / "teacher.pt").unlink()
    shutil.rmtree(tdir / "checkpoints", ignore_errors=True)
    shutil.rmtree(w2s)
    st = {it.id: it.status for it in plan(suite, results)}
    assert st[tdir.name] == "pending" and st[w2s.name] == "pending"

    logs: list[str] = []
    out = run_suite(suite, results, log=logs.append)
    assert set(out.values()) == {"complete"}
    assert any("teacher.pt is missing" in m for m in logs)
    man = read_json(tdir / "manifest.json")
    assert man["status"] == "complete"
    assert man["rebuilt"] == {"reason": "teacher.pt missing", "matches_record": True, "recorded_metrics": recorded}
    assert read_json(tdir / "teacher.json")["metrics"] == recorded
    assert _rows(w2s) == w2s_rows

    # a record the rebuilt teacher does not reproduce is said loudly and kept in the manifest
    info = read_json(tdir / "teacher.json")
    info["metrics"]["test"]["accuracy"] += 1.0
    write_json(tdir / "teacher.json", info)
    (tdir / "teacher.pt").unlink()
    logs.clear()
    run_suite(suite, results, log=logs.append)
    man = read_json(tdir / "manifest.json")
    assert man["rebuilt"]["matches_record"] is False
    assert man["rebuilt"]["recorded_metrics"] == info["metrics"]
    assert any("differ from the recorded" in m for m in logs)
    # ...and the record it replaces is kept, not overwritten: superseded/1 is the original
    # build, superseded/2 the record edited above; the current teacher.json is generation 3
    kept = tdir / "superseded"
    assert sorted(p.name for p in kept.iterdir()) == ["1", "2"]
    assert read_json(kept / "1" / "teacher.json")["metrics"] == recorded
    assert read_json(kept / "2" / "teacher.json")["metrics"] == info["metrics"]
    assert (kept / "1" / "metrics.jsonl").exists() and read_json(kept / "1" / "manifest.json")["status"] == "complete"
    now = read_json(tdir / "teacher.json")
    assert now["generation"] == 3 and now["rebuilt"]["matches_record"] is False
    # every distilled run records the teacher build it learned from
    assert read_json(w2s / "manifest.json")["teacher_generations"] == [2]
    shutil.rmtree(w2s)
    run_suite(suite, results, log=lambda *_: None)
    assert read_json(w2s / "manifest.json")["teacher_generations"] == [3]
