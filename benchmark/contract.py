"""The results contract: the only thing analysis reads. Pure data, no torch.

Layout (one suite)::

    results/<suite>/suite.lock.json          pre-registration, written before the first run
    results/<suite>/teachers/<teacher_id>/   teacher.json (+ checkpoint.pt, metrics.jsonl)
    results/<suite>/runs/<run_id>/spec.json  fully resolved run spec
                                  manifest.json
                                  metrics.jsonl   one line per (evaluation, split, metric)
                                  events.jsonl
                                  checkpoints/last.pt

suite.lock.json keys: schema_version, suite (name), suite_sha256, created, resolved (the
whole resolved suite as a dict), targets {metric, direction, thresholds}, seeds, arms (names);
optional amendments [{time, added_arms?, description?}]: arms added later, and the suite's
description (not part of the pre-registration; resolved.description is the latest one, which
the report prints).

spec.json keys: schema_version, run_id, suite, arm, seed, task, seeds (derived seeds:
init, data, augment, ...), teacher (null or {id, name, model}), budget {epochs, steps},
targets {metric, direction, thresholds}, plus every resolved setting (data, student,
train, distill).

manifest.json keys: schema_version, run_id, status (running|complete|diverged|failed),
git {sha, dirty} (dirty: tracked files outside results/ and reports/ differ from sha; runs
before 2026-12-01 also counted changed records there), versions {python, torch, ...},
device, threads, started, ended, resumed (int), lost_wall_s (float), host; a teacher trained
again because its teacher.pt was missing also has rebuilt {reason, matches_record (bool), recorded_metrics}; a run with a
teacher has teacher_generations (the builds of its teacher it learned from; absent in runs
from before builds were recorded: build 1). Device is "cpu <model> <ISA> (N threads)" or
"cuda:N <name>" (older runs: "cpu <arch> (N threads)"). Runs from issue 22 on also record
load {start: {loadavg_1m, cpus}, end: {...}} (the machine's load when the run (re)started and
ended: a timing taken beside other jobs can be told apart); lost_steps (int) where a resume
or restart discarded work, and restarted (int) where an earlier attempt without a checkpoint
(one whose checkpoints/ did not travel with its committed rows) was thrown away and the run
trained from scratch. All optional and additive: schema_version unchanged.

reports/<suite>/results_stamp.json (written by `report`, not part of the results): the
fingerprint of the finished runs a report was made from, so `report` without arguments
regenerates only suites whose results changed.

teacher.json keys: schema_version, teacher_id, name, model, metrics {holdout: {metric:
value}, test: {metric: value}}, cost {epochs, steps, samples, train_wall_s, eval_wall_s,
flops}, source ("trained" | "checkpoint"); optional generation (build number, default 1) and
rebuilt (as in the manifest). A teacher trained again keeps each earlier build's record
(teacher.json, manifest.json, metrics.jsonl, events.jsonl, spec.json) under
teachers/<teacher_id>/superseded/<build>/.

events.jsonl rows: {event, epoch, step, wall (unix time), ...}; events used downstream:
switch_off {epoch, step, student_holdout, teacher_holdout, reason}, kd_zero (end of a
ramp), threshold_crossed {threshold, value}, resume {from_step, dropped_lines, lost_wall_s,
lost_steps}, restart {reason, lost_wall_s, lost_steps}, divergence {loss}.
"""

from __future__ import annotations

METRIC_ROW_KEYS = (
    "epoch",  # float: optimizer steps / steps per epoch
    "step",  # int: optimizer steps taken so far
    "samples",  # int: training samples seen so far
    "train_wall_s",  # float: training wall seconds so far, evaluation excluded
    "eval_wall_s",  # float: evaluation wall seconds so far (cumulative)
    "flops",  # float: cumulative training FLOPs, teacher forwards included
    "split",  # "test" | "holdout"
    "metric",  # e.g. "accuracy" (percent), "AP" (percent), "fid_cifarnet"
    "value",  # float
    "kd_active",  # bool: distillation weight > 0 during the step that led here
)

SPLITS = ("test", "holdout")
STATUSES = ("running", "complete", "diverged", "failed")
DIRECTIONS = ("higher", "lower")
