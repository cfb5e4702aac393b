"""A validated suite expanded into fully resolved run specs and teacher specs, with the
content-addressed ids that name their results (run_id = a hash of the spec) and the body of
the pre-registration lock. Torch-free, a leaf. Changing what goes into a spec changes every
run id: the committed results would no longer be found.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from . import SCHEMA_VERSION
from .suite_schema import RunSettings, TrainCfg, deep_merge

if TYPE_CHECKING:
    from .suite import Suite


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --------------------------------------------------------------------------- run specs
STREAMS = {"init": 1, "data_order": 2, "augment": 3, "torch": 4, "sampling": 5, "bootstrap": 6}


def derive_seeds(root: int) -> dict[str, int]:
    """Independent streams from one root seed (numpy SeedSequence, DESIGN.md convention 4).

    They depend on the seed only, never on the arm: paired arms share init, data order
    and augmentation.
    """
    import numpy as np

    return {name: int(np.random.SeedSequence([root, k]).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
            for name, k in STREAMS.items()}


def teacher_spec(suite: Suite, settings: RunSettings, teacher_name: str) -> dict:
    """The resolved teacher: its id hashes everything that determines its weights."""
    t = settings.teachers[teacher_name]
    train = TrainCfg.model_validate(deep_merge(settings.train.model_dump(mode="json"), t.train))
    body = {
        "task": settings.task,
        "model": t.model.model_dump(mode="json"),
        "checkpoint": t.checkpoint,
        "snapshot_epoch": t.snapshot_epoch,
        "train": train.model_dump(mode="json"),
        "data": _data_identity(settings),
        "seed": t.seed,
        "threads": settings.threads,
        "task_options": settings.task_options,
    }
    tid = f"{teacher_name}-{sha256_json(body)[:12]}"
    return {"schema_version": SCHEMA_VERSION, "teacher_id": tid, "name": teacher_name, "suite": suite.name,
            "seeds": derive_seeds(t.seed), "targets": settings.targets.model_dump(mode="json"),
            "device": settings.device, "deterministic": settings.deterministic, **body}


def _data_identity(s: RunSettings) -> dict:
    # the root path is where the data lives, not what it is: keep it out of ids
    d = s.data.model_dump(mode="json")
    d.pop("root", None)
    d.pop("download", None)
    return d


def run_specs(suite: Suite, arms: list[str] | None = None, seeds: list[int] | None = None) -> list[dict]:
    """Every (arm, seed) run as a fully resolved spec dict; run_id hashes the spec."""
    out = []
    for arm in suite.arm_names():
        if arms and arm not in arms:
            continue
        for seed in suite.cfg.seeds:
            if seeds is not None and seed not in seeds:
                continue
            out.append(run_spec(suite, arm, seed))
    return out


def run_spec(suite: Suite, arm: str, seed: int) -> dict:
    s = suite.arm_settings[arm]
    teacher = None
    if s.distill is not None and s.distill.teacher is not None:
        ts = teacher_spec(suite, s, s.distill.teacher)
        teacher = {"id": ts["teacher_id"], "name": ts["name"], "model": ts["model"]["name"]}
    body = {
        "suite": suite.name,
        "arm": arm,
        "seed": seed,
        "task": s.task,
        "seeds": derive_seeds(seed),
        "teacher": teacher,
        "data": _data_identity(s),
        "student": s.student.model_dump(mode="json"),
        "train": s.train.model_dump(mode="json"),
        "distill": s.distill.model_dump(mode="json") if s.distill else None,
        "targets": s.targets.model_dump(mode="json"),
        "threads": s.threads,
        "deterministic": s.deterministic,
        "task_options": s.task_options,
    }
    run_id = f"{arm}-s{seed}-{sha256_json(body)[:10]}"
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, **body,
            "budget": {"epochs": s.train.epochs}, "device": s.device}


def lock_body(suite: Suite) -> dict:
    """What pre-registration fixes: thresholds, seeds and the recipe (everything but arms)."""
    r = suite.resolved()
    recipe = {k: v for k, v in r.items() if k not in ("arms", "seeds", "description", "reference", "device")}
    recipe.get("data", {}).pop("root", None)
    recipe.get("data", {}).pop("download", None)
    return {"targets": r["targets"], "seeds": r["seeds"], "recipe": recipe}
