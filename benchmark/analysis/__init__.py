"""Analysis of a results tree: pure functions on tidy pandas tables (no torch).

load.py      results/<suite>/... -> SuiteData (tidy evaluations table + runs table)
crossing.py  time to threshold per run (censoring, interpolation, sustained crossings),
             Kaplan-Meier and restricted mean time
stats.py     paired bootstrap of ratio of means (percentile / BCa), vectorised
plots.py     matplotlib figures (each function returns a Figure; nothing is written)
report.py    the only writer: reports/<suite>/{report.md, summary.csv, tables.tex,
             evaluations.csv, sweep.csv, *.png}
"""

from __future__ import annotations

from benchmark.analysis.load import ResultsError, ResultsWarning, SuiteData, find_suites, load_suite

__all__ = ["ResultsError", "ResultsWarning", "SuiteData", "find_suites", "load_suite"]
