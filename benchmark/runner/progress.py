"""Rich progress bars: one for the suite, one for the run in flight (epoch, current
metric, KD on/off). Updated every few steps so the hot loop stays cheap."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SuiteProgress:
    def __init__(self, console: Console | None = None, every: int = 5):
        self.console = console or Console(stderr=True)
        self.every = every
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, transient=False)
        self.suite_task = None
        self.run_task = None
        self.label = None
        self.info = ""

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def start_suite(self, n: int) -> None:
        self.suite_task = self.bar.add_task("suite", total=n, info="")

    def item_done(self, item, status: str) -> None:
        self.bar.advance(self.suite_task)
        if self.run_task is not None:
            self.bar.remove_task(self.run_task)
            self.run_task = None
            self.label = None

    def step_hook(self, label: str):
        def hook(loop):
            if self.label != label or self.run_task is None:
                if self.run_task is not None:
                    self.bar.remove_task(self.run_task)
                self.label = label
                self.info = ""
                self.run_task = self.bar.add_task(label, total=loop.stop_step, info="")
            if loop.clock.step % self.every == 0 or loop.clock.step == loop.stop_step:
                kd = "KD on " if loop.kd_active else ("KD off" if loop.switch else "")
                self.bar.update(self.run_task, completed=loop.clock.step,
                                info=f"ep {loop.epoch():.2f} {self.info} {kd}")
        return hook

    def eval_done(self, loop, rows) -> None:
        v = next((r["value"] for r in rows if r["split"] == "test" and r["metric"] == loop.metric), None)
        if v is not None:
            self.info = f"{loop.metric} {v:.2f}"

    def log(self, msg: str) -> None:
        self.bar.console.print(msg)
