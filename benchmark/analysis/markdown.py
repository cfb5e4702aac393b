"""report.md: one suite's report as Markdown. Lays out the tables of tables.py (built once,
shared with index.html) between the report's prose; computes nothing."""

from __future__ import annotations

from pathlib import Path

from benchmark import __version__
from benchmark.analysis.analyze import SuiteAnalysis
from benchmark.analysis.crossing import UNIT_LABELS
from benchmark.analysis.figures import FIGURES, PLOT_NOTES
from benchmark.analysis.quality import QUALITY_NOTE, RUNS_NOTE, SWITCH_NOTE
from benchmark.analysis.speedup import VERDICT_RULE
from benchmark.analysis.tables import ReportTables, Table, build_tables

HEADLINE_NOTE = (
    "Speedup = mean(baseline time to threshold) / mean(arm time to threshold) over seeds "
    "paired by seed value (> 1: the arm gets there sooner). "
    "[pointwise 95% CI]: {interval} FLOPs include the teacher's "
    "forward passes; '... + teacher training' also charges the teacher's training cost (its "
    "seconds: on the machine that trained it, from its teacher.json). '>= x': some baseline runs never "
    "reached the threshold (censored), so the true speedup is at least x; '<= x': some arm "
    "runs were censored; '~ x': both were, the point estimate is bounded in neither "
    "direction (use the restricted mean ratio). P(arm sooner): fraction of paired seeds "
    "where the arm crossed first (undecidable pairs count 1/2). RMST ratio: ratio of "
    "restricted mean times (area under the Kaplan-Meier curve up to tau)."
)
CENSORING_NOTE = (
    "A run that never reaches a threshold is censored at its budget (epochs/steps, for "
    "complete runs) or at its last evaluation (seconds/FLOPs, and a run still running); "
    "a run that diverged or failed never reaches it and is censored at the budget too "
    "(in seconds/FLOPs: what its arm's complete runs spent), not where it stopped. It is "
    "never dropped. tau = the smallest horizon among "
    "the paired complete runs. Per-seed ratios are baseline/arm time, seed:ratio."
)
FILES_NOTE = [
    "- `summary.csv`: one row per arm x threshold x unit; every speedup above.",
    "- `crossings.csv`: time to each threshold per run and unit (event=False: censored).",
    "- `evaluations.csv`: every raw evaluation row (run_id, arm, seed, ...).",
    "- `runs.csv`: the Runs table above, unformatted.",
    "- `sweep.csv`, `quality.csv`, `switch.csv`, `tables.tex` (booktabs).",
    "- `results_stamp.json`: the results this report was made from (`w2s-bench report` with "
    "no arguments skips a suite whose finished runs have not changed since).",
]
PROVENANCE_COLUMNS = [
    ("run id", "run_id"), ("arm", "arm"), ("seed", "seed"), ("status", "status"),
    ("git sha", "git_sha"), ("dirty", "git_dirty"), ("device", "device"),
    ("torch", "torch_version"), ("threads", "threads"), ("resumed", "resumed"),
    ("lost wall s", "lost_wall_s"),
]  # fmt: skip


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def clean(c: object) -> str:
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def table_markdown(table: Table) -> str:
    """A tables.Table (e.g. the headline table) as a Markdown table."""
    return md_table(table.header, table.rows)


def _provenance_md(an: SuiteAnalysis) -> str:
    runs = an.suite.runs
    cols = {c: runs[c].tolist() for _, c in PROVENANCE_COLUMNS}
    rows = []
    for i in range(len(runs)):
        row = [str(cols[c][i]) for _, c in PROVENANCE_COLUMNS]
        row[4] = str(cols["git_sha"][i] or "?")[:12]
        rows.append(row)
    return md_table([h for h, _ in PROVENANCE_COLUMNS], rows)


def _head_md(an: SuiteAnalysis, t: ReportTables) -> list[str]:
    """Title, description, health check, regenerate command, what the report is made from."""
    su, o = an.suite, an.options
    direction = "higher is better" if su.direction == "higher" else "lower is better"
    pre = [x for x, ph in zip(an.thresholds, an.post_hoc) if not ph]
    ph = [x for x, p in zip(an.thresholds, an.post_hoc) if p]
    n_status = su.runs["status"].value_counts().to_dict()
    lines = [f"# w2s-bench report: {su.name}", ""]
    if t.description:
        lines += [f"> {x}" if x else ">" for x in t.description.splitlines()] + [""]
    if an.health is not None:
        lines += [f"**{an.health.headline()}**", ""]
        lines += [f"- {n}" for n in an.health.notes] + ([""] if an.health.notes else [])
    return lines + [
        "Regenerate with:",
        "",
        f"    {t.regenerate}",
        "",
        f"Results as of {t.stamp['results_as_of']} (end of the last finished run; fingerprint "
        f"`{t.stamp['results_fingerprint']}`), reported by w2s-bench {__version__} from "
        f"`{su.path}` (suite sha256 `{su.lock.get('suite_sha256', '?')}`, locked "
        f"{su.lock.get('created', '?')}).",
        f"Target metric: test **{su.metric}** ({direction}). Pre-registered thresholds: "
        f"{', '.join(f'{x:g}' for x in pre) or 'none'}."
        + (f" **Post hoc thresholds** (not in the lock): {', '.join(f'{x:g}' for x in ph)}."
           if ph else ""),
        f"Runs: {len(su.runs)} ({', '.join(f'{v} {k}' for k, v in n_status.items())}); arms: "
        f"{', '.join(an.arms)}.",
        f"Crossing rule: first test evaluation with {su.metric} "
        f"{'>=' if su.direction == 'higher' else '<='} threshold"
        + (f", sustained for {o.sustained} consecutive evaluations" if o.sustained > 1 else "")
        + (", linearly interpolated between the bracketing evaluations" if o.interpolate else "")
        + ".",
        "",
    ]  # fmt: skip


def _tables_md(an: SuiteAnalysis, t: ReportTables) -> list[str]:
    """Warnings, verdict, headline, censoring, seeds, final quality, switch-off, runs."""
    lines = ["## Warnings", ""] + ([f"- {w}" for w in an.warnings] or ["- none"])
    if t.verdict is not None:
        lines += ["", "## Verdict", "", VERDICT_RULE, "", t.interval, ""]
        lines += [f"- **{arm}** {x}" for arm, x in t.sentences]
        lines += ["", t.verdict_line or table_markdown(t.verdict)]
    lines += [
        "",
        "## Headline: speedup over baseline",
        "",
        HEADLINE_NOTE.format(interval=t.interval_short),
        "",
        table_markdown(t.headline) if t.headline
        else "_No speedups (no baseline or no other arm)._",
        "",
        f"## Censoring and restricted mean time ({UNIT_LABELS[an.unit]})",
        "",
        CENSORING_NOTE,
        "",
        table_markdown(t.censoring) if t.censoring else "_n/a_",
        "",
    ]
    if t.seeds is not None:
        lines += [f"## How many seeds ({UNIT_LABELS[an.unit]})", "", t.seeds_note, "",
                  table_markdown(t.seeds), ""]
    switch = "_No arm distils._"
    if t.switch is not None:
        switch = table_markdown(t.switch) + "\n\n" + SWITCH_NOTE
    return lines + [
        "## Final quality",
        "",
        QUALITY_NOTE,
        "",
        table_markdown(t.quality) if t.quality else "_No test evaluations._",
        "",
        "## Switch-off",
        "",
        switch,
        "",
        "## Runs",
        "",
        RUNS_NOTE,
        "",
        table_markdown(t.runs) if t.runs else "_No runs._",
        "",
    ]


def render_markdown(
    an: SuiteAnalysis, out_dir: Path, plots: dict[str, str], tables: ReportTables | None = None
) -> str:
    """report.md as a string. out_dir: the report root (--out) the regenerate command names;
    plots: figure key -> PNG file name beside report.md; tables: build_tables(an, out_dir),
    when the caller has built them already (writers.py shares them with index.html)."""
    t = tables if tables is not None else build_tables(an, out_dir)
    lines = _head_md(an, t) + _tables_md(an, t)
    for key, (title, _) in FIGURES.items():
        if key in plots:
            lines += [f"## {title}", "", *PLOT_NOTES[key](an), f"![{title}]({plots[key]})", ""]
    lines += ["## Provenance", "", _provenance_md(an), "", "## Files", "", *FILES_NOTE, ""]
    return "\n".join(lines)
