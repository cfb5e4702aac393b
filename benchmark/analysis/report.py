"""`w2s-bench report`: the analysis of each suite, written to reports/<suite>/.

The report is built in parts, each a module of benchmark.analysis:

options.py   ReportOptions: every option that changes a number (one dataclass)
speedup.py   speedups of arm vs baseline over paired seeds, intervals, verdicts (pure)
quality.py   final quality, switch-off, provenance, wall-clock reliability (pure)
analyze.py   analyze_suite / summarize: a SuiteAnalysis of tables, nothing written
health.py    the baseline health check (reference.py: its reference files)
tables.py    the report's tables as text, built once for report.md and index.html
markdown.py, latex.py, html.py   renderers: format the tables, compute nothing
figures.py   which figures, from which tables (plots.py draws them)
stamp.py     what a report was made from; whether it is current
writers.py   the only writer: reports/<suite>/{summary.csv, ..., report.md, index.html}

This module keeps the names other code imports from ``benchmark.analysis.report``.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.analysis.analyze import (
    SWEEP_COLUMNS,
    SuiteAnalysis,
    analyze,
    analyze_suite,
    summarize,
)
from benchmark.analysis.figures import FIGURES, PLOT_NOTES, PLOT_TITLES, make_figures, switch_points
from benchmark.analysis.fmt import (
    PERCENT_METRICS,
    delta_unit,
    distinct,
    fmt_ci,
    fmt_delta,
    fmt_num,
    fmt_speedup,
    thr_label,
)
from benchmark.analysis.latex import render_tex, tex_escape
from benchmark.analysis.markdown import md_table, render_markdown, table_markdown
from benchmark.analysis.options import ReportOptions
from benchmark.analysis.quality import (
    FINISHED,
    QUALITY_NOTE,
    device_kinds,
    final_quality,
    machine_kind,
    noisy_seconds,
    other_device_seeds,
    provenance_warnings,
    switch_table,
)
from benchmark.analysis.speedup import (
    BASELINE,
    CENSORED,
    FAMILY_ALPHA,
    FEW_SEEDS,
    NA,
    NO_CI,
    NO_DIFF,
    SLOWER,
    SOONER,
    SUMMARY_COLUMNS,
    SWEEP_POINTS,
    UNCALIBRATED,
    VERDICT_RULE,
    compare_arm,
    family_verdicts,
    resolve_thresholds,
    sweep_grid,
    verdict,
)
from benchmark.analysis.stamp import STAMP_NAME, report_is_current, results_stamp, suite_description
from benchmark.analysis.tables import (
    HeadlineTable,
    ReportTables,
    Table,
    build_tables,
    censoring_rows,
    headline_header,
    headline_table,
    interval_text,
    quality_rows,
    seeds_rows,
    switch_rows,
    verdict_rows,
    verdict_sentences,
    verdict_table_line,
)
from benchmark.analysis.writers import (
    find_report_suites,
    frame_to_csv,
    report_subdir,
    write_report,
    write_suite_report,
)


def regenerate_command(an: SuiteAnalysis, out_dir: Path) -> str:
    """The command line that regenerates an's report under out_dir."""
    return an.options.command(an.suite.path, out_dir)


__all__ = [
    "BASELINE", "CENSORED", "FAMILY_ALPHA", "FEW_SEEDS", "FIGURES", "FINISHED", "NA", "NO_CI",
    "NO_DIFF", "PERCENT_METRICS", "PLOT_NOTES", "PLOT_TITLES", "QUALITY_NOTE", "SLOWER",
    "SOONER", "STAMP_NAME", "SUMMARY_COLUMNS", "SWEEP_COLUMNS", "SWEEP_POINTS", "UNCALIBRATED",
    "VERDICT_RULE", "HeadlineTable", "ReportOptions", "ReportTables", "SuiteAnalysis", "Table",
    "analyze", "analyze_suite", "build_tables", "censoring_rows", "compare_arm", "delta_unit",
    "device_kinds", "distinct", "family_verdicts", "final_quality", "find_report_suites",
    "fmt_ci", "fmt_delta", "fmt_num", "fmt_speedup", "frame_to_csv", "headline_header",
    "headline_table", "interval_text", "machine_kind", "make_figures", "md_table",
    "noisy_seconds", "other_device_seeds", "provenance_warnings", "quality_rows",
    "regenerate_command", "render_markdown", "render_tex", "report_is_current",
    "report_subdir", "resolve_thresholds", "results_stamp", "seeds_rows", "suite_description",
    "summarize", "sweep_grid", "switch_points", "switch_rows", "switch_table", "table_markdown",
    "tex_escape", "thr_label", "verdict", "verdict_rows", "verdict_sentences",
    "verdict_table_line", "write_report", "write_suite_report",
]  # fmt: skip
