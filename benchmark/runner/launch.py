"""What `w2s-bench run` does once its options are parsed: check them against the suite, pick
the executor (this process, N local workers, SLURM through submitit, or one run across
processes with DDP under torchrun) and run the plan. The command line only builds `RunOptions`,
calls `launch` and prints the `RunOutcome`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .executors import RunRequest, SlurmOptions, parse_gpus
from .plan import PlanItem

DONE = ("complete", "diverged")


@dataclass
class RunOptions:
    """The options of `w2s-bench run` (see its --help)."""

    suite_path: str
    results_dir: Path  # the results root; the suite's folder is <results_dir>[/<new_results>]/<suite>
    data_root: str | None = None
    new_results: str | None = None
    arms: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    device: str | None = None
    threads: int | None = None
    executor: str = "local"  # "local" | "slurm"
    jobs: int = 1
    gpus: str | None = None  # "0,1": local workers, one per GPU
    nproc_per_node: int = 1  # > 1: each run across N processes (DDP)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    @property
    def rdir(self) -> Path:
        return Path(self.results_dir) / self.new_results if self.new_results else Path(self.results_dir)

    def request(self) -> RunRequest:
        """The same run for a worker process, a SLURM job or a torchrun rank (absolute paths)."""
        return RunRequest(str(Path(self.suite_path).resolve()), str(self.rdir.resolve()), self.data_root,
                          list(self.arms), list(self.seeds), self.device, self.threads)


@dataclass
class RunOutcome:
    """What `launch` did: every planned item's status, the plan as it was before (what was
    complete already), and the suite's results folder. `exit_code`: set when this process only
    relaunched itself under torchrun (its status); `quiet`: a DDP rank other than 0, which
    reports nothing."""

    statuses: dict[str, str]
    before: list[PlanItem]
    sdir: Path
    exit_code: int | None = None
    quiet: bool = False

    @property
    def not_done(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses.items() if v not in DONE}


def check_options(suite, opts: RunOptions) -> None:
    """Usage errors, before anything runs or is written: unknown arms, seeds that were not
    pre-registered, and options that do not combine."""
    bad = [a for a in opts.arms if a not in suite.cfg.arms]
    if bad:
        raise UserError(f"no arm {bad[0]!r} in suite {suite.name}; arms: {', '.join(suite.cfg.arms)}")
    bad = [s for s in opts.seeds if s not in suite.cfg.seeds]
    if bad:
        raise UserError(f"seed {bad[0]} is not pre-registered in suite {suite.name}; seeds: {suite.cfg.seeds}")
    if opts.executor not in ("local", "slurm"):
        raise UserError(f"--executor is local or slurm, not {opts.executor!r}")
    parallel = opts.jobs != 1 or bool(opts.gpus)
    if opts.nproc_per_node > 1 and "WORLD_SIZE" not in os.environ and (opts.executor != "local" or parallel):
        raise UserError("--nproc-per-node runs one run at a time across processes; "
                        "it does not combine with --jobs/--gpus/--executor slurm")
    if opts.executor == "slurm" and parallel:
        raise UserError("--jobs/--gpus are for --executor local; with slurm each run is a job "
                        "(use --array-parallelism, --gpus-per-run)")
    parse_gpus(opts.gpus)  # its own usage error


def ddp_args(opts: RunOptions) -> list[str]:
    """The `w2s-bench` arguments every torchrun rank runs: the same run, without
    --nproc-per-node (a rank must not relaunch itself)."""
    args = opts.request().cli_args()
    if opts.device:
        args += ["--device", opts.device]
    return args


def launch(opts: RunOptions, *, console=None) -> RunOutcome:
    """Run the suite `opts` names with the executor the options pick; see RunOutcome."""
    from rich.console import Console

    from ..suite import load_suite
    from .plan import plan, suite_dir
    from .progress import busy_warning, machine_load

    suite = load_suite(opts.suite_path, data_root=opts.data_root)
    check_options(suite, opts)
    sdir = suite_dir(opts.rdir, suite)
    if opts.nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:
        from . import ddp

        return RunOutcome({}, [], sdir, exit_code=ddp.relaunch(ddp_args(opts), opts.nproc_per_node))
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        from . import ddp

        ddp.init()
        if not ddp.is_main():  # rank 0 reports; the others train silently
            return RunOutcome(_run_here(suite, opts, None, lambda *a, **k: None), [], sdir, quiet=True)
    term_is_interrupt()
    console = console or Console(stderr=True)
    console.print(f"suite [bold]{suite.name}[/] -> {sdir}")
    busy = busy_warning(machine_load(), opts.threads or suite.cfg.threads)
    if busy:
        console.print(f"[yellow]warning: {busy}[/]")
    # what is already done (skipped) and what is left: for the ETA and the closing lines
    before = plan(suite, opts.rdir, opts.arms or None, opts.seeds or None)
    if opts.executor == "slurm":
        from .executors import run_slurm

        out = run_slurm(opts.request(), opts.slurm, log=console.print)
    elif opts.jobs != 1 or opts.gpus:
        from .executors import run_local_parallel

        out = run_local_parallel(opts.request(), jobs=opts.jobs, gpus=parse_gpus(opts.gpus), log=console.print)
    else:
        from .progress import SuiteProgress

        with SuiteProgress(console, plan=before) as prog:
            out = _run_here(suite, opts, prog, prog.log)
    return RunOutcome(out, before, sdir)


def _run_here(suite, opts: RunOptions, progress, log) -> dict[str, str]:
    from .execute import run_suite

    return run_suite(suite, opts.rdir, arms=opts.arms or None, seeds=opts.seeds or None, device=opts.device,
                     threads=opts.threads, progress=progress, log=log)


def term_is_interrupt() -> None:
    """SIGTERM (kill, a scheduler's stop) ends a run like Ctrl-C: marked `failed` with a
    resumable message, lock released; rerunning resumes from the last checkpoint."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
