"""The `w2s-bench` command line. Thin: every command parses options and calls the package.

Heavy libraries (torch, timm, ...) are imported inside commands, so `--help` and
`validate` stay fast (DESIGN.md convention 7).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

import click

from .analysis.options import CI_METHODS as _CI_METHODS
from .analysis.options import DEFAULTS as _REPORT
from .analysis.options import UNITS as _UNITS
from .errors import UserError


def friendly(fn):
    """User mistakes print a clear message and exit non-zero, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except UserError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.secho("interrupted: completed evaluations and checkpoints are on disk; "
                        "run the same command again to resume", fg="yellow", err=True)
            sys.exit(130)
        except OSError as e:
            import errno

            if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            where = f" writing {e.filename}" if e.filename else ""
            click.secho(f"error{where}: {e.strerror or e}. Files already written (evaluations, the last "
                        "checkpoint) are intact; fix the problem and run the same command again to "
                        "resume.", fg="red", err=True)
            sys.exit(2)

    return wrapper


def _results_dir(results_dir: str | None) -> Path:
    return Path(results_dir or os.environ.get("W2S_RESULTS") or "results")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="w2s-bench")
def main():
    """w2s-bench: does a weak teacher, switched off once surpassed, get a strong student to a
    pre-registered quality threshold sooner? Paired runs, every evaluation on disk, honest
    statistics."""
    import warnings

    plain = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if getattr(category, "__module__", "").startswith("benchmark."):  # ours: a message
            click.secho(f"warning: {message}", fg="yellow", err=True)
        else:
            plain(message, category, filename, lineno, file, line)

    warnings.showwarning = show


@main.command()
@click.argument("suite_path", type=click.Path(dir_okay=False))
@click.option("--data-root", help="Folder holding the datasets (default: $W2S_DATA_ROOT, then ./data).")
@click.option("--deep", is_flag=True, help="Also import torch/timm to check model names and constructor "
              "arguments (what `run` checks before writing the lock).")
def validate(suite_path, data_root, deep):
    """Check a suite and print every problem at once (exit 2 if any)."""
    from .errors import SuiteError
    from .suite import load_suite, run_specs

    try:
        suite = load_suite(suite_path, data_root=data_root)
        if deep:
            from .runner.deep_check import check_deep

            check_deep(suite)
    except SuiteError as e:
        click.secho(str(e), fg="red", err=True)
        sys.exit(2)
    n = len(run_specs(suite))
    click.echo(f"{suite_path}: ok — suite {suite.name!r}, task {suite.cfg.task}, "
               f"{len(suite.cfg.arms)} arms x {len(suite.cfg.seeds)} seeds = {n} runs")


@main.command()
@click.argument("suite_path", type=click.Path(dir_okay=False))
@click.option("--data-root", help="Folder holding the datasets (default: $W2S_DATA_ROOT, then ./data).")
@click.option("--results-dir", help="Where results go (default: ./results).")
@click.option("--new-results", help="Write to results/<NAME> instead (a protocol that differs from the lock).")
@click.option("--arm", "arms", multiple=True, help="Only these arms (repeatable).")
@click.option("--seed", "seeds", multiple=True, type=int, help="Only these seeds (repeatable).")
@click.option("--device", help="cpu, cuda, cuda:N (overrides the suite).")
@click.option("--threads", type=int, help="torch CPU threads (overrides the suite; recorded).")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="local: this machine; slurm: one job per run through submitit.")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="local: runs in parallel worker processes (one device each with --gpus).")
@click.option("--gpus", help="local: GPU ids for the workers, e.g. 0,1 (one worker per GPU).")
@click.option("--partition", help="slurm: partition.")
@click.option("--time", "time_min", type=int, default=240, show_default=True,
              help="slurm: minutes per job; a run that times out is requeued and resumes.")
@click.option("--gpus-per-run", type=int, default=1, show_default=True, help="slurm: GPUs per job (0 for CPU).")
@click.option("--cpus-per-run", type=int, help="slurm: CPUs per job (default: the suite's threads).")
@click.option("--mem-gb", type=int, help="slurm: memory per job.")
@click.option("--array-parallelism", type=int, default=32, show_default=True,
              help="slurm: at most this many jobs of an array at once.")
@click.option("--max-requeues", type=int, default=3, show_default=True,
              help="slurm: requeues after time-out/preemption before giving up.")
@click.option("--slurm-cluster", type=click.Choice(["slurm", "local", "debug"]), hidden=True,
              help="submitit cluster (tests use local).")
@click.option("--nproc-per-node", type=int, default=1, show_default=True,
              help="Train each run across N processes with DDP via torchrun (one GPU each; gloo on CPU).")
@friendly
def run(suite_path, data_root, results_dir, new_results, arms, seeds, device, threads, executor, jobs, gpus,
        partition, time_min, gpus_per_run, cpus_per_run, mem_gb, array_parallelism, max_requeues,
        slurm_cluster, nproc_per_node):
    """Run a suite: teachers, then every arm x seed; complete runs are skipped, killed runs resume."""
    from rich.console import Console

    from .runner.executors import SlurmOptions
    from .runner.launch import RunOptions, launch

    slurm = SlurmOptions(partition=partition, time_min=time_min, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run,
                         mem_gb=mem_gb, array_parallelism=array_parallelism, max_requeues=max_requeues,
                         cluster=slurm_cluster)
    opts = RunOptions(suite_path, _results_dir(results_dir), data_root=data_root, new_results=new_results,
                      arms=list(arms), seeds=list(seeds), device=device, threads=threads, executor=executor,
                      jobs=jobs, gpus=gpus, nproc_per_node=nproc_per_node, slurm=slurm)
    console = Console(stderr=True)
    outcome = launch(opts, console=console)
    if outcome.exit_code is not None:  # this process relaunched itself under torchrun
        sys.exit(outcome.exit_code)
    if outcome.quiet:  # a DDP rank other than 0: rank 0 reports
        return
    for line in closing_lines(outcome.before, outcome.statuses, outcome.sdir):
        console.print(line)
    if outcome.not_done:
        sys.exit(1)


def closing_lines(before: list, out: dict[str, str], sdir: Path) -> list[str]:
    """What a finished `run` prints: how many items are complete, how many of them were
    complete before this command (skipped, not trained again), what is not, and what to do
    next (the report command and where it writes)."""
    from .analysis.report import report_subdir

    bad = {k: v for k, v in out.items() if v not in ("complete", "diverged")}
    done = sum(v == "complete" for v in out.values())
    skipped = [it for it in before if it.status in ("complete", "diverged") and it.id in out]
    runs = sum(it.kind == "run" for it in skipped)
    line = f"{done}/{len(out)} complete"
    if skipped:
        line += (f" ({len(skipped)} already were and were skipped: {runs} run(s), "
                 f"{len(skipped) - runs} teacher(s))")
    lines = [line + (f"; not complete: {bad}" if bad else "")]
    if done:
        dest = Path("reports") / report_subdir(sdir, _results_dir(None)) / sdir.name
        lines.append(f"next: w2s-bench report {sdir}   (writes {dest}/report.md and index.html)")
    return lines


@main.command()
@click.argument("suite_path", type=click.Path(dir_okay=False))
@click.option("--data-root", help="Folder holding the datasets (default: $W2S_DATA_ROOT, then ./data); "
              "plan does not need the data, only the suite's settings.")
@click.option("--results-dir", help="Where results are looked up for each run's status (default: ./results).")
@friendly
def plan(suite_path, data_root, results_dir):
    """Show the runs a suite expands to, their ids, dependencies and status."""
    from rich.console import Console
    from rich.table import Table

    from .runner.execute import plan as make_plan
    from .runner.plan import next_attempt, suite_dir
    from .suite import load_suite

    suite = load_suite(suite_path, data_root=data_root, check_paths=False)
    items = make_plan(suite, _results_dir(results_dir))
    sdir = suite_dir(_results_dir(results_dir), suite)
    t = Table(title=f"{suite.name}: {len(items)} items (teachers first)")
    for col in ("kind", "id", "arm", "seed", "depends on", "status"):
        t.add_column(col, overflow="fold")
    for it in items:
        nxt = next_attempt(sdir / ("teachers" if it.kind == "teacher" else "runs") / it.id, it.status)
        t.add_row(it.kind, it.id, it.arm or "", "" if it.seed is None else str(it.seed), ", ".join(it.deps),
                  f"{it.status}: {nxt}" if nxt else it.status)
    Console().print(t)


@main.command()
@click.argument("results", required=False)
@friendly
def status(results):
    """Status of every run under a results directory (default: ./results)."""
    from rich.console import Console
    from rich.table import Table

    from .runner.store import read_json

    root = _results_dir(results)
    if not root.exists():
        raise UserError(f"no results directory {root}")
    t = Table(title=str(root))
    for col in ("suite", "kind", "id", "status", "resumed", "reason"):
        t.add_column(col, overflow="fold")
    n = 0
    for m in sorted(root.glob("**/manifest.json")):
        try:
            man = read_json(m)
        except ValueError:
            man = {"status": "unreadable"}
        row = status_row(root, m, man)
        if row is None:
            continue
        t.add_row(*row)
        n += 1
    if not n:
        raise UserError(f"no runs under {root}")
    Console().print(t)


def status_row(root: Path, manifest: Path, man: dict) -> list[str] | None:
    """One `status` row (suite, kind, id, status, resumed, reason) for a manifest under root.

    suite: the path from root to the suite folder (results/<NAME>/<suite> shows NAME/<suite>);
    kind: run, teacher, or 'teacher (superseded build N)' for an earlier build's record;
    status: the manifest's, except that a run stopped by Ctrl-C / SIGTERM (failed with the
    'interrupted' reason) reads 'interrupted', and a 'running' one whose process is gone on
    this host reads 'stopped'; reason: the manifest's reason, first line."""
    from .runner.plan import RESTARTS, next_attempt
    from .runner.provenance import host

    parts = manifest.relative_to(root).parts[:-1]
    cut = max((i for i, p in enumerate(parts) if p in ("runs", "teachers")), default=None)
    if cut is None or cut + 1 >= len(parts):
        return None  # not a run or teacher record (e.g. a stray manifest.json)
    suite = "/".join(parts[:cut]) or root.resolve().name
    kind = "run" if parts[cut] == "runs" else "teacher"
    ident = parts[cut + 1]
    if kind == "teacher" and len(parts) > cut + 3 and parts[cut + 2] == "superseded":
        kind = f"teacher (superseded build {parts[cut + 3]})"
    status = str(man.get("status"))
    reason = str(man.get("reason") or "").strip().splitlines()
    reason = reason[0][:160] if reason else ""
    if status == "failed" and reason.startswith("interrupted"):
        status = "interrupted"
    elif status == "running" and man.get("host") == host() and man.get("pid"):
        try:
            os.kill(int(man["pid"]), 0)
        except ProcessLookupError:
            status = "stopped"
            reason = (f"process {man['pid']} is gone (killed?) without marking the run; rerun the "
                      "suite to resume from the last checkpoint")
        except (PermissionError, ValueError, OverflowError):
            pass  # a process of another user, or an odd pid: leave the status as written
    if kind in ("run", "teacher") and next_attempt(manifest.parent, str(man.get("status"))) == RESTARTS:
        # its rows travelled without its checkpoint (a fresh clone): it cannot resume
        reason = "; ".join(x for x in (re.sub(r"; rerun the suite to resume.*$", "", reason),
                                       "no checkpoint here: rerunning the suite restarts it from scratch") if x)
    return [suite, kind, ident, status, str(man.get("resumed", 0)), reason]


@main.command(name="ls")
@friendly
def ls_():
    """List the registered datasets, models, losses and switch rules, with the plugins
    (entry points in the `w2s_bench.plugins` group) that added any. Exit 2 if a plugin failed."""
    from .registry import BUILTIN, DATASETS, LOSSES, MODELS, SWITCHES, load_plugins, plugin_problems

    for title, reg in (("datasets", DATASETS), ("models", MODELS), ("losses", LOSSES), ("switch rules", SWITCHES)):
        click.secho(title, bold=True)
        for e in reg.entries():
            task = e.meta.get("task", "")
            task = "/".join(task) if isinstance(task, (tuple, list)) else task
            origin = f" (from {e.origin})" if e.origin != BUILTIN else ""
            try:
                model = e.options_model()
                opts = f" [options: {', '.join(model.model_fields) or 'none'}]" if model is not None else ""
            except Exception as err:  # noqa: BLE001 - a plugin's broken declaration is listed, not raised
                opts = f" [options model does not load: {type(err).__name__}: {err}]"
            click.echo(f"  {e.name:<28} {f'[{task}] ' if task else ''}{e.help}{origin}{opts}")
        if reg is MODELS:
            click.echo("  (models: also any timm model as timm:<name>, e.g. timm:resnet50)")
    plugins = load_plugins()
    click.secho("plugins", bold=True)
    for p in plugins:
        what = ", ".join(p.names) if not p.error else "failed"
        click.echo(f"  {p.name:<28} {p.origin} ({p.value}): {what}")
    if not plugins:
        click.echo("  none (a package adds components through an entry point in the w2s_bench.plugins group)")
    if problems := plugin_problems():
        raise UserError("\n".join(problems))


@main.command()
@click.argument("dataset")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The pack file to write.")
@click.option("--data-root", help="Folder holding the datasets (default: $W2S_DATA_ROOT, then ./data).")
@friendly
def pack(dataset, out, data_root):
    """Pack DATASET (cifar10, cifar100 or an ImageFolder folder with train/ and test/) into one
    file of encoded images + labels + index, read by the `pack` dataset (data.kwargs.path)."""
    from .data.pack import write_pack

    meta = write_pack(dataset, Path(out), data_root)
    size = Path(out).stat().st_size
    click.echo(f"wrote {out}: {meta['n_train']} train + {meta['n_test']} test images from {meta['source']}, "
               f"{size / 2**20:.1f} MiB")


@main.command()
@click.argument("results_dirs", nargs=-1)
@click.option("--out", default="reports", show_default=True, help="Output folder (reports/<suite>/...).")
@click.option("--unit", type=click.Choice(_UNITS), help="Headline unit (default: epochs).")
@click.option("--threshold", "thresholds", multiple=True, type=float, help="Extra threshold (labelled post hoc).")
@click.option("--reps", default=_REPORT.reps, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=_REPORT.seed, show_default=True, help="Bootstrap RNG seed.")
@click.option("--interpolate", is_flag=True, help="Interpolate linearly between bracketing evaluations.")
@click.option("--sustained", default=_REPORT.sustained, show_default=True,
              help="Require K consecutive evaluations past the threshold.")
@click.option("--ci-method", "ci_method", type=click.Choice(_CI_METHODS), default=_REPORT.ci_method,
              show_default=True, help="interval for the speedup; fieller holds its level from 4 seeds (docs/coverage.md)")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="Baseline reference JSON for the health check (default: the one the suite's lock records).")
@click.option("--health-alpha", default=_REPORT.health_alpha, show_default=True,
              help="Family level of the baseline health check.")
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False),
              help="Also write TensorBoard event files here (needs the trackers extra).")
@click.option("--mlflow-uri", is_flag=False, flag_value="mlruns",
              help="Also log to MLflow at this tracking URI; alone: the local file store ./mlruns.")
@friendly
def report(results_dirs, out, tensorboard_dir, mlflow_uri, **options):
    """Speedup tables with paired bootstrap CIs, censoring, plots -> reports/<suite>/ (report.md, index.html).

    With no RESULTS_DIRS: every suite under ./results ($W2S_RESULTS) whose report is missing or
    older than its finished runs; up-to-date reports are left as they are (name a suite to
    regenerate it). A suite under results/<NAME>/ (run --new-results NAME) reports to
    reports/<NAME>/<suite>/. Exit status 3 when a baseline health check fails (the reports
    are still written)."""
    import json

    from .analysis.load import ResultsError
    from .analysis.options import ReportOptions
    from .analysis.report import write_report

    for mod, opt, extra in (("tensorboard", tensorboard_dir, "tensorboard"), ("mlflow", mlflow_uri, "mlflow-skinny")):
        if opt is not None:
            try:
                __import__(mod)
            except ImportError:
                raise UserError(f"--{mod.replace('mlflow', 'mlflow-uri')} needs {extra}: "
                                "pip install 'w2s-bench[trackers]'") from None

    dirs = [Path(d) for d in results_dirs] or [_results_dir(None)]
    for d in dirs:
        if not d.exists():
            raise UserError(f"no results directory {d}")
    skipped = []

    def on_skip(suite_dir, report_dir, why):
        skipped.append(suite_dir)
        click.echo(f"up to date: {report_dir} ({why}); to regenerate it: w2s-bench report {suite_dir}")

    def export(an, md):  # trackers, when asked for (the analysis never imports them)
        if tensorboard_dir is not None:
            from .export.tensorboard import export_tensorboard

            export_tensorboard(an, Path(tensorboard_dir))
        if mlflow_uri is not None:
            from .export.mlflow import export_mlflow

            export_mlflow(an, mlflow_uri, report_dir=md.parent)

    try:
        # the options of the command are ReportOptions' fields, by name (a test checks it)
        opts = ReportOptions(**options)
        # no RESULTS named: never rewrite a report whose results have not changed (committed
        # reports stay as they are); a named suite is always written
        paths = write_report(dirs, Path(out), opts, results_root=_results_dir(None),
                             only_stale=not results_dirs, on_skip=on_skip, on_written=export)
    except ResultsError as e:
        raise UserError(str(e)) from None
    if not paths and not skipped:
        raise UserError(f"no suites with runs under {', '.join(map(str, dirs))}")
    failed = False
    colour = {"PASS": "green", "FAIL": "red"}
    for p in paths:
        click.echo(f"wrote {p} and {p.with_name('index.html')}")
        hj = p.with_name("health.json")
        if hj.is_file():
            health = json.loads(hj.read_text(encoding="utf-8"))
            failed |= health["status"] == "FAIL"  # NOT TESTED is said, not an error
            click.secho(health["headline"], fg=colour.get(health["status"], "yellow"), bold=True)
    if failed:
        sys.exit(3)


@main.group()
def reference():
    """Baseline references for the report's health check (suites/reference/<suite>.json)."""


@reference.command(name="build")
@click.argument("results_dir")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Reference JSON to write.")
@click.option("--arm", default="baseline", show_default=True, help="The arm whose complete runs are stored.")
@friendly
def reference_build(results_dir, out, arm):
    """Store, from the complete baseline runs of RESULTS_DIR (results/<suite>), the time to every
    pre-registered threshold and the final metric, for `report` to test new baselines against."""
    from .analysis.health import build_reference, write_reference
    from .analysis.load import ResultsError, find_suites, load_suite

    try:
        suites = find_suites([Path(results_dir)])
        if len(suites) != 1:
            raise UserError(f"{results_dir} holds {len(suites)} suites; name one results/<suite> directory")
        ref = build_reference(load_suite(suites[0]), arm=arm, source=str(suites[0]))
    except ResultsError as e:
        raise UserError(str(e)) from None
    write_reference(ref, Path(out))
    click.echo(f"wrote {out}: {ref['n_runs']} complete {arm} run(s) of suite {ref['suite']}, "
               f"thresholds {', '.join(f'{t:g}' for t in ref['thresholds'])}")


if __name__ == "__main__":
    main()
