"""reports/<suite>/index.html: the report as one self-contained page.

Everything is inline (CSS in a <style> element, plots as base64 PNG data URIs), nothing is
fetched and no script runs, so the file can be mailed, archived or opened offline and
renders the same everywhere. The tables are the very rows report.md shows (tables.py builds
them once for both), and every speedup cell carries data-arm / data-threshold
/ data-unit attributes so a test can match it against summary.csv. Layout: a readable
column on a laptop screen, wide tables scroll sideways on screen and shrink in print
(@media print), and figures never split across pages.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from benchmark import __version__
from benchmark.analysis.analyze import SuiteAnalysis
from benchmark.analysis.crossing import UNIT_LABELS
from benchmark.analysis.figures import PLOT_NOTES, PLOT_TITLES
from benchmark.analysis.fmt import fmt_num, thr_label
from benchmark.analysis.html_style import CSS
from benchmark.analysis.quality import QUALITY_NOTE, RUNS_NOTE, SWITCH_NOTE
from benchmark.analysis.speedup import VERDICT_RULE
from benchmark.analysis.tables import SPEEDUP_COL, HeadlineTable, ReportTables, build_tables


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


class _Raw(str):
    """Cell content that is already HTML (built from escaped parts)."""


def _speedup_cell(text: str) -> _Raw:
    """'2.00x [1.80, 2.40]' with the bracket kept on one line, so a narrow screen wraps the
    cell between the point and its interval instead of scrolling (the text is unchanged)."""
    head, sep, rest = text.partition(" ")
    if not sep:
        return _Raw(esc(text))
    if head in (">=", "<=", "~"):
        h2, sep, rest = rest.partition(" ")
        head = f"{head} {h2}"
    return _Raw(esc(head) + (f' <span class="ci">{esc(rest)}</span>' if sep else ""))


def _table(
    header: list[str],
    rows: list[list[object]],
    *,
    table_id: str = "",
    num: set[int] | None = None,
    row_class: list[str] | None = None,
    cell_attrs: list[list[dict[str, str]]] | None = None,
) -> str:
    """An HTML table; cells are escaped text. num: column indices right-aligned (numbers)."""
    num = num or set()
    tid = f' id="{esc(table_id)}"' if table_id else ""
    out = [f'<div class="scroll"><table{tid}><thead><tr>']
    out += [f"<th>{esc(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for i, r in enumerate(rows):
        cls = row_class[i] if row_class and row_class[i] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        for j, c in enumerate(r):
            attrs = cell_attrs[i][j] if cell_attrs and cell_attrs[i] else {}
            a = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items())
            klass = ' class="num"' if j in num else ""
            body = c if isinstance(c, _Raw) else esc(c)
            out.append(f"<td{klass}{a}>{body}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _verdict_section(an: SuiteAnalysis, t: ReportTables) -> str:
    """The report's plain-words reading; sooner / slower cells coloured."""
    if t.verdict is None:
        return '<section><h2 id="verdict-h">Verdict</h2><p class="none">n/a</p></section>'
    rows = t.verdict.rows
    attrs = [[{}, {}] + [{"class": f"v-{c}"} if c in ("sooner", "slower") else {} for c in r[2:]]
             for r in rows]
    items = "".join(f"<li><b>{esc(arm)}</b> {esc(x)}</li>" for arm, x in t.sentences)
    line = t.verdict_line  # every cell 'too few seeds': one line, not a grid of them
    table = (f'<p id="verdict-collapsed">{esc(line)}</p>' if line
             else _table(t.verdict.header, rows, table_id="verdict", cell_attrs=attrs))
    return (
        '<section><h2 id="verdict-h">Verdict</h2>'
        f'<p class="meta">{esc(VERDICT_RULE)}</p>'
        f'<p class="meta" id="interval-method">{esc(t.interval)}</p>'
        f'<ul id="verdict-list">{items}</ul>'
        + table
        + _seeds_section(t)
        + "</section>"
    )


def _seeds_section(t: ReportTables) -> str:
    """The 'How many seeds' table (as in report.md), or nothing when it has no rows."""
    if t.seeds is None:
        return ""
    return (f'<h3 id="seeds-h">How many seeds</h3><p class="meta">{esc(t.seeds_note)}</p>'
            + _table(t.seeds.header, t.seeds.rows, table_id="seeds"))


def _headline_table(h: HeadlineTable) -> str:
    """report.md's headline table, the same rows; every speedup cell tagged with its key."""
    speed = range(SPEEDUP_COL, SPEEDUP_COL + len(h.units))
    rows, attrs = [], []
    for row, (t, arm) in zip(h.rows, h.keys):
        rows.append([_speedup_cell(c) if j in speed else c for j, c in enumerate(row)])
        key = {"data-arm": str(arm), "data-threshold": repr(float(t))}
        attrs.append([{}] * SPEEDUP_COL + [{**key, "data-unit": u} for u in h.units] + [{}, {}])
    classes = ["post-hoc" if ph else "" for ph in h.post_hoc]
    num = set(range(2, len(h.header)))
    return _table(h.header, rows, table_id="headline", num=num, row_class=classes,
                  cell_attrs=attrs)


def _summary_table(an: SuiteAnalysis) -> str:
    """Every row of summary.csv (4 significant digits), for readers who want all units."""
    s = an.summary
    header = [
        "threshold", "arm", "unit", "n", "censored arm/base", "bound", "point", "CI low",
        "CI high", "mean time arm", "mean time base", "P(arm sooner)", "RMST ratio", "notes",
    ]  # fmt: skip
    rows = [
        [
            thr_label(r.threshold, r.post_hoc),
            r.arm,
            UNIT_LABELS.get(r.unit, r.unit),
            r.n_seeds,
            f"{r.n_censored_arm} / {r.n_censored_base}",
            r.bound or "exact",
            fmt_num(r.point, 4),
            fmt_num(r.ci_low, 4),
            fmt_num(r.ci_high, 4),
            fmt_num(r.mean_time_arm, 4),
            fmt_num(r.mean_time_base, 4),
            fmt_num(r.p_sooner, 2),
            fmt_num(r.rmst_ratio, 4),
            r.notes,
        ]
        for r in s.itertuples(index=False)
    ]
    return _table(header, rows, table_id="summary", num={3, 6, 7, 8, 9, 10, 11, 12})


def _censoring_table(t: ReportTables) -> str:
    if t.censoring is None:
        return '<p class="none">n/a</p>'
    return _table(t.censoring.header, t.censoring.rows, table_id="censoring",
                  num=set(range(4, 10)))


def _quality_table(t: ReportTables) -> str:
    if t.quality is None:
        return '<p class="none">No test evaluations.</p>'
    return _table(t.quality.header, t.quality.rows, table_id="quality", num={2, 3, 4})


def _switch_table(t: ReportTables) -> str:
    if t.switch is None:
        return '<p class="none">No arm distils.</p>'
    return (_table(t.switch.header, t.switch.rows, table_id="switch", num={2, 3, 4, 5, 6})
            + f'<p class="meta">{esc(SWITCH_NOTE)}</p>')


def _health_block(an: SuiteAnalysis) -> str:
    h = an.health
    if h is None:
        return (
            '<p class="meta" id="health-none">Baseline health check: not run (the suite names '
            "no reference; build one with <code>w2s-bench reference build</code>).</p>"
        )
    # NOT TESTED (a check without power) gets the warning colours, never the pass green
    cls = "pass" if h.passed else ("fail" if h.failed else "untested")
    notes = "".join(f"<li>{esc(n)}</li>" for n in h.notes)
    return (
        f'<div class="banner {cls}" id="health">{esc(h.headline())}'
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</div>"
    )


def _health_table(an: SuiteAnalysis) -> str:
    t = an.health.tests
    if t.empty:
        return ""
    header = [
        "check", "n new", "n reference", "censored new / ref", "median new", "median reference",
        "Gehan statistic", "one-sided p", "smallest possible p", "Holm level", "rejects",
    ]  # fmt: skip
    rows = [
        [
            r.check,
            r.n_new,
            r.n_ref,
            f"{r.n_censored_new} / {r.n_censored_ref}",
            fmt_num(r.median_new, 4),
            fmt_num(r.median_ref, 4),
            fmt_num(r.statistic, 3),
            fmt_num(r.p, 3),
            fmt_num(r.p_min, 3),
            fmt_num(r.level, 3),
            "yes" if r.reject else "no",
        ]
        for r in t.itertuples(index=False)
    ]
    return _table(header, rows, table_id="health-tests", num=set(range(1, 10)))


def _provenance_table(an: SuiteAnalysis) -> str:
    header = [
        "run id", "arm", "seed", "status", "git sha", "dirty", "device", "torch", "python",
        "threads", "host", "started", "ended", "resumed", "lost wall s", "teacher", "evals",
    ]  # fmt: skip
    rows = [
        [
            r.run_id,
            r.arm,
            r.seed,
            r.status,
            str(r.git_sha or "?")[:12],
            r.git_dirty,
            r.device,
            r.torch_version,
            r.python_version,
            r.threads,
            r.host,
            r.started,
            r.ended,
            r.resumed,
            r.lost_wall_s,
            r.teacher_id or "-",
            r.n_evals,
        ]
        for r in an.suite.runs.itertuples(index=False)
    ]
    return _table(header, rows, table_id="provenance", num={2, 9, 13, 14, 16})


def _teachers_table(an: SuiteAnalysis) -> str:
    if not an.suite.teachers:
        return ""
    header = ["teacher id", "name", "model", "source", "holdout", "test", "cost"]
    rows = []
    builds = [(tid, b, f" (build {i + 1}, superseded)") for tid, t in an.suite.teachers.items()
              for i, b in enumerate(t.get("superseded") or [])]
    builds += [(tid, t, f" (build {t.get('generation', len(t['superseded']) + 1)})" if t.get("superseded") else "")
               for tid, t in an.suite.teachers.items()]
    for tid, t, label in sorted(builds, key=lambda x: x[0]):
        m = t.get("metrics") or {}
        cost = t.get("cost") or {}
        rows.append(
            [
                tid + label,
                t.get("name", ""),
                t.get("model", ""),
                t.get("source", ""),
                ", ".join(f"{k}={fmt_num(v, 4)}" for k, v in (m.get("holdout") or {}).items()),
                ", ".join(f"{k}={fmt_num(v, 4)}" for k, v in (m.get("test") or {}).items()),
                ", ".join(f"{k}={fmt_num(v, 4)}" for k, v in cost.items()),
            ]
        )
    return _table(header, rows, table_id="teachers")


def _figure(path: Path, title: str, notes: list[str]) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = " ".join(n for n in notes if n)
    return (
        f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(cap)}</figcaption></figure>"
    )


def _meta_html(an: SuiteAnalysis, t: ReportTables) -> str:
    """What the report is made from: results, metric, thresholds, runs, crossing rule."""
    su, o = an.suite, an.options
    direction = "higher is better" if su.direction == "higher" else "lower is better"
    pre = [x for x, ph in zip(an.thresholds, an.post_hoc) if not ph]
    ph = [x for x, p in zip(an.thresholds, an.post_hoc) if p]
    n_status = su.runs["status"].value_counts().to_dict()
    seeds_per_arm = su.runs.groupby("arm")["seed"].nunique().to_dict()
    rule = f"first test evaluation with {su.metric} {'>=' if su.direction == 'higher' else '<='} "
    rule += "threshold"
    if o.sustained > 1:
        rule += f", sustained for {o.sustained} consecutive evaluations"
    if o.interpolate:
        rule += ", linearly interpolated between the bracketing evaluations"
    return (
        '<p class="meta">'
        f"Results as of {esc(t.stamp['results_as_of'])} (end of the last finished run; fingerprint "
        f"<code>{esc(t.stamp['results_fingerprint'])}</code>), reported by w2s-bench "
        f"{esc(__version__)} from <code>{esc(su.path)}</code> "
        f"(suite sha256 <code>{esc(su.lock.get('suite_sha256', '?'))}</code>, locked "
        f"{esc(su.lock.get('created', '?'))}).<br>"
        f"Target metric: test <b>{esc(su.metric)}</b> ({direction}). Pre-registered thresholds: "
        f"{esc(', '.join(f'{x:g}' for x in pre) or 'none')}."
        + (" <b>Post hoc thresholds</b> (not in the lock): "
           + esc(", ".join(f"{x:g}" for x in ph)) + "." if ph else "")
        + f"<br>Runs: {len(su.runs)} ("
        + esc(", ".join(f"{v} {k}" for k, v in n_status.items()))
        + "); arms (seeds): "
        + esc(", ".join(f"{a} ({seeds_per_arm.get(a, 0)})" for a in an.arms))
        + f". Crossing rule: {esc(rule)}.</p>"
    )  # fmt: skip


NAV = (
    '<nav class="toc"><a href="#verdict-h">Verdict</a><a href="#headline-h">Headline</a>'
    '<a href="#censoring-h">Censoring</a>'
    '<a href="#quality-h">Final quality</a><a href="#switch-h">Switch-off</a><a href="#runs-h">Runs</a>'
    '<a href="#plots-h">Plots</a><a href="#health-h">Health check</a>'
    '<a href="#summary-h">All numbers</a><a href="#provenance-h">Provenance</a></nav>'
)
HEADLINE_NOTE = (
    "<p>Speedup = mean(baseline time to threshold) / mean(arm time to threshold) over seeds "
    "paired by seed value (&gt; 1: the arm gets there sooner). [95% CI]: "
    "{interval}. "
    "FLOPs include the teacher's forward passes; “… + teacher training” also charges "
    "the teacher's training cost (its seconds: on the machine that trained it, from its "
    "teacher.json). “&gt;= x”: some baseline runs never reached the "
    "threshold (censored), so the true speedup is at least x; “&lt;= x”: some arm runs "
    "were censored; “~ x”: both were (see the restricted mean ratio). Shaded rows: post hoc "
    "thresholds.</p>"
)


def _head_html(an: SuiteAnalysis, t: ReportTables) -> list[str]:
    su = an.suite
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>w2s-bench report: {esc(su.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>w2s-bench report: {esc(su.name)}</h1>",
        (f'<p class="description">{esc(t.description)}</p>' if t.description else ""),
        _health_block(an),
        _meta_html(an, t),
        NAV,
        "</header><main>",
        f'<section class="warnings{"" if an.warnings else " empty"}" id="warnings">'
        "<h2>Warnings</h2>"
        + (
            "<ul>" + "".join(f"<li>{esc(w)}</li>" for w in an.warnings) + "</ul>"
            if an.warnings
            else '<p class="none">none</p>'
        )
        + "</section>",
    ]


def _tables_html(an: SuiteAnalysis, t: ReportTables) -> list[str]:
    return [
        _verdict_section(an, t),
        '<section><h2 id="headline-h">Headline: speedup over baseline</h2>',
        HEADLINE_NOTE.format(interval=esc(t.interval_short)),
        _headline_table(t.headline)
        if t.headline
        else '<p class="none">No speedups (no baseline or no other arm).</p>',
        "</section>",
        f'<section><h2 id="censoring-h">Censoring and restricted mean time '
        f"({esc(UNIT_LABELS[an.unit])})</h2>",
        "<p>A run that never reaches a threshold is censored at its budget (epochs/steps, for "
        "complete runs) or at its last evaluation; it is never dropped. tau = the smallest "
        "horizon among the paired complete runs.</p>",
        _censoring_table(t),
        "</section>",
        '<section><h2 id="quality-h">Final quality</h2>',
        f"<p>{esc(QUALITY_NOTE)}</p>",
        _quality_table(t),
        "</section>",
        '<section><h2 id="switch-h">Switch-off</h2>',
        _switch_table(t),
        "</section>",
        '<section><h2 id="runs-h">Runs</h2>',
        f"<p>{esc(RUNS_NOTE)}</p>",
        _table(t.runs.header, t.runs.rows, table_id="runs", num={2, 3, 4, 5, 6})
        if t.runs else '<p class="none">No runs.</p>',
        "</section>",
    ]


def _plots_html(an: SuiteAnalysis, report_dir: Path, plots: dict[str, str]) -> list[str]:
    parts = ['<section><h2 id="plots-h">Plots</h2>']
    for key, title in PLOT_TITLES.items():
        if key in plots:
            parts.append(f"<h3>{esc(title)}</h3>")
            parts.append(_figure(Path(report_dir) / plots[key], title, PLOT_NOTES[key](an)))
    if not plots:
        parts.append('<p class="none">No plots.</p>')
    parts.append("</section>")
    return parts


def _health_section(an: SuiteAnalysis) -> list[str]:
    parts = ['<section><h2 id="health-h">Baseline health check</h2>']
    if an.health is None:
        parts.append(_health_block(an))
    else:
        parts.append(
            "<p>One-sided tests that the new baseline is not slower to each pre-registered "
            "threshold and not worse at the end than the reference runs: Gehan's generalized "
            "Wilcoxon statistic (censoring-aware Mann-Whitney), permutation p-value, Holm "
            f"adjustment to a family level of {esc(an.health.alpha)}. Times in "
            f"{esc(UNIT_LABELS.get(an.health.unit, an.health.unit))}; medians over runs that "
            "reached the threshold. Reference: "
            f"<code>{esc(an.health.reference)}</code>.</p>"
        )
        parts.append(_health_table(an))
    parts.append("</section>")
    return parts


def render_html(
    an: SuiteAnalysis, report_dir: Path, plots: dict[str, str], tables: ReportTables | None = None
) -> str:
    """The page as a string. plots: figure key -> PNG file name inside report_dir (as
    written by writers.write_suite_report); each is inlined as a data URI. tables: the
    report's tables (tables.build_tables), shared with report.md; built here (for a report
    whose --out is report_dir's parent) when not given."""
    t = tables if tables is not None else build_tables(an, Path(report_dir).parent)
    parts = _head_html(an, t) + _tables_html(an, t) + _plots_html(an, report_dir, plots)
    parts += _health_section(an)
    parts += [
        '<section><h2 id="summary-h">All numbers (summary.csv)</h2>',
        "<p>One row per arm × threshold × unit, 4 significant digits; the CSV beside this file "
        "has full precision, <code>crossings.csv</code> the per-run times and "
        "<code>evaluations.csv</code> every raw evaluation.</p>",
        _summary_table(an)
        if len(an.summary)
        else '<p class="none">No speedups (no baseline or no other arm).</p>',
        "</section>",
        '<section class="provenance"><h2 id="provenance-h">Provenance</h2>',
        "<p>Regenerate with:</p>",
        f"<pre>{esc(t.regenerate)}</pre>",
        _provenance_table(an),
        _teachers_table(an),
        "</section></main></body></html>",
    ]
    return "\n".join(parts)
