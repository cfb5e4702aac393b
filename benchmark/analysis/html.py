"""reports/<suite>/index.html: the report as one self-contained page.

Everything is inline (CSS in a <style> element, plots as base64 PNG data URIs), nothing is
fetched and no script runs, so the file can be mailed, archived or opened offline and
renders the same everywhere. The numbers are the same strings report.md shows (the
formatting helpers of report.py), and every speedup cell carries data-arm / data-threshold
/ data-unit attributes so a test can match it against summary.csv. Layout: a readable
column on a laptop screen, wide tables scroll sideways on screen and shrink in print
(@media print), and figures never split across pages.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from benchmark import __version__
from benchmark.analysis.crossing import UNIT_LABELS
from benchmark.analysis.report import (
    _PLOT_NOTES,
    QUALITY_NOTE,
    VERDICT_RULE,
    SuiteAnalysis,
    _thr_label,
    censoring_rows,
    fmt_num,
    fmt_speedup,
    headline_header,
    interval_text,
    quality_rows,
    results_stamp,
    seeds_rows,
    suite_description,
    switch_rows,
    verdict_rows,
    verdict_sentences,
    verdict_table_line,
)

PLOT_TITLES = {
    "map": "Speedup map",
    "sweep": "Threshold sweep",
    "curves": "Learning curves",
    "per_seed": "Per-seed time to the main threshold",
    "km": "Kaplan-Meier: time to the main threshold",
}

CSS = """
:root { --fg: #1a1a1a; --muted: #555; --line: #d0d0d0; --head: #f2f4f7;
        --ok: #0b6e2e; --ok-bg: #e6f4ea; --bad: #a50e0e; --bad-bg: #fce8e6;
        --warn-bg: #fff4d6; --warn-line: #e0a800; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0 auto; padding: 1.5rem 1.5rem 3rem; max-width: 1180px; color: var(--fg);
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; line-height: 1.45; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
     border-bottom: 2px solid var(--line); }
p, li { max-width: 75em; }
.meta { color: var(--muted); font-size: .92rem; }
.description { border-left: 4px solid var(--line); padding: .2rem .8rem; white-space: pre-line; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
              font-size: .88em; }
pre { background: var(--head); padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; }
.banner { border: 2px solid; border-radius: 6px; padding: .7rem 1rem; margin: 1rem 0;
          font-weight: 600; }
.banner.pass { color: var(--ok); background: var(--ok-bg); border-color: var(--ok); }
.banner.fail { color: var(--bad); background: var(--bad-bg); border-color: var(--bad); }
.banner.untested { color: var(--fg); background: var(--warn-bg); border-color: var(--warn-line); }
.banner ul { font-weight: 400; margin: .4rem 0 0; color: var(--fg); }
td.v-sooner { color: var(--ok); background: var(--ok-bg); font-weight: 600; }
td.v-slower { color: var(--bad); background: var(--bad-bg); font-weight: 600; }
.warnings { background: var(--warn-bg); border-left: 6px solid var(--warn-line);
            padding: .6rem 1rem; margin: 1rem 0; }
.warnings.empty { background: var(--head); border-left-color: var(--line); }
.warnings h2 { border: 0; margin: .2rem 0 .4rem; }
.warnings ul { margin: 0; padding-left: 1.2rem; }
.none { color: var(--muted); }
.scroll { overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left;
         vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
#headline td.num { white-space: normal; }
.ci { white-space: nowrap; }
tr.post-hoc td { background: #fbf3ff; }
td.small { font-size: .8rem; max-width: 28em; }
figure { margin: 1rem 0 1.6rem; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3rem; max-width: 75em; }
nav.toc { font-size: .9rem; margin: .6rem 0 0; }
nav.toc a { margin-right: .9rem; color: #1a4fa0; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  html { font-size: 10.5pt; }
  body { max-width: none; padding: 0; }
  nav.toc { display: none; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
  table { font-size: 8pt; width: 100%; }
  th, td { padding: 2px 4px; }
  thead { display: table-header-group; }
  tr, figure, .banner, .warnings { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure img { max-height: 120mm; width: auto; }
  .banner, .warnings, th, tr.post-hoc td { -webkit-print-color-adjust: exact;
                                           print-color-adjust: exact; }
  section.provenance { break-before: page; page-break-before: always; }
}
"""


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


def _verdict_section(an: SuiteAnalysis) -> str:
    """The report's plain-words reading; sooner / slower cells coloured."""
    if not len(an.summary):
        return '<section><h2 id="verdict-h">Verdict</h2><p class="none">n/a</p></section>'
    header, rows = verdict_rows(an)
    attrs = [[{}, {}] + [{"class": f"v-{c}"} if c in ("sooner", "slower") else {} for c in r[2:]]
             for r in rows]
    items = "".join(f"<li><b>{esc(arm)}</b> {esc(x)}</li>" for arm, x in verdict_sentences(an))
    line = verdict_table_line(an)  # every cell 'too few seeds': one line, not a grid of them
    table = (f'<p id="verdict-collapsed">{esc(line)}</p>' if line
             else _table(header, rows, table_id="verdict", cell_attrs=attrs))
    return (
        '<section><h2 id="verdict-h">Verdict</h2>'
        f'<p class="meta">{esc(VERDICT_RULE)}</p>'
        f'<p class="meta" id="interval-method">{esc(interval_text(an))}</p>'
        f'<ul id="verdict-list">{items}</ul>'
        + table
        + _seeds_section(an)
        + "</section>"
    )


def _seeds_section(an: SuiteAnalysis) -> str:
    """The 'How many seeds' table (as in report.md), or nothing when it has no rows."""
    header, rows, note = seeds_rows(an)
    if not rows:
        return ""
    return (f'<h3 id="seeds-h">How many seeds</h3><p class="meta">{esc(note)}</p>'
            + _table(header, rows, table_id="seeds"))


def _headline_table(an: SuiteAnalysis) -> str:
    """Same layout as report.md's headline table; every speedup cell tagged with its key."""
    s = an.summary
    units, header = headline_header(an)
    rows, attrs, classes = [], [], []
    for (t, arm), g in s.groupby(["threshold", "arm"], sort=False):
        by = {r.unit: r for r in g.itertuples(index=False)}
        h = by[an.unit]
        rows.append(
            [
                _thr_label(t, h.post_hoc),
                arm,
                str(h.n_seeds),
                *[_speedup_cell(fmt_speedup(by[u]) if u in by else "n/a") for u in units],
                fmt_num(h.p_sooner, 2),
                fmt_num(h.rmst_ratio),
            ]
        )
        key = {"data-arm": str(arm), "data-threshold": repr(float(t))}
        attrs.append([{}, {}, {}] + [{**key, "data-unit": u} for u in units] + [{}, {}])
        classes.append("post-hoc" if h.post_hoc else "")
    num = set(range(2, len(header)))
    return _table(header, rows, table_id="headline", num=num, row_class=classes, cell_attrs=attrs)


def _summary_table(an: SuiteAnalysis) -> str:
    """Every row of summary.csv (4 significant digits), for readers who want all units."""
    s = an.summary
    header = [
        "threshold", "arm", "unit", "n", "censored arm/base", "bound", "point", "CI low",
        "CI high", "mean time arm", "mean time base", "P(arm sooner)", "RMST ratio", "notes",
    ]  # fmt: skip
    rows = [
        [
            _thr_label(r.threshold, r.post_hoc),
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


def _censoring_table(an: SuiteAnalysis) -> str:
    header, rows = censoring_rows(an)
    return _table(header, rows, table_id="censoring", num=set(range(4, 10)))


def _quality_table(an: SuiteAnalysis) -> str:
    if an.quality.empty:
        return '<p class="none">No test evaluations.</p>'
    header, rows = quality_rows(an)
    return _table(header, rows, table_id="quality", num={2, 3, 4})


def _switch_table(an: SuiteAnalysis) -> str:
    if an.switch.empty:
        return '<p class="none">No arm distils.</p>'
    header, rows = switch_rows(an)
    return _table(header, rows, table_id="switch", num={2, 3, 4, 5, 6}) + (
        '<p class="meta">Medians are over runs that switched off; "never" = no switch_off '
        "event.</p>"
    )


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


def render_html(
    an: SuiteAnalysis, report_dir: Path, plots: dict[str, str], *, regenerate: str = ""
) -> str:
    """The page as a string. plots: figure key -> PNG file name inside report_dir (as
    written by report.write_suite_report); each is inlined as a data URI."""
    su = an.suite
    o = an.options
    direction = "higher is better" if su.direction == "higher" else "lower is better"
    pre = [t for t, ph in zip(an.thresholds, an.post_hoc) if not ph]
    ph = [t for t, p in zip(an.thresholds, an.post_hoc) if p]
    stamp = results_stamp(su)  # a time from the results, not the clock: no churn on rerun
    n_status = su.runs["status"].value_counts().to_dict()
    arms = [a for a in su.arms if a in set(su.runs["arm"])]
    seeds_per_arm = su.runs.groupby("arm")["seed"].nunique().to_dict()
    rule = f"first test evaluation with {su.metric} {'>=' if su.direction == 'higher' else '<='} "
    rule += "threshold"
    if o["sustained"] > 1:
        rule += f", sustained for {o['sustained']} consecutive evaluations"
    if o["interpolate"]:
        rule += ", linearly interpolated between the bracketing evaluations"

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>w2s-bench report: {esc(su.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>w2s-bench report: {esc(su.name)}</h1>",
        (f'<p class="description">{esc(desc)}</p>' if (desc := suite_description(su)) else ""),
        _health_block(an),
        '<p class="meta">'
        f"Results as of {esc(stamp['results_as_of'])} (end of the last finished run; fingerprint "
        f"<code>{esc(stamp['results_fingerprint'])}</code>), reported by w2s-bench "
        f"{esc(__version__)} from <code>{esc(su.path)}</code> "
        f"(suite sha256 <code>{esc(su.lock.get('suite_sha256', '?'))}</code>, locked "
        f"{esc(su.lock.get('created', '?'))}).<br>"
        f"Target metric: test <b>{esc(su.metric)}</b> ({direction}). Pre-registered thresholds: "
        f"{esc(', '.join(f'{t:g}' for t in pre) or 'none')}."
        + (
            " <b>Post hoc thresholds</b> (not in the lock): "
            + esc(", ".join(f"{t:g}" for t in ph))
            + "."
            if ph
            else ""
        )
        + f"<br>Runs: {len(su.runs)} ("
        + esc(", ".join(f"{v} {k}" for k, v in n_status.items()))
        + "); arms (seeds): "
        + esc(", ".join(f"{a} ({seeds_per_arm.get(a, 0)})" for a in arms))
        + f". Crossing rule: {esc(rule)}.</p>",
        '<nav class="toc"><a href="#verdict-h">Verdict</a><a href="#headline-h">Headline</a><a href="#censoring-h">Censoring</a>'
        '<a href="#quality-h">Final quality</a><a href="#switch-h">Switch-off</a>'
        '<a href="#plots-h">Plots</a><a href="#health-h">Health check</a>'
        '<a href="#summary-h">All numbers</a><a href="#provenance-h">Provenance</a></nav>',
        "</header><main>",
        f'<section class="warnings{"" if an.warnings else " empty"}" id="warnings">'
        "<h2>Warnings</h2>"
        + (
            "<ul>" + "".join(f"<li>{esc(w)}</li>" for w in an.warnings) + "</ul>"
            if an.warnings
            else '<p class="none">none</p>'
        )
        + "</section>",
        _verdict_section(an),
        '<section><h2 id="headline-h">Headline: speedup over baseline</h2>',
        "<p>Speedup = mean(baseline time to threshold) / mean(arm time to threshold) over seeds "
        f"paired by seed value (&gt; 1: the arm gets there sooner). [95% CI]: "
        f"{esc(interval_text(an, short=True))}. "
        "FLOPs include the teacher's forward passes; “FLOPs + teacher training” also charges "
        "the teacher's training cost. “&gt;= x”: some baseline runs never reached the "
        "threshold (censored), so the true speedup is at least x; “&lt;= x”: some arm runs "
        "were censored; “~ x”: both were (see the restricted mean ratio). Shaded rows: post hoc "
        "thresholds.</p>",
        _headline_table(an)
        if len(an.summary)
        else '<p class="none">No speedups (no baseline or no other arm).</p>',
        "</section>",
        f'<section><h2 id="censoring-h">Censoring and restricted mean time '
        f"({esc(UNIT_LABELS[an.unit])})</h2>",
        "<p>A run that never reaches a threshold is censored at its budget (epochs/steps, for "
        "complete runs) or at its last evaluation; it is never dropped. tau = the smallest "
        "horizon among the paired complete runs.</p>",
        _censoring_table(an) if len(an.summary) else '<p class="none">n/a</p>',
        "</section>",
        '<section><h2 id="quality-h">Final quality</h2>',
        f"<p>{esc(QUALITY_NOTE)}</p>",
        _quality_table(an),
        "</section>",
        '<section><h2 id="switch-h">Switch-off</h2>',
        _switch_table(an),
        "</section>",
        '<section><h2 id="plots-h">Plots</h2>',
    ]
    for key in ("map", "sweep", "curves", "per_seed", "km"):
        if key in plots:
            title = PLOT_TITLES[key]
            parts.append(f"<h3>{esc(title)}</h3>")
            parts.append(_figure(Path(report_dir) / plots[key], title, _PLOT_NOTES[key](an)))
    if not plots:
        parts.append('<p class="none">No plots.</p>')
    parts.append("</section>")
    parts.append('<section><h2 id="health-h">Baseline health check</h2>')
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
        f"<pre>{esc(regenerate)}</pre>",
        _provenance_table(an),
        _teachers_table(an),
        "</section></main></body></html>",
    ]
    return "\n".join(parts)
