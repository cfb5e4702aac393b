"""The teacher builder: a teacher is trained (or loaded from its checkpoint) from the teacher's
OWN resolved spec (the fields its id hashes), never from the settings of an arm that names it;
`run_teacher` does that for a plan item and writes teacher.pt and teacher.json."""

from __future__ import annotations

import io
from pathlib import Path

from .. import SCHEMA_VERSION
from ..errors import UserError
from ..store import atomic_write_bytes, read_json, write_json
from ..suite import RunSettings, Suite, teacher_spec
from .build import build_task, prepare_device
from .locks import RunLock, claim
from .plan import PlanItem, item_status, teacher_status
from .record import Recorder, same_metrics, supersede, superseded

NO_COST = {"epochs": 0.0, "steps": 0, "samples": 0, "train_wall_s": 0.0, "eval_wall_s": 0.0, "flops": 0.0}


class TeacherBuilder:
    """Builds the teachers of `suite`, whose records live in `root` (results/<suite>/teachers).
    `device`/`threads`: the command line's --device/--threads, applied as for every run."""

    def __init__(self, suite: Suite, root: Path, *, device: str | None = None, threads: int | None = None):
        self.suite = suite
        self.root = Path(root)
        self.device = device
        self.threads = threads

    def dir(self, tid: str) -> Path:
        return self.root / tid

    def for_run(self, spec: dict) -> dict:
        """The resolved spec of the teacher a run spec names. Computed from the suite's settings
        of the run's arm (not --threads/--device overrides: they must not change the id, or the
        student would look for a teacher that was never trained)."""
        t = spec["teacher"]
        tspec = teacher_spec(self.suite, self.suite.arm_settings[spec["arm"]], t["name"])
        if tspec["teacher_id"] != t["id"]:
            raise UserError(f"run {spec['run_id']} names teacher {t['id']}, but suite {self.suite.name!r} "
                            f"resolves it to {tspec['teacher_id']}: the run spec is not from this suite")
        return tspec

    def settings(self, tspec: dict) -> RunSettings:
        """The settings a teacher is built from: its own resolved spec (the fields its id hashes:
        task, model, train, data, threads, task_options), never the first arm that names it.
        Only where the data lives (root, download) is not in the spec; it comes from an arm whose
        teacher is this very id. --device/--threads overrides apply as for every run."""
        suite = self.suite
        sources = [a for a in suite.arm_names()
                   if (s := suite.arm_settings[a]).distill and s.distill.teacher == tspec["name"]
                   and teacher_spec(suite, s, tspec["name"])["teacher_id"] == tspec["teacher_id"]]
        if not sources:
            raise UserError(f"teacher {tspec['teacher_id']} belongs to no arm of suite {suite.name!r}")
        where = suite.arm_settings[sources[0]].data
        return RunSettings.model_validate({
            "task": tspec["task"],
            "data": {**tspec["data"], "root": where.root, "download": where.download},
            "student": tspec["model"], "train": tspec["train"], "distill": None,
            "targets": tspec["targets"], "task_options": tspec["task_options"],
            "threads": self.threads or tspec["threads"], "device": self.device or tspec["device"],
            "deterministic": tspec["deterministic"]})

    def build(self, tspec: dict, settings: RunSettings, device):
        """(task, freshly initialised teacher model) from the teacher's settings."""
        task = build_task(settings, tspec["seeds"], device)
        return task, task.build_model(settings.student, tspec["seeds"]["init"])

    def load(self, tspec: dict, device):
        """(frozen teacher module, its teacher.json) from the teacher's record."""
        import torch

        tdir = self.dir(tspec["teacher_id"])
        info = read_json(tdir / "teacher.json")
        _, model = self.build(tspec, self.settings(tspec), device)
        model.load_state_dict(torch.load(tdir / "teacher.pt", map_location=device, weights_only=True))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model, info


def stop_step(tspec: dict, steps_per_epoch: int) -> int | None:
    """Where a teacher's training stops: its snapshot epoch in steps (None: the whole budget)."""
    if not tspec["snapshot_epoch"]:
        return None
    return int(round(tspec["snapshot_epoch"] * steps_per_epoch))


def run_teacher(builder: TeacherBuilder, item: PlanItem, *, progress=None, log=print) -> str:
    """Train or load the teacher of plan item `item` unless it is complete; its status after."""
    tspec = item.spec
    tdir = builder.dir(item.id)
    if teacher_status(tdir) == "complete":
        return "complete"
    lock = RunLock(tdir / "lock")
    if not claim(lock):
        # another process is training this teacher: run_suite does other work and polls,
        # so the teacher is trained once however many students wait for it
        return "complete" if teacher_status(tdir) == "complete" else "locked"
    if teacher_status(tdir) == "complete":
        lock.release()
        return "complete"
    if item_status(tdir) == "complete" and (tdir / "teacher.json").exists():
        # the record the existing runs were distilled from is kept, not overwritten
        supersede(tdir)
        log(f"[yellow]teacher {tspec['name']}: teacher.pt is missing; rebuilding it (the old record "
            "is kept under superseded/) and checking it against the recorded metrics[/]")
    previous = superseded(tdir)
    recorded = None
    if previous and not (tdir / "teacher.json").exists():
        recorded = read_json(previous[-1] / "teacher.json").get("metrics")
    rec = Recorder(tdir, item.id, progress=progress, log=log)
    try:
        settings = builder.settings(tspec)
        device = prepare_device(settings)
        tdir.mkdir(parents=True, exist_ok=True)
        write_json(tdir / "spec.json", tspec)
        rec.start(device, settings.threads)
        made = _make_teacher(builder, tspec, settings, device, rec, log)
        if made is None:
            return "diverged"
        _record_teacher(rec, item, settings, *made, generation=len(previous) + 1, recorded=recorded, log=log)
        return "complete"
    except BaseException as e:
        if item_status(tdir) == "running":
            rec.fail(e)
        raise
    finally:
        lock.release()


def _make_teacher(builder: TeacherBuilder, tspec: dict, settings: RunSettings, device, rec: Recorder, log):
    """(model to keep, final metrics, cost, source) of a teacher loaded from its checkpoint or
    trained by the loop; None (and the record marked diverged) if its training diverged."""
    import torch

    from ..train.loop import Loop

    task, model = builder.build(tspec, settings, device)
    if tspec["checkpoint"]:
        try:
            sd = torch.load(tspec["checkpoint"], map_location=device, weights_only=True)
            sd = sd.get("model", sd) if isinstance(sd, dict) else sd
            model.load_state_dict(sd)
        except (RuntimeError, KeyError, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:300]
            raise UserError(f"teacher {tspec['name']!r}: checkpoint {tspec['checkpoint']} does not fit "
                            f"model {tspec['model']['name']!r}: {first}") from None
        model.eval()
        return model, {sp: task.evaluate(model, sp) for sp in ("holdout", "test")}, dict(NO_COST), "checkpoint"
    loop = Loop(task=task, model=model, train_cfg=settings.train, run_dir=rec.path, device=device,
                stop_step=stop_step(tspec, task.steps_per_epoch), on_step=rec.step_hook(f"teacher {tspec['name']}"),
                thresholds=[], on_eval=rec.eval_hook())
    resumed = rec.prepare(loop)  # from its checkpoint, or clean
    if resumed:
        rec.update(resumed)
    res = loop.run()
    if res.status != "complete":
        rec.finish("diverged", reason=res.reason)
        log(f"[red]teacher {tspec['name']} diverged ({res.reason}); the arms that use it "
            "are blocked, the rest of the suite goes on[/]")
        return None
    c = res.clock
    cost = {"epochs": c.step / task.steps_per_epoch, "steps": c.step, "samples": c.samples,
            "train_wall_s": c.train_wall_s, "eval_wall_s": c.eval_wall_s, "flops": c.flops}
    return (loop.ema.model if loop.ema else model), res.final, cost, "trained"


def _record_teacher(rec: Recorder, item: PlanItem, settings: RunSettings, model, final: dict, cost: dict,
                    source: str, *, generation: int, recorded: dict | None, log) -> None:
    """teacher.pt, teacher.json and the manifest of a built teacher; a rebuilt one (its weights
    were missing) is checked against the metrics its earlier build recorded."""
    import torch

    tspec, metric = item.spec, settings.targets.metric
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(rec.path / "teacher.pt", buf.getvalue())
    info = {"schema_version": SCHEMA_VERSION, "teacher_id": item.id, "name": tspec["name"],
            "model": tspec["model"]["name"], "metrics": final, "cost": cost, "source": source,
            "metric": metric, "generation": generation}
    extra = {}
    if recorded is not None:
        same = same_metrics(recorded, final)
        extra["rebuilt"] = info["rebuilt"] = {"reason": "teacher.pt missing", "matches_record": same,
                                              "recorded_metrics": recorded}
    write_json(rec.path / "teacher.json", info)
    if recorded is not None and not extra["rebuilt"]["matches_record"]:
        log(f"[red]teacher {tspec['name']}: the rebuilt teacher's metrics {final} differ from "
            f"the recorded {recorded} (another device, thread count or library version?); "
            "runs distilled from the old weights are not comparable with new ones: each "
            "run records the teacher generation it used and the report flags arms that "
            "mix them[/]")
    rec.finish("complete", **extra)
    m = final.get("test", {}).get(metric)
    h = final.get("holdout", {}).get(metric)
    log(f"teacher {tspec['name']} ({tspec['model']['name']}): test {metric} {m:.2f}, held-out {h:.2f}"
        if m is not None and h is not None else f"teacher {item.id} done")
