"""Export a report's runs and summary to TensorBoard event files.

Layout (one TensorBoard "run" per harness run, so the run selector groups by suite and arm)::

    DIR/<suite>/<arm>/seed<seed>_<run_id>/   one run
    DIR/<suite>/_summary/                    the seed-grouped speedups of the report

Per run: every evaluation as scalar ``<split>/<metric>`` at its optimizer step, the clocks
(``clock/epoch``, ``clock/train_wall_s``, ``clock/eval_wall_s``, ``clock/flops``,
``clock/samples``) and ``kd_active`` (1/0) at the same steps; each event of events.jsonl as
text ``events/<name>`` (JSON) at its step, plus the scalar ``events/switch_off_epoch`` at the
switch-off step; the resolved spec as text ``spec`` and as hparams (flattened keys). Event
wall times are the run's start time plus its train and eval seconds, so TensorBoard's
"relative" axis shows the harness clock. Summary: scalars
``speedup/<arm>/<unit>/thr<threshold>/{point,ci_low,ci_high}`` at step 0 and a markdown
table as text ``summary``.

Written with TensorBoard's own writer and protos (no TensorFlow, no torch). An export
replaces earlier event files in the directories it writes (it is a regeneration from the
results tree, so re-exporting never duplicates points).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import numpy as np

CLOCKS = ("epoch", "train_wall_s", "eval_wall_s", "flops", "samples")


def _start_unix(started: object) -> float:
    """Manifest start time (ISO 8601) as unix seconds; 0 when missing or unparseable."""
    try:
        return _dt.datetime.fromisoformat(str(started).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _fresh_writer(logdir: Path):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    return EventFileWriter(str(logdir))


def _scalar(tag: str, value: float, step: int, wall: float):
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Event(
        wall_time=wall,
        step=int(step),
        summary=Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]),
    )


def _summary_event(summary, step: int, wall: float):
    from tensorboard.compat.proto.event_pb2 import Event

    return Event(wall_time=wall, step=int(step), summary=summary)


def run_dir(root: Path, suite: str, arm: str, seed: int, run_id: str) -> Path:
    return Path(root) / suite / arm / f"seed{seed}_{run_id}"


def export_tensorboard(an, root: Path) -> list[Path]:
    """Write every run of a SuiteAnalysis and its summary under root/<suite>/.

    Returns the directories written (one per run, then the summary directory).
    """
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.text import summary_v2 as text

    from benchmark.export import flatten

    su = an.suite
    written = []
    ev_by_run = {rid: g for rid, g in su.evals.groupby("run_id", observed=True, sort=False)}
    events = su.events
    for r in su.runs.itertuples(index=False):
        d = run_dir(root, su.name, r.arm, r.seed, r.run_id)
        w = _fresh_writer(d)
        t0 = _start_unix(r.started)
        rows = ev_by_run.get(r.run_id)
        spec = su.specs.get(r.run_id, {})
        w.add_event(_summary_event(text.text_pb("spec", _md_json(spec)), 0, t0))
        params = {
            k: v
            for k, v in flatten(spec, raw=True).items()
            if not (isinstance(v, float) and not math.isfinite(v))
        }
        params.update({"w2s.suite": su.name, "w2s.arm": r.arm, "w2s.seed": int(r.seed)})
        w.add_event(_summary_event(hp.hparams_pb(params, trial_id=r.run_id), 0, t0))
        if rows is not None and len(rows):
            rows = rows.sort_values(["step", "epoch"], kind="stable")
            wall = (
                t0
                + rows["train_wall_s"].fillna(0).to_numpy(float)
                + rows["eval_wall_s"].fillna(0).to_numpy(float)
            )
            for row, wt in zip(rows.itertuples(index=False), wall):
                if math.isfinite(float(row.value)):
                    w.add_event(_scalar(f"{row.split}/{row.metric}", row.value, row.step, wt))
            first = rows.drop_duplicates("step", keep="first")
            fw = wall[~rows.duplicated("step", keep="first").to_numpy()]
            for row, wt in zip(first.itertuples(index=False), fw):
                for c in CLOCKS:
                    v = float(getattr(row, c))
                    if math.isfinite(v):
                        w.add_event(_scalar(f"clock/{c}", v, row.step, wt))
                if row.kd_active is not None and not (
                    isinstance(row.kd_active, float) and np.isnan(row.kd_active)
                ):
                    w.add_event(_scalar("kd_active", float(bool(row.kd_active)), row.step, wt))
        for e in events[events["run_id"] == r.run_id].to_dict("records"):
            e = {k: v for k, v in e.items() if k not in ("run_id", "arm", "seed") and _ok(v)}
            step = int(e.get("step", 0) or 0)
            wt = float(e.get("wall") or t0)
            name = str(e.get("event", "event"))
            w.add_event(_summary_event(text.text_pb(f"events/{name}", _md_json(e)), step, wt))
            if name == "switch_off" and _ok(e.get("epoch")):
                w.add_event(_scalar("events/switch_off_epoch", float(e["epoch"]), step, wt))
        w.close()
        written.append(d)
    written.append(_export_summary(an, Path(root) / su.name / "_summary"))
    return written


def _ok(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))


def _md_json(d: dict) -> str:
    # Indented by 4 spaces: a markdown code block in TensorBoard's text dashboard.
    body = json.dumps(d, indent=2, sort_keys=True, default=str)
    return "\n".join("    " + line for line in body.splitlines())


def summary_tag(arm: str, unit: str, threshold: float, stat: str) -> str:
    return f"speedup/{arm}/{unit}/thr{threshold:g}/{stat}"


def _export_summary(an, d: Path) -> Path:
    from tensorboard.plugins.text import summary_v2 as text

    from benchmark.analysis.markdown import table_markdown
    from benchmark.analysis.tables import headline_table

    w = _fresh_writer(d)
    wall = _dt.datetime.now(_dt.timezone.utc).timestamp()
    for r in an.summary.itertuples(index=False):
        for stat in ("point", "ci_low", "ci_high"):
            v = float(getattr(r, stat))
            if math.isfinite(v):
                w.add_event(_scalar(summary_tag(r.arm, r.unit, r.threshold, stat), v, 0, wall))
    lines = [f"w2s-bench report of suite {an.suite.name}", ""]
    if an.health is not None:
        lines += [an.health.headline(), ""]
    headline = headline_table(an)
    if headline is not None:
        lines.append(table_markdown(headline))
    lines += ["", "Warnings:", *[f"- {m}" for m in an.warnings]]
    w.add_event(_summary_event(text.text_pb("summary", "\n".join(lines)), 0, wall))
    w.close()
    return d
