"""Intervals and tests for speedups (ratio of mean times over paired seeds); no global RNG.

Speedup of an arm over the baseline = mean(baseline times) / mean(arm times) over the seeds
both have (paired by seed value). Every function takes (n,) or (n, K) arrays, row i of both
arms belonging to seed i and the K columns (threshold x unit, or simulated datasets) being
independent problems, and returns (K,) arrays.

Methods (``ratio_interval``):

* ``fieller`` (the report's default; chosen by the coverage study in perf/coverage.py, see
  docs/coverage.md): Fieller's interval for a ratio of paired means (Fieller 1954, JRSS B
  16:175; for paired data e.g. Franz 2007, arXiv:0710.2024). It inverts the one-sample t-test
  of d_i(R) = b_i - R a_i: R is in the interval when n mean(d)^2 <= c^2 var(d), with
  c = t_{n-1, 1-alpha/2}, a quadratic inequality in R. Exact when (b, a) is bivariate normal;
  no resampling, and zero times are no problem (nothing is divided by a single time).
* ``percentile`` / ``bca``: paired bootstrap (Efron & Tibshirani 1993, ch. 6, 14): the seed
  indices are resampled with replacement, the same indices for both arms and for every column,
  so the CI band of a threshold sweep is coherent. Resampled means are count-matrix products
  W @ x / n with W (reps, n) the multiplicity of each seed in each resample (no Python loop).

A ratio whose numerator and denominator are both 0 (both arms meet the threshold at the
first, epoch-0 evaluation) is 1: the arms are equal at the start, not undefined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from benchmark.analysis.options import CI_METHODS, DEFAULT_CI_METHOD

BOOTSTRAP_METHODS = ("percentile", "bca")
MIN_SEEDS_FOR_CI = 3

_NORMAL = NormalDist()
# Two statistics closer than this (relative) are the same number computed in another order:
# a resample that permutes the seeds gives the point estimate up to a few ulps (~1e-16).
_TIE_RTOL = 1e-10


# --------------------------------------------------------------------------- Student t


def t_two_sided_mass(t: np.ndarray | float, df: int) -> np.ndarray:
    """P(|T| <= t) for T ~ Student t with integer df >= 1, t >= 0 (vectorised).

    Closed forms of Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df), with
    theta = atan(t / sqrt(df)):
      odd:  (2/pi) [theta + sin(theta) (cos + 2/3 cos^3 + ... + (2*4..(df-3))/(1*3..(df-2))
            cos^(df-2))],  the bracketed sum empty for df = 1;
      even: sin(theta) [1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ... + (1*3..(df-3))/(2*4..(df-2))
            cos^(df-2)].
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    df = int(df)
    t = np.abs(np.asarray(t, dtype=float))
    theta = np.arctan(t / math.sqrt(df))
    s, c = np.sin(theta), np.cos(theta)
    c2 = c * c
    if df % 2:
        total, term = np.zeros_like(t), c.copy()
        for k in range(1, (df - 1) // 2 + 1):  # terms cos^(2k-1), coefficient 2*4../(1*3..)
            if k > 1:
                term = term * c2 * (2 * k - 2) / (2 * k - 1)
            total = total + term
        return np.where(np.isinf(t), 1.0, (2 / math.pi) * (theta + s * total))
    total, term = np.ones_like(t), np.ones_like(t)
    for k in range(1, df // 2):  # terms cos^(2k), coefficient 1*3../(2*4..)
        term = term * c2 * (2 * k - 1) / (2 * k)
        total = total + term
    return np.where(np.isinf(t), 1.0, s * total)


def t_sf_two_sided(t: np.ndarray | float, df: int) -> np.ndarray:
    """Two-sided p-value P(|T| >= |t|) of a t statistic with integer df."""
    return np.clip(1.0 - t_two_sided_mass(t, df), 0.0, 1.0)


@lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with integer df, by bisection on the closed-form CDF
    (to ~1e-13 absolute). Equal to scipy.stats.t.ppf(q, df)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if q == 0.5:
        return 0.0
    mass = abs(2.0 * q - 1.0)  # P(|T| <= t) at the wanted |t|
    lo, hi = 0.0, 1.0
    while float(t_two_sided_mass(hi, df)) < mass:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(t_two_sided_mass(mid, df)) < mass:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    t = 0.5 * (lo + hi)
    return t if q > 0.5 else -t


# --------------------------------------------------------------------------- multiplicity


def holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: sort the m finite p ascending, p~_(j) =
    max_{i <= j} min(1, (m - i + 1) p_(i)); reject H_(j) at family level alpha iff
    p~_(j) <= alpha. NaN entries are not part of the family and stay NaN.

    p: (m,) float. returns (m,) float, in the input order.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


# --------------------------------------------------------------------------- bootstrap


def resample_counts(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    """Multiplicity of each of n items in each of reps resamples with replacement.

    Draws the (reps, n) index array ``rng.integers(0, n, (reps, n))`` (the same draws
    as the textbook index bootstrap) and counts it. returns (reps, n) float64, rows sum to n.
    """
    idx = rng.integers(0, n, size=(reps, n))
    flat = (idx + n * np.arange(reps)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(np.float64)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0/0 = 1 (both arms at time 0: equal at the start) and x/0 = inf."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.where((num == 0) & (den == 0), 1.0, r)


def _quantile_levels(level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    return alpha, 1.0 - alpha


def _below_fraction(boot: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Per column, the fraction of bootstrap statistics below the point estimate, ties
    counted half (scipy's _percentile_of_score). A tie is a value within _TIE_RTOL of the
    point: a resample that only permutes the seeds computes the same ratio in another
    summation order, and an exact < / <= would count it above or below by its last bit.

    boot: (reps, K); point: (K,). returns (K,).
    """
    tol = _TIE_RTOL * np.abs(point)
    with np.errstate(invalid="ignore"):
        tie = np.abs(boot - point) <= tol
        below = (boot < point) & ~tie
    return (below.sum(axis=0) + 0.5 * tie.sum(axis=0)) / boot.shape[0]


def _bca_terms(
    boot: np.ndarray, point: np.ndarray, jack: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bias correction z0 and acceleration a per column (Efron 1987; as scipy.stats.bootstrap).

    boot: (reps, K) bootstrap statistics; point: (K,); jack: (n, K) leave-one-out statistics.
    """
    frac = np.clip(_below_fraction(boot, point), 1e-12, 1 - 1e-12)
    z0 = np.array([_NORMAL.inv_cdf(float(f)) for f in frac])
    # Acceleration from the jackknife (Efron & Tibshirani 1993, eq. 14.15).
    d = jack.mean(axis=0) - jack
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (d**3).sum(axis=0) / (6.0 * ((d**2).sum(axis=0)) ** 1.5)
    return z0, np.where(np.isfinite(a), a, 0.0)


def _bca_levels(
    boot: np.ndarray, point: np.ndarray, jack: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """BCa-adjusted quantile levels per column: Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q))).

    returns (lo, hi): (K,) levels in [0, 1].
    """
    z0, a = _bca_terms(boot, point, jack)
    out = []
    for q in _quantile_levels(level):
        zq = _NORMAL.inv_cdf(q)
        z = z0 + (z0 + zq) / (1.0 - a * (z0 + zq))
        out.append(np.array([_NORMAL.cdf(float(v)) if np.isfinite(v) else np.nan for v in z]))
    return out[0], out[1]


def _column_quantiles(boot: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per-column quantiles of boot (reps, K) at levels lo (K,), hi (K,) -> (2, K)."""
    s = np.sort(boot, axis=0)
    reps = s.shape[0]
    cols = np.arange(s.shape[1])
    out = np.full((2, s.shape[1]), np.nan)
    for row, q in enumerate((lo, hi)):
        ok = np.isfinite(q)
        # Linear interpolation between order statistics (numpy's default "linear" method).
        pos = np.where(ok, q, 0.0) * (reps - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, reps - 1)
        w = pos - i0
        with np.errstate(invalid="ignore"):  # inf * 0 where an end is infinite
            v = np.where(w > 0, s[i0, cols] * (1 - w) + s[i1, cols] * w, s[i0, cols])
        out[row] = np.where(ok, v, np.nan)
    return out


@dataclass
class BootstrapResult:
    """point, ci_low, ci_high, p_value: (K,) float. ci_* and p_value NaN when fewer than
    MIN_SEEDS_FOR_CI pairs. p_value: two-sided p of 'ratio = 1' by inverting the same interval
    (the CI at level 1 - alpha excludes 1 iff p_value < alpha)."""

    point: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int
    p_value: np.ndarray | None = None


def _paired(base: np.ndarray, arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(base, dtype=float)
    arm = np.asarray(arm, dtype=float)
    if base.ndim == 1:
        base, arm = base[:, None], arm[:, None]
    if base.shape != arm.shape:
        raise ValueError(f"paired arrays differ in shape: {base.shape} vs {arm.shape}")
    return base, arm


def _bootstrap_p(boot: np.ndarray, point: np.ndarray, jack: np.ndarray | None) -> np.ndarray:
    """Two-sided p of 'ratio = 1' that inverts the percentile (jack None) or BCa interval.

    Percentile: the CI at level 1 - p has 1 as an end when p = 2 min(F*(1), 1 - F*(1)),
    F* the bootstrap distribution (ties at 1 half). BCa: the end at lower-tail level
    alpha_1 = Phi(z_alpha) is the F*-quantile Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha)));
    setting it to F*(1) = Phi(w + z0) and solving for u = z0 + z_alpha gives u = w / (1 + a w).
    """
    f1 = np.clip(_below_fraction(boot, np.ones(boot.shape[1])), 0.0, 1.0)
    if jack is None:
        return np.minimum(1.0, 2.0 * np.minimum(f1, 1.0 - f1))
    z0, a = _bca_terms(boot, point, jack)
    out = np.empty(boot.shape[1])
    for k, (f, z, acc) in enumerate(zip(f1, z0, a)):
        if f <= 0.0 or f >= 1.0:
            out[k] = 0.0
            continue
        w = _NORMAL.inv_cdf(float(f)) - z
        den = 1.0 + acc * w
        if den <= 0:  # beyond the range the BCa map reaches: 1 is outside every CI
            out[k] = 0.0
            continue
        alpha1 = _NORMAL.cdf(w / den - z)
        out[k] = min(1.0, 2.0 * min(alpha1, 1.0 - alpha1))
    return out


def paired_ratio_bootstrap(
    base: np.ndarray,
    arm: np.ndarray,
    rng: np.random.Generator,
    reps: int = 10_000,
    level: float = 0.95,
    method: str = "percentile",
    counts: np.ndarray | None = None,
) -> BootstrapResult:
    """Bootstrap CI for mean(base) / mean(arm), resampling paired rows.

    base, arm: (n,) or (n, K) float; row i of both belongs to the same seed.
    rng: the only randomness; identical rng state gives identical intervals.
    counts: optional precomputed resample_counts(rng, n, reps) (reps, n), to share one set of
        resamples between calls (rng is then not used).
    returns BootstrapResult with (K,) arrays (K=1 for 1-D input). Resamples whose arm mean
    is 0 give inf; they are kept (they sort to the top), as a ratio with a zero denominator is;
    resamples with both means 0 give 1.
    """
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {method!r}")
    base, arm = _paired(base, arm)
    n, k = base.shape
    point = safe_ratio(base.mean(axis=0), arm.mean(axis=0)) if n else np.full(k, np.nan)
    nan = np.full(k, np.nan)
    if n < MIN_SEEDS_FOR_CI:
        return BootstrapResult(point, nan, nan.copy(), n, nan.copy())
    w = resample_counts(rng, n, reps) if counts is None else counts  # (reps, n)
    # NaN times (unknown FLOPs, say) would poison the matmul for all columns: mask them.
    bad = ~(np.isfinite(base) & np.isfinite(arm)).all(axis=0)
    b = np.where(bad, 0.0, base)
    a = np.where(bad, 0.0, arm)
    boot = safe_ratio(w @ b, w @ a)  # (reps, K); the 1/n factors cancel
    jack = None
    if method == "percentile":
        q_lo, q_hi = _quantile_levels(level)
        lo, hi = np.full(k, q_lo), np.full(k, q_hi)
    else:
        sb, sa = b.sum(axis=0), a.sum(axis=0)
        jack = safe_ratio(sb - b, sa - a)  # (n, K) leave-one-out ratios of means
        lo, hi = _bca_levels(boot, point, jack, level)
    ci = _column_quantiles(boot, lo, hi)
    p = _bootstrap_p(boot, np.where(bad, 1.0, point), jack)
    ci[:, bad] = np.nan
    p[bad] = np.nan
    return BootstrapResult(point, ci[0], ci[1], n, p)


# --------------------------------------------------------------------------- Fieller


def fieller_ratio(base: np.ndarray, arm: np.ndarray, level: float = 0.95) -> BootstrapResult:
    """Fieller's interval for mean(base) / mean(arm) over paired rows, and its test of R = 1.

    base, arm: (n,) or (n, K) float; row i of both belongs to the same seed.
    With means mb, ma, sample (co)variances s_bb, s_ab, s_aa (denominator n - 1),
    q = t_{n-1, 1-alpha/2}^2 / n, the set {R : (mb - R ma)^2 <= q (s_bb - 2 R s_ab + R^2 s_aa)}
    is A R^2 - 2 B R + C <= 0 with A = ma^2 - q s_aa, B = mb ma - q s_ab, C = mb^2 - q s_bb.
    A > 0 (the arm's mean is significantly above 0): the interval between the roots
    (B -+ sqrt(B^2 - AC)) / A, which holds the point mb / ma. A <= 0: the set is unbounded;
    reported as [0, inf] (times are >= 0, so the ratio is too).
    p_value: the paired t-test of mean(base - arm) = 0, i.e. of R = 1: the interval (A > 0)
    excludes 1 iff p_value < 1 - level. NaN columns (unknown times) give NaN.
    returns BootstrapResult with (K,) arrays; ci_* NaN when n < MIN_SEEDS_FOR_CI.
    """
    base, arm = _paired(base, arm)
    n, k = base.shape
    mb, ma = base.mean(axis=0), arm.mean(axis=0)
    point = safe_ratio(mb, ma) if n else np.full(k, np.nan)
    nan = np.full(k, np.nan)
    if n < MIN_SEEDS_FOR_CI:
        return BootstrapResult(point, nan, nan.copy(), n, nan.copy())
    db, da = base - mb, arm - ma
    s_bb = (db * db).sum(axis=0) / (n - 1)
    s_aa = (da * da).sum(axis=0) / (n - 1)
    s_ab = (db * da).sum(axis=0) / (n - 1)
    c = t_quantile(1.0 - (1.0 - level) / 2.0, n - 1)
    q = c * c / n
    A = ma * ma - q * s_aa
    B = mb * ma - q * s_ab
    C = mb * mb - q * s_bb
    # B^2 - AC >= 0 whenever A > 0 (the point solves the inequality); clip rounding below 0.
    root = np.sqrt(np.maximum(B * B - A * C, 0.0))
    bounded = A > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(bounded, (B - root) / A, 0.0)
        hi = np.where(bounded, (B + root) / A, np.inf)
    # Paired t-test of R = 1: d = base - arm.
    d = base - arm
    md = d.mean(axis=0)
    sd = np.sqrt(((d - md) ** 2).sum(axis=0) / (n - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = md / (sd / math.sqrt(n))
    p = np.where(sd > _TIE_RTOL * np.abs(md), t_sf_two_sided(np.nan_to_num(t), n - 1),
                 np.where(md == 0, 1.0, 0.0))
    bad = ~(np.isfinite(base) & np.isfinite(arm)).all(axis=0)
    lo, hi, p = np.where(bad, np.nan, lo), np.where(bad, np.nan, hi), np.where(bad, np.nan, p)
    return BootstrapResult(point, lo, hi, n, p)


def ratio_interval(
    base: np.ndarray,
    arm: np.ndarray,
    rng: np.random.Generator,
    *,
    method: str = DEFAULT_CI_METHOD,
    reps: int = 10_000,
    level: float = 0.95,
    counts: np.ndarray | None = None,
) -> BootstrapResult:
    """CI and p-value for mean(base) / mean(arm) by one of CI_METHODS (see the module doc).

    base, arm: (n,) or (n, K); rng / reps / counts are used by the bootstrap methods only.
    """
    if method not in CI_METHODS:
        raise ValueError(f"method must be one of {CI_METHODS}, got {method!r}")
    if method == "fieller":
        return fieller_ratio(base, arm, level)
    return paired_ratio_bootstrap(
        base, arm, rng, reps=reps, level=level, method=method, counts=counts
    )


# --------------------------------------------------------------------------- other statistics


def _finite_sample(x: np.ndarray) -> tuple[np.ndarray, int, tuple[float, float, float] | None]:
    """x (n,) without NaNs, its size, and the (mean, NaN, NaN) answer when it is too small for
    an interval (all NaN when empty); None when an interval can be computed."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return x, n, (float("nan"), float("nan"), float("nan"))
    if n < MIN_SEEDS_FOR_CI:
        return x, n, (float(x.mean()), float("nan"), float("nan"))
    return x, n, None


def t_mean(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of x (n,) (NaNs dropped): mean -/+ t_{(1+level)/2, n-1} *
    sd / sqrt(n), sd with ddof 1. CI NaN when n < MIN_SEEDS_FOR_CI.

    Exact for normal data at any n, where a percentile bootstrap of the mean is too narrow at
    the seed counts suites use (it ignores the t factor: 4.30 / 1.96 at n = 3); final-quality
    deltas are differences of accuracies, close to normal. Example: x = [1, 2, 3] gives
    2 -/+ 4.303 * 1 / sqrt(3) = [-0.484, 4.484].
    """
    x, n, early = _finite_sample(x)
    if early is not None:
        return early
    mean = float(x.mean())
    half = t_quantile((1 + level) / 2, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def bootstrap_mean(
    x: np.ndarray,
    rng: np.random.Generator,
    reps: int = 10_000,
    level: float = 0.95,
    counts: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of x (n,) (NaNs dropped). CI NaN when n < 3.

    counts: optional precomputed resample_counts(rng, n_finite, reps) (rng then unused)."""
    x, n, early = _finite_sample(x)
    if early is not None:
        return early
    mean = float(x.mean())
    w = resample_counts(rng, n, reps) if counts is None else counts
    means = w @ x / n
    lo, hi = np.quantile(means, _quantile_levels(level))
    return mean, float(lo), float(hi)


def p_sooner(
    base_t: np.ndarray, base_e: np.ndarray, arm_t: np.ndarray, arm_e: np.ndarray
) -> np.ndarray:
    """Fraction of paired seeds where the arm crosses strictly sooner than the baseline.

    *_t: (n,) or (n, K) times (crossing or censoring); *_e: same shape, True = crossed.
    An ordering is known when the earlier time is an event (a censored run crosses, if
    ever, after its censoring time). Arm sooner: arm crossed and (baseline crossed later, or
    baseline censored at or after the arm's crossing). Ties and undecidable pairs (both
    censored, or a crossing after the other run's censoring) count 1/2. A diverged or failed
    run is censored at the budget (crossing.time_to_threshold), so it loses to every crossing.
    returns (K,) float (NaN when n = 0).
    """
    bt, at = np.asarray(base_t, float), np.asarray(arm_t, float)
    be, ae = np.asarray(base_e, bool), np.asarray(arm_e, bool)
    if bt.ndim == 1:
        bt, at, be, ae = bt[:, None], at[:, None], be[:, None], ae[:, None]
    arm_first = ae & ((be & (at < bt)) | (~be & (at <= bt)))
    base_first = be & ((ae & (bt < at)) | (~ae & (bt <= at)))
    score = np.where(arm_first, 1.0, np.where(base_first, 0.0, 0.5))
    if score.shape[0] == 0:
        return np.full(score.shape[1], np.nan)
    return score.mean(axis=0)
