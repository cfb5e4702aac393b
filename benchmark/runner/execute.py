"""Execute a suite in this process: teachers before students, `same_as` targets before their
followers, complete runs skipped, every run behind a lock, every file in the contract.

The parts: plan.py (what to run, the pre-registration lock), teachers.py (the teacher builder),
build.py (the run builder: spec -> task, model, teacher, switch policy, Loop arguments),
record.py (the run recorder: manifest, heartbeats, resume). This module only strings them
together for one item (`run_student`, `run_teacher`) and walks the plan (`run_suite`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..store import append_jsonl, write_json
from ..suite import Suite
from .build import build_run, followed_switch, prepare_device, run_settings
from .locks import RunLock, claim
from .plan import PlanItem, check_lock, item_status, now, plan, suite_dir, teacher_status
from .record import Recorder, teacher_generations
from .teachers import TeacherBuilder, run_teacher

# the names callers import from here (tests, executors.py)
__all__ = ["PlanItem", "Context", "check_lock", "item_status", "plan", "run_student", "run_suite",
           "run_teacher", "suite_dir", "teacher_status"]


@dataclass
class Context:
    """What every item of one `run_suite` call shares: the suite, its results folder, the
    command line's --device/--threads overrides, the progress display and the log."""

    suite: Suite
    sdir: Path
    device: str | None = None
    threads: int | None = None
    progress: object = None
    log: object = print

    @property
    def teachers(self) -> TeacherBuilder:
        return TeacherBuilder(self.suite, self.sdir / "teachers", device=self.device, threads=self.threads)


def run_student(ctx: Context, item: PlanItem) -> str:
    """Train the run of plan item `item` (resuming it if it was stopped) unless it is complete;
    its status after ("waiting": a followed arm has not finished; "locked": another process
    has it)."""
    from ..train.loop import Loop

    spec = item.spec
    rdir = ctx.sdir / "runs" / item.id
    status = item_status(rdir)
    if status in ("complete", "diverged"):
        return status
    settings = run_settings(ctx.suite, spec, device=ctx.device, threads=ctx.threads)
    ready, same_step = followed_switch(ctx.suite, ctx.sdir, spec, settings)
    if not ready:
        return "waiting"
    lock = RunLock(rdir / "lock")
    if not claim(lock):
        return "locked"
    rec = Recorder(rdir, item.id, progress=ctx.progress, log=ctx.log)
    label = f"{spec['arm']} seed {spec['seed']}"
    try:
        parts = build_run(spec, settings, prepare_device(settings), teachers=ctx.teachers, same_as_step=same_step)
        rdir.mkdir(parents=True, exist_ok=True)
        write_json(rdir / "spec.json", parts.record_spec)
        loop = Loop(**parts.loop_kwargs(), run_dir=rdir, on_step=rec.step_hook(label))
        resumed_from = rec.read_manifest() if loop.ckpt_path.exists() else {}
        extra = rec.prepare(loop)
        if parts.teacher_info is not None:
            # which build of the teacher this run learned from (a resumed run may span two)
            extra["teacher_generations"] = teacher_generations(resumed_from, parts.teacher_info)
        rec.start(parts.device, settings.threads, extra)
        loop.on_eval = rec.eval_hook()
        res = loop.run()
        if res.status == "diverged":
            rec.finish("diverged", reason=res.reason)
            ctx.log(f"[yellow]{label}: diverged ({res.reason}); the suite goes on and the report censors it[/]")
            return "diverged"
        rec.finish("complete", switch_step=res.switch_step)
        task = parts.task
        acc = res.final.get("test", {}).get(task.metric)
        sw = (f", KD off at epoch {res.switch_step / task.steps_per_epoch:.2f}"
              if res.switch_step is not None else "")
        ctx.log(f"{label}: final test {task.metric} {acc:.2f}{sw}")
        return "complete"
    except BaseException as e:
        rec.fail(e)
        raise
    finally:
        lock.release()


def run_suite(suite: Suite, results_dir: Path, *, arms=None, seeds=None, device=None, threads=None,
              progress=None, log=print, poll_s: float = 1.0, only: set[str] | None = None) -> dict[str, str]:
    """Run every pending item of the plan (or only the ids in `only`, whose dependencies
    must then be complete already); returns {id: final status}."""
    from .deep_check import check_deep

    check_deep(suite)  # model names and constructor arguments: before anything is written
    sdir = suite_dir(results_dir, suite)
    sdir.mkdir(parents=True, exist_ok=True)
    check_lock(suite, sdir, write=True)
    items = plan(suite, results_dir, arms, seeds)
    if only is not None:
        items = [it for it in items if it.id in only]
    ctx = Context(suite, sdir, device=device, threads=threads, progress=progress, log=log)
    if progress is not None:
        progress.start_suite(len(items))
    out = _walk(ctx, items, poll_s)
    append_jsonl(sdir / "history.jsonl", [{"time": now(), "pid": os.getpid(), "ran": dict(out)}])
    return out


def _walk(ctx: Context, items: list[PlanItem], poll_s: float) -> dict[str, str]:
    """Run `items` in plan order until each is finished or blocked: an item whose dependency
    is still pending here waits for it, one locked by another process is polled while other
    work goes on; {id: final status}."""
    from ..train import ddp

    out: dict[str, str] = {}
    pending = list(items)
    teacher_ids = {it.id for it in items if it.kind == "teacher"}
    said_locked: set[str] = set()
    while pending:
        progressed = locked = False
        for it in list(pending):
            # a teacher must be complete; a followed (same_as) run may also have diverged
            bad = [d for d in it.deps if d in out and
                   out[d] not in (("complete",) if d in teacher_ids else ("complete", "diverged"))]
            if bad:
                out[it.id] = f"blocked: {bad[0]} is {out[bad[0]]}"
                pending.remove(it)
                progressed = True
                continue
            if any(p.id in it.deps for p in pending):
                continue  # a dependency is still to run here, or is running in another process
            if it.kind == "teacher":
                st = run_teacher(ctx.teachers, it, progress=ctx.progress, log=ctx.log)
            else:
                st = run_student(ctx, it)
            st = ddp.broadcast(st)  # DDP: a sync point; rank 0 has written everything for `it`
            if st == "locked":
                # another `run` process (or executor worker) holds it: do other work, poll
                locked = True
                if it.id not in said_locked:
                    said_locked.add(it.id)
                    ctx.log(f"{it.id} is running in another process; waiting for it")
                continue
            if st == "waiting":
                continue
            out[it.id] = st
            pending.remove(it)
            progressed = True
            if ctx.progress is not None:
                ctx.progress.item_done(it, st)
        if not progressed and locked:
            time.sleep(poll_s)
            continue
        if not progressed:
            for it in pending:
                out[it.id] = "waiting (dependency not complete)"
            break
    return out
