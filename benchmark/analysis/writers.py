"""The only module of benchmark.analysis that writes files: reports/<suite>/ for each suite
(CSV tables, figures, tables.tex, report.md, index.html, health check, results stamp).

Nothing written depends on the clock (times come from the results: stamp.results_stamp), so
unchanged results give byte-identical files; results_stamp.json records what the report was
made from, for stamp.report_is_current.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import __version__
from benchmark.analysis.analyze import SuiteAnalysis, analyze_suite
from benchmark.analysis.figures import FIGURES, make_figures
from benchmark.analysis.html import render_html
from benchmark.analysis.latex import render_tex
from benchmark.analysis.load import LOCK_NAME, find_suites, load_suite
from benchmark.analysis.markdown import render_markdown
from benchmark.analysis.options import ReportOptions
from benchmark.analysis.stamp import STAMP_NAME, report_is_current
from benchmark.analysis.tables import build_tables

_CSV_SPECIAL = (",", '"', "\n", "\r")


def _csv_cells(col: pd.Series) -> list[str] | None:
    """A column as the strings DataFrame.to_csv writes (missing -> ''), or None when a value
    would need quoting (the caller then leaves the whole table to pandas)."""
    dtype = col.dtype
    if dtype.kind == "f" and dtype.itemsize == 8:
        # pandas writes float64 with numpy's str(), which is Python's repr for float64
        vals = col.to_numpy()
        cells = list(map(repr, vals.tolist()))
        for i in np.flatnonzero(np.isnan(vals)):
            cells[i] = ""
        return cells
    if dtype.kind in "iub":
        return list(map(str, col.to_numpy().tolist()))
    if isinstance(dtype, pd.CategoricalDtype):
        labels = [str(c) for c in dtype.categories] + [""]  # code -1 (missing) -> ""
        if any(ch in c for c in labels for ch in _CSV_SPECIAL):
            return None
        return np.array(labels, dtype=object)[col.cat.codes.to_numpy()].tolist()
    if isinstance(dtype, pd.StringDtype) or dtype.kind == "O":
        vals = col.astype(object).to_numpy()
        missing = pd.isna(vals)
        cells = ["" if m else str(v) for v, m in zip(vals.tolist(), missing.tolist())]
        if any(ch in c for c in set(cells) for ch in _CSV_SPECIAL):
            return None
        return cells
    return None


def frame_to_csv(df: pd.DataFrame) -> str:
    """df.to_csv(index=False), byte for byte, several times faster on a large table of
    numbers and plain labels (evaluations.csv: 10^5+ rows); any other table (a value that
    needs quoting, a dtype not handled here) goes to pandas itself."""
    names = [str(c) for c in df.columns]
    ok = len(names) > 0 and df.columns.is_unique
    columns = [_csv_cells(df[c]) for c in df.columns] if ok else [None]
    if any(c is None for c in columns) or any(ch in n for n in names for ch in _CSV_SPECIAL):
        return df.to_csv(index=False)
    lines = [",".join(names)]
    lines += map(",".join, zip(*columns))
    return "\n".join(lines) + "\n"


def write_csv(df: pd.DataFrame, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(frame_to_csv(df))


def _write_tables(an: SuiteAnalysis, d: Path) -> None:
    an.summary.to_csv(d / "summary.csv", index=False)
    write_csv(an.crossings, d / "crossings.csv")
    an.sweep.to_csv(d / "sweep.csv", index=False)
    an.quality.to_csv(d / "quality.csv", index=False)
    an.switch.to_csv(d / "switch.csv", index=False)
    write_csv(an.per_run, d / "runs.csv")
    write_csv(an.suite.evals, d / "evaluations.csv")


def _write_figures(an: SuiteAnalysis, d: Path) -> dict[str, str]:
    """Save the figures as PNG; returns figure key -> file name."""
    plots: dict[str, str] = {}
    for name, fig in make_figures(an).items():
        fname = FIGURES[name][1]
        fig.savefig(d / fname, dpi=110)
        plots[name] = fname
    return plots


def write_suite_report(an: SuiteAnalysis, out_dir: Path, *, subdir: Path | str = "") -> Path:
    """Write <out_dir>/<subdir>/<suite>/ for one analysed suite; returns the report.md path.
    The report's tables are built once (tables.build_tables) for report.md and index.html."""
    d = Path(out_dir) / subdir / an.suite.name
    d.mkdir(parents=True, exist_ok=True)
    _write_tables(an, d)
    plots = _write_figures(an, d)
    (d / "tables.tex").write_text(render_tex(an), encoding="utf-8")
    if an.health is not None:
        an.health.tests.to_csv(d / "health.csv", index=False)
        (d / "health.json").write_text(an.health.to_json(), encoding="utf-8")
    tables = build_tables(an, Path(out_dir))
    md = d / "report.md"
    md.write_text(render_markdown(an, Path(out_dir), plots, tables), encoding="utf-8")
    (d / "index.html").write_text(render_html(an, d, plots, tables), encoding="utf-8")
    stamp = {"suite": an.suite.name, **tables.stamp, "w2s_bench": __version__}
    (d / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", "utf-8")
    return md


def find_report_suites(results_dirs: list[Path]) -> list[Path]:
    """Suite folders under each path: the path itself if it is one, its children that are, and
    the children of its children that are (results/<NAME>/<suite>, made by `run --new-results
    NAME`). A path with none raises ResultsError (load.find_suites' message)."""
    out: list[Path] = []
    for d in map(Path, results_dirs):
        found: list[Path] = []
        if d.is_dir() and not (d / LOCK_NAME).is_file():
            for c in sorted(p for p in d.iterdir() if p.is_dir()):
                if (c / LOCK_NAME).is_file():
                    found.append(c)
                else:
                    found += sorted(g for g in c.iterdir() if g.is_dir() and (g / LOCK_NAME).is_file())
        out += found or find_suites([d])
    return list(dict.fromkeys(out))


def report_subdir(suite_dir: Path, results_root: Path | None) -> Path:
    """Where under the output folder a suite's report goes, mirroring the results layout:
    results/<suite> -> <out>/<suite>, results/<NAME>/<suite> (run --new-results NAME) ->
    <out>/<NAME>/<suite>, so a separately named protocol never overwrites the main report.
    A suite outside results_root (any --results-dir) -> <out>/<suite>. Returns the part
    before <suite> (Path('') or Path('<NAME>'))."""
    if results_root is not None:
        try:
            rel = Path(suite_dir).resolve().relative_to(Path(results_root).resolve())
        except ValueError:
            return Path()
        return rel.parent
    return Path()


def write_report(
    results_dirs: list[Path],
    out_dir: Path,
    options: ReportOptions | None = None,
    *,
    results_root: Path | str | None = None,
    only_stale: bool = False,
    on_skip: Callable[[Path, Path, str], None] | None = None,
    on_written: Callable[[SuiteAnalysis, Path], None] | None = None,
    **overrides,
) -> list[Path]:
    """Analyse every suite under results_dirs and write <out_dir>/<suite>/ for each.

    options: ReportOptions (default: its defaults); overrides: fields of it by name
        (``write_report(dirs, out, reps=200, reference=path)``). The health check's reference
        is options.reference, else the one the suite's lock records; no check without one.
    results_root: the folder `run` writes to (results/): a suite under <root>/<NAME>/ (run
        --new-results NAME) reports to <out_dir>/<NAME>/<suite>/ (report_subdir).
    only_stale: skip a suite whose report is current (report_is_current); on_skip(suite_dir,
        report_dir, why) is called for each skipped one.
    on_written(analysis, report_md): called after each suite's report is written (the
        command line exports to trackers from it).
    Returns the report.md paths written. Raises ResultsError for an unreadable tree or bad
    option.
    """
    opts = ReportOptions.build(options, **overrides)
    root = Path(results_root) if results_root is not None else None
    written = []
    for path in find_report_suites(results_dirs):
        data = load_suite(path)
        sub = report_subdir(path, root)
        if only_stale:
            current, why = report_is_current(data, Path(out_dir) / sub / data.name)
            if current:
                if on_skip is not None:
                    on_skip(path, Path(out_dir) / sub / data.name, why)
                continue
        an = analyze_suite(data, opts)
        written.append(write_suite_report(an, Path(out_dir), subdir=sub))
        if on_written is not None:
            on_written(an, written[-1])
    return written
