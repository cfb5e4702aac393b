"""The plan of a suite (teachers before students, `same_as` targets before their followers,
each item's status on disk) and its pre-registration lock (suite.lock.json)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import SCHEMA_VERSION
from ..errors import LockMismatch, UserError
from ..store import read_json, write_json
from ..suite import SameAs, Suite, lock_body, run_specs, sha256_json, teacher_spec


@dataclass
class PlanItem:
    kind: str  # "teacher" | "run"
    id: str
    arm: str | None
    seed: int | None
    spec: dict
    deps: list[str] = field(default_factory=list)
    status: str = "pending"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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


RESUMES = "resumes from its checkpoint"
RESTARTS = "restarts from scratch (no checkpoint here)"


def next_attempt(path: Path, status: str) -> str:
    """What rerunning the suite does with an unfinished item (`status` failed, running or
    unknown) in `path`: resume it from its checkpoint, or restart it from scratch because its
    rows are here without one (a fresh clone: checkpoints/ is not committed); "" otherwise."""
    if status in ("pending", "complete", "diverged"):
        return ""
    if (path / "checkpoints" / "last.pt").exists():
        return RESUMES
    if (path / "metrics.jsonl").exists():
        return RESTARTS
    return ""


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
    if not path.exists():
        lock = {"schema_version": SCHEMA_VERSION, "suite": suite.name, "suite_sha256": suite.sha256(),
                "created": now(), "source": suite.source, "resolved": suite.resolved(), "locked": body,
                "targets": body["targets"], "seeds": body["seeds"], "arms": suite.arm_names()}
        if write:
            write_json(path, lock)
        return lock
    lock = read_json(path)
    if lock.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{sdir} was written by results schema version {lock.get('schema_version')}; "
                        f"this w2s-bench writes version {SCHEMA_VERSION}. Use a new --results-dir "
                        "(or --new-results NAME) rather than mixing them.")
    _refuse_protocol_change(suite, path, lock.get("locked", {}), body)
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
        lock.setdefault("amendments", []).append({"time": now(), **amendment})
        write_json(path, lock)
    return lock


def _refuse_protocol_change(suite: Suite, path: Path, old: dict, body: dict) -> None:
    """LockMismatch naming what differs (targets, seeds, recipe keys) from the locked protocol."""
    diffs = [k for k in ("targets", "seeds", "recipe") if sha256_json(old.get(k)) != sha256_json(body[k])]
    if not diffs:
        return
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
