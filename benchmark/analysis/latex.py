"""tables.tex: booktabs tables (headline speedups, final quality, switch-off) of one
SuiteAnalysis, for pasting into a paper. Formats only; nothing is computed here."""

from __future__ import annotations

import numpy as np

from benchmark import __version__
from benchmark.analysis.analyze import SuiteAnalysis
from benchmark.analysis.crossing import UNIT_LABELS
from benchmark.analysis.fmt import distinct, fmt_ci, fmt_delta, fmt_num, fmt_signed, fmt_speedup
from benchmark.analysis.speedup import BASELINE
from benchmark.analysis.tables import cells_by, headline_units, interval_text

_TEX_ESC = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # OT1 text fonts have no < > |: they print as inverted punctuation; math mode has them
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
}


def tex_escape(s: object) -> str:
    return "".join(_TEX_ESC.get(c, c) for c in str(s))


def _table(columns: str, header: str, body: list[str], caption: str) -> list[str]:
    return [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        header,
        "\\midrule",
        *body,
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption}}}",
        "\\end{table}",
        "",
    ]


def _headline_tex(an: SuiteAnalysis) -> list[str]:
    units = headline_units(an)
    body = []
    for (t, arm), by in cells_by(an, "threshold", "arm").items():
        ph = bool(next(iter(by.values())).post_hoc)
        cells = [fmt_speedup(by[u], tex=True) if u in by else "n/a" for u in units]
        dagger = "$^\\dagger$" if ph else ""
        body.append(f"{t:g}{dagger} & {tex_escape(arm)} & " + " & ".join(cells) + " \\\\")
    caption = (
        f"Speedup over baseline in time to test {tex_escape(an.suite.metric)} "
        f"threshold: ratio of mean times over paired seeds [pointwise 95\\% CI: "
        f"{tex_escape(interval_text(an, short=True).split(';')[0])}]. "
        "$\\geq$/$\\leq$: bounded by censoring."
        + (" $^\\dagger$post hoc threshold." if any(an.post_hoc) else "")
    )
    header = "Threshold & Arm & " + " & ".join(tex_escape(UNIT_LABELS[u]) for u in units) + " \\\\"
    return _table("ll" + "c" * len(units), header, body, caption)


def _quality_tex(an: SuiteAnalysis) -> list[str]:
    body = []
    for r in an.quality.itertuples(index=False):
        d = (
            "--" if r.arm == BASELINE
            else fmt_delta(r.delta, r.delta_ci_low, r.delta_ci_high, r.metric)
        )
        body.append(
            f"{tex_escape(r.metric)} & {tex_escape(r.arm)} & {r.n} & "
            f"{fmt_ci(r.mean, r.ci_low, r.ci_high)} & {d} \\\\"
        )
    header = "Metric & Arm & $n$ & Final test [95\\% CI] & $\\Delta$ vs baseline \\\\"
    return _table("llrll", header, body, "Final test quality per arm (mean over seeds).")


def _switch_tex(an: SuiteAnalysis) -> list[str]:
    body = []
    for arm, g in an.switch.groupby("arm", sort=False):
        e = g["switch_epoch"].astype(float)
        shock = g["next_change"].median()
        shock_cell = "n/a" if not np.isfinite(shock) else (
            f"{fmt_signed(shock)} ({fmt_signed(g['baseline_next_change'].median())})"
        )
        body.append(
            f"{tex_escape(arm)} & {int(np.isfinite(e).sum())}/{len(g)} & "
            f"{fmt_num(e.median(), 4)} & "
            f"{distinct(g['teacher_holdout'])} & "
            f"{distinct(g['teacher_test'])} & "
            f"{shock_cell} \\\\"
        )
    header = (
        "Arm & switched & median epoch & teacher holdout & teacher test & "
        "median next change (baseline's) \\\\"
    )
    caption = (
        "Switch-off of distillation and teacher quality. Next change: the test "
        f"{tex_escape(an.suite.metric)} change from the switch-off evaluation to the next "
        "(exploratory), median over the runs that switched off, and the same seeds' "
        "baseline's over the same evaluations."
    )
    return _table("lrrrrr", header, body, caption)


def render_tex(an: SuiteAnalysis) -> str:
    """booktabs tables: headline speedups, final quality, switch-off."""
    out = [
        f"% w2s-bench {__version__} report for suite {tex_escape(an.suite.name)}",
        "% requires \\usepackage{booktabs}",
        "",
    ]
    if len(an.summary):
        out += _headline_tex(an)
    if not an.quality.empty:
        out += _quality_tex(an)
    if not an.switch.empty:
        out += _switch_tex(an)
    return "\n".join(out)
