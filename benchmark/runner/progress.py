"""Rich progress bars: one for the suite, one for the run in flight (epoch, current
metric, KD on/off). Updated every few steps so the hot loop stays cheap.

The suite bar's ETA comes from the measured rate of finished work in this command: epochs
trained (teachers and runs alike, from each item's step counter) per wall second since the
suite started, applied to the epochs still to train (the plan's budgets; complete items count
nothing). rich's own estimate only sees the suite bar move when a whole item finishes, which
is too rare for it to ever show a time. Also here: the machine-load probe `run` uses to warn
that the CPUs are already busy, and to record the load in each manifest.
"""

from __future__ import annotations

import os
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def machine_load() -> dict | None:
    """{"loadavg_1m": 1-minute load average, "cpus": logical CPUs} now; None where the OS has
    no load average (os.getloadavg is Unix-only)."""
    try:
        one = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    return {"loadavg_1m": round(float(one), 2), "cpus": int(os.cpu_count() or 1)}


def busy_warning(load: dict | None, threads: int | None) -> str | None:
    """The warning `run` prints when the load average already exceeds the core count (the
    runnable processes outnumber the CPUs before this run adds its threads), else None."""
    if not load or load["loadavg_1m"] <= load["cpus"]:
        return None
    return (
        f"this machine is already busy: 1-minute load average {load['loadavg_1m']:.1f} on "
        f"{load['cpus']} CPU core(s), before this run adds {threads or 1} thread(s). Train "
        "seconds will be inflated and noisy (epochs, steps and FLOPs are not); the report marks "
        "speedups in seconds it cannot trust. The load is recorded in each run's manifest."
    )


def item_epochs(item) -> float:
    """Epochs an item of the plan trains when run from scratch (0 for a teacher loaded from a
    checkpoint); its share of the suite's work for the ETA."""
    spec = item.spec or {}
    if item.kind == "teacher":
        if spec.get("checkpoint"):
            return 0.0
        return float(spec.get("snapshot_epoch") or (spec.get("train") or {}).get("epochs") or 0.0)
    return float((spec.get("budget") or {}).get("epochs") or (spec.get("train") or {}).get("epochs") or 0.0)


def item_label(item) -> str:
    """The label the runner gives an item's step hook ('teacher <name>', '<arm> seed <seed>')."""
    if item.kind == "teacher":
        return f"teacher {(item.spec or {}).get('name', item.id)}"
    return f"{item.arm} seed {item.seed}"


def eta_seconds(done: float, left: float, elapsed: float) -> float | None:
    """Seconds to finish `left` units of work at the rate measured so far (`done` units in
    `elapsed` seconds): left * elapsed / done; None before any work is measured."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, left) * elapsed / done


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -:--:--"
    s = int(round(seconds))
    return f"ETA {s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Remaining(TimeRemainingColumn):
    """The suite row shows the ETA computed from finished work; other rows rich's estimate."""

    def render(self, task):
        eta = task.fields.get("eta")
        if eta is not None:
            return Text(eta, style="progress.remaining")
        return super().render(task)


class SuiteProgress:
    def __init__(self, console: Console | None = None, every: int = 5, plan: list | None = None,
                 clock=time.monotonic):
        self.console = console or Console(stderr=True)
        self.every = every
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), _Remaining(),
                            console=self.console, transient=False)
        self.suite_task = None
        self.run_task = None
        self.label = None
        self.info = ""
        self.clock = clock
        # epochs of work per pending item, by the label its step hook carries
        pending = [it for it in (plan or []) if it.status not in ("complete", "diverged")]
        self.budget = {item_label(it): item_epochs(it) for it in pending}
        self.ids = {it.id: item_label(it) for it in pending}
        self.finished: set[str] = set()
        self.done = 0.0  # epochs trained by this command
        self.current = 0.0  # epochs the item in flight has trained so far (of its budget)
        self.start_frac: dict[str, float] = {}  # where a resumed item started
        self.t0 = None
        self.idle = plan is not None and not pending  # everything already complete

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    # -- the ETA
    def work_left(self) -> float:
        """Epochs still to train: every unfinished item's budget, less what the one in flight
        has trained."""
        left = sum(b for lab, b in self.budget.items() if lab not in self.finished)
        return max(0.0, left - self.current)

    def eta(self) -> float | None:
        if self.t0 is None:
            return None
        return eta_seconds(self.done, self.work_left(), self.clock() - self.t0)

    def _suite_info(self) -> None:
        if self.suite_task is None:
            return
        total = sum(self.budget.values())
        left = self.work_left()
        info = f"{total - left:.1f}/{total:.1f} epochs" if total else ""
        self.bar.update(self.suite_task, info=info, eta=fmt_eta(self.eta()) if total else None)

    # -- the hooks run_suite and the run recorder call
    def start_suite(self, n: int) -> None:
        self.t0 = self.clock()
        self.suite_task = self.bar.add_task("suite", total=n, info="", eta=None)
        # building an item's data can take a while the first time (synthetic data is drawn,
        # image files are decoded) and prints nothing else: say so once
        cache = os.environ.get("W2S_CACHE") or "~/.cache/w2s-bench"
        if not self.idle:
            self.log(f"preparing data and models (the first time, datasets are generated or "
                     f"decoded, then cached in {cache}) ...")
        self._suite_info()

    def item_done(self, item, status: str) -> None:
        self.bar.advance(self.suite_task)
        label = self.ids.get(getattr(item, "id", None))
        if label is not None and label not in self.finished:
            self.finished.add(label)
            if label == self.label:
                self.current = 0.0
        if self.run_task is not None:
            self.bar.remove_task(self.run_task)
            self.run_task = None
            self.label = None
        self._suite_info()

    def step_hook(self, label: str):
        def hook(loop):
            if self.label != label or self.run_task is None:
                if self.run_task is not None:
                    self.bar.remove_task(self.run_task)
                self.label = label
                self.info = ""
                self.run_task = self.bar.add_task(label, total=loop.stop_step, info="", eta=None)
                # the hook runs after each step, so the item started one step earlier (part way
                # for a resumed item: only what this command trains is measured)
                self.start_frac[label] = (loop.clock.step - 1) / max(1, loop.stop_step)
                self.current = 0.0
            if loop.clock.step % self.every == 0 or loop.clock.step == loop.stop_step:
                kd = "KD on " if loop.kd_active else ("KD off" if loop.switch else "")
                self.bar.update(self.run_task, completed=loop.clock.step,
                                info=f"ep {loop.epoch():.2f} {self.info} {kd}")
                frac = loop.clock.step / max(1, loop.stop_step)
                budget = self.budget.get(label, 0.0)
                new = budget * frac
                self.done += max(0.0, new - max(self.current, budget * self.start_frac[label]))
                self.current = new
                self._suite_info()
        return hook

    def eval_done(self, loop, rows) -> None:
        v = next((r["value"] for r in rows if r["split"] == "test" and r["metric"] == loop.metric), None)
        if v is not None:
            self.info = f"{loop.metric} {v:.2f}"

    def log(self, msg: str) -> None:
        self.bar.console.print(msg)
