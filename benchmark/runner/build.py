"""The run builder: a resolved run spec becomes the settings it was hashed from, then the
components one run of the loop needs (task, student, teacher handle, switch policy) and the
Loop's keyword arguments. The only place the runner calls a task's `build`, and the only place
it constructs a switch policy, so a change to either interface is made here once.

Building order matters for pairing and must stay: the task (data) first, then the teacher (a
teacher loads its own task, so the data cache may be refilled), then the student, whose
`build_model` seeds the global RNG with the run's init seed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..store import read_jsonl
from ..suite import RunSettings, SameAs, Suite, run_specs
from .plan import item_status

if TYPE_CHECKING:
    import torch

    from .teachers import TeacherBuilder


def run_settings(suite: Suite, spec: dict, *, device: str | None = None, threads: int | None = None) -> RunSettings:
    """The settings a run is built from: its own resolved spec (every field its id hashes),
    plus where the data lives (root, download: not part of the id), taken from the spec's arm.
    `device`/`threads` (the command line's --device/--threads) override the spec's."""
    if spec.get("arm") not in suite.arm_settings:
        raise UserError(f"run {spec.get('run_id')} names arm {spec.get('arm')!r}, which suite "
                        f"{suite.name!r} does not have")
    where = suite.arm_settings[spec["arm"]].data
    return RunSettings.model_validate({
        "task": spec["task"],
        "data": {**spec["data"], "root": where.root, "download": where.download},
        "student": spec["student"], "train": spec["train"], "distill": spec["distill"],
        "targets": spec["targets"], "task_options": spec["task_options"],
        "threads": threads or spec["threads"], "device": device or spec["device"],
        "deterministic": spec["deterministic"]})


def resolve_device(name: str) -> torch.device:
    """The torch device for a settings' `device` ("auto": CUDA if there is one); under DDP
    (torchrun sets WORLD_SIZE) each rank takes the GPU of its LOCAL_RANK."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available (use --device cpu)")
    if name.startswith("cuda") and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"  # DDP: one GPU per rank
    return torch.device(name)


def prepare_device(settings: RunSettings) -> torch.device:
    """resolve_device, then this process's torch threads and deterministic algorithms (results
    depend on both; set before anything is built)."""
    from ..train.loop import configure_torch

    device = resolve_device(settings.device)
    configure_torch(settings.threads, settings.deterministic, device)
    return device


def build_task(settings: RunSettings, seeds: dict, device):
    """The task runtime (data, model construction, loss, evaluation) of `settings.task`."""
    from ..tasks import get_task

    return get_task(settings.task).build(settings, seeds=seeds, device=device)


def build_switch(distill, *, direction: str, teacher_holdout: float | None, same_as_step: int | None = None):
    """The switch policy of a distilled run (None without distillation): the registered rule
    `distill.switch` names and the ramp of `distill.ramp`. `teacher_holdout`: the teacher's
    held-out value of the primary metric (surpass_teacher compares with it); `same_as_step`:
    where the followed arm switched off (same_as)."""
    from ..distill.switch import build_policy

    if distill is None:
        return None
    ramp = distill.ramp
    return build_policy(distill.switch, direction=direction, teacher_holdout=teacher_holdout,
                        same_as_step=same_as_step, ramp_epochs=ramp.epochs if ramp else None,
                        ramp_evals=ramp.evals if ramp else None)


def followed_switch(suite: Suite, sdir: Path, spec: dict, settings: RunSettings) -> tuple[bool, int | None]:
    """For a `same_as` run: (ready, step), ready once the followed arm's run of the same seed is
    complete (or diverged), step where it switched off (None if it never did)."""
    sw = settings.distill.switch if settings.distill else None
    if not isinstance(sw, SameAs):
        return True, None
    other = next(iter(run_specs(suite, [sw.same_as], [spec["seed"]])))
    odir = Path(sdir) / "runs" / other["run_id"]
    if item_status(odir) not in ("complete", "diverged"):
        return False, None
    events, _ = read_jsonl(odir / "events.jsonl")
    offs = [e for e in events if e["event"] == "switch_off"]
    return True, (offs[0]["step"] if offs else None)


@dataclass
class RunParts:
    """Everything one student run's Loop is made of, built from its spec."""

    spec: dict  # the resolved run spec (plan item spec)
    settings: RunSettings
    device: Any
    task: Any
    model: Any
    teacher: Any = None  # frozen module, or None
    teacher_info: dict | None = None  # its teacher.json
    switch: Any = None  # SwitchPolicy, or None without distillation

    @property
    def budget(self) -> dict:
        steps = max(1, int(round(self.settings.train.epochs * self.task.steps_per_epoch)))
        return {"epochs": self.settings.train.epochs, "steps": steps, "steps_per_epoch": self.task.steps_per_epoch}

    @property
    def record_spec(self) -> dict:
        """spec.json: the spec with the budget in steps and the data's description."""
        return {**self.spec, "budget": self.budget, "data_info": self.task.info}

    def loop_kwargs(self) -> dict:
        """Keyword arguments of `train.loop.Loop` except where it writes (run_dir) and the hooks."""
        return {"task": self.task, "model": self.model, "train_cfg": self.settings.train, "device": self.device,
                "teacher": self.teacher, "switch": self.switch,
                "thresholds": list(self.settings.targets.thresholds)}


def build_run(spec: dict, settings: RunSettings, device, *, teachers: TeacherBuilder | None = None,
              same_as_step: int | None = None) -> RunParts:
    """Task, teacher (loaded through `teachers`, the suite's teacher builder), student and
    switch policy of the run `spec`, in the order pairing needs (module docstring)."""
    if spec.get("teacher") and teachers is None:
        raise ValueError(f"run {spec['run_id']} is distilled from teacher {spec['teacher']['id']}: "
                         "build_run needs the suite's teacher builder")
    task = build_task(settings, spec["seeds"], device)
    teacher, tinfo = None, None
    if spec.get("teacher"):
        teacher, tinfo = teachers.load(teachers.for_run(spec), device)
    model = task.build_model(settings.student, spec["seeds"]["init"])
    holdout = tinfo["metrics"]["holdout"].get(task.metric) if tinfo else None
    switch = build_switch(settings.distill, direction=task.direction, teacher_holdout=holdout,
                          same_as_step=same_as_step)
    return RunParts(spec, settings, device, task, model, teacher, tinfo, switch)
