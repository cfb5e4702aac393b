"""The stylesheet of index.html (inlined into the page by html.py): a readable column on a
laptop screen, wide tables scrolling sideways, and a print layout (A4, tables shrunk, figures
and table rows never split across pages)."""

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
