"""The run recorder: what the runner writes about a run or teacher besides what the loop writes
(metrics.jsonl, events.jsonl, checkpoints). The manifest and its status, provenance, the
heartbeats a crash's lost time is measured from, and the resume bookkeeping; plus the record a
rebuilt teacher keeps of its earlier build (superseded/<n>/)."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import traceback
from pathlib import Path

from .. import SCHEMA_VERSION
from ..store import read_json, remove, write_json
from .plan import now
from .progress import machine_load


class Recorder:
    """Writes one item's record in `path` (results/<suite>/runs/<id> or teachers/<id>).

    `progress` (a SuiteProgress or None) gets the step and evaluation hooks; `log` the lines
    worth printing (a resume)."""

    def __init__(self, path: Path, ident: str, *, progress=None, log=print):
        self.path = Path(path)
        self.ident = ident
        self.progress = progress
        self.log = log

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def read_manifest(self) -> dict:
        return read_json(self.manifest_path) if self.manifest_path.exists() else {}

    # -- status
    def start(self, device, threads: int, extra: dict | None = None) -> dict:
        """Write the manifest with status `running` and this process's provenance; the start
        time, resume and restart counts and lost time of an earlier attempt carry over."""
        from .provenance import device_info, git_info, host, versions

        old = self.read_manifest()
        m = {"schema_version": SCHEMA_VERSION, "run_id": self.ident, "status": "running", "git": git_info(),
             "versions": versions(), "device": device_info(device), "threads": threads, "host": host(),
             "pid": os.getpid(), "started": old.get("started", now()), "ended": None,
             "resumed": old.get("resumed", 0), "lost_wall_s": old.get("lost_wall_s", 0.0)}
        # the machine's load when this process (re)started the run, and at its end (finish):
        # train seconds measured beside other jobs are slower and noisier (additive key)
        m["load"] = {"start": machine_load()}
        for k in ("restarted", "lost_steps"):  # additive keys, carried only where an attempt set them
            if k in old:
                m[k] = old[k]
        m.update(extra or {})
        write_json(self.manifest_path, m)
        return m

    def update(self, fields: dict) -> None:
        m = read_json(self.manifest_path)
        m.update(fields)
        write_json(self.manifest_path, m)

    def finish(self, status: str, **extra) -> None:
        m = read_json(self.manifest_path)
        m.update(status=status, ended=now(), **extra)
        if isinstance(m.get("load"), dict):
            m["load"]["end"] = machine_load()
        write_json(self.manifest_path, m)

    def fail(self, e: BaseException) -> None:
        """Mark a started run or teacher failed: interrupted (resumable) or the error and its
        traceback. Never masks the original error (e.g. with a full disk)."""
        try:
            if not self.manifest_path.exists():
                return
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                self.finish("failed", reason="interrupted; rerun the suite to resume")
            else:
                self.finish("failed", reason=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-4000:])
        except OSError:
            pass  # e.g. the disk is full: the original error is the one to report

    # -- hooks for the loop
    def step_hook(self, label: str, every_s: float = 1.0):
        """Per-step hook: at most once a second, record how far the clocks have got
        (checkpoints/heartbeat.json), so a crash's lost work is measurable on resume; then
        the progress bar's hook for `label`."""
        inner = self.progress.step_hook(label) if self.progress is not None else None
        last = [time.monotonic()]

        def hook(loop):
            t = time.monotonic()
            if t - last[0] >= every_s:
                last[0] = t
                write_beat(self.path, loop)
            if inner is not None:
                inner(loop)

        return hook

    def eval_hook(self):
        """After each evaluation, note the train clock so a crash's lost time can be measured."""

        def hook(loop, rows):
            self.update({"heartbeat_train_wall_s": loop.clock.train_wall_s, "heartbeat_step": loop.clock.step})
            write_beat(self.path, loop)
            if self.progress is not None:
                self.progress.eval_done(loop, rows)

        return hook

    # -- resume
    def prepare(self, loop) -> dict:
        """Before `loop.run()`: resume from the loop's checkpoint if there is one (manifest
        fields to update are returned), else clear what an earlier attempt without a
        checkpoint wrote (one that died before its first checkpoint, or whose checkpoint did
        not travel with a fresh clone), so the run starts clean. The discarded attempt's work
        is logged as a `restart` event and counted, like a resume's, in `lost_wall_s`/`lost_steps`
        ({} when there was no earlier attempt)."""
        if loop.ckpt_path.exists():
            return self.resume(loop, self.read_manifest())
        metrics = self.path / "metrics.jsonl"
        if not metrics.exists():
            return {}
        lost, lost_steps = discarded_work(metrics)
        for f in ("metrics.jsonl", "events.jsonl"):
            remove(self.path / f)
        loop.event("restart", reason="no checkpoint to resume from", lost_wall_s=round(lost, 4), lost_steps=lost_steps)
        self.log(f"restarting {self.path.name} from scratch: no checkpoint "
                 f"(discarded {lost:.1f}s, {lost_steps} steps of an earlier attempt)")
        old = self.read_manifest()
        return {"restarted": old.get("restarted", 0) + 1, "lost_wall_s": old.get("lost_wall_s", 0.0) + lost,
                "lost_steps": old.get("lost_steps", 0) + lost_steps}

    def resume(self, loop, old: dict) -> dict:
        """Restore `loop` from its checkpoint; log the resume; manifest fields to update.

        Work done after the checkpoint is thrown away and redone, so it never enters the
        train clock (the clocks come back from the checkpoint); the last heartbeat says how
        much wall time that was (train + eval seconds, and steps), reported as lost."""
        dropped = loop.load(loop.ckpt_path)
        beat_path = self.path / "checkpoints" / "heartbeat.json"
        lost, lost_steps = 0.0, 0
        try:
            beat = read_json(beat_path)
            lost = max(0.0, beat["train_wall_s"] + beat["eval_wall_s"]
                       - loop.clock.train_wall_s - loop.clock.eval_wall_s)
            lost_steps = max(0, int(beat["step"]) - loop.clock.step)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no heartbeat yet: nothing measurable was lost
        remove(beat_path)  # counted once, even if the resumed run dies early
        loop.event("resume", from_step=loop.clock.step, dropped_lines=dropped, lost_wall_s=round(lost, 4),
                   lost_steps=lost_steps)
        self.log(f"resuming {self.path.name} from step {loop.clock.step} (lost {lost:.1f}s, {lost_steps} steps)")
        return {"resumed": old.get("resumed", 0) + 1, "lost_wall_s": old.get("lost_wall_s", 0.0) + lost,
                "lost_steps": old.get("lost_steps", 0) + lost_steps}


def teacher_generations(resumed_from: dict, teacher_info: dict) -> list[int]:
    """The builds of the teacher a run learned from: the one loaded now, plus those an earlier
    attempt of the same run used (`resumed_from`: its manifest when the run resumes, else {})."""
    return sorted({*(resumed_from.get("teacher_generations") or []), teacher_info.get("generation", 1)})


def discarded_work(metrics: Path) -> tuple[float, int]:
    """(train + eval wall seconds, steps) an earlier attempt had recorded by its last
    evaluation in `metrics` (metrics.jsonl); (0, 0) for an unreadable or empty file."""
    last = None
    try:
        for line in metrics.read_text().splitlines():
            try:
                last = json.loads(line)
            except ValueError:
                continue  # a torn last line from a killed process
    except OSError:
        return 0.0, 0
    try:
        return float(last["train_wall_s"]) + float(last["eval_wall_s"]), int(last["step"])
    except (TypeError, KeyError, ValueError):
        return 0.0, 0


def write_beat(path: Path, loop) -> None:
    """Heartbeat: not fsynced (it only has to survive the process, not the machine)."""
    tw, ew = loop.wall_now()
    beat = path / "checkpoints" / "heartbeat.json"
    try:
        beat.parent.mkdir(parents=True, exist_ok=True)
        tmp = beat.with_name(f".heartbeat.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"step": loop.clock.step, "train_wall_s": tw, "eval_wall_s": ew,
                                   "time": time.time()}))
        os.replace(tmp, beat)
    except OSError:
        pass  # a missed heartbeat only makes the lost-time report smaller


# ------------------------------------------------------------- teacher records
_RECORD = ("teacher.json", "manifest.json", "metrics.jsonl", "events.jsonl", "spec.json")


def superseded(tdir: Path) -> list[Path]:
    """Earlier records of a teacher that was trained again, oldest first (superseded/1, 2, ...)."""
    root = tdir / "superseded"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def supersede(tdir: Path) -> None:
    """Move a complete teacher's record to superseded/<n>/ before it is trained again, so the
    metrics the existing runs were distilled from stay on disk (and in git). Crash-safe: the copy
    is assembled under a temporary name and renamed; a rerun after a crash between the rename and
    the removal finds the same teacher.json already kept and does not keep it twice."""
    previous = superseded(tdir)
    current = (tdir / "teacher.json").read_bytes()
    if not (previous and (previous[-1] / "teacher.json").read_bytes() == current):
        dest = tdir / "superseded" / str(len(previous) + 1)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in _RECORD:
            if (tdir / f).exists():
                shutil.copy2(tdir / f, tmp / f)
        os.replace(tmp, dest)
    for f in _RECORD:
        if f != "spec.json":
            remove(tdir / f)
    # a checkpoint belongs to the build it came from: the rebuild starts from scratch
    shutil.rmtree(tdir / "checkpoints", ignore_errors=True)


def same_metrics(a: dict, b: dict, tol: float = 1e-6) -> bool:
    """Two {split: {metric: value}} records agree on every number they share (and share a split)."""
    shared = [(sp, k) for sp in a if sp in b for k in a[sp] if k in b[sp]]
    return bool(shared) and all(math.isclose(float(a[sp][k]), float(b[sp][k]), rel_tol=tol, abs_tol=tol)
                                for sp, k in shared)
