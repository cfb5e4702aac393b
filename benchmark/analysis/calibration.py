"""Which speedup intervals hold their level, and at how many seeds: read from the committed
coverage table (benchmark/analysis/coverage_table.py, written by perf/coverage.py; every cell
in docs/coverage.md), so a report states its interval's measured coverage without rerunning
the simulation.

A method *holds* at n paired seeds when its worst simulated coverage of a nominal 95% interval
is >= TARGET['uncensored'] without censoring and >= TARGET['censored'] with 20% censoring.
Seed counts between tabulated ones read the largest tabulated n below them, and counts past
the largest read that one: coverage of these intervals grows with n (docs/coverage.md), so
this never claims more than was measured.
"""

from __future__ import annotations

from benchmark.analysis import coverage_table as _table

TARGET: dict[str, float] = dict(_table.TARGET)
COVERAGE_DOC = "docs/coverage.md"

METHOD_LABELS = {
    "fieller": "Fieller's interval for a ratio of paired means (t with n-1 df, no resampling)",
    "percentile": "paired percentile bootstrap",
    "bca": "paired BCa bootstrap",
}


def _row(method: str, n: int) -> tuple[int, tuple[float, float]] | None:
    """(tabulated n used, (worst uncensored, worst censored)) or None (untabulated)."""
    rows = _table.WORST.get(method) or {}
    below = [k for k in rows if k <= n]
    if not below:
        return None
    k = max(below)
    return k, tuple(rows[k])


def coverage(method: str, n: int) -> tuple[float, float] | None:
    """Measured worst-case coverage (uncensored, 20% censored) of `method` at n paired seeds,
    or None when n is below every tabulated count or the method is not tabulated."""
    r = _row(method, n)
    return None if r is None else r[1]


def holds(method: str, n: int) -> bool:
    """Whether `method` holds its 95% level at n paired seeds (see the module doc)."""
    c = coverage(method, n)
    return c is not None and c[0] >= TARGET["uncensored"] and c[1] >= TARGET["censored"]


def min_calibrated_n(method: str) -> int | None:
    """Smallest tabulated n from which `method` holds at every larger tabulated n; None when
    it does not hold at the largest one."""
    best = None
    for n in sorted(_table.WORST.get(method) or {}, reverse=True):
        if not holds(method, n):
            break
        best = n
    return best


def too_few(n: int) -> str:
    """The words a report uses where n paired seeds are too few for a calibrated interval."""
    return f"{n} seed{'s' if n != 1 else ''}: too few for a calibrated interval"


def coverage_text(method: str, n: int) -> str:
    """'0.951 (0.944 with 20% censoring)' or 'not measured'."""
    c = coverage(method, n)
    if c is None:
        return "not measured"
    return f"{c[0]:.3f} ({c[1]:.3f} with 20% censoring)"


def interval_statement(method: str, ns: list[int], level: float = 0.95) -> str:
    """One paragraph for a report: the interval method, and its measured coverage at each of
    the seed counts `ns` the report's comparisons have (worst case over the simulated
    scenarios; docs/coverage.md)."""
    label = METHOD_LABELS.get(method, method)
    parts = []
    for n in sorted({int(x) for x in ns if x >= 1}):
        if coverage(method, n) is None:
            parts.append(f"{n} seed(s): no interval")
            continue
        ok = holds(method, n)
        parts.append(
            f"{n} seeds: {coverage_text(method, n)}"
            + ("" if ok else f", below the {TARGET['uncensored']:.2f} / "
               f"{TARGET['censored']:.2f} target, so no verdict")
        )
    mn = min_calibrated_n(method)
    hold = (f"it holds its level from {mn} paired seeds" if mn is not None
            else "it does not hold its level at any simulated number of seeds")
    return (
        f"Intervals: {label}, nominal {level:.0%}, pointwise (one comparison at a time). "
        f"Measured coverage (worst case over simulated crossing times, {COVERAGE_DOC}, "
        f"`{_table.COMMAND}`, rng seed {_table.SEED}): "
        + ("; ".join(parts) or "n/a")
        + f"; {hold}."
    )
