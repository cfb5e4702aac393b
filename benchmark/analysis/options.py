"""The report's options: one dataclass, the single source of their names, defaults and
choices (the `w2s-bench report` command declares its options from it, and a test checks
that the two agree).

Standard library only, so the command line can import it without loading pandas.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, fields
from pathlib import Path

# Time units of a crossing (the keys of crossing.UNITS, which a test checks) and intervals of
# a speedup (stats.py imports them from here): the command line's choices are these tuples.
UNITS = ("epochs", "steps", "seconds", "seconds_teacher_train", "flops", "flops_teacher_train")
CI_METHODS = ("fieller", "percentile", "bca")
DEFAULT_CI_METHOD = "fieller"


@dataclass(frozen=True)
class ReportOptions:
    """How a suite is analysed (everything that changes a number of the report).

    unit:         headline unit (None: epochs); one of UNITS.
    thresholds:   extra thresholds, reported as post hoc (the locked ones always are).
    reps / seed:  bootstrap resamples and generator seed (bootstrap intervals, health check's
                  Monte Carlo p-values).
    interpolate:  interpolate crossing times linearly between the bracketing evaluations.
    sustained:    a crossing needs this many consecutive evaluations past the threshold.
    ci_method:    interval of the speedup, one of CI_METHODS.
    reference:    baseline reference JSON of the health check (None: the one the lock
                  records, else no check).
    health_alpha: family level of the health check.
    """

    unit: str | None = None
    thresholds: tuple[float, ...] | None = None
    reps: int = 10_000
    seed: int = 0
    interpolate: bool = False
    sustained: int = 1
    ci_method: str = DEFAULT_CI_METHOD
    reference: str | None = None
    health_alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.thresholds is not None:
            ts = tuple(float(t) for t in self.thresholds)
            object.__setattr__(self, "thresholds", ts or None)
        if self.reference is not None:
            object.__setattr__(self, "reference", str(self.reference) or None)
        problem = None
        if self.unit is not None and self.unit not in UNITS:
            problem = f"unknown unit {self.unit!r}; choose from {', '.join(UNITS)}"
        elif self.ci_method not in CI_METHODS:
            problem = f"unknown CI method {self.ci_method!r}; choose from {CI_METHODS}"
        elif self.reps < 1 or self.sustained < 1:
            problem = "--reps and --sustained must be >= 1"
        elif not 0 < self.health_alpha < 1:
            problem = f"--health-alpha must be between 0 and 1, not {self.health_alpha}"
        if problem:
            from benchmark.analysis.load import ResultsError

            raise ResultsError(problem)

    @property
    def headline_unit(self) -> str:
        return self.unit or "epochs"

    @classmethod
    def build(cls, options: ReportOptions | None = None, **overrides) -> ReportOptions:
        """`options` (default: all defaults) with some fields replaced; an unknown name is a
        TypeError naming it (the keyword form every analysis function accepts)."""
        names = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise TypeError(f"unknown report option(s) {', '.join(bad)}; known: {sorted(names)}")
        base = options or cls()
        return cls(**{**{n: getattr(base, n) for n in names}, **overrides})

    def command(self, suite_path: Path | str, out_dir: Path | str) -> str:
        """The `w2s-bench report` command line that regenerates a report with these options
        (defaults left out, except --reps and --seed, which the reader should see)."""
        parts = ["w2s-bench", "report", str(suite_path), "--out", str(out_dir)]
        if self.unit:
            parts += ["--unit", str(self.unit)]
        for t in self.thresholds or ():
            parts += ["--threshold", f"{t:g}"]
        parts += ["--reps", str(self.reps), "--seed", str(self.seed)]
        if self.interpolate:
            parts.append("--interpolate")
        if self.sustained != 1:
            parts += ["--sustained", str(self.sustained)]
        if self.ci_method != DEFAULT_CI_METHOD:
            parts += ["--ci-method", str(self.ci_method)]
        if self.reference:
            parts += ["--reference", str(self.reference)]
        if self.health_alpha != DEFAULTS.health_alpha:
            parts += ["--health-alpha", f"{self.health_alpha:g}"]
        return shlex.join(parts)


DEFAULTS = ReportOptions()
