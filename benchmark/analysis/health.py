"""Baseline health check: is the new baseline trained as well as a stored reference?

A speedup over a handicapped baseline is no speedup. MLPerf Training guards against this
with reference convergence points; here a *reference* (suites/reference/<suite>.json, built
by ``w2s-bench reference build``) stores, from complete baseline runs, each run's time to
every pre-registered threshold (epochs, steps, FLOPs; censored at the budget when never
reached) and its final test value. ``check_baseline`` tests the new baseline runs against it:

* one test per pre-registered threshold: H0 "new and reference times to threshold have the
  same distribution" against H1 "the new baseline is slower" (one-sided);
* one test on the final test value: H1 "the new baseline ends worse".

Each test is Gehan's generalized Wilcoxon (Mann-Whitney) statistic, which handles
right-censored times (Gehan 1965, Biometrika 52:203): every (new, reference) pair scores +1
when the new run is certainly slower, -1 when certainly faster, 0 when undecidable (a tie,
or censoring hides the order); without censoring it is the Mann-Whitney U statistic (shifted).
Its p-value comes from the permutation distribution of the group labels, enumerated
exactly when there are at most ``MAX_EXACT`` splits, else ``MC_REPS`` random permutations
from an explicit generator. The family of tests is Holm-adjusted (Holm 1979) so the whole
check has level ``alpha``: FAIL when any test rejects H0.

With few seeds the check has low power: with n new and m reference runs the smallest
possible p is 1 / C(n + m, n) (0.05 for 3 vs 3), so only a slowdown in which every new run
is slower than every reference run can fail it. The report prints the sample sizes and says
so. A PASS therefore means "no evidence of a worse baseline", not proof of equivalence; and
where even that extreme cannot reach the Holm level (e.g. 2 vs 2 runs: p >= 1/6), the check
cannot fail at all and reads NOT TESTED, never PASS.

Pure functions; the reference (reference.py) is written by the CLI (``reference build``),
the check's result is written with the report (writers.py).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.crossing import UNIT_LABELS, time_to_threshold
from benchmark.analysis.load import ResultsError, SuiteData
from benchmark.analysis.reference import (  # noqa: F401  (re-exported: the CLI and tests use them)
    BASELINE,
    REFERENCE_FORMAT,
    REFERENCE_UNITS,
    REFERENCE_VERSION,
    build_reference,
    evals_of,
    final_values,
    find_reference,
    protocol_sha256,
    read_reference,
    write_reference,
)

DEFAULT_ALPHA = 0.05
MAX_EXACT = 200_000  # enumerate every split of the pooled sample up to this many
MC_REPS = 20_000
LOW_POWER_N = 5  # below this many runs on either side the report calls the check low-power


# --------------------------------------------------------------------------- statistics


def gehan_scores(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-subject Gehan scores of a pooled sample (larger = worse).

    x:        (N,) float, value where larger is worse (a time to threshold, or a badness);
              for censored subjects, the censoring time (the true value is > x).
    observed: (N,) bool, False = right-censored.
    returns   (N,) float: score_i = #{j: i certainly worse than j} - #{j: i certainly better}.

    i is certainly worse than j when j is observed and x_i > x_j, or when i is censored and
    j observed with x_i >= x_j (i's true value exceeds x_i >= x_j). Ties between observed
    values and orders hidden by censoring count 0. The scores sum to 0.
    """
    x = np.asarray(x, dtype=float)
    obs = np.asarray(observed, dtype=bool)
    xi, xj = x[:, None], x[None, :]
    worse = obs[None, :] & ((xi > xj) | (~obs[:, None] & (xi >= xj)))
    return worse.sum(axis=1).astype(float) - worse.sum(axis=0).astype(float)


def permutation_pvalue(
    scores: np.ndarray, n_new: int, rng: np.random.Generator
) -> tuple[float, float, bool]:
    """One-sided p-value of S = sum of the first n_new scores, large S = new group worse.

    scores: (N,) pooled per-subject scores, the n_new new subjects first.
    rng:    used only when the split count exceeds MAX_EXACT (Monte Carlo).
    returns (p, p_min, exact): p = P(S_perm >= S_obs) under random relabelling; p_min = the
            smallest p any data of these sizes could give, 1 / C(N, n_new) (exact) or
            1 / (MC_REPS + 1) (Monte Carlo, with the usual +1 correction).
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if not 0 < n_new < n:
        return float("nan"), float("nan"), True
    obs = scores[:n_new].sum()
    total = math.comb(n, n_new)
    tol = 1e-9
    if total <= MAX_EXACT:
        combos = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(range(n), n_new)),
            dtype=np.int64,
            count=total * n_new,
        ).reshape(total, n_new)
        perm = scores[combos].sum(axis=1)
        return float((perm >= obs - tol).mean()), 1.0 / total, True
    perm = np.array([scores[rng.permutation(n)[:n_new]].sum() for _ in range(MC_REPS)])
    p = (1.0 + (perm >= obs - tol).sum()) / (MC_REPS + 1.0)
    return float(p), 1.0 / (MC_REPS + 1.0), False


def holm_reject(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure (Holm 1979, Scand J Stat 6:65).

    p: (m,) p-values (NaN = not tested, never rejected).
    returns (reject (m,) bool, level (m,) float: the per-test level alpha / (m - rank) it was
            compared with; family-wise error rate <= alpha).
    """
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    m = int(ok.sum())
    reject = np.zeros(len(p), dtype=bool)
    level = np.full(len(p), np.nan)
    idx = np.flatnonzero(ok)[np.argsort(p[ok], kind="stable")]
    going = True
    for rank, i in enumerate(idx):
        level[i] = alpha / (m - rank)
        if going and p[i] <= level[i]:
            reject[i] = True
        else:
            going = False
    return reject, level



# --------------------------------------------------------------------------- the check


@dataclass
class HealthResult:
    """Outcome of check_baseline.

    status:  "PASS", "FAIL", or "NOT TESTED" (no test could reject: the smallest attainable
             p of every test exceeds its Holm level, so a slower baseline would go unseen).
    tests:   one row per test: check, threshold (NaN for the final value), unit, n_new, n_ref,
             n_censored_new, n_censored_ref, median_new, median_ref, statistic, p, p_min,
             exact, level (Holm), reject.
    reasons: why it failed (empty on PASS); notes: caveats (low power, protocol changed).
    """

    status: str
    reference: str
    alpha: float
    unit: str
    n_new: int
    n_ref: int
    tests: pd.DataFrame
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def to_json(self) -> str:
        """health.json: the verdict for machines (CI reads status)."""
        return json.dumps(
            {
                "status": self.status,
                "headline": self.headline(),
                "reference": self.reference,
                "alpha": self.alpha,
                "unit": self.unit,
                "n_new": self.n_new,
                "n_ref": self.n_ref,
                "reasons": self.reasons,
                "notes": self.notes,
            },
            indent=2,
        )

    def headline(self) -> str:
        """The one-line verdict printed at the top of report.md and index.html."""
        sizes = f"new n={self.n_new} vs reference n={self.n_ref}"
        if self.status == NOT_TESTED:
            return (
                f"Baseline health check: NOT TESTED ({self.n_new} new and {self.n_ref} reference "
                f"runs: too few to detect a slower baseline; even every new run slower than "
                f"every reference run would not reach the Holm level {self.alpha:g}): run more "
                f"seeds. Reference: {self.reference}."
            )
        if self.passed:
            return (
                f"Baseline health check: PASS ({sizes}; one-sided Gehan-Wilcoxon permutation "
                f"tests, Holm-adjusted family level {self.alpha:g}): the new baseline is not "
                f"significantly slower to any threshold ({UNIT_LABELS.get(self.unit, self.unit)}) "
                f"nor worse at the end than {self.reference}."
            )
        return f"Baseline health check: FAIL ({sizes}; reference {self.reference}): " + "; ".join(
            self.reasons
        )


NOT_TESTED = "NOT TESTED"

TEST_COLUMNS = [
    "check", "threshold", "unit", "n_new", "n_ref", "n_censored_new", "n_censored_ref",
    "median_new", "median_ref", "statistic", "p", "p_min", "exact", "level", "reject",
]  # fmt: skip


def _fail(reference: str, alpha: float, unit: str, reason: str, n_new=0, n_ref=0) -> HealthResult:
    return HealthResult(
        "FAIL", reference, alpha, unit, n_new, n_ref, pd.DataFrame(columns=TEST_COLUMNS), [reason]
    )




def _ref_times(ref_runs: list[dict], unit: str, t: float) -> tuple[np.ndarray, np.ndarray]:
    """The reference runs' (times, reached) to threshold t in unit."""
    ref_x, ref_o = [], []
    for r in ref_runs:
        hit = [
            e
            for e in r["time_to_threshold"]
            if e["unit"] == unit and math.isclose(float(e["threshold"]), t)
        ]
        if hit and hit[0]["time"] is not None:
            ref_x.append(float(hit[0]["time"]))
            ref_o.append(bool(hit[0]["reached"]))
    return np.array(ref_x, dtype=float), np.array(ref_o, dtype=bool)


def _threshold_rows(suite, runs, ref, thr: list[float], unit: str, seed: int) -> list[dict]:
    """One test row per threshold: new vs reference times (censoring-aware)."""
    if not thr:
        return []
    rule = ref.get("crossing_rule") or {}
    cross = time_to_threshold(
        evals_of(suite, runs),
        runs,
        suite.metric,
        suite.direction,
        thr,
        [unit],
        interpolate=bool(rule.get("interpolate", False)),
        sustained=int(rule.get("sustained", 1)),
    )
    rows = []
    for t in thr:
        c = cross[cross["threshold"] == t]
        new_x, new_o = c["time"].to_numpy(float), c["event"].to_numpy(bool)
        ref_x, ref_o = _ref_times(ref["runs"], unit, t)
        name = f"time to {t:g} ({UNIT_LABELS.get(unit, unit)})"
        rows.append(_test_row(name, t, unit, new_x, new_o, ref_x, ref_o, seed))
    return rows


def _final_row(suite, done, ref_runs, seed: int) -> dict:
    """The final-value test row. Badness = -value when higher is better; NaN (diverged) =
    worst; the medians are reported back in the metric's own sign."""
    sign = -1.0 if suite.direction == "higher" else 1.0
    fv = final_values(suite, list(done["run_id"]))
    new_v = np.array([fv[r] for r in done["run_id"]], dtype=float)
    ref_v = np.array(
        [np.nan if r.get("final_value") is None else r["final_value"] for r in ref_runs],
        dtype=float,
    )
    new_b = np.where(np.isfinite(new_v), sign * new_v, np.inf)
    ref_b = np.where(np.isfinite(ref_v), sign * ref_v, np.inf)
    row = _test_row(
        f"final test {suite.metric}",
        np.nan,
        "",
        new_b,
        np.ones(len(new_b), bool),
        ref_b,
        np.ones(len(ref_b), bool),
        seed,
    )
    row["median_new"] = sign * row["median_new"] if np.isfinite(row["median_new"]) else np.nan
    row["median_ref"] = sign * row["median_ref"] if np.isfinite(row["median_ref"]) else np.nan
    return row


def _context_notes(suite, ref, thr: list[float]) -> list[str]:
    """Caveats about the reference itself: another suite, another protocol, thresholds it
    does not store."""
    notes: list[str] = []
    if ref.get("suite") != suite.name:
        notes.append(f"reference was built for suite {ref.get('suite')!r}, not {suite.name!r}")
    proto = protocol_sha256(suite)
    if ref.get("protocol_sha256") and proto and ref["protocol_sha256"] != proto:
        notes.append(
            "the locked protocol (targets, seeds, recipe) differs from the reference's: the "
            "recipe changed since the reference was built"
        )
    missing = [t for t in suite.thresholds if t not in thr]
    if missing:
        notes.append(
            "thresholds not in the reference, not checked: " + ", ".join(f"{t:g}" for t in missing)
        )
    return notes


def _power_note(tests: pd.DataFrame, alpha: float, n_new: int, n_ref: int) -> tuple[bool, str]:
    """(powerless, note). Holm's first step compares the smallest of the m p-values with
    alpha / m and stops there if it is larger: when no test can attain p <= alpha / m (p_min
    = 1 / C(n + m_ref, n) for a permutation test), nothing can be rejected whatever the data."""
    p_min = tests["p_min"].astype(float)
    m = int(np.isfinite(tests["p"].astype(float)).sum())
    powerless = m == 0 or bool((p_min[np.isfinite(p_min)] > alpha / m).all())
    if powerless:
        return True, (
            f"NO POWER: with n={n_new} new and n={n_ref} reference runs the smallest attainable "
            f"p ({p_min.min():.3g}) exceeds every Holm level, so this check cannot fail; "
            "run more seeds"
        )
    if min(n_new, n_ref) < LOW_POWER_N:
        return False, (
            f"low power: with n={n_new} new and n={n_ref} reference runs only a large, "
            "consistent slowdown (nearly every new run slower than every reference run) can "
            "fail the check"
        )
    return False, ""


def check_baseline(
    suite: SuiteData,
    ref: dict,
    *,
    reference: str = "",
    unit: str = "epochs",
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    arm: str = BASELINE,
) -> HealthResult:
    """Test the suite's ``arm`` runs against a reference (see the module docstring).

    unit:  time unit of the threshold tests; must be one the reference stores (train seconds
           are machine-dependent, so references never store them: use epochs then).
    seed:  root of the generator used only for Monte Carlo p-values (large samples).
    New runs: every run of the arm for times (running / failed / diverged ones are censored
    at their last evaluation, as in the report); for the final value only complete and
    diverged runs (a diverged run's final value counts as the worst possible).
    """
    reference = reference or str(ref.get("source", "reference"))
    if unit not in ref.get("units", REFERENCE_UNITS):
        raise ResultsError(f"reference stores units {ref.get('units')}, not {unit!r}")
    if ref["metric"] != suite.metric or ref["direction"] != suite.direction:
        return _fail(
            reference,
            alpha,
            unit,
            f"reference is for test {ref['metric']} ({ref['direction']} is better), the suite "
            f"measures {suite.metric} ({suite.direction} is better)",
        )
    runs = suite.runs[suite.runs["arm"] == arm]
    ref_runs = ref["runs"]
    if runs.empty:
        return _fail(reference, alpha, unit, f"no '{arm}' runs to check", 0, len(ref_runs))
    if not ref_runs:
        return _fail(reference, alpha, unit, "the reference holds no runs", len(runs), 0)
    ref_thr = [float(t) for t in ref["thresholds"]]
    thr = [t for t in suite.thresholds if any(math.isclose(t, r) for r in ref_thr)]
    notes = _context_notes(suite, ref, thr)
    rows = _threshold_rows(suite, runs, ref, thr, unit, seed)
    done = runs[runs["status"].isin(["complete", "diverged"])]
    skipped = len(runs) - len(done)
    if skipped:
        notes.append(f"{skipped} {arm} run(s) still running or failed: left out of the final test")
    rows.append(_final_row(suite, done, ref_runs, seed))
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS)
    reject, level = holm_reject(tests["p"].to_numpy(float), alpha)
    tests["level"], tests["reject"] = level, reject
    reasons = []
    for r in tests[tests["reject"]].itertuples(index=False):
        what = "slower" if np.isfinite(r.threshold) else "worse"
        reasons.append(
            f"new baseline is {what} on {r.check}: median {r.median_new:.4g} vs reference "
            f"{r.median_ref:.4g}, one-sided p = {r.p:.3g} <= Holm level {r.level:.3g}"
        )
    n_new, n_ref = len(runs), len(ref_runs)
    powerless, note = _power_note(tests, alpha, n_new, n_ref)
    notes += [note] if note else []
    return HealthResult(
        status="FAIL" if reasons else (NOT_TESTED if powerless else "PASS"),
        reference=reference,
        alpha=alpha,
        unit=unit,
        n_new=n_new,
        n_ref=n_ref,
        tests=tests,
        reasons=reasons,
        notes=notes,
    )


def _test_row(check, threshold, unit, new_x, new_o, ref_x, ref_o, seed) -> dict:
    x = np.concatenate([new_x, ref_x])
    o = np.concatenate([new_o, ref_o])
    p, p_min, exact = float("nan"), float("nan"), True
    stat = float("nan")
    if len(new_x) and len(ref_x):
        scores = gehan_scores(np.where(np.isfinite(x), x, np.finfo(float).max), o)
        stat = float(scores[: len(new_x)].sum())
        p, p_min, exact = permutation_pvalue(scores, len(new_x), np.random.default_rng(seed))

    def med(v, ok):
        # Median of the observed values (censored ones left out; see n_censored).
        v = v[ok & np.isfinite(v)]
        return float(np.median(v)) if len(v) else float("nan")

    return {
        "check": check,
        "threshold": threshold,
        "unit": unit,
        "n_new": int(len(new_x)),
        "n_ref": int(len(ref_x)),
        "n_censored_new": int((~new_o).sum()),
        "n_censored_ref": int((~ref_o).sum()),
        "median_new": med(new_x, new_o),
        "median_ref": med(ref_x, ref_o),
        "statistic": stat,
        "p": p,
        "p_min": p_min,
        "exact": exact,
        "level": np.nan,
        "reject": False,
    }


def assess(
    suite: SuiteData,
    *,
    unit: str = "epochs",
    reference: Path | str | None = None,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> HealthResult | None:
    """The report's health check: find the reference (``reference`` or the suite's own),
    read it and run check_baseline. None when no reference is named anywhere; a named
    reference that is missing or unreadable gives a FAIL saying why (a check that was asked
    for and could not run must not look like a pass)."""
    path = find_reference(suite, reference)
    if path is None:
        return None
    try:
        ref = read_reference(path)
    except ResultsError as e:
        return _fail(str(path), alpha, unit, f"reference unusable: {e}")
    use = unit if unit in ref.get("units", REFERENCE_UNITS) else "epochs"
    res = check_baseline(suite, ref, reference=str(path), unit=use, alpha=alpha, seed=seed)
    if use != unit:
        res.notes.append(
            f"tested in epochs: the reference stores {', '.join(ref.get('units', []))} "
            f"only ({UNIT_LABELS.get(unit, unit)} depend on the machine)"
        )
    return res
