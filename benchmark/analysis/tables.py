"""The report's tables as formatted text, built once per suite (``build_tables``) and only
laid out by the renderers: markdown.py and html.py format the very same rows (the headline
table, verdicts, censoring, seeds, final quality, switch-off), so the two reports cannot
disagree. Each table is a header and rows of strings (fmt.py formats the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.analyze import SuiteAnalysis
from benchmark.analysis.calibration import (
    METHOD_LABELS,
    interval_statement,
    min_calibrated_n,
    too_few,
)
from benchmark.analysis.crossing import UNIT_LABELS, UNITS
from benchmark.analysis.fmt import (
    distinct,
    fmt_ci,
    fmt_delta,
    fmt_num,
    fmt_signed,
    fmt_speedup,
    thr_label,
)
from benchmark.analysis.load import SuiteData
from benchmark.analysis.seeds import seeds_note, seeds_table
from benchmark.analysis.speedup import BASELINE, FEW_SEEDS, NA
from benchmark.analysis.stamp import results_stamp, suite_description
from benchmark.analysis.stats import BOOTSTRAP_METHODS, MIN_SEEDS_FOR_CI


@dataclass(frozen=True)
class Table:
    """A header and rows of cell strings."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class HeadlineTable(Table):
    """The headline speedup table: one row per threshold x arm. keys: (threshold, arm) of
    each row; post_hoc: whether its threshold is; units: the unit of each speedup column,
    which are columns SPEEDUP_COL.. SPEEDUP_COL + len(units) - 1 (headline unit first)."""

    keys: list[tuple[float, str]] = field(default_factory=list)
    post_hoc: list[bool] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


SPEEDUP_COL = 3  # Threshold, Arm, n, then the speedups


def headline_units(an: SuiteAnalysis) -> list[str]:
    """Every unit, the report's headline unit first."""
    return [an.unit] + [u for u in UNITS if u != an.unit]


def headline_header(an: SuiteAnalysis) -> tuple[list[str], list[str]]:
    """Units (headline unit first) and header of the headline table."""
    units = headline_units(an)
    header = [
        "Threshold",
        "Arm",
        "n",
        f"Speedup ({UNIT_LABELS[an.unit]}) [pointwise 95% CI]",
        *[UNIT_LABELS[u] for u in units[1:]],
        "P(arm sooner)",
        f"RMST ratio ({UNIT_LABELS[an.unit]})",
    ]
    return units, header


def cells_by(an: SuiteAnalysis, *keys: str) -> dict:
    """summary rows grouped by keys (in order of appearance), each as {unit: row}."""
    out: dict = {}
    for r in an.summary.itertuples(index=False):
        out.setdefault(tuple(getattr(r, k) for k in keys), {})[r.unit] = r
    return out


def headline_table(an: SuiteAnalysis) -> HeadlineTable | None:
    """The headline table (None without speedups): per threshold x arm, the speedup in every
    unit [CI], P(arm sooner) and the restricted-mean ratio in the headline unit."""
    if not len(an.summary):
        return None
    units, header = headline_header(an)
    rows, keys, post_hoc = [], [], []
    for (t, arm), by in cells_by(an, "threshold", "arm").items():
        h = by[an.unit]
        rows.append(
            [
                thr_label(t, h.post_hoc),
                arm,
                str(h.n_seeds),
                *[fmt_speedup(by[u]) if u in by else "n/a" for u in units],
                fmt_num(h.p_sooner, 2),
                fmt_num(h.rmst_ratio),
            ]
        )
        keys.append((t, arm))
        post_hoc.append(bool(h.post_hoc))
    return HeadlineTable(header, rows, keys=keys, post_hoc=post_hoc, units=units)


def verdict_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Arm x threshold rows of verdicts, one column per unit."""
    units = headline_units(an)
    header = ["Arm", "Threshold", *[UNIT_LABELS[u] for u in units]]
    cells = cells_by(an, "arm", "threshold")
    arm_order = {arm: i for i, arm in enumerate(dict.fromkeys(a for a, _ in cells))}
    rows = []
    # arms in order of appearance, each arm's thresholds in theirs
    for (arm, t), by in sorted(cells.items(), key=lambda kv: arm_order[kv[0][0]]):
        ph = next(iter(by.values())).post_hoc
        rows.append([arm, thr_label(t, ph), *[by[u].verdict if u in by else NA for u in units]])
    return header, rows


def verdict_table_line(an: SuiteAnalysis, rows: list[list[str]] | None = None) -> str | None:
    """One line instead of the verdict table when every cell of it says 'too few seeds'
    (a grid of identical cells tells the reader nothing the line does not); else None.
    rows: verdict_rows(an)'s, when the caller has them."""
    if rows is None:
        _, rows = verdict_rows(an)
    cells = {c for r in rows for c in r[2:]}
    if not rows or cells != {FEW_SEEDS}:
        return None
    n = int(an.summary["n_seeds"].max()) if len(an.summary) else 0
    method = an.options.ci_method
    mn = min_calibrated_n(method)
    why = (f"fewer than the {MIN_SEEDS_FOR_CI} a confidence interval needs" if n < MIN_SEEDS_FOR_CI
           else f"{too_few(n)}: the {method} interval holds its 95% level from {mn} paired "
           "seeds (docs/coverage.md)")
    return (
        f"All {len(rows)} rows of the verdict table (arm x threshold, every unit) read "
        f"'{FEW_SEEDS}': at most {n} paired seed(s), {why}. "
        "The point estimates are in the headline table; they are a map, not evidence."
    )


def _grouped(rows) -> str:
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(r.verdict, []).append(f"{r.threshold:g}")
    return "; ".join(f"{v} at {', '.join(ts)}" for v, ts in groups.items())


def _other_units(an: SuiteAnalysis, by_unit: dict, head: list) -> list[str]:
    """Where the verdicts in the other units differ from the headline unit's."""
    differ = []
    head_verdicts = {r.verdict for r in head}
    for u in [u for u in UNITS if u != an.unit]:
        gu = {r.threshold: r.verdict for r in by_unit.get(u, [])}
        if gu and set(gu.values()) == {NA} and head_verdicts != {NA}:
            differ.append(f"{UNIT_LABELS[u]} not computed (see the warnings)")
            continue
        changed = [
            f"{thr_label(r.threshold, r.post_hoc)} is {gu[r.threshold]}"
            for r in head
            if r.threshold in gu and gu[r.threshold] != r.verdict
        ]
        if changed:
            differ.append(f"in {UNIT_LABELS[u]} {', '.join(changed)}")
    return differ


def _quality_clause(an: SuiteAnalysis, q) -> str:
    m = an.suite.metric
    d, lo, hi = float(q["delta"]), float(q["delta_ci_low"]), float(q["delta_ci_high"])
    if math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0):
        better = (lo > 0) == (an.suite.direction == "higher")
        word = "better" if better else "worse"
    else:
        word = "no clear difference" if math.isfinite(lo) else ""
    return f". Final test {m}: {fmt_delta(d, lo, hi, m)} vs baseline" + (
        f" ({word})" if word else ""
    )


def verdict_sentences(an: SuiteAnalysis) -> list[tuple[str, str]]:
    """(arm, sentence) per arm: where it is sooner / slower in the report's unit, where other
    units disagree (e.g. once the teacher's cost is charged), and its final quality."""
    q = an.quality
    if not q.empty:
        q = q[q["metric"] == an.suite.metric]
    first_q: dict[str, dict] = {}
    for r in (q.to_dict("records") if len(q) else []):
        first_q.setdefault(r["arm"], r)
    by_arm: dict[str, dict[str, list]] = {}
    for r in an.summary.itertuples(index=False):
        by_arm.setdefault(r.arm, {}).setdefault(r.unit, []).append(r)
    out = []
    for arm, by_unit in by_arm.items():
        head = by_unit.get(an.unit, [])
        n = int(max(r.n_seeds for r in head)) if head else 0
        pre = [r for r in head if not r.post_hoc]
        post = [r for r in head if r.post_hoc]
        text = f"vs baseline, {n} paired seed(s), in {UNIT_LABELS[an.unit]}: " + (
            _grouped(pre) or "no pre-registered thresholds"
        )
        if post:
            text += f" (post hoc thresholds, exploratory only: {_grouped(post)})"
        differ = _other_units(an, by_unit, head)
        if differ:
            text += "; otherwise " + "; ".join(differ)
        if arm in first_q:
            text += _quality_clause(an, first_q[arm])
        out.append((arm, text + "."))
    return out


def censoring_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """The censoring / restricted-mean table in the report's unit."""
    s = an.summary[an.summary["unit"] == an.unit]
    header = [
        "Threshold", "Arm", "censored arm / base", "bound", "mean time arm", "mean time base",
        "tau", "RMST arm", "RMST base", "RMST ratio", "per-seed ratios (seed:baseline/arm)",
    ]  # fmt: skip
    rows = [
        [
            thr_label(r.threshold, r.post_hoc),
            r.arm,
            f"{r.n_censored_arm} / {r.n_censored_base}",
            r.bound or "exact",
            fmt_num(r.mean_time_arm),
            fmt_num(r.mean_time_base),
            fmt_num(r.tau),
            fmt_num(r.rmst_arm),
            fmt_num(r.rmst_base),
            fmt_num(r.rmst_ratio),
            str(r.per_seed_ratios).replace(";", "; "),
        ]
        for r in s.itertuples(index=False)
    ]
    return header, rows


def interval_text(an: SuiteAnalysis, short: bool = False) -> str:
    """The report's statement of its interval method and that method's measured coverage at
    the numbers of paired seeds its comparisons have (calibration.interval_statement); short:
    the method and its settings only."""
    o = an.options
    method = o.ci_method
    boot = (f" over seeds, {o.reps} resamples, rng seed {o.seed}"
            if method in BOOTSTRAP_METHODS else "")
    if short:
        label = METHOD_LABELS.get(method, method)
        return f"{label}{boot}; its measured coverage is in the Verdict section."
    ns = sorted({int(x) for x in an.summary["n_seeds"]}) if len(an.summary) else []
    return interval_statement(method, ns) + (f" Bootstrap: {boot.strip()}." if boot else "")


def seeds_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]], str]:
    """Header, rows and note of the 'How many seeds' table: per arm and
    pre-registered threshold, in the report's unit, the SD of the per-seed log speedup and the
    paired seeds that would give a 95% interval within x/1.1 and 80% power at 1.2x
    (seeds.seeds_table, its assumptions in seeds.seeds_note)."""
    pre = [t for t, ph in zip(an.thresholds, an.post_hoc) if not ph]
    mn = min_calibrated_n(an.options.ci_method)
    arms = list(dict.fromkeys(an.summary["arm"]))
    tab = seeds_table(an.crossings, an.unit, pre, arms, baseline=BASELINE, min_seeds=mn)
    header = ["Arm", "paired seeds", *[f"{t:g}" for t in pre]]
    n_of = an.summary.groupby("arm")["n_seeds"].max()
    rows = []
    for arm, g in tab.groupby("arm", sort=False):
        cells = []
        for r in g.itertuples(index=False):
            if not np.isfinite(r.sd):
                cells.append(f"n/a ({r.pairs} uncensored pair(s))")
                continue
            nh = "n/a" if not np.isfinite(r.n_half_width) else str(int(r.n_half_width))
            npw = "n/a" if not np.isfinite(r.n_power) else str(int(r.n_power))
            cells.append(f"{r.sd:.3f}: {nh} / {npw}")
        rows.append([arm, str(int(n_of.get(arm, 0))), *cells])
    return header, rows, seeds_note(min_seeds=mn)




def _quality_n(r, suite: SuiteData) -> str:
    """The n cell of the final-quality table: finite runs, diverged/failed runs, and which way
    leaving out runs without a final value biases the mean (in the arm's favour)."""
    s = str(r.n)
    div, out = int(getattr(r, "n_diverged", 0)), int(getattr(r, "n_left_out", r.n_nan))
    extra = [f"{div} diverged/failed"] if div else []
    if out:
        way = ""
        if r.metric == suite.metric:
            way = " up" if suite.direction == "higher" else " down"
        extra.append(f"{out} without a final value left out: mean biased{way}, in the arm's favour")
    return s + (f" ({'; '.join(extra)})" if extra else "")


def quality_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the final-quality table."""
    header = ["Metric", "Arm", "n", "final test value [95% CI]", "delta vs baseline [95% CI]"]
    rows = [
        [
            r.metric,
            r.arm,
            _quality_n(r, an.suite),
            fmt_ci(r.mean, r.ci_low, r.ci_high),
            "-" if r.arm == BASELINE
            else fmt_delta(r.delta, r.delta_ci_low, r.delta_ci_high, r.metric),
        ]
        for r in an.quality.itertuples(index=False)
    ]
    return header, rows


def switch_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the switch-off table."""
    m = an.suite.metric
    header = ["Arm", "teacher", f"teacher holdout {m}", f"teacher test {m}", "switched",
              "median switch epoch", "median switch step", "per seed: epoch (step)",
              f"per seed: test {m} change to the next evaluation (baseline's)"]
    rows = []
    for arm, g in an.switch.groupby("arm", sort=False):
        e = g["switch_epoch"].astype(float)
        per = "; ".join(
            f"{r.seed}: " + ("never" if not np.isfinite(r.switch_epoch)
                              else f"{r.switch_epoch:.4g} ({r.switch_step:.0f})")
            for r in g.itertuples(index=False)
        )
        shock = "; ".join(
            f"{r.seed}: {fmt_signed(r.next_change)} ({fmt_signed(r.baseline_next_change)})"
            for r in g.itertuples(index=False) if np.isfinite(r.next_change)
        )
        rows.append([
            arm,
            ", ".join(sorted({str(x) for x in g["teacher_name"].fillna(g["teacher_id"])})),
            distinct(g["teacher_holdout"]),
            distinct(g["teacher_test"]),
            f"{int(np.isfinite(e).sum())}/{len(g)}",
            fmt_num(e.median(), 4),
            fmt_num(g["switch_step"].astype(float).median(), 6),
            per,
            shock or "-",
        ])
    return header, rows


def _num(x, fmt: str) -> str:
    return "-" if x is None or pd.isna(x) else format(float(x), fmt)


def runs_rows(an: SuiteAnalysis) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-run table (quality.runs_table), one row per run."""
    m = an.suite.metric
    header = ["Run", "status", f"last test {m} (epoch)", "switch-off epoch", "train s", "s/eval",
              "final eval s"]
    rows = []
    for r in an.per_run.itertuples(index=False):
        last = "-" if pd.isna(r.last_value) else f"{fmt_num(r.last_value, 4)} ({r.last_epoch:.3g})"
        rows.append([
            r.run_id, str(r.status), last,
            _num(r.switch_epoch, ".3g") if r.arm != BASELINE else "",
            _num(r.train_wall_s, ",.0f"), _num(r.s_per_eval, ".3g"), _num(r.final_eval_s, ".3g"),
        ])
    return header, rows


@dataclass(frozen=True)
class ReportTables:
    """Everything the Markdown and HTML reports print that is not prose, built once.

    stamp: results_stamp; regenerate: the command line that rewrites the report; interval /
    interval_short: the statement of the interval method; verdict_line: one line standing
    for a verdict table whose every cell is 'too few seeds'. A table is None where the report
    has none (no speedups, no test evaluations, no arm that distils).
    """

    stamp: dict[str, str]
    regenerate: str
    description: str
    interval: str
    interval_short: str
    headline: HeadlineTable | None
    verdict: Table | None
    verdict_line: str | None
    sentences: list[tuple[str, str]]
    censoring: Table | None
    seeds: Table | None
    seeds_note: str
    quality: Table | None
    switch: Table | None
    runs: Table | None


def build_tables(an: SuiteAnalysis, out_dir: Path | str) -> ReportTables:
    """The report's tables for a report written under out_dir (the --out folder, which the
    regenerate command names)."""
    has = bool(len(an.summary))
    verdict = Table(*verdict_rows(an)) if has else None
    seeds = seeds_rows(an) if has else None
    return ReportTables(
        stamp=results_stamp(an.suite),  # a time from the results, not the clock
        regenerate=an.options.command(an.suite.path, out_dir),
        description=suite_description(an.suite),
        interval=interval_text(an) if has else "",
        interval_short=interval_text(an, short=True),
        headline=headline_table(an),
        verdict=verdict,
        verdict_line=verdict_table_line(an, verdict.rows) if verdict else None,
        sentences=verdict_sentences(an) if has else [],
        censoring=Table(*censoring_rows(an)) if has else None,
        seeds=Table(*seeds[:2]) if seeds and seeds[1] else None,
        seeds_note=seeds[2] if seeds else "",
        quality=None if an.quality.empty else Table(*quality_rows(an)),
        switch=None if an.switch.empty else Table(*switch_rows(an)),
        runs=None if an.per_run.empty else Table(*runs_rows(an)),
    )
