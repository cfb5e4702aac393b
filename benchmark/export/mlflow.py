"""Export a report's runs and summary to MLflow.

One MLflow experiment per suite (``w2s-bench/<suite>``); in it one parent run per arm and one
child run per harness run (tag ``mlflow.parentRunId``), so the UI groups runs by suite and
arm. Tags on every run: ``w2s.suite``, ``w2s.arm``, ``w2s.kind`` (``arm`` | ``run`` |
``summary``); on harness runs also ``w2s.run_id``, ``w2s.seed``, ``w2s.status``,
``w2s.git_sha`` and, when distillation was switched off, ``w2s.switch_off`` (the event as
JSON).

Per harness run: params = the resolved spec flattened to dotted keys; metrics
``<split>/<metric>``, ``clock/<epoch|train_wall_s|eval_wall_s|flops|samples>`` and
``kd_active`` at every evaluation step (timestamps = run start + train + eval seconds);
``switch_off_epoch`` / ``switch_off_step``; artifact ``spec.json``. MLflow run status:
FINISHED for complete runs, FAILED for diverged / failed ones, RUNNING for runs still going.

Summary (what MLflow cannot compute from single runs): on each arm's parent run the metrics
``speedup/<unit>/thr<threshold>/{point,ci_low,ci_high}`` and ``p_sooner/...``; and one
suite-level run (``w2s.kind = summary``) with ``speedup/<arm>/<unit>/thr<t>/...`` for every
arm, tag ``w2s.health`` (PASS / FAIL / none) and the report files (summary.csv, report.md,
index.html) as artifacts.

URI: any MLflow tracking URI; a plain path (default ``mlruns``) is MLflow's local file store.
MLflow 3 keeps that store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``; the export sets that variable while it writes to a file
store (read the store back with the same variable set, or use ``sqlite:///mlflow.db``).
An export replaces the runs of the same suite it wrote before (it is a regeneration).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_URI = "mlruns"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
CLOCKS = ("epoch", "train_wall_s", "eval_wall_s", "flops", "samples")
STATUS = {"complete": "FINISHED", "diverged": "FAILED", "failed": "FAILED"}


def tracking_uri(uri: str | None) -> str:
    """A plain path -> file:// URI of the absolute path; anything with a scheme unchanged."""
    uri = uri or DEFAULT_URI
    scheme = urlparse(uri).scheme
    if scheme and len(scheme) > 1:  # (a one-letter scheme is a Windows drive)
        return uri
    return Path(uri).resolve().as_uri()


@contextlib.contextmanager
def allow_file_store(uri: str):
    """Set MLFLOW_ALLOW_FILE_STORE=true for the duration when uri is a file store."""
    if urlparse(uri).scheme != "file" or os.environ.get("MLFLOW_ALLOW_FILE_STORE"):
        yield  # not a file store, or the user decided already
        return
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def experiment_name(suite: str) -> str:
    return f"w2s-bench/{suite}"


def metric_key(*parts: object) -> str:
    # MLflow keys allow alphanumerics, _ - . space : /; "1e+06" -> "1e06".
    return "/".join(str(p) for p in parts).replace("+", "")


def thr_name(t: float) -> str:
    return f"thr{t:g}"


def _start_unix(started: object) -> float:
    try:
        return _dt.datetime.fromisoformat(str(started).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _chunks(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def export_mlflow(an, uri: str | None = None, *, report_dir: Path | None = None) -> str:
    """Log every run of a SuiteAnalysis and its summary; returns the experiment id."""
    uri = tracking_uri(uri)
    with allow_file_store(uri):
        return _export(an, uri, report_dir)


def _export(an, uri: str, report_dir: Path | None) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    su = an.suite
    name = experiment_name(su.name)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    # Regeneration: drop what an earlier export of this suite wrote.
    for old in client.search_runs([exp_id], filter_string=f"tags.`w2s.suite` = '{su.name}'"):
        client.delete_run(old.info.run_id)

    def log(run_id: str, metrics=(), params=(), tags=()):
        for ch in _chunks(list(metrics), 1000):
            client.log_batch(run_id, metrics=ch)
        for ch in _chunks(list(params), 100):
            client.log_batch(run_id, params=ch)
        for ch in _chunks(list(tags), 100):
            client.log_batch(run_id, tags=ch)

    arms = [a for a in su.arms if a in set(su.runs["arm"])]
    parents = {}
    for arm in arms:
        p = client.create_run(
            exp_id,
            run_name=arm,
            tags={"w2s.suite": su.name, "w2s.arm": arm, "w2s.kind": "arm"},
        )
        parents[arm] = p.info.run_id
    ev_by_run = {rid: g for rid, g in su.evals.groupby("run_id", observed=True, sort=False)}
    for r in su.runs.itertuples(index=False):
        _log_run(client, log, exp_id, an, r, parents[r.arm], ev_by_run.get(r.run_id))
    _log_summary(client, log, exp_id, an, arms, parents, report_dir)
    return exp_id


def _run_metrics(rows, t0: float) -> tuple[list, int]:
    """(Metric list, last timestamp in ms) of one run's evaluation rows."""
    from mlflow.entities import Metric

    metrics = []
    last_ms = int(t0 * 1000)
    if rows is None or not len(rows):
        return metrics, last_ms
    rows = rows.sort_values(["step", "epoch"], kind="stable")
    seen_steps = set()
    for row in rows.itertuples(index=False):
        ts = int(1000 * (t0 + _nz(row.train_wall_s) + _nz(row.eval_wall_s)))
        last_ms = max(last_ms, ts)
        step = int(row.step)
        if _finite(row.value):
            metrics.append(Metric(metric_key(row.split, row.metric), float(row.value), ts, step))
        if step in seen_steps:
            continue
        seen_steps.add(step)
        for c in CLOCKS:
            v = getattr(row, c)
            if _finite(v):
                metrics.append(Metric(metric_key("clock", c), float(v), ts, step))
        if row.kd_active is not None and not (
            isinstance(row.kd_active, float) and math.isnan(row.kd_active)
        ):
            metrics.append(Metric("kd_active", float(bool(row.kd_active)), ts, step))
    return metrics, last_ms


def _log_run(client, log, exp_id: str, an, r, parent: str, rows) -> None:
    """One harness run: tags, the spec as params and artifact, its curves, switch-off."""
    from mlflow.entities import Metric, Param, RunTag

    from benchmark.export import flatten

    su = an.suite
    t0 = _start_unix(r.started)
    tags = {
        "mlflow.parentRunId": parent,
        "w2s.suite": su.name,
        "w2s.arm": r.arm,
        "w2s.kind": "run",
        "w2s.run_id": r.run_id,
        "w2s.seed": str(r.seed),
        "w2s.status": str(r.status),
        "w2s.git_sha": str(r.git_sha),
    }
    run = client.create_run(
        exp_id,
        run_name=f"{r.arm}-seed{r.seed}",
        start_time=int(t0 * 1000) if t0 else None,
        tags=tags,
    )
    rid = run.info.run_id
    spec = su.specs.get(r.run_id, {})
    params = [
        Param(k[:250], v if len(v) <= MAX_PARAM_CHARS else v[: MAX_PARAM_CHARS - 3] + "...")
        for k, v in flatten(spec).items()
    ]
    metrics, last_ms = _run_metrics(rows, t0)
    extra_tags = []
    if _finite(r.switch_epoch):
        step = int(r.switch_step) if _finite(r.switch_step) else 0
        metrics.append(Metric("switch_off_epoch", float(r.switch_epoch), last_ms, step))
        metrics.append(Metric("switch_off_step", float(step), last_ms, step))
        ev = su.events[(su.events["run_id"] == r.run_id) & (su.events["event"] == "switch_off")]
        if len(ev):
            e = {k: v for k, v in ev.iloc[0].to_dict().items() if _json_ok(v)}
            extra_tags.append(RunTag("w2s.switch_off", json.dumps(e, default=str)[:5000]))
    log(rid, metrics=metrics, params=params, tags=extra_tags)
    client.log_text(rid, json.dumps(spec, indent=2, sort_keys=True), "spec.json")
    status = STATUS.get(str(r.status))
    if status:
        client.set_terminated(rid, status=status, end_time=max(last_ms, int(t0 * 1000)))


def _log_summary(client, log, exp_id: str, an, arms, parents, report_dir) -> None:
    """The seed-grouped speedups on each arm's parent run and in one suite-level run."""
    from mlflow.entities import Metric

    su = an.suite
    now_ms = int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)
    summ_metrics = []
    for arm in arms:
        s = an.summary[an.summary["arm"] == arm]
        ms = []
        for r in s.itertuples(index=False):
            for stat in ("point", "ci_low", "ci_high", "p_sooner"):
                v = getattr(r, stat)
                if _finite(v):
                    thr = thr_name(r.threshold)
                    ms.append(Metric(metric_key("speedup", r.unit, thr, stat), float(v), now_ms, 0))
                    summ_metrics.append(
                        Metric(metric_key("speedup", arm, r.unit, thr, stat), float(v), now_ms, 0)
                    )
        log(parents[arm], metrics=ms)
        client.set_terminated(parents[arm], status="FINISHED")
    health = "none" if an.health is None else an.health.status
    srun = client.create_run(
        exp_id,
        run_name="summary",
        tags={
            "w2s.suite": su.name,
            "w2s.kind": "summary",
            "w2s.health": health,
            "w2s.headline_unit": an.unit,
            "w2s.bootstrap": f"{an.options.ci_method}, {an.options.reps} resamples, "
            f"seed {an.options.seed}",
        },
    )
    log(srun.info.run_id, metrics=summ_metrics)
    if an.health is not None:
        client.set_tag(srun.info.run_id, "w2s.health_line", an.health.headline()[:5000])
    if report_dir is not None:
        for f in ("summary.csv", "report.md", "index.html"):
            if (Path(report_dir) / f).is_file():
                client.log_artifact(srun.info.run_id, str(Path(report_dir) / f))
    client.set_terminated(srun.info.run_id, status="FINISHED")


def _nz(v: object) -> float:
    return float(v) if _finite(v) else 0.0


def _json_ok(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))
