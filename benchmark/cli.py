"""The `w2s-bench` command line. Thin: every command parses options and calls the package.

Heavy libraries (torch, timm, ...) are imported inside commands, so `--help` and
`validate` stay fast (DESIGN.md convention 7).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

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

    return wrapper


def _results_dir(results_dir: str | None) -> Path:
    return Path(results_dir or os.environ.get("W2S_RESULTS") or "results")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="w2s-bench")
def main():
    """w2s-bench: does a weak teacher, switched off once surpassed, get a strong student to a
    pre-registered quality threshold sooner? Paired runs, every evaluation on disk, honest
    statistics."""


@main.command()
@click.argument("suite_path", type=click.Path(dir_okay=False))
@click.option("--data-root", help="Folder holding the datasets (default: $W2S_DATA_ROOT, then ./data).")
def validate(suite_path, data_root):
    """Check a suite and print every problem at once (exit 2 if any)."""
    from .errors import SuiteError
    from .suite import load_suite, run_specs

    try:
        suite = load_suite(suite_path, data_root=data_root)
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
@friendly
def run(suite_path, data_root, results_dir, new_results, arms, seeds, device, threads):
    """Run a suite: teachers, then every arm x seed; complete runs are skipped, killed runs resume."""
    from rich.console import Console

    from .runner.execute import run_suite
    from .runner.progress import SuiteProgress
    from .suite import load_suite

    suite = load_suite(suite_path, data_root=data_root)
    _check_selection(suite, arms, seeds)
    rdir = _results_dir(results_dir)
    if new_results:
        rdir = rdir / new_results
    console = Console(stderr=True)
    console.print(f"suite [bold]{suite.name}[/] -> {rdir / suite.name}")
    with SuiteProgress(console) as prog:
        out = run_suite(suite, rdir, arms=list(arms) or None, seeds=list(seeds) or None, device=device,
                        threads=threads, progress=prog, log=prog.log)
    bad = {k: v for k, v in out.items() if v not in ("complete", "diverged")}
    done = sum(v == "complete" for v in out.values())
    console.print(f"{done}/{len(out)} complete" + (f"; not complete: {bad}" if bad else ""))
    if bad:
        sys.exit(1)


def _check_selection(suite, arms, seeds):
    bad = [a for a in arms if a not in suite.cfg.arms]
    if bad:
        raise UserError(f"no arm {bad[0]!r} in suite {suite.name}; arms: {', '.join(suite.cfg.arms)}")
    bad = [s for s in seeds if s not in suite.cfg.seeds]
    if bad:
        raise UserError(f"seed {bad[0]} is not pre-registered in suite {suite.name}; seeds: {suite.cfg.seeds}")


@main.command()
@click.argument("suite_path", type=click.Path(dir_okay=False))
@click.option("--data-root")
@click.option("--results-dir")
@friendly
def plan(suite_path, data_root, results_dir):
    """Show the runs a suite expands to, their ids, dependencies and status."""
    from rich.console import Console
    from rich.table import Table

    from .runner.execute import plan as make_plan
    from .suite import load_suite

    suite = load_suite(suite_path, data_root=data_root, check_paths=False)
    items = make_plan(suite, _results_dir(results_dir))
    t = Table(title=f"{suite.name}: {len(items)} items (teachers first)")
    for col in ("kind", "id", "arm", "seed", "depends on", "status"):
        t.add_column(col)
    for it in items:
        t.add_row(it.kind, it.id, it.arm or "", "" if it.seed is None else str(it.seed), ", ".join(it.deps),
                  it.status)
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
    for col in ("suite", "kind", "id", "status", "resumed"):
        t.add_column(col)
    n = 0
    for m in sorted(root.glob("**/manifest.json")):
        d = m.parent
        kind = d.parent.name.rstrip("s")
        suite = d.parent.parent.name
        try:
            man = read_json(m)
        except ValueError:
            man = {"status": "unreadable"}
        t.add_row(suite, kind, d.name, str(man.get("status")), str(man.get("resumed", 0)))
        n += 1
    if not n:
        raise UserError(f"no runs under {root}")
    Console().print(t)


@main.command(name="ls")
def ls_():
    """List the registered datasets, models and losses."""
    from .registry import DATASETS, LOSSES, MODELS

    for title, reg in (("datasets", DATASETS), ("models", MODELS), ("losses", LOSSES)):
        click.secho(title, bold=True)
        for e in reg.entries():
            click.echo(f"  {e.name:<18} [{e.meta.get('task', '')}] {e.help}")
    click.echo("  (models: also any timm model as timm:<name>, e.g. timm:resnet50)")


@main.command()
@click.argument("results_dirs", nargs=-1)
@click.option("--out", default="reports", show_default=True, help="Output folder (reports/<suite>/...).")
@click.option("--unit", type=click.Choice(["epochs", "steps", "seconds", "flops"]), help="Headline unit.")
@click.option("--threshold", "thresholds", multiple=True, type=float, help="Extra threshold (labelled post hoc).")
@click.option("--reps", default=10000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap RNG seed.")
@click.option("--interpolate", is_flag=True, help="Interpolate linearly between bracketing evaluations.")
@click.option("--sustained", default=1, show_default=True, help="Require K consecutive evaluations past the threshold.")
@click.option("--ci", "ci_method", type=click.Choice(["percentile", "bca"]), default="percentile", show_default=True)
@friendly
def report(results_dirs, out, unit, thresholds, reps, seed, interpolate, sustained, ci_method):
    """Speedup tables with paired bootstrap CIs, censoring, plots -> reports/<suite>/."""
    from .analysis.load import ResultsError
    from .analysis.report import write_report

    dirs = [Path(d) for d in results_dirs] or [_results_dir(None)]
    for d in dirs:
        if not d.exists():
            raise UserError(f"no results directory {d}")
    try:
        paths = write_report(dirs, Path(out), unit=unit, thresholds=list(thresholds) or None, reps=reps, seed=seed,
                             interpolate=interpolate, sustained=sustained, ci_method=ci_method)
    except ResultsError as e:
        raise UserError(str(e)) from None
    if not paths:
        raise UserError(f"no suites with runs under {', '.join(map(str, dirs))}")
    for p in paths:
        click.echo(f"wrote {p}")


if __name__ == "__main__":
    main()
