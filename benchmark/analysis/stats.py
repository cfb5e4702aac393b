"""Paired bootstrap for speedups (ratio of mean times), vectorised; no global RNG.

Speedup of an arm over the baseline = mean(baseline times) / mean(arm times) over the seeds
both have (paired by seed value). The bootstrap resamples *seed indices* with replacement,
the same indices for both arms (a paired bootstrap; Efron & Tibshirani 1993, ch. 6), and
the same resamples for every column (threshold x unit) of a comparison, which keeps the CI
band of a threshold sweep coherent. Resampled means are computed as count-matrix products,
W @ x / n with W (reps, n) the multiplicity of each seed in each resample, so there is no
Python loop over resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CI_METHODS = ("percentile", "bca")
MIN_SEEDS_FOR_CI = 3

_NORMAL = NormalDist()


def resample_counts(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    """Multiplicity of each of n items in each of reps resamples with replacement.

    Draws the (reps, n) index array ``rng.integers(0, n, (reps, n))`` (the same draws
    as the textbook index bootstrap) and counts it. returns (reps, n) float64, rows sum to n.
    """
    idx = rng.integers(0, n, size=(reps, n))
    flat = (idx + n * np.arange(reps)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(np.float64)


def _quantile_levels(level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    return alpha, 1.0 - alpha


def _bca_levels(
    boot: np.ndarray, point: np.ndarray, jack: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """BCa-adjusted quantile levels per column (Efron 1987; as in scipy.stats.bootstrap).

    boot: (reps, K) bootstrap statistics; point: (K,); jack: (n, K) leave-one-out statistics.
    returns (lo, hi): (K,) levels in [0, 1].
    """
    lo_hi = _quantile_levels(level)
    # Bias correction z0 from the fraction of bootstrap statistics below the estimate
    # (ties count half, as scipy's _percentile_of_score).
    frac = ((boot < point).sum(axis=0) + (boot <= point).sum(axis=0)) / (2.0 * boot.shape[0])
    frac = np.clip(frac, 1e-12, 1 - 1e-12)
    z0 = np.array([_NORMAL.inv_cdf(float(f)) for f in frac])
    # Acceleration from the jackknife (Efron & Tibshirani 1993, eq. 14.15).
    d = jack.mean(axis=0) - jack
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (d**3).sum(axis=0) / (6.0 * ((d**2).sum(axis=0)) ** 1.5)
    a = np.where(np.isfinite(a), a, 0.0)
    out = []
    for q in lo_hi:
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
        v = s[i0, cols] * (1 - w) + s[i1, cols] * w
        out[row] = np.where(ok, v, np.nan)
    return out


@dataclass
class BootstrapResult:
    """point, ci_low, ci_high: (K,) float. ci_* NaN when fewer than MIN_SEEDS_FOR_CI pairs."""

    point: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int


def paired_ratio_bootstrap(
    base: np.ndarray,
    arm: np.ndarray,
    rng: np.random.Generator,
    reps: int = 10_000,
    level: float = 0.95,
    method: str = "percentile",
    counts: np.ndarray | None = None,
) -> BootstrapResult:
    """CI for mean(base) / mean(arm), resampling paired rows.

    base, arm: (n,) or (n, K) float; row i of both belongs to the same seed.
    rng: the only randomness; identical rng state gives identical intervals.
    counts: optional precomputed resample_counts(rng, n, reps) (reps, n), to share one set of
        resamples between calls (rng is then not used).
    returns BootstrapResult with (K,) arrays (K=1 for 1-D input). Resamples whose arm mean
    is 0 give inf; they are kept (they sort to the top), as a ratio with a zero denominator is.
    """
    if method not in CI_METHODS:
        raise ValueError(f"method must be one of {CI_METHODS}, got {method!r}")
    base = np.asarray(base, dtype=float)
    arm = np.asarray(arm, dtype=float)
    if base.ndim == 1:
        base, arm = base[:, None], arm[:, None]
    if base.shape != arm.shape:
        raise ValueError(f"paired arrays differ in shape: {base.shape} vs {arm.shape}")
    n, k = base.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        point = base.mean(axis=0) / arm.mean(axis=0) if n else np.full(k, np.nan)
    nan = np.full(k, np.nan)
    if n < MIN_SEEDS_FOR_CI:
        return BootstrapResult(point, nan, nan.copy(), n)
    w = resample_counts(rng, n, reps) if counts is None else counts  # (reps, n)
    # NaN times (unknown FLOPs, say) would poison the matmul for all columns: mask them.
    bad = ~(np.isfinite(base) & np.isfinite(arm)).all(axis=0)
    b = np.where(bad, 0.0, base)
    a = np.where(bad, 0.0, arm)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (w @ b) / (w @ a)  # (reps, K); the 1/n factors cancel
    if method == "percentile":
        q_lo, q_hi = _quantile_levels(level)
        lo, hi = np.full(k, q_lo), np.full(k, q_hi)
    else:
        sb, sa = b.sum(axis=0), a.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            jack = (sb - b) / (sa - a)  # (n, K) leave-one-out ratios of means
        lo, hi = _bca_levels(boot, point, jack, level)
    ci = _column_quantiles(boot, lo, hi)
    ci[:, bad] = np.nan
    return BootstrapResult(point, ci[0], ci[1], n)


def bootstrap_mean(
    x: np.ndarray,
    rng: np.random.Generator,
    reps: int = 10_000,
    level: float = 0.95,
    counts: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of x (n,) (NaNs dropped). CI NaN when n < 3.

    counts: optional precomputed resample_counts(rng, n_finite, reps) (rng then unused)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < MIN_SEEDS_FOR_CI:
        return mean, float("nan"), float("nan")
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
    censored, or a crossing after the other run's censoring) count 1/2.
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
