"""Where plan items run: in this process (`run_suite`), in N local worker processes, or as
SLURM jobs through submitit. Every executor relies on the same two mechanisms, so none of
them needs a scheduler of its own:

- per-item lock files (locks.py): a worker that finds an item locked does other work and
  polls, so a run is trained once and a teacher once, however many workers want it;
- exact resume (train/loop.py): an item that was killed, preempted or timed out restarts
  from its last checkpoint wherever it is picked up again.

Local parallel (`--jobs N` / `--gpus 0,1`): N copies of `w2s-bench run` share the plan
through the locks, each pinned to one device (CUDA_VISIBLE_DEVICES) and logging to
results/<suite>/logs/worker-<i>.log.

SLURM (`--executor slurm`): one job per item, submitted in stages (teachers, then runs,
then `same_as` followers) as job arrays. Each job is a `submitit.helpers.Checkpointable`:
on preemption or time-out submitit requeues it, and the requeued job resumes from the
checkpoint (a requeued job's own lock is recognised by its SLURM job id).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError


@dataclass
class RunRequest:
    """What `w2s-bench run` was asked to do, in a form a worker process or job can redo."""

    suite_path: str
    results_dir: str
    data_root: str | None = None
    arms: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    device: str | None = None
    threads: int | None = None

    def cli_args(self) -> list[str]:
        a = ["run", self.suite_path, "--results-dir", self.results_dir]
        if self.data_root:
            a += ["--data-root", self.data_root]
        for arm in self.arms:
            a += ["--arm", arm]
        for s in self.seeds:
            a += ["--seed", str(s)]
        if self.threads:
            a += ["--threads", str(self.threads)]
        return a

    def load(self, check_paths: bool = True):
        from ..suite import load_suite

        return load_suite(self.suite_path, data_root=self.data_root, check_paths=check_paths)


def parse_gpus(text: str | None) -> list[str]:
    """'0,1,3' -> ['0', '1', '3']; device ids as CUDA_VISIBLE_DEVICES takes them."""
    if not text:
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise UserError(f"--gpus takes comma-separated device numbers like 0,1 (got {text!r})")
    if len(set(ids)) != len(ids):
        raise UserError(f"--gpus lists a device twice: {text!r}")
    return ids


def final_statuses(req: RunRequest) -> dict[str, str]:
    """{item id: status on disk} for every item of the requested plan."""
    from .plan import plan

    suite = req.load(check_paths=False)
    return {it.id: it.status for it in plan(suite, Path(req.results_dir), req.arms or None,
                                            req.seeds or None)}


# ------------------------------------------------------------------------ local, N workers
def run_local_parallel(req: RunRequest, *, jobs: int, gpus: list[str], log=print,
                       poll_s: float = 0.5) -> dict[str, str]:
    """Run the plan with `jobs` worker processes (one per GPU in `gpus` if given)."""
    if gpus:
        jobs = jobs if jobs > 1 else len(gpus)
        if jobs > len(gpus):
            raise UserError(f"--jobs {jobs} with only {len(gpus)} GPUs in --gpus: one device per worker")
    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    suite = req.load()
    from .deep_check import check_deep
    from .plan import check_lock, suite_dir

    check_deep(suite)  # before the lock and before any worker starts
    sdir = suite_dir(Path(req.results_dir), suite)
    sdir.mkdir(parents=True, exist_ok=True)
    check_lock(suite, sdir, write=True)  # once, before any worker starts
    logs = sdir / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[tuple[subprocess.Popen, Path]] = []
    for i in range(jobs):
        env = dict(os.environ)
        args = req.cli_args()
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i]
            args += ["--device", "cuda:0"]
        elif req.device:
            args += ["--device", req.device]
        env["W2S_WORKER"] = str(i)
        lp = logs / f"worker-{i}.log"
        fh = open(lp, "ab")
        procs.append((subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], env=env,
                                       stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), lp))
        fh.close()
        dev = f"GPU {gpus[i]}" if gpus else (req.device or "the suite's device")
        log(f"worker {i} (pid {procs[-1][0].pid}) on {dev}, log {lp}")
    try:
        while any(p.poll() is None for p, _ in procs):
            time.sleep(poll_s)
    except KeyboardInterrupt:
        # pass the stop on: each worker marks its run failed (resumable) and releases its lock
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    for i, (p, lp) in enumerate(procs):
        if p.returncode not in (0, 1):
            tail = lp.read_text(errors="replace").strip().splitlines()[-3:]
            log(f"worker {i} exited with status {p.returncode}: " + " | ".join(tail))
    return final_statuses(req)


# ---------------------------------------------------------------------------- SLURM
@dataclass
class SlurmOptions:
    partition: str | None = None
    time_min: int = 240
    gpus_per_run: int = 1
    cpus_per_run: int | None = None
    mem_gb: int | None = None
    array_parallelism: int = 32
    max_requeues: int = 3
    cluster: str | None = None  # None: auto (slurm if sbatch exists); "local"/"debug" for tests
    log_dir: str | None = None


def _item_job_class():
    import submitit

    class ItemJob(submitit.helpers.Checkpointable):
        """One plan item as a SLURM job. `checkpoint` (inherited) resubmits the same call on
        preemption/time-out; the run then resumes from its own checkpoint, so nothing here
        needs saving at signal time beyond what the loop already wrote."""

        def __call__(self, req: RunRequest, item_id: str) -> str:
            from .execute import run_suite

            suite = req.load(check_paths=False)
            out = run_suite(suite, Path(req.results_dir), arms=req.arms or None, seeds=req.seeds or None,
                            device=req.device, threads=req.threads, only={item_id},
                            log=lambda m: print(m, flush=True))
            return out.get(item_id, "missing")

    return ItemJob


def run_slurm(req: RunRequest, opts: SlurmOptions, *, log=print) -> dict[str, str]:
    """Submit the pending items stage by stage (teachers, runs, followers) as job arrays and
    wait for each stage. If this process dies, the jobs go on; rerunning the same command
    skips what is complete and resubmits the rest."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit: pip install 'w2s-bench[slurm]'") from None
    from .deep_check import check_deep
    from .plan import check_lock, plan, suite_dir

    suite = req.load()
    check_deep(suite)  # before the lock and before any job is submitted
    rdir = Path(req.results_dir)
    sdir = suite_dir(rdir, suite)
    sdir.mkdir(parents=True, exist_ok=True)
    check_lock(suite, sdir, write=True)
    folder = Path(opts.log_dir) if opts.log_dir else sdir / "slurm" / "%j"
    try:
        ex = submitit.AutoExecutor(folder=str(folder), cluster=opts.cluster,
                                   slurm_max_num_timeout=opts.max_requeues)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"cannot set up the SLURM executor: {e}") from None
    threads = req.threads or max(s.threads for s in suite.arm_settings.values())
    params = dict(name=f"w2s-{suite.name}", timeout_min=opts.time_min, cpus_per_task=opts.cpus_per_run or threads,
                  slurm_array_parallelism=opts.array_parallelism)
    if opts.gpus_per_run:
        params["gpus_per_node"] = opts.gpus_per_run
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    if ex.cluster != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    ex.update_parameters(**params)
    items = plan(suite, rdir, req.arms or None, req.seeds or None)
    done = {it.id: it.status for it in items if it.status in ("complete", "diverged")}
    ids = {it.id for it in items}
    teachers = [it for it in items if it.kind == "teacher"]
    runs = [it for it in items if it.kind == "run"]
    leaders = [it for it in runs if not any(d in ids and d not in {t.id for t in teachers} for d in it.deps)]
    followers = [it for it in runs if it not in leaders]
    ItemJob = _item_job_class()
    out = dict(done)
    for stage, group in (("teachers", teachers), ("runs", leaders), ("followers", followers)):
        todo = [it for it in group if it.id not in done]
        blocked = [it for it in todo if any(d in out and out[d] not in ("complete", "diverged") for d in it.deps)]
        for it in blocked:
            bad = next(d for d in it.deps if d in out and out[d] not in ("complete", "diverged"))
            out[it.id] = f"blocked: {bad} is {out[bad]}"
        todo = [it for it in todo if it not in blocked]
        if not todo:
            continue
        fn = ItemJob()
        jobs = ex.map_array(fn, [req] * len(todo), [it.id for it in todo])
        log(f"submitted {len(jobs)} {stage} job(s): {', '.join(j.job_id for j in jobs)}")
        for it, j in zip(todo, jobs):
            try:
                out[it.id] = j.result()
            except Exception as e:  # a failed job: its manifest and log say why
                msg = str(e).strip().splitlines()
                out[it.id] = f"failed (job {j.job_id}): {msg[-1] if msg else type(e).__name__}"
    return out
