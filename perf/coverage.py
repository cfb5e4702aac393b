"""Coverage study: how often does a nominal 95% speedup interval hold the true speedup?

The report's verdicts ('sooner' / 'slower') are read from a 95% interval of
speedup = mean(baseline time) / mean(arm time) over a few paired seeds. This script measures
the actual coverage of candidate intervals by simulation, and picks the report's method.

Data (one *cell* = scenario x family x censoring x n; DATASETS simulated suites per cell):

* paired crossing times (B_i, A_i), i = 1..n seeds, with E[B] = MEAN and E[A] = MEAN / RATIO
  (RATIO = the true ratio of means before rounding) and correlation RHO within a seed:
  - lognormal: B = MEAN exp(s Z1 - s^2/2), s^2 = log(1 + CV^2) (A alike, from Z2);
  - normal:    B = MEAN (1 + CV Z1);
  - t3:        B = MEAN (1 + CV Z1 / sqrt(3 V)), V ~ chi2_3 / 3 shared by the pair (a bivariate
               t with 3 df, variance 3: CV / sqrt(3) makes the SD CV x MEAN);
  (Z1, Z2) standard normal with correlation RHO.
* times rounded to the evaluation grid as the harness measures them: the first evaluation at
  or after the latent crossing, ceil(t / GRID) GRID, and at least GRID; this makes ties.
* censoring: 0%, or a budget tau = the largest grid time with P(pooled time > tau) >= 0.2; a
  run past it is censored at tau (crossing.py: 'never reached it', time = budget). With
  censoring at a common budget the mean of min(T, tau) is the restricted mean time (RMST), so
  the interval's estimand is the ratio of restricted means E[min(B, tau)] / E[min(A, tau)];
  the report bounds the true ratio with '<=' / '>=' for that reason.
* truth: the ratio of E[observed (rounded, censored) time] per arm, from TRUTH_DRAWS draws of
  an independent stream (its Monte-Carlo error, printed, is ~1e-4 relative).

Methods, each a nominal 95% two-sided interval:

* fieller     Fieller's interval for a ratio of paired means (benchmark.analysis.stats);
* percentile  paired percentile bootstrap (the report's method before issue 18);
* bca         BCa bootstrap with the tie fix (benchmark.analysis.stats);
* delta_t     exp(log ratio -+ t_{n-1} se), se from the delta method (influence values
              b_i / mean(b) - a_i / mean(a), denominator n (n - 1));
* studentized bootstrap-t of the log ratio with the same se recomputed per resample;
* expanded    Hesterberg's expanded percentile (Am. Stat. 2015, 69:371): bootstrap quantiles
              at levels Phi(-+ sqrt(n / (n - 1)) t_{n-1, 0.975}) instead of 2.5% / 97.5%.

(A sign-flip permutation test is not a candidate: with n = 5 seeds its smallest two-sided
p-value is 2 / 32 = 0.0625, so it can never reject at 5%.) Analytic methods (fieller, delta_t)
use all DATASETS suites of a cell; bootstrap methods the first BOOT_DATASETS with BOOT_REPS
resamples. Each cell draws from its own stream, SeedSequence(SEED, spawn_key=cell key), so
any cell can be rerun alone and reproduces bit for bit (tests/test_coverage.py does).

Choice: a method *holds* at n when its worst coverage over every scenario (but the STRESS
one) and family is >= 0.93 uncensored and >= 0.90 with 20% censoring (issue 18's target). The
report's method is, among those that hold at n = 5 and give an interval on the zero-time
inputs of EDGE_CASES (both arms crossing at the epoch-0 evaluation: log-scale methods have
no answer there), the one that holds from the smallest n on (at every larger tabulated n),
then the narrowest median interval at n = 5.

    python perf/coverage.py            # full study, ~1.5 CPU-minutes (2 cores); prints the table
    python perf/coverage.py --quick    # seconds: fewer datasets, two scenarios, n = 3, 5
    python perf/coverage.py --write    # full study, and write docs/coverage.md,
                                       # perf/coverage.json, benchmark/analysis/coverage_table.py
"""

from __future__ import annotations

import os

# Pin BLAS/OpenMP pools to 2 threads before numpy loads (the target is "2 CPU cores").
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pprint  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from statistics import NormalDist  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python perf/coverage.py` from anywhere
    sys.path.insert(0, str(ROOT))

from benchmark.analysis.stats import (  # noqa: E402
    fieller_ratio,
    paired_ratio_bootstrap,
    resample_counts,
    t_quantile,
)

SEED = 20261130
LEVEL = 0.95
GRID = 0.5  # evaluation every 0.5 epoch, as the committed CIFAR-10 suites
TARGET = {"uncensored": 0.93, "censored": 0.90}
FAMILIES = ("lognormal", "normal", "t3")
CENSORING = (0.0, 0.2)
NS = (3, 4, 5, 10)
# mean: baseline mean time (epochs); cv: SD / mean of each arm; rho: within-seed correlation;
# ratio: true speedup before rounding. 'coarse' / 'very_coarse': the SD is ~1.1 / ~0.6 grid
# steps, as at the hardest CIFAR-10 thresholds (e.g. baseline 18.5-20 epochs at 74%).
SCENARIOS: dict[str, dict[str, float]] = {
    "typical": {"mean": 8.0, "cv": 0.25, "rho": 0.5, "ratio": 1.25},
    "null": {"mean": 8.0, "cv": 0.25, "rho": 0.5, "ratio": 1.0},
    "skewed": {"mean": 8.0, "cv": 1.0, "rho": 0.5, "ratio": 1.25},
    "correlated": {"mean": 8.0, "cv": 0.3, "rho": 0.9, "ratio": 1.25},
    "coarse": {"mean": 19.0, "cv": 0.03, "rho": 0.5, "ratio": 1.25},
    "very_coarse": {"mean": 19.0, "cv": 0.015, "rho": 0.5, "ratio": 1.25},
}
# Scenarios outside the choice rule, reported as a stress test: with a spread of about half an
# evaluation interval most suites of 3-5 seeds are all tied (zero sample variance) and, with
# the budget at the grid point below most baseline runs, near-constant at the budget; no
# method that reads only the observed times can hold its level there (docs/coverage.md).
STRESS = ("very_coarse",)
METHODS = ("fieller", "percentile", "bca", "delta_t", "studentized", "expanded")
ANALYTIC = ("fieller", "delta_t")
IN_PACKAGE = ("fieller", "percentile", "bca")  # benchmark.analysis.stats.CI_METHODS
FULL = {"datasets": 20_000, "boot_datasets": 2_000, "boot_reps": 1_000, "truth_draws": 2_000_000}
QUICK = {"datasets": 2_000, "boot_datasets": 200, "boot_reps": 200, "truth_draws": 200_000}
QUICK_SCENARIOS = ("typical", "coarse")
QUICK_NS = (3, 5)
_NORMAL = NormalDist()


# --------------------------------------------------------------------------- data


def draw(family: str, sc: dict[str, float], rng: np.random.Generator, d: int, n: int):
    """d simulated suites of n paired seeds: (B, A), each (d, n), rounded to the grid."""
    z1 = rng.standard_normal((d, n))
    z2 = sc["rho"] * z1 + math.sqrt(1.0 - sc["rho"] ** 2) * rng.standard_normal((d, n))
    mb, ma, cv = sc["mean"], sc["mean"] / sc["ratio"], sc["cv"]
    if family == "lognormal":
        s = math.sqrt(math.log1p(cv * cv))
        b, a = mb * np.exp(s * z1 - s * s / 2), ma * np.exp(s * z2 - s * s / 2)
    elif family == "normal":
        b, a = mb * (1 + cv * z1), ma * (1 + cv * z2)
    elif family == "t3":
        w = np.sqrt(rng.chisquare(3, (d, n)) / 3.0)
        b, a = mb * (1 + cv / math.sqrt(3) * z1 / w), ma * (1 + cv / math.sqrt(3) * z2 / w)
    else:
        raise ValueError(f"unknown family {family!r}")
    # First evaluation at or after the crossing (the 1e-9 keeps exact grid values in place).
    return (np.maximum(np.ceil(b / GRID - 1e-9), 1.0) * GRID,
            np.maximum(np.ceil(a / GRID - 1e-9), 1.0) * GRID)


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def truth_and_budget(
    i_sc: int, i_fam: int, draws: int, seed: int = SEED
) -> dict[float, tuple[float, float, float]]:
    """censoring fraction -> (tau, true ratio of observed means, censored fraction)."""
    sc, fam = SCENARIOS[list(SCENARIOS)[i_sc]], FAMILIES[i_fam]
    b, a = draw(fam, sc, _stream(seed, i_sc, i_fam, 999), draws, 1)
    pooled = np.concatenate([b.ravel(), a.ravel()])
    out = {}
    for frac in CENSORING:
        if frac == 0:
            tau = math.inf
        else:
            grid = np.unique(pooled)
            over = 1.0 - np.searchsorted(np.sort(pooled), grid, side="right") / pooled.size
            tau = float(grid[over >= frac].max())  # P(pooled > tau) >= frac
        cb, ca = np.minimum(b, tau), np.minimum(a, tau)
        out[frac] = (tau, float(cb.mean() / ca.mean()), float((pooled > tau).mean()))
    return out


# --------------------------------------------------------------------------- methods


def delta_t(b: np.ndarray, a: np.ndarray, level: float = LEVEL):
    """exp(log(mb / ma) -+ t se); b, a (n, D). returns (lo, hi) (D,)."""
    n = b.shape[0]
    mb, ma = b.mean(0), a.mean(0)
    infl = b / mb - a / ma  # influence values of log(mb / ma)
    se = np.sqrt((infl**2).sum(0) / (n * (n - 1)))
    c = t_quantile(1 - (1 - level) / 2, n - 1)
    lr = np.log(mb / ma)
    return np.exp(lr - c * se), np.exp(lr + c * se)


def bootstrap_extras(b: np.ndarray, a: np.ndarray, w: np.ndarray, level: float = LEVEL):
    """Studentized (bootstrap-t of the log ratio) and expanded-percentile intervals.

    b, a: (n, D); w: (reps, n) resample counts. returns {name: (lo, hi)} with (D,) arrays.
    """
    n = b.shape[0]
    sb, sa = w @ b, w @ a  # (reps, D) resampled sums
    lr_star = np.log(sb / sa)
    mb, ma = b.mean(0), a.mean(0)
    lr = np.log(mb / ma)
    infl = b / mb - a / ma
    se = np.sqrt((infl**2).sum(0) / (n * (n - 1)))
    # Per resample, with means Sb/n, Sa/n: sum_i w_i (b_i / mb* - a_i / ma*)^2.
    s2 = (n * n) * ((w @ (b * b)) / sb**2 - 2 * (w @ (a * b)) / (sb * sa) + (w @ (a * a)) / sa**2)
    se_star = np.sqrt(np.maximum(s2, 0.0) / (n * (n - 1)))
    diff = lr_star - lr
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = diff / se_star
    # se* = 0 (every resampled seed tied): t* is 0 when the resample is the estimate, else
    # +-inf; a large finite stand-in keeps the quantile interpolation free of inf - inf.
    flat = np.abs(diff) <= 1e-12
    t_star = np.where(se_star > 0, t_star, np.where(flat, 0.0, np.sign(diff) * 1e300))
    alpha = (1 - level) / 2
    tq = np.quantile(t_star, [alpha, 1 - alpha], axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        stud = (np.exp(lr - tq[1] * se), np.exp(lr - tq[0] * se))
    stud = tuple(np.where(np.isnan(x), np.where(i == 0, 0.0, np.inf), x) for i, x in enumerate(stud))
    z = math.sqrt(n / (n - 1)) * t_quantile(1 - alpha, n - 1)
    lev = _NORMAL.cdf(-z)
    ex = np.quantile(sb / sa, [lev, 1 - lev], axis=0)
    return {"studentized": stud, "expanded": (ex[0], ex[1])}


def run_cell(i_sc: int, i_fam: int, i_cens: int, n: int, cfg: dict, truths: dict,
             methods: tuple[str, ...] = METHODS) -> dict[str, dict[str, float]]:
    """Coverage of each method in one cell. returns {method: {coverage, miss_low, miss_high,
    mc_se, width, datasets}}: miss_low = the interval lies above the truth (a false 'faster'
    direction), miss_high = below it; width = median hi / lo."""
    sc, fam = SCENARIOS[list(SCENARIOS)[i_sc]], FAMILIES[i_fam]
    tau, truth, _ = truths[CENSORING[i_cens]]
    b, a = draw(fam, sc, _stream(cfg["seed"], i_sc, i_fam, i_cens, n, 0), cfg["datasets"], n)
    b, a = np.minimum(b, tau).T, np.minimum(a, tau).T  # (n, D): a column per suite
    nb = cfg["boot_datasets"]
    w = resample_counts(_stream(cfg["seed"], i_sc, i_fam, i_cens, n, 1), n, cfg["boot_reps"])
    ivs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "fieller" in methods:
        r = fieller_ratio(b, a, LEVEL)
        ivs["fieller"] = (r.ci_low, r.ci_high)
    if "delta_t" in methods:
        ivs["delta_t"] = delta_t(b, a)
    for m in ("percentile", "bca"):
        if m in methods:
            r = paired_ratio_bootstrap(b[:, :nb], a[:, :nb], None, level=LEVEL, method=m,
                                       counts=w)
            ivs[m] = (r.ci_low, r.ci_high)
    if {"studentized", "expanded"} & set(methods):
        for k, v in bootstrap_extras(b[:, :nb], a[:, :nb], w).items():
            if k in methods:
                ivs[k] = v
    out = {}
    for m in methods:
        lo, hi = ivs[m]
        above, below = lo > truth, hi < truth
        cov = float(1.0 - (above | below).mean())
        with np.errstate(divide="ignore", invalid="ignore"):
            width = float(np.median(hi / lo))
        out[m] = {
            "coverage": cov,
            "miss_low": float(above.mean()),
            "miss_high": float(below.mean()),
            "mc_se": math.sqrt(max(cov * (1 - cov), 1e-12) / lo.size),
            "width": width,
            "datasets": int(lo.size),
        }
    return out


# --------------------------------------------------------------------------- study


def cell_key(scenario: str, family: str, cens: float, n: int) -> str:
    return f"{scenario}/{family}/{cens:g}/{n}"


def study(cfg: dict, scenarios: tuple[str, ...], ns: tuple[int, ...], log=print) -> dict:
    cells, truths_out = {}, {}
    t0 = time.perf_counter()
    for s in scenarios:
        i_sc = list(SCENARIOS).index(s)
        for i_fam, fam in enumerate(FAMILIES):
            truths = truth_and_budget(i_sc, i_fam, cfg["truth_draws"], cfg["seed"])
            for i_cens, cens in enumerate(CENSORING):
                tau, truth, cfrac = truths[cens]
                truths_out[f"{s}/{fam}/{cens:g}"] = {"tau": tau if math.isfinite(tau) else None,
                                                     "truth": truth, "censored": cfrac}
                for n in ns:
                    cells[cell_key(s, fam, cens, n)] = run_cell(i_sc, i_fam, i_cens, n, cfg,
                                                                truths)
            log(f"  {s:12s} {fam:9s} done ({time.perf_counter() - t0:.0f} s)")
    return {"cells": cells, "truths": truths_out}


def summarize(cells: dict, ns: tuple[int, ...]) -> dict:
    """method -> n -> {'uncensored': worst coverage, 'censored': worst, 'holds': bool,
    'stress_uncensored', 'stress_censored'}; worst over the scenarios of the choice rule
    (every scenario but STRESS), and separately over STRESS (NaN when not simulated)."""
    out: dict = {}
    for m in METHODS:
        out[m] = {}
        for n in ns:
            worst = {}
            for label, cens in (("uncensored", 0.0), ("censored", 0.2)):
                vals = [(k.split("/")[0], c[m]["coverage"]) for k, c in cells.items()
                        if k.endswith(f"/{cens:g}/{n}")]
                rule = [v for s, v in vals if s not in STRESS]
                stress = [v for s, v in vals if s in STRESS]
                worst[label] = min(rule) if rule else math.nan
                worst[f"stress_{label}"] = min(stress) if stress else math.nan
            worst["holds"] = all(worst[k] >= TARGET[k] for k in TARGET)
            out[m][n] = worst
    return out


def min_n(summary_m: dict) -> int | None:
    """Smallest tabulated n from which the method holds at every larger tabulated n."""
    ns = sorted(summary_m)
    best = None
    for n in reversed(ns):
        if not summary_m[n]["holds"]:
            break
        best = n
    return best


# Inputs the report meets that a method must answer (issue 18: zero times): a seed where both
# arms cross at the epoch-0 evaluation, and an arm pair that does so at every seed.
EDGE_CASES = (
    (np.array([0.0, 5.0, 6.0]), np.array([0.0, 3.0, 4.0])),
    (np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0])),
)


def defined_on_edge_cases(method: str) -> bool:
    """Whether `method` gives an interval (no NaN end) on every EDGE_CASES input."""
    for b, a in EDGE_CASES:
        b2, a2 = b[:, None], a[:, None]
        with np.errstate(all="ignore"):
            if method == "fieller":
                r = fieller_ratio(b2, a2, LEVEL)
                lo, hi = r.ci_low, r.ci_high
            elif method in ("percentile", "bca"):
                w = resample_counts(np.random.default_rng(0), b.size, 200)
                r = paired_ratio_bootstrap(b2, a2, None, method=method, counts=w)
                lo, hi = r.ci_low, r.ci_high
            elif method == "delta_t":
                lo, hi = delta_t(b2, a2)
            else:
                w = resample_counts(np.random.default_rng(0), b.size, 200)
                lo, hi = bootstrap_extras(b2, a2, w)[method]
        if np.isnan(lo).any() or np.isnan(hi).any():
            return False
    return True


def choose(summary: dict, cells: dict) -> str | None:
    """Among the methods that hold at n = 5 and give an interval on every EDGE_CASES input:
    the smallest min_n, then the narrowest median interval at n = 5 (uncensored cells);
    None when none qualifies."""
    ok = [m for m in METHODS if 5 in summary[m] and summary[m][5]["holds"]
          and defined_on_edge_cases(m)]
    if not ok:
        return None

    def width(m):
        return float(np.mean([c[m]["width"] for k, c in cells.items() if k.endswith("/0/5")]))

    return min(ok, key=lambda m: (min_n(summary[m]), width(m)))


# --------------------------------------------------------------------------- output


def command(args) -> str:
    return "python perf/coverage.py" + (" --quick" if args.quick else "") + (
        f" --seed {args.seed}" if args.seed != SEED else "") + (" --write" if args.write else "")


def render_docs(res: dict, ns: tuple[int, ...], cfg: dict, cmd: str, seed: int) -> str:
    cells, summary, chosen = res["cells"], res["summary"], res["chosen"]
    lines = [
        "# Coverage of the speedup intervals",
        "",
        "Generated by `perf/coverage.py` (do not edit by hand); regenerate with",
        "",
        f"    {cmd}",
        "",
        f"rng seed {seed} (`numpy.random.SeedSequence(seed, spawn_key=cell)`); "
        f"{cfg['datasets']} simulated suites per cell for the analytic intervals, the first "
        f"{cfg['boot_datasets']} of them with {cfg['boot_reps']} resamples for the bootstrap "
        f"ones; true ratios from {cfg['truth_draws']} draws. Nominal level {LEVEL:.0%}.",
        "",
        "Why: the report reads 'sooner' / 'slower' from a 95% interval of the speedup "
        "(ratio of mean times to threshold over paired seeds) at the seed counts suites use "
        "(3 to 5). The paired percentile bootstrap the report used covered the truth in about "
        "75% of intervals at 3 seeds and 83% at 5 (rows below). The data model, methods and "
        "the choice rule are in the docstring of `perf/coverage.py`; in short: paired times "
        "from lognormal, normal and t(3) families rounded up to a 0.5-epoch evaluation grid "
        "(ties), with no censoring or 20% censored at a common budget (the interval then "
        "targets the ratio of restricted mean times, which the true speedup is bounded by; "
        "the report marks those cells '<=' / '>=').",
        "",
        f"Target (issue 18): coverage >= {TARGET['uncensored']} on every uncensored cell and "
        f">= {TARGET['censored']} with 20% censoring, worst case over scenarios and families.",
        "",
        "## Worst-case coverage per method and number of seeds",
        "",
        "| method | " + " | ".join(f"n={n} uncensored / censored" for n in ns) + " |",
        "|---|" + "---|" * len(ns),
    ]
    for m in METHODS:
        row = [f"**{m}**" if m == chosen else m]
        for n in ns:
            s = summary[m][n]
            mark = "" if s["holds"] else " ✗"
            row.append(f"{s['uncensored']:.3f} / {s['censored']:.3f}{mark}")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "✗: below the target (the method does not hold its level at that n).",
        "",
    ]
    if chosen:
        mn = min_n(summary[chosen])
        lines += [
            f"**Chosen for the report: {chosen}** (holds its level from n = {mn} on). "
            + (f"Below n = {mn} no method holds its level in every scenario, so a report "
               f"with fewer paired seeds says e.g. '{mn - 1} seeds: too few for a "
               "calibrated interval' and gives no sooner/slower verdict." if mn and mn > min(ns)
               else ""),
            "",
        ]
    else:
        lines += ["**No method qualifies at n = 5.**", ""]
    others = [m for m in METHODS if m != chosen and summary[m].get(5, {}).get("holds")]
    if others:
        lines += ["Also holding at n = 5: " + "; ".join(
            f"{m} (from n = {min_n(summary[m])}"
            + ("" if defined_on_edge_cases(m) else "; no interval when both arms cross at the "
               "epoch-0 evaluation, so not eligible") + ")" for m in others) + ".", ""]
    for st in STRESS:
        if chosen is None or st not in res["scenarios"]:
            continue
        sc = {k: v for k, v in cells.items() if k.startswith(f"{st}/")}
        cens = [v[chosen] for k, v in sc.items() if not k.split("/")[2] == "0"]
        lo = float(np.mean([c["miss_low"] for c in cens]))
        hi = float(np.mean([c["miss_high"] for c in cens]))
        lines += [
            f"Stress scenario '{st}' (outside the rule): crossing times spread over about half "
            "an evaluation interval, so most suites of 3-5 seeds are all tied, and the budget "
            "falls on the grid point most baseline runs reach last. No method that reads only "
            f"the observed times holds its level there; {chosen}'s worst coverage: "
            + "; ".join(f"n = {n}: {summary[chosen][n]['stress_uncensored']:.3f} uncensored, "
                        f"{summary[chosen][n]['stress_censored']:.3f} censored" for n in ns)
            + f". With censoring its misses are one-sided (on average {lo:.1%} of intervals "
            f"lie above the truth, {hi:.1%} below it): too low, the safe side for the "
            "'sooner' a '>=' (baseline-censored) cell can show.",
            "",
        ]
    lines += ["## Scenarios", "", "| scenario | baseline mean (epochs) | CV | rho | true ratio "
              "before rounding | SD in grid steps |", "|---|---|---|---|---|---|"]
    for s in res["scenarios"]:
        p = SCENARIOS[s]
        lines.append(f"| {s} | {p['mean']:g} | {p['cv']:g} | {p['rho']:g} | {p['ratio']:g} | "
                     f"{p['mean'] * p['cv'] / GRID:.2g} |")
    lines += ["", "## Every cell", "",
              "Coverage per method; in brackets for the chosen method: the share of intervals "
              "wholly above / below the truth (each should be near 2.5%). MC standard error: "
              f"about {math.sqrt(0.95 * 0.05 / cfg['datasets']):.4f} for the analytic methods, "
              f"{math.sqrt(0.95 * 0.05 / cfg['boot_datasets']):.4f} for the bootstrap ones (at "
              "95%).", "",
              "| scenario | family | censored | n | true ratio | " + " | ".join(METHODS) + " |",
              "|---|---|---|---|---|" + "---|" * len(METHODS)]
    for key, c in cells.items():
        s, fam, cens, n = key.split("/")
        tr = res["truths"][f"{s}/{fam}/{cens}"]
        vals = []
        for m in METHODS:
            v = f"{c[m]['coverage']:.3f}"
            if m == chosen:
                v += f" ({c[m]['miss_low']:.3f} / {c[m]['miss_high']:.3f})"
            vals.append(v)
        lines.append(f"| {s} | {fam} | {tr['censored']:.0%} | {n} | {tr['truth']:.4f} | "
                     + " | ".join(vals) + " |")
    lines += ["", "## Median interval width (upper / lower end), n = 5, uncensored", "",
              "| scenario | family | " + " | ".join(METHODS) + " |",
              "|---|---|" + "---|" * len(METHODS)]
    for key, c in cells.items():
        s, fam, cens, n = key.split("/")
        if cens == "0" and n == "5":
            lines.append(f"| {s} | {fam} | " + " | ".join(f"{c[m]['width']:.3f}" for m in METHODS)
                         + " |")
    return "\n".join(lines) + "\n"


def render_table_module(res: dict, cmd: str, seed: int) -> str:
    worst = {m: {n: (round(s["uncensored"], 4), round(s["censored"], 4))
                 for n, s in res["summary"][m].items()} for m in IN_PACKAGE}
    body = pprint.pformat(worst, width=99, sort_dicts=True)
    return (
        '"""Measured coverage of the report\'s nominal 95% speedup intervals.\n\n'
        "Generated by perf/coverage.py (do not edit by hand; docs/coverage.md has every cell).\n"
        "WORST[method][n] = (worst coverage over the simulated scenarios and families without\n"
        "censoring, the same with 20% censoring at the budget). A method holds its level at n\n"
        "when both meet TARGET.\n"
        '"""\n\n'
        f"COMMAND = {cmd!r}\n"
        f"SEED = {seed}\n"
        f"LEVEL = {LEVEL}\n"
        f"TARGET = {TARGET!r}\n"
        f"CHOSEN = {res['chosen']!r}\n"
        f"WORST = {body}\n"
    )


def _dump_json(payload: dict) -> str:
    """JSON with one line per cell / truth / summary row (diffable, a third of indent=1)."""
    lines = ["{"]
    keys = sorted(payload)
    for i, key in enumerate(keys):
        v = payload[key]
        end = "," if i < len(keys) - 1 else ""
        if isinstance(v, dict) and key in ("cells", "truths", "summary"):
            inner = [f"  {json.dumps(k)}: {json.dumps(v[k], sort_keys=True)}" for k in v]
            lines.append(f"{json.dumps(key)}: {{\n" + ",\n".join(inner) + f"\n}}{end}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(v, sort_keys=True)}{end}")
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="seconds: a small slice of the study")
    ap.add_argument("--seed", type=int, default=SEED, help="root rng seed")
    ap.add_argument("--write", action="store_true",
                    help="write docs/coverage.md, perf/coverage.json and "
                         "benchmark/analysis/coverage_table.py (not with --quick)")
    args = ap.parse_args(argv)
    if args.write and args.quick:
        ap.error("--write records the full study; drop --quick")
    cfg = {**(QUICK if args.quick else FULL), "seed": args.seed}
    scenarios = QUICK_SCENARIOS if args.quick else tuple(SCENARIOS)
    ns = QUICK_NS if args.quick else NS
    t0 = time.perf_counter()
    res = study(cfg, scenarios, ns)
    res["seconds"] = time.perf_counter() - t0
    res["scenarios"] = list(scenarios)
    res["summary"] = summarize(res["cells"], ns)
    res["chosen"] = choose(res["summary"], res["cells"])
    print(f"\nworst-case coverage (uncensored / 20% censored), target "
          f"{TARGET['uncensored']} / {TARGET['censored']}:")
    print(f"{'method':12s}" + "".join(f"{'n=' + str(n):>16s}" for n in ns))
    for m in METHODS:
        print(f"{m:12s}" + "".join(
            f"{res['summary'][m][n]['uncensored']:8.3f}/{res['summary'][m][n]['censored']:.3f}"
            + (" " if res["summary"][m][n]["holds"] else "x") for n in ns))
    print(f"chosen: {res['chosen']} (holds from n = "
          f"{min_n(res['summary'][res['chosen']]) if res['chosen'] else None}); "
          f"{res['seconds']:.0f} s")
    if res["chosen"] is not None and res["chosen"] not in IN_PACKAGE:
        print(f"note: {res['chosen']} is not implemented in benchmark.analysis.stats yet")
    if args.write:
        cmd = command(args)
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "coverage.md").write_text(
            render_docs(res, ns, cfg, cmd, args.seed), encoding="utf-8")
        payload = {"command": cmd, "seed": args.seed, "level": LEVEL, "config": cfg,
                   "target": TARGET, "chosen": res["chosen"],
                   "summary": {m: {str(n): v for n, v in s.items()}
                               for m, s in res["summary"].items()},
                   "truths": res["truths"], "cells": res["cells"]}
        (ROOT / "perf" / "coverage.json").write_text(_dump_json(payload), encoding="utf-8")
        (ROOT / "benchmark" / "analysis" / "coverage_table.py").write_text(
            render_table_module(res, cmd, args.seed), encoding="utf-8")
        print("wrote docs/coverage.md, perf/coverage.json, benchmark/analysis/coverage_table.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
