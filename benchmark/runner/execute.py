"""Plan and execute a suite: teachers before students, `same_as` targets before their
followers, complete runs skipped, every run behind a lock, every file in the contract."""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .. import SCHEMA_VERSION
from ..errors import LockMismatch, UserError
from ..store import append_jsonl, read_json, read_jsonl, remove, write_json
from ..suite import (
    FixedEpoch,
    RunSettings,
    SameAs,
    Suite,
    lock_body,
    run_specs,
    sha256_json,
    teacher_spec,
)
from .locks import RunLock
from .progress import machine_load


# ----------------------------------------------------------------------------- plan
@dataclass
class PlanItem:
    kind: str  # "teacher" | "run"
    id: str
    arm: str | None
    seed: int | None
    spec: dict
    deps: list[str] = field(default_factory=list)
    status: str = "pending"


def suite_dir(results_dir: Path, suite: Suite) -> Path:
    return Path(results_dir) / suite.name


def item_status(path: Path) -> str:
    m = path / "manifest.json"
    if not m.exists():
        return "pending"
    try:
        return read_json(m).get("status", "unknown")
    except (OSError, ValueError):
        return "unknown"


def teacher_status(path: Path) -> str:
    """item_status, except that a complete teacher whose weights are gone is pending: results keep
    text records and weights stay local, so a fresh clone has teacher.json but no teacher.pt.
    Such a teacher is trained (or loaded from its checkpoint) again; training is deterministic
    on the same device and thread count (not across CPU models: oneDNN/MKL pick other kernels),
    and run_teacher keeps the old record under superseded/ and checks the metrics against it."""
    s = item_status(path)
    if s == "complete" and not (path / "teacher.pt").exists():
        return "pending"
    return s


_RECORD = ("teacher.json", "manifest.json", "metrics.jsonl", "events.jsonl", "spec.json")


def _superseded(tdir: Path) -> list[Path]:
    """Earlier records of a teacher that was trained again, oldest first (superseded/1, 2, ...)."""
    root = tdir / "superseded"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _supersede(tdir: Path) -> None:
    """Move a complete teacher's record to superseded/<n>/ before it is trained again, so the
    metrics the existing runs were distilled from stay on disk (and in git). Crash-safe: the copy
    is assembled under a temporary name and renamed; a rerun after a crash between the rename and
    the removal finds the same teacher.json already kept and does not keep it twice."""
    import shutil

    previous = _superseded(tdir)
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


def _same_metrics(a: dict, b: dict, tol: float = 1e-6) -> bool:
    """Two {split: {metric: value}} records agree on every number they share (and share a split)."""
    shared = [(sp, k) for sp in a if sp in b for k in a[sp] if k in b[sp]]
    return bool(shared) and all(math.isclose(float(a[sp][k]), float(b[sp][k]), rel_tol=tol, abs_tol=tol)
                                for sp, k in shared)


def plan(suite: Suite, results_dir: Path, arms: list[str] | None = None, seeds: list[int] | None = None) -> list[PlanItem]:
    """Teachers first, then runs seed by seed (every arm of seed 0, then seed 1, ...), with every
    `same_as` target before its followers: a suite stopped part way leaves complete paired seeds
    to report on, not five baselines and no distilled run."""
    sdir = suite_dir(results_dir, suite)
    items: list[PlanItem] = []
    teachers: dict[str, PlanItem] = {}
    specs = run_specs(suite, arms, seeds)
    if arms:
        # a follower needs its target arm's runs even if only the follower was asked for
        need = {suite.arm_settings[a].distill.switch.same_as for a in arms
                if suite.arm_settings[a].distill and isinstance(suite.arm_settings[a].distill.switch, SameAs)}
        specs = run_specs(suite, sorted(set(arms) | need), seeds)
    for sp in specs:
        s = suite.arm_settings[sp["arm"]]
        if sp["teacher"] and sp["teacher"]["id"] not in teachers:
            ts = teacher_spec(suite, s, s.distill.teacher)
            teachers[ts["teacher_id"]] = PlanItem("teacher", ts["teacher_id"], None, None, ts,
                                                  status=teacher_status(sdir / "teachers" / ts["teacher_id"]))
    items += teachers.values()
    by_arm_seed = {(sp["arm"], sp["seed"]): sp["run_id"] for sp in specs}
    followers, leaders = [], []
    for sp in specs:
        s = suite.arm_settings[sp["arm"]]
        deps = [sp["teacher"]["id"]] if sp["teacher"] else []
        if s.distill and isinstance(s.distill.switch, SameAs):
            deps.append(by_arm_seed[(s.distill.switch.same_as, sp["seed"])])
        it = PlanItem("run", sp["run_id"], sp["arm"], sp["seed"], sp, deps,
                      status=item_status(sdir / "runs" / sp["run_id"]))
        (followers if len(deps) > (1 if sp["teacher"] else 0) else leaders).append(it)
    return items + sorted(leaders + followers, key=lambda it: it.seed)  # stable: leaders first


# ---------------------------------------------------------------- pre-registration
def check_lock(suite: Suite, sdir: Path, *, write: bool) -> dict:
    """Write suite.lock.json before the first run; refuse a suite that differs from it."""
    path = sdir / "suite.lock.json"
    body = lock_body(suite)
    if path.exists():
        lock = read_json(path)
        if lock.get("schema_version") != SCHEMA_VERSION:
            raise UserError(f"{sdir} was written by results schema version {lock.get('schema_version')}; "
                            f"this w2s-bench writes version {SCHEMA_VERSION}. Use a new --results-dir "
                            "(or --new-results NAME) rather than mixing them.")
        old = lock.get("locked", {})
        diffs = [k for k in ("targets", "seeds", "recipe") if sha256_json(old.get(k)) != sha256_json(body[k])]
        if diffs:
            detail = []
            for k in diffs:
                if k == "recipe":
                    keys = sorted(set(old.get(k, {})) | set(body[k]))
                    detail.append("recipe (" + ", ".join(x for x in keys if sha256_json(old[k].get(x)) !=
                                                          sha256_json(body[k].get(x))) + ")")
                else:
                    detail.append(f"{k}: locked {old.get(k)} vs now {body[k]}")
            raise LockMismatch(
                f"suite {suite.name!r} differs from its pre-registration {path}: " + "; ".join(detail) +
                ". Results of different protocols must not mix: start a separate results directory with "
                "`--new-results NAME` (or --results-dir), or restore the suite.")
        amendment = {}
        new_arms = [a for a in suite.arm_names() if a not in lock.get("arms", [])]
        if new_arms:
            lock["arms"] = lock.get("arms", []) + new_arms
            amendment["added_arms"] = new_arms
        # the description documents the suite (the report prints it); it is not part of the
        # pre-registered protocol, so a later edit is taken, and recorded, rather than refused
        desc = suite.cfg.description
        if (lock.get("resolved") or {}).get("description", "") != desc:
            lock.setdefault("resolved", {})["description"] = desc
            amendment["description"] = desc
        if amendment and write:
            lock.setdefault("amendments", []).append({"time": _now(), **amendment})
            write_json(path, lock)
        return lock
    lock = {"schema_version": SCHEMA_VERSION, "suite": suite.name, "suite_sha256": suite.sha256(),
            "created": _now(), "source": suite.source, "resolved": suite.resolved(), "locked": body,
            "targets": body["targets"], "seeds": body["seeds"], "arms": suite.arm_names()}
    if write:
        write_json(path, lock)
    return lock


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ------------------------------------------------------------------------ execution
def _claim(lock: RunLock) -> bool:
    """Take a run's lock; under DDP rank 0 takes it and every rank follows its answer."""
    from ..train import ddp

    if ddp.world()[1] > 1:
        return ddp.broadcast(lock.acquire() if ddp.is_main() else None)
    return lock.acquire()


class Executor:
    """Runs plan items in this process (the local executor)."""

    def __init__(self, suite: Suite, results_dir: Path, *, device: str | None = None, threads: int | None = None,
                 progress=None, log=print):
        self.suite = suite
        self.sdir = suite_dir(results_dir, suite)
        self.device_name = device
        self.threads = threads
        self.progress = progress
        self.log = log

    # -- helpers
    def settings_for(self, arm: str) -> RunSettings:
        s = self.suite.arm_settings[arm]
        upd = {}
        if self.device_name:
            upd["device"] = self.device_name
        if self.threads:
            upd["threads"] = self.threads
        return s.model_copy(update=upd) if upd else s

    def device(self, s: RunSettings):
        import torch

        name = s.device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available (use --device cpu)")
        if name.startswith("cuda") and int(os.environ.get("WORLD_SIZE", 1)) > 1:
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"  # DDP: one GPU per rank
        return torch.device(name)

    def manifest(self, path: Path, ident: str, status: str, device, threads: int, extra: dict | None = None) -> dict:
        from .provenance import device_info, git_info, host, versions

        mpath = path / "manifest.json"
        old = read_json(mpath) if mpath.exists() else {}
        m = {"schema_version": SCHEMA_VERSION, "run_id": ident, "status": status, "git": git_info(),
             "versions": versions(), "device": device_info(device), "threads": threads, "host": host(),
             "pid": os.getpid(), "started": old.get("started", _now()), "ended": None,
             "resumed": old.get("resumed", 0), "lost_wall_s": old.get("lost_wall_s", 0.0)}
        # the machine's load when this process (re)started the run, and at its end (finish):
        # train seconds measured beside other jobs are slower and noisier (additive key)
        m["load"] = {"start": machine_load()}
        m.update(extra or {})
        write_json(mpath, m)
        return m

    def finish(self, path: Path, status: str, **extra) -> None:
        m = read_json(path / "manifest.json")
        m.update(status=status, ended=_now(), **extra)
        if isinstance(m.get("load"), dict):
            m["load"]["end"] = machine_load()
        write_json(path / "manifest.json", m)

    # -- teachers
    def teacher_dir(self, tid: str) -> Path:
        return self.sdir / "teachers" / tid

    def load_teacher(self, tspec: dict, device):
        """The frozen teacher module and its teacher.json."""
        import torch

        from ..tasks import get_task

        tdir = self.teacher_dir(tspec["teacher_id"])
        info = read_json(tdir / "teacher.json")
        settings = self._teacher_settings(tspec)
        task = get_task(settings.task).build(settings, seeds=tspec["seeds"], device=device)
        model = task.build_model(settings.student, tspec["seeds"]["init"])
        model.load_state_dict(torch.load(tdir / "teacher.pt", map_location=device, weights_only=True))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model, info

    def _teacher_settings(self, tspec: dict) -> RunSettings:
        """The settings a teacher is built from: its own resolved spec (the fields its id hashes:
        task, model, train, data, threads, task_options), never the first arm that names it.
        Only where the data lives (root, download) is not in the spec; it comes from an arm whose
        teacher is this very id. --device/--threads overrides apply as for every run."""
        sources = [a for a in self.suite.arm_names()
                   if (s := self.suite.arm_settings[a]).distill and s.distill.teacher == tspec["name"]
                   and teacher_spec(self.suite, s, tspec["name"])["teacher_id"] == tspec["teacher_id"]]
        if not sources:
            raise UserError(f"teacher {tspec['teacher_id']} belongs to no arm of suite {self.suite.name!r}")
        where = self.suite.arm_settings[sources[0]].data
        return RunSettings.model_validate({
            "task": tspec["task"],
            "data": {**tspec["data"], "root": where.root, "download": where.download},
            "student": tspec["model"], "train": tspec["train"], "distill": None,
            "targets": tspec["targets"], "task_options": tspec["task_options"],
            "threads": self.threads or tspec["threads"], "device": self.device_name or tspec["device"],
            "deterministic": tspec["deterministic"]})

    def run_teacher(self, item: PlanItem) -> str:
        import torch

        from ..tasks import get_task
        from ..train.loop import Loop, configure_torch

        tspec = item.spec
        tdir = self.teacher_dir(item.id)
        if teacher_status(tdir) == "complete":
            return "complete"
        lock = RunLock(tdir / "lock")
        if not _claim(lock):
            # another process is training this teacher: run_suite does other work and polls,
            # so the teacher is trained once however many students wait for it
            return "complete" if teacher_status(tdir) == "complete" else "locked"
        if teacher_status(tdir) == "complete":
            lock.release()
            return "complete"
        recorded = None
        if item_status(tdir) == "complete" and (tdir / "teacher.json").exists():
            # the record the existing runs were distilled from is kept, not overwritten
            _supersede(tdir)
            self.log(f"[yellow]teacher {tspec['name']}: teacher.pt is missing; rebuilding it (the old record "
                     "is kept under superseded/) and checking it against the recorded metrics[/]")
        previous = _superseded(tdir)
        if previous and not (tdir / "teacher.json").exists():
            recorded = read_json(previous[-1] / "teacher.json").get("metrics")
        try:
            settings = self._teacher_settings(tspec)
            device = self.device(settings)
            configure_torch(settings.threads, settings.deterministic, device)
            tdir.mkdir(parents=True, exist_ok=True)
            write_json(tdir / "spec.json", tspec)
            self.manifest(tdir, item.id, "running", device, settings.threads)
            task = get_task(settings.task).build(settings, seeds=tspec["seeds"], device=device)
            model = task.build_model(settings.student, tspec["seeds"]["init"])
            cost = {"epochs": 0.0, "steps": 0, "samples": 0, "train_wall_s": 0.0, "eval_wall_s": 0.0, "flops": 0.0}
            if tspec["checkpoint"]:
                source = "checkpoint"
                try:
                    sd = torch.load(tspec["checkpoint"], map_location=device, weights_only=True)
                    sd = sd.get("model", sd) if isinstance(sd, dict) else sd
                    model.load_state_dict(sd)
                except (RuntimeError, KeyError, OSError, ValueError) as e:
                    first = str(e).strip().splitlines()[0][:300]
                    raise UserError(f"teacher {tspec['name']!r}: checkpoint {tspec['checkpoint']} does not fit "
                                    f"model {tspec['model']['name']!r}: {first}") from None
                model.eval()
                final = {sp: task.evaluate(model, sp) for sp in ("holdout", "test")}
            else:
                source = "trained"
                stop = None
                if tspec["snapshot_epoch"]:
                    stop = int(round(tspec["snapshot_epoch"] * task.steps_per_epoch))
                loop = Loop(task=task, model=model, train_cfg=settings.train, run_dir=tdir, device=device,
                            stop_step=stop, on_step=self._beat(tdir, self._progress_step(f"teacher {tspec['name']}")),
                            thresholds=[], on_eval=self._heartbeat(tdir))
                if loop.ckpt_path.exists():
                    m = read_json(tdir / "manifest.json")
                    m.update(self._resume(loop, tdir, m))
                    write_json(tdir / "manifest.json", m)
                elif (tdir / "metrics.jsonl").exists():
                    for f in ("metrics.jsonl", "events.jsonl"):
                        remove(tdir / f)
                res = loop.run()
                if res.status != "complete":
                    self.finish(tdir, "diverged", reason=res.reason)
                    self.log(f"[red]teacher {tspec['name']} diverged ({res.reason}); the arms that use it "
                             "are blocked, the rest of the suite goes on[/]")
                    return "diverged"
                final = res.final
                c = res.clock
                cost = {"epochs": c.step / task.steps_per_epoch, "steps": c.step, "samples": c.samples,
                        "train_wall_s": c.train_wall_s, "eval_wall_s": c.eval_wall_s, "flops": c.flops}
                model = loop.ema.model if loop.ema else model
            import io

            from ..store import atomic_write_bytes

            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            atomic_write_bytes(tdir / "teacher.pt", buf.getvalue())
            info = {"schema_version": SCHEMA_VERSION, "teacher_id": item.id, "name": tspec["name"],
                    "model": tspec["model"]["name"], "metrics": final, "cost": cost, "source": source,
                    "metric": settings.targets.metric, "generation": len(previous) + 1}
            extra = {}
            if recorded is not None:
                same = _same_metrics(recorded, final)
                extra["rebuilt"] = {"reason": "teacher.pt missing", "matches_record": same,
                                    "recorded_metrics": recorded}
                info["rebuilt"] = extra["rebuilt"]
            write_json(tdir / "teacher.json", info)
            if recorded is not None:
                if not same:
                    self.log(f"[red]teacher {tspec['name']}: the rebuilt teacher's metrics {final} differ from "
                             f"the recorded {recorded} (another device, thread count or library version?); "
                             "runs distilled from the old weights are not comparable with new ones: each "
                             "run records the teacher generation it used and the report flags arms that "
                             "mix them[/]")
            self.finish(tdir, "complete", **extra)
            m = final.get("test", {}).get(settings.targets.metric)
            h = final.get("holdout", {}).get(settings.targets.metric)
            self.log(f"teacher {tspec['name']} ({tspec['model']['name']}): test {settings.targets.metric} "
                     f"{m:.2f}, held-out {h:.2f}" if m is not None and h is not None else f"teacher {item.id} done")
            return "complete"
        except BaseException as e:
            if item_status(tdir) == "running":
                self.record_failure(tdir, e)
            raise
        finally:
            lock.release()

    # -- student runs
    def run_dir(self, run_id: str) -> Path:
        return self.sdir / "runs" / run_id

    def same_as_step(self, spec: dict, settings: RunSettings) -> tuple[bool, int | None]:
        """(ready, step) where the followed arm of the same seed switched off."""
        other = settings.distill.switch.same_as
        other_spec = next(s for s in run_specs(self.suite, [other], [spec["seed"]]))
        odir = self.run_dir(other_spec["run_id"])
        if item_status(odir) not in ("complete", "diverged"):
            return False, None
        events, _ = read_jsonl(odir / "events.jsonl")
        offs = [e for e in events if e["event"] == "switch_off"]
        return True, (offs[0]["step"] if offs else None)

    def run_student(self, item: PlanItem) -> str:
        from ..distill.switch import SwitchPolicy
        from ..tasks import get_task
        from ..train.loop import Loop, configure_torch

        spec = item.spec
        rdir = self.run_dir(item.id)
        status = item_status(rdir)
        if status in ("complete", "diverged"):
            return status
        settings = self.settings_for(spec["arm"])
        d = settings.distill
        same_step = None
        if d is not None and isinstance(d.switch, SameAs):
            ready, same_step = self.same_as_step(spec, settings)
            if not ready:
                return "waiting"
        lock = RunLock(rdir / "lock")
        if not _claim(lock):
            return "locked"
        try:
            device = self.device(settings)
            configure_torch(settings.threads, settings.deterministic, device)
            task = get_task(settings.task).build(settings, seeds=spec["seeds"], device=device)
            spec = {**spec, "budget": {"epochs": settings.train.epochs,
                                       "steps": max(1, int(round(settings.train.epochs * task.steps_per_epoch))),
                                       "steps_per_epoch": task.steps_per_epoch},
                    "data_info": task.info}
            rdir.mkdir(parents=True, exist_ok=True)
            write_json(rdir / "spec.json", spec)
            teacher, tinfo = None, None
            if spec["teacher"]:
                # the id the plan gave the teacher (suite settings: --threads/--device overrides
                # must not change it, or the student looks for a teacher that was never trained)
                tspec = teacher_spec(self.suite, self.suite.arm_settings[spec["arm"]], d.teacher)
                teacher, tinfo = self.load_teacher(tspec, device)
            model = task.build_model(settings.student, spec["seeds"]["init"])
            switch = None
            if d is not None:
                sw = d.switch
                kind = (sw if isinstance(sw, str) else "fixed_epoch" if isinstance(sw, FixedEpoch) else "same_as")
                switch = SwitchPolicy(
                    kind, direction=task.direction,
                    teacher_holdout=(tinfo["metrics"]["holdout"].get(task.metric) if tinfo else None),
                    fixed_epoch=sw.fixed_epoch if isinstance(sw, FixedEpoch) else None,
                    same_as_step=same_step,
                    ramp_epochs=d.ramp.epochs if d.ramp else None, ramp_evals=d.ramp.evals if d.ramp else None)
            loop = Loop(task=task, model=model, train_cfg=settings.train, run_dir=rdir, device=device,
                        teacher=teacher, switch=switch, thresholds=settings.targets.thresholds,
                        on_step=self._beat(rdir, self._progress_step(f"{spec['arm']} seed {spec['seed']}")))
            extra, used = {}, []
            if loop.ckpt_path.exists():
                old = read_json(rdir / "manifest.json") if (rdir / "manifest.json").exists() else {}
                extra = self._resume(loop, rdir, old)
                used = old.get("teacher_generations") or []
            elif (rdir / "metrics.jsonl").exists():
                # started but never reached its first checkpoint: start clean
                for f in ("metrics.jsonl", "events.jsonl"):
                    remove(rdir / f)
            if tinfo is not None:
                # which build of the teacher this run learned from (a resumed run may span two)
                extra["teacher_generations"] = sorted({*used, tinfo.get("generation", 1)})
            self.manifest(rdir, item.id, "running", device, settings.threads, extra)
            loop.on_eval = self._heartbeat(rdir)
            res = loop.run()
            if res.status == "diverged":
                self.finish(rdir, "diverged", reason=res.reason)
                self.log(f"[yellow]{spec['arm']} seed {spec['seed']}: diverged ({res.reason}); "
                         "the suite goes on and the report censors it[/]")
                return "diverged"
            self.finish(rdir, "complete", switch_step=res.switch_step)
            acc = res.final.get("test", {}).get(task.metric)
            sw = (f", KD off at epoch {res.switch_step / task.steps_per_epoch:.2f}"
                  if res.switch_step is not None else "")
            self.log(f"{spec['arm']} seed {spec['seed']}: final test {task.metric} {acc:.2f}{sw}")
            return "complete"
        except BaseException as e:
            self.record_failure(rdir, e)
            raise
        finally:
            lock.release()

    def record_failure(self, d: Path, e: BaseException) -> None:
        """Mark a started run or teacher failed: interrupted (resumable) or the error and its
        traceback. Never masks the original error (e.g. with a full disk)."""
        try:
            if not (d / "manifest.json").exists():
                return
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                self.finish(d, "failed", reason="interrupted; rerun the suite to resume")
            else:
                self.finish(d, "failed", reason=f"{type(e).__name__}: {e}",
                            traceback=traceback.format_exc()[-4000:])
        except OSError:
            pass  # e.g. the disk is full: the original error is the one to report

    def _heartbeat(self, rdir: Path):
        """After each evaluation, note the train clock so a crash's lost time can be measured."""

        def hook(loop, rows):
            m = read_json(rdir / "manifest.json")
            m["heartbeat_train_wall_s"] = loop.clock.train_wall_s
            m["heartbeat_step"] = loop.clock.step
            write_json(rdir / "manifest.json", m)
            _write_beat(rdir, loop)
            if self.progress is not None:
                self.progress.eval_done(loop, rows)

        return hook

    def _beat(self, rdir: Path, inner, every_s: float = 1.0):
        """Per-step hook: at most once a second, record how far the clocks have got
        (checkpoints/heartbeat.json), so a crash's lost work is measurable on resume."""
        last = [time.monotonic()]

        def hook(loop):
            now = time.monotonic()
            if now - last[0] >= every_s:
                last[0] = now
                _write_beat(rdir, loop)
            if inner is not None:
                inner(loop)

        return hook

    def _resume(self, loop, rdir: Path, old: dict) -> dict:
        """Restore `loop` from its checkpoint; log the resume; manifest fields to update.

        Work done after the checkpoint is thrown away and redone, so it never enters the
        train clock (the clocks come back from the checkpoint); the last heartbeat says how
        much wall time that was (train + eval seconds, and steps), reported as lost."""
        dropped = loop.load(loop.ckpt_path)
        beat_path = rdir / "checkpoints" / "heartbeat.json"
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
        self.log(f"resuming {rdir.name} from step {loop.clock.step} (lost {lost:.1f}s, {lost_steps} steps)")
        return {"resumed": old.get("resumed", 0) + 1, "lost_wall_s": old.get("lost_wall_s", 0.0) + lost,
                "lost_steps": old.get("lost_steps", 0) + lost_steps}

    def _progress_step(self, label: str):
        if self.progress is None:
            return None
        return self.progress.step_hook(label)


def _write_beat(rdir: Path, loop) -> None:
    """Heartbeat: not fsynced (it only has to survive the process, not the machine)."""
    tw, ew = loop.wall_now()
    path = rdir / "checkpoints" / "heartbeat.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".heartbeat.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"step": loop.clock.step, "train_wall_s": tw, "eval_wall_s": ew,
                                   "time": time.time()}))
        os.replace(tmp, path)
    except OSError:
        pass  # a missed heartbeat only makes the lost-time report smaller


def run_suite(suite: Suite, results_dir: Path, *, arms=None, seeds=None, device=None, threads=None,
              progress=None, log=print, poll_s: float = 1.0, only: set[str] | None = None) -> dict[str, str]:
    """Run every pending item of the plan (or only the ids in `only`, whose dependencies
    must then be complete already); returns {id: final status}."""
    from ..train import ddp
    from .deep_check import check_deep

    check_deep(suite)  # model names and constructor arguments: before anything is written
    sdir = suite_dir(results_dir, suite)
    sdir.mkdir(parents=True, exist_ok=True)
    check_lock(suite, sdir, write=True)
    items = plan(suite, results_dir, arms, seeds)
    if only is not None:
        items = [it for it in items if it.id in only]
    ex = Executor(suite, results_dir, device=device, threads=threads, progress=progress, log=log)
    out: dict[str, str] = {}
    if progress is not None:
        progress.start_suite(len(items))
    pending = list(items)
    teacher_ids = {it.id for it in items if it.kind == "teacher"}
    said_locked: set[str] = set()
    while pending:
        progressed = False
        locked = False
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
                st = ex.run_teacher(it)
            else:
                st = ex.run_student(it)
            st = ddp.broadcast(st)  # DDP: a sync point; rank 0 has written everything for `it`
            if st == "locked":
                # another `run` process (or executor worker) holds it: do other work, poll
                locked = True
                if it.id not in said_locked:
                    said_locked.add(it.id)
                    log(f"{it.id} is running in another process; waiting for it")
                continue
            if st == "waiting":
                continue
            out[it.id] = st
            pending.remove(it)
            progressed = True
            if progress is not None:
                progress.item_done(it, st)
        if not progressed and locked:
            time.sleep(poll_s)
            continue
        if not progressed:
            for it in pending:
                out[it.id] = "waiting (dependency not complete)"
            break
    append_jsonl(sdir / "history.jsonl", [{"time": _now(), "pid": os.getpid(),
                                           "ran": {k: v for k, v in out.items()}}])
    return out
