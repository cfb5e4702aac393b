"""The report in parts (issue 19, item 6): the report reads only the results contract, the
exports use public analysis functions only (no import circle), one options dataclass is the
source of the command line's options, the headline table is built once for both renderers,
and the analysis is complete before anything is written."""

from __future__ import annotations

import ast
import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_analysis_report import build
from test_health import healthy_tree

import benchmark
from benchmark.analysis import crossing, stats
from benchmark.analysis.health import build_reference, write_reference
from benchmark.analysis.load import ResultsError, load_suite
from benchmark.analysis.options import CI_METHODS, UNITS, ReportOptions
from benchmark.cli import main

PKG = Path(benchmark.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in a file, relative ones resolved."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                parts = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
                mod = ".".join([*parts, mod] if mod else parts)
            out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _report_files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix != ".png"}


# ------------------------------------------------------------------ results contract only


def test_editing_the_suite_file_after_the_runs_does_not_change_the_report(tmp_path, monkeypatch):
    """The health check's reference comes from --reference or the lock, never from the suite
    file the lock names as its source (which may be edited after the runs)."""
    s = healthy_tree(tmp_path / "res")
    ref = tmp_path / "suites" / "reference" / "toy.json"
    write_reference(build_reference(load_suite(s)), ref)
    suite_file = tmp_path / "suites" / "toy.yaml"
    suite_file.write_text("name: toy\n")
    lock = json.loads((s / "suite.lock.json").read_text())
    lock["source"] = "suites/toy.yaml"
    (s / "suite.lock.json").write_text(json.dumps(lock))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports"
    args = ["report", str(s), "--out", str(out), "--reps", "100"]
    assert CliRunner().invoke(main, args).exit_code == 0
    before = _report_files(out / "toy")
    # The suite file now names a reference (as if added after the runs): same report.
    suite_file.write_text("name: toy\nreference: suites/reference/toy.json\n")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert _report_files(out / "toy") == before
    assert "health.json" not in before and "Baseline health check" not in res.output
    # Named on the command line: checked, and the regenerate command says so.
    res = CliRunner().invoke(main, [*args, "--reference", str(ref)])
    assert res.exit_code == 0 and "Baseline health check: PASS" in res.output
    assert f"--reference {ref}" in (out / "toy" / "report.md").read_text()
    assert json.loads((out / "toy" / "health.json").read_text())["status"] == "PASS"


def test_no_analysis_module_reads_yaml():
    readers = [p.name for p in (PKG / "analysis").glob("*.py")
               if any(m == "yaml" or m.startswith("yaml.") for m, _ in _imports(p))]
    assert readers == []


# ------------------------------------------------------------------ exports: public names only


def test_exports_use_public_analysis_names_and_analysis_never_imports_export():
    exports = sorted((PKG / "export").glob("*.py"))
    assert len(exports) >= 3
    for p in exports:
        for mod, names in _imports(p):
            if mod.startswith("benchmark.analysis"):
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{p.name} imports private {private} from {mod}"
                assert not any(part.startswith("_") for part in mod.split(".")), (p.name, mod)
    for p in sorted((PKG / "analysis").glob("*.py")):
        bad = [m for m, _ in _imports(p) if m.startswith("benchmark.export")]
        assert not bad, f"analysis/{p.name} imports {bad}: an import circle with the exports"


# ------------------------------------------------------------------ one options dataclass


def _report_command_params():
    cmd = main.commands["report"]
    return {p.name: p for p in cmd.params}


def test_cli_report_options_are_the_options_dataclass():
    params = _report_command_params()
    output_only = {"results_dirs", "out", "tensorboard_dir", "mlflow_uri"}
    fields = {f.name for f in dataclasses.fields(ReportOptions)}
    assert set(params) - output_only == fields
    # Same defaults: what the command passes when given no option is the dataclass's defaults.
    given = main.commands["report"].make_context("report", []).params
    assert ReportOptions(**{n: given[n] for n in fields}) == ReportOptions()
    # Same vocabulary, which the analysis modules use too.
    assert tuple(params["unit"].type.choices) == UNITS == tuple(crossing.UNITS)
    assert tuple(params["ci_method"].type.choices) == CI_METHODS == stats.CI_METHODS


def test_options_reach_the_report_and_bad_ones_are_refused(tmp_path):
    s = build(tmp_path / "res")
    out = tmp_path / "reports"
    res = CliRunner().invoke(main, ["report", str(s), "--out", str(out), "--reps", "60",
                                    "--seed", "3", "--ci-method", "bca", "--sustained", "2",
                                    "--threshold", "65"])
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "toy" / "summary.csv")
    assert set(summary["ci_method"]) == {"bca"} and set(summary["reps"]) == {60}
    assert summary.loc[summary["threshold"] == 65, "post_hoc"].all()
    md = (out / "toy" / "report.md").read_text()
    assert ("--threshold 65 --reps 60 --seed 3 --sustained 2 --ci-method bca") in md
    res = CliRunner().invoke(main, ["report", str(s), "--out", str(out), "--reps", "0"])
    assert res.exit_code != 0 and "--reps and --sustained must be >= 1" in res.output
    with pytest.raises(TypeError, match="unknown report option"):
        ReportOptions.build(rep=5)
    with pytest.raises(ResultsError, match="health-alpha"):
        ReportOptions(health_alpha=1.5)


# ------------------------------------------------------------------ tables built once


class _Cells(HTMLParser):
    """Text of every cell of the table with the given id, row by row."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _md_section_table(md: str, heading: str) -> list[list[str]]:
    section = md.split(f"## {heading}")[1].split("\n## ")[0]
    lines = [x for x in section.splitlines() if x.startswith("| ")]
    return [[c.strip() for c in x.strip("| ").split(" | ")] for x in lines]


def test_headline_table_is_built_once_and_both_reports_show_its_rows(tmp_path, monkeypatch):
    from benchmark.analysis import tables
    from benchmark.analysis.report import write_report

    built = []
    real = tables.headline_table

    def counting(an):
        built.append(real(an))
        return built[-1]

    monkeypatch.setattr(tables, "headline_table", counting)
    s = build(tmp_path / "res")
    [md_path] = write_report([s], tmp_path / "reports", reps=100, thresholds=[65.0])
    assert len(built) == 1
    table = built[0]
    md_rows = _md_section_table(md_path.read_text(), "Headline: speedup over baseline")
    assert md_rows[0] == table.header and md_rows[1:] == table.rows
    page = _Cells("headline")
    page.feed(md_path.with_name("index.html").read_text())
    assert page.rows[0] == table.header and page.rows[1:] == table.rows
    assert [r[0] for r in table.rows] == ["50", "80", "65 (post hoc)"]
    assert table.post_hoc == [False, False, True]


def test_analysis_is_complete_before_writing_and_writing_changes_nothing(tmp_path):
    """The health check and the wall-clock notes are part of the analysis (analyze_suite), and
    write_suite_report formats the analysis without touching it (SuiteAnalysis is frozen)."""
    from benchmark.analysis.report import analyze_suite, write_suite_report

    s = healthy_tree(tmp_path / "res")
    ref = write_reference(build_reference(load_suite(s)), tmp_path / "ref.json")
    an = analyze_suite(load_suite(s), reps=100, reference=str(ref))
    assert an.health is not None and an.health.status == "PASS"
    assert an.options.reference == str(ref)
    summary, warnings = an.summary.copy(), list(an.warnings)
    write_suite_report(an, tmp_path / "reports")
    pd.testing.assert_frame_equal(an.summary, summary)
    assert an.warnings == warnings
    with pytest.raises(dataclasses.FrozenInstanceError):
        an.health = None


# ------------------------------------------------------------------ the fast paths are exact


def test_frame_to_csv_is_pandas_to_csv_byte_for_byte(tmp_path):
    from benchmark.analysis.writers import frame_to_csv

    x = [0.1, -0.0, 1e16, 1e15 + 0.5, 1e-5, 5e-324, np.nan, np.inf, -np.inf, 2.0**53 + 2]
    n = len(x)
    df = pd.DataFrame({
        "f": x, "i": np.arange(n) * -7, "b": [True, False] * (n // 2),
        "c": pd.Categorical(["a", "b"] * (n // 2)),
        "o": ["x", None] * (n // 2), "mixed": [1, "y", 2.5, None, True] * (n // 5),
        "s": pd.array(["p", None] * (n // 2), dtype="str"),
    })  # fmt: skip
    assert frame_to_csv(df) == df.to_csv(index=False)
    quoted = df.assign(o=['has,comma', 'q"uote'] * (n // 2))  # pandas quotes: left to it
    assert frame_to_csv(quoted) == quoted.to_csv(index=False)
    data = load_suite(build(tmp_path / "res"))
    assert frame_to_csv(data.evals) == data.evals.to_csv(index=False)


def test_switch_points_match_a_per_run_sort_and_interpolation(tmp_path):
    from benchmark.analysis.figures import switch_points

    data = load_suite(healthy_tree(tmp_path / "res"))
    ev = data.evals
    curves = ev[(ev["split"] == "test") & (ev["metric"] == data.metric)]
    got = switch_points(curves, data.runs, "epoch")
    want = []
    for r in data.runs[np.isfinite(data.runs["switch_epoch"].astype(float))].itertuples():
        c = curves[curves["run_id"] == r.run_id].sort_values("epoch")
        v = np.interp(r.switch_epoch, c["epoch"].to_numpy(float), c["value"].to_numpy(float))
        want.append({"arm": r.arm, "seed": r.seed, "epoch": r.switch_epoch, "value": v})
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, pd.DataFrame(want))


# ------------------------------------------------------------------ module and function size


def test_analysis_and_export_modules_stay_small():
    """No module over ~500 lines and no function over 80 in analysis/ and export/, except
    plots.plot_speedup_sweep (85: one figure's artists, read top to bottom)."""
    long_ok = {("plots.py", "plot_speedup_sweep")}
    for p in sorted((PKG / "analysis").glob("*.py")) + sorted((PKG / "export").glob("*.py")):
        text = p.read_text(encoding="utf-8")
        assert text.count("\n") <= 500, f"{p.name}: {text.count(chr(10))} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                assert n <= 80 or (p.name, node.name) in long_ok, f"{p.name}:{node.name} {n}"
