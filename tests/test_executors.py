"""Executors: `--jobs N` local worker processes, and SLURM through submitit's local
cluster (real submission, pickling, job arrays, stages and preemption requeue)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import tiny_suite_dict

from benchmark.errors import UserError
from benchmark.runner.executors import RunRequest, parse_gpus
from benchmark.store import read_json, read_jsonl


def _baseline_suite(name, seeds=(0, 1), epochs=1):
    d = tiny_suite_dict(name=name, seeds=list(seeds), arms={"baseline": {"distill": None}})
    d["train"]["epochs"] = epochs
    return d


def _test_steps(rd: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(rd / "metrics.jsonl")[0] if r["split"] == "test"]


def test_parse_gpus():
    assert parse_gpus("0,1, 3") == ["0", "1", "3"]
    assert parse_gpus(None) == []
    for bad in ("a,b", "0,0", ","):
        with pytest.raises(UserError):
            parse_gpus(bad)


def test_local_jobs_runs_in_worker_processes(tmp_path, write_suite, run_cli):
    suite = write_suite(_baseline_suite("jobs"))
    r = run_cli("run", suite, "--results-dir", tmp_path / "r", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    sdir = tmp_path / "r" / "jobs"
    logs = sorted((sdir / "logs").glob("worker-*.log"))
    assert [p.name for p in logs] == ["worker-0.log", "worker-1.log"]
    runs = sorted((sdir / "runs").iterdir())
    assert len(runs) == 2
    for rd in runs:
        assert read_json(rd / "manifest.json")["status"] == "complete"
        assert _test_steps(rd) == [0, 4, 8, 10]
    # usage errors are caught before any worker starts
    r = run_cli("run", suite, "--results-dir", tmp_path / "r2", "--jobs", "3", "--gpus", "0")
    assert r.returncode == 2 and "one device per worker" in r.stderr and "Traceback" not in r.stderr


def test_slurm_executor_through_submitit_local(tmp_path, write_suite, run_cli):
    """Teacher stage, then the runs as a job array; each job a separate process."""
    pytest.importorskip("submitit")
    d = tiny_suite_dict(name="slurmy")
    d["train"]["epochs"] = 1
    suite = write_suite(d)
    r = run_cli("run", suite, "--results-dir", tmp_path / "r", "--executor", "slurm", "--slurm-cluster", "local",
                "--gpus-per-run", "0", "--time", "10", "--array-parallelism", "2")
    assert r.returncode == 0, r.stderr
    assert "submitted 1 teachers job" in r.stderr and "submitted 2 runs job" in r.stderr
    sdir = tmp_path / "r" / "slurmy"
    for rd in sorted((sdir / "runs").iterdir()):
        assert read_json(rd / "manifest.json")["status"] == "complete"
        assert _test_steps(rd) == [0, 4, 8, 10]
    # rerunning submits nothing: everything is complete
    r = run_cli("run", suite, "--results-dir", tmp_path / "r", "--executor", "slurm", "--slurm-cluster", "local",
                "--gpus-per-run", "0")
    assert r.returncode == 0 and "submitted" not in r.stderr


def test_slurm_preemption_requeues_and_resumes_exactly(tmp_path, write_suite, cli_env, monkeypatch):
    """Preempt a running job (submitit's USR2); it is requeued and resumes from its checkpoint
    to the same metrics as an uninterrupted run."""
    submitit = pytest.importorskip("submitit")
    from benchmark.runner.execute import plan
    from benchmark.runner.executors import _item_job_class

    for k in ("W2S_CACHE", "PYTHONPATH", "OMP_NUM_THREADS"):
        monkeypatch.setenv(k, cli_env[k])  # the job inherits this environment
    suite = write_suite(_baseline_suite("preempt", seeds=(0,), epochs=3))
    ItemJob = _item_job_class()
    ex = submitit.AutoExecutor(folder=str(tmp_path / "sub"), cluster="local")
    ex.update_parameters(timeout_min=10)
    results = {}
    for name in ("ref", "pre"):
        req = RunRequest(str(suite), str(tmp_path / name))
        item = plan(req.load(), tmp_path / name)[0]
        from benchmark.runner.execute import check_lock, suite_dir

        check_lock(req.load(), suite_dir(tmp_path / name, req.load()), write=True)
        job = ex.submit(ItemJob(), req, item.id)
        rd = tmp_path / name / "preempt" / "runs" / item.id
        if name == "pre":
            deadline = time.monotonic() + 120
            while not (rd / "checkpoints" / "last.pt").exists() or len(_test_steps(rd)) < 3:
                assert time.monotonic() < deadline and not job.done(), job.stderr()
                time.sleep(0.05)
            # what SLURM does on preemption or near the time limit: USR2 to the job's process
            os.kill(read_json(rd / "manifest.json")["pid"], signal.SIGUSR2)
        assert job.result() == "complete", job.stderr()
        results[name] = rd
    man = read_json(results["pre"] / "manifest.json")
    assert man["status"] == "complete" and man["resumed"] == 1
    strip = lambda rd: [{k: v for k, v in r.items() if "wall" not in k}  # noqa: E731
                        for r in read_jsonl(rd / "metrics.jsonl")[0]]
    assert strip(results["pre"]) == strip(results["ref"])
