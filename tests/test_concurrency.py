"""Two `w2s-bench run` processes on one suite: every run is trained exactly once, the
teacher once, and a dead process's lock does not block forever."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from conftest import cli_cmd, tiny_suite_dict

from benchmark.runner.locks import RunLock
from benchmark.runner.store import read_json, read_jsonl


def test_two_processes_run_each_item_once(tmp_path, write_suite, cli_env):
    d = tiny_suite_dict(name="conc", seeds=[0, 1])
    d["train"]["epochs"] = 1
    suite = write_suite(d)
    cmd = cli_cmd("run", suite, "--results-dir", tmp_path / "r")
    procs = [subprocess.Popen(cmd, env=cli_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    sdir = tmp_path / "r" / "conc"
    # the teacher was trained by exactly one process, the other waited for it
    assert sum("teacher weak (tinycnn)" in e for e in errs) == 1, errs
    tdir = next((sdir / "teachers").iterdir())
    steps = [r["step"] for r in read_jsonl(tdir / "metrics.jsonl")[0] if r["split"] == "test"]
    assert steps == [0, 4, 8, 10]
    runs = sorted((sdir / "runs").iterdir())
    assert len(runs) == 4
    pids = {p.pid for p in procs}
    for rd in runs:
        man = read_json(rd / "manifest.json")
        assert man["status"] == "complete" and man["resumed"] == 0 and man["pid"] in pids
        steps = [r["step"] for r in read_jsonl(rd / "metrics.jsonl")[0] if r["split"] == "test"]
        assert steps == [0, 4, 8, 10], f"{rd.name} trained more than once: {steps}"
        assert not (rd / "lock").exists()
    # each run reported done by one process only
    for rd in runs:
        arm, seed = rd.name.split("-")[0], rd.name.split("-")[1][1:]
        assert sum(f"{arm} seed {seed}: final" in e for e in errs) == 1, (rd.name, errs)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_lock_of_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "lock"
    path.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "since": 0}))
    lock = RunLock(path)
    assert lock.acquire()
    assert read_json(path)["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_lock_of_live_process_or_other_host_blocks(tmp_path):
    path = tmp_path / "lock"
    with subprocess.Popen(["sleep", "30"]) as p:
        path.write_text(json.dumps({"pid": p.pid, "host": socket.gethostname(), "since": 0}))
        assert not RunLock(path).acquire()
        p.kill()
    path.write_text(json.dumps({"pid": 1, "host": "some-other-node", "since": 0}))
    assert not RunLock(path).acquire()
    # ...unless it is this very SLURM job, requeued onto another node
    path.write_text(json.dumps({"pid": 1, "host": "some-other-node", "since": 0, "slurm_job_id": "42"}))
    os.environ["SLURM_JOB_ID"] = "42"
    try:
        assert RunLock(path).acquire()
    finally:
        del os.environ["SLURM_JOB_ID"]


def test_second_acquire_in_same_process_fails(tmp_path):
    a, b = RunLock(tmp_path / "lock"), RunLock(tmp_path / "lock")
    assert a.acquire()
    assert not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
