"""Analysis of a results tree: pure functions on tidy pandas tables (no torch).

load.py      results/<suite>/... -> SuiteData (tidy evaluations table + runs table)
crossing.py  time to threshold per run (censoring, interpolation, sustained crossings),
             Kaplan-Meier and restricted mean time
stats.py     paired bootstrap of ratio of means (percentile / BCa), vectorised
plots.py     matplotlib figures (each function returns a Figure; nothing is written)
report.py    the report's parts (options, computation, renderers, figures, writers: see its
             docstring); writers.py is the only module that writes files

The names below load lazily, so importing a light module of the package (options.py, which
the command line declares its options from) does not load pandas.
"""

from __future__ import annotations

__all__ = ["ResultsError", "ResultsWarning", "SuiteData", "find_suites", "load_suite"]


def __getattr__(name: str):
    if name in __all__:
        from benchmark.analysis import load

        return getattr(load, name)
    raise AttributeError(f"module 'benchmark.analysis' has no attribute {name!r}")
