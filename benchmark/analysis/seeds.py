"""How many paired seeds a comparison needs, from the per-seed variation a suite showed.

Assumptions (stated in the report next to the numbers): the per-seed log speedup
L_i = log(baseline time_i / arm time_i) is normal with SD ``sd`` (estimated from a pilot or a
finished suite), and the report's interval behaves like the t-interval of mean(L) on the log
scale, which Fieller's interval for the ratio of mean times approaches (both invert a t
statistic with n - 1 df), and is calibrated at that n (calibration.min_calibrated_n: fewer
seeds than that get no verdict, whatever the formula says).

* Interval half-width: the interval exp(mean(L) -+ t_{n-1} sd / sqrt(n)) is within a factor
  (1 + h) of the point on both sides when t_{n-1, 1-alpha/2} sd / sqrt(n) <= log(1 + h).
* Power: the paired two-sided t-test at level alpha of mean(L) = 0 when the true speedup is S
  rejects with probability P(|T'| > t_{n-1, 1-alpha/2}), T' noncentral t with n - 1 df and
  noncentrality log(S) sqrt(n) / sd. Computed exactly by integrating over the chi
  distribution of the SD estimate: with U = s / sd, U^2 (n - 1) ~ chi^2_{n-1},
  P(T' > c) = E_U[1 - Phi(c U - lambda)] and P(T' < -c) = E_U[Phi(-c U - lambda)].
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from benchmark.analysis.stats import MIN_SEEDS_FOR_CI, t_quantile

DEFAULT_SPEEDUP = 1.2
DEFAULT_HALF_WIDTH = 0.10
DEFAULT_POWER = 0.8
N_MAX = 10_000
_NORMAL = NormalDist()
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised (Phi(x) = erfc(-x / sqrt 2) / 2)."""
    return 0.5 * _erfc(-np.asarray(x, dtype=float) / math.sqrt(2.0)).astype(float)


def seeds_for_half_width(
    sd: float, half_width: float = DEFAULT_HALF_WIDTH, level: float = 0.95
) -> int | None:
    """Smallest n >= MIN_SEEDS_FOR_CI with t_{n-1, 1-alpha/2} sd / sqrt(n) <= log(1 + half_width)
    (the interval within a factor 1 + half_width of the point on both sides). None for a
    non-finite sd or when more than N_MAX seeds would be needed."""
    if not math.isfinite(sd) or sd < 0 or half_width <= 0:
        return None
    target = math.log1p(half_width)
    q = 1.0 - (1.0 - level) / 2.0
    # The normal-quantile answer is a lower bound (t > z); step up from it.
    n = max(MIN_SEEDS_FOR_CI, math.ceil((_NORMAL.inv_cdf(q) * sd / target) ** 2))
    while n <= N_MAX:
        if t_quantile(q, n - 1) * sd / math.sqrt(n) <= target:
            return n
        n += 1
    return None


def power_paired_t(n: int, sd: float, speedup: float = DEFAULT_SPEEDUP, level: float = 0.95) -> float:
    """Power of the two-sided paired t-test at alpha = 1 - level on n per-seed log speedups
    with SD sd, when the true speedup is `speedup` (see the module doc)."""
    if n < 2:
        raise ValueError("power needs n >= 2 seeds")
    if sd == 0:
        return 1.0 if speedup != 1 else 1.0 - level
    nu = n - 1
    c = t_quantile(1.0 - (1.0 - level) / 2.0, nu)
    lam = math.log(speedup) * math.sqrt(n) / sd
    # Density of U = sqrt(chi2_nu / nu): f(u) = 2 (nu/2)^(nu/2) u^(nu-1) exp(-nu u^2 / 2) /
    # Gamma(nu/2), integrated by Simpson's rule on [0, 1 + 12 / sqrt(nu)] (the mass beyond is
    # < 1e-15). f(0) = sqrt(2 / pi) for nu = 1 (a half-normal), else 0.
    u = np.linspace(0.0, 1.0 + 12.0 / math.sqrt(nu), 2001)
    if nu == 1:
        f = math.sqrt(2 / math.pi) * np.exp(-u * u / 2)
    else:
        with np.errstate(divide="ignore"):  # log(0) = -inf -> f(0) = 0
            f = np.exp(math.log(2.0) + (nu / 2) * math.log(nu / 2) + (nu - 1) * np.log(u)
                       - nu * u * u / 2 - math.lgamma(nu / 2))
    g = (1.0 - _phi(c * u - lam)) + _phi(-c * u - lam)
    w = np.ones(u.size)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return float((u[1] - u[0]) / 3.0 * np.sum(w * f * g))


def seeds_for_power(
    sd: float, speedup: float = DEFAULT_SPEEDUP, power: float = DEFAULT_POWER, level: float = 0.95
) -> int | None:
    """Smallest n >= MIN_SEEDS_FOR_CI whose paired t-test on log speedups detects `speedup`
    with at least `power` (power_paired_t). None for a non-finite sd, speedup 1, or more than
    N_MAX seeds."""
    if not math.isfinite(sd) or sd < 0 or speedup <= 0 or speedup == 1:
        return None
    q = 1.0 - (1.0 - level) / 2.0
    d = abs(math.log(speedup))
    # Normal approximation (a lower bound: the t-test needs at least this many), then step up.
    n = max(MIN_SEEDS_FOR_CI, math.ceil(((_NORMAL.inv_cdf(q) + _NORMAL.inv_cdf(power)) * sd / d) ** 2))
    while n <= N_MAX:
        if power_paired_t(n, sd, speedup, level) >= power:
            return n
        n += 1
    return None


def log_ratio_sd(
    base_t: np.ndarray, base_e: np.ndarray, arm_t: np.ndarray, arm_e: np.ndarray
) -> tuple[float, int]:
    """SD (n - 1 denominator) of the per-seed log speedups log(base / arm) over the pairs in
    which both runs crossed at a time > 0 (a censored time is only a bound; a 0 time has no
    log), and the number of those pairs. (NaN, k) when k < 2.

    *_t: (n,) times; *_e: (n,) bool, True = crossed."""
    bt, at = np.asarray(base_t, float), np.asarray(arm_t, float)
    ok = np.asarray(base_e, bool) & np.asarray(arm_e, bool) & (bt > 0) & (at > 0)
    k = int(ok.sum())
    if k < 2:
        return float("nan"), k
    return float(np.std(np.log(bt[ok] / at[ok]), ddof=1)), k


def seeds_table(
    cross: pd.DataFrame,
    unit: str,
    thresholds: list[float],
    arms: list[str],
    *,
    baseline: str = "baseline",
    min_seeds: int | None = None,
    speedup: float = DEFAULT_SPEEDUP,
    half_width: float = DEFAULT_HALF_WIDTH,
    power: float = DEFAULT_POWER,
    level: float = 0.95,
) -> pd.DataFrame:
    """Seeds needed per arm and threshold from the suite's own per-seed variation.

    cross: crossing table (crossing.time_to_threshold) with columns arm, seed, threshold,
    unit, time, event. min_seeds: the fewest seeds the report's interval is calibrated at
    (the needed counts are raised to it). returns one row per arm x threshold: arm,
    threshold, pairs (usable pairs), sd, n_half_width, n_power (NaN where sd is NaN).
    """
    c = cross[cross["unit"] == unit]
    # (arm, threshold) -> {seed: (time, event)}: one pass over the table, not a lookup per cell
    cells: dict[tuple, dict] = {}
    for arm, t, seed, time, event in zip(c["arm"], c["threshold"], c["seed"], c["time"],
                                         c["event"]):
        cells.setdefault((arm, t), {})[seed] = (time, event)
    rows = []
    floor = max(MIN_SEEDS_FOR_CI, min_seeds or 0)
    for arm in arms:
        if arm == baseline:
            continue
        for t in thresholds:
            a, b = cells.get((arm, t), {}), cells.get((baseline, t), {})
            seeds = sorted(set(a) & set(b))
            bb = np.array([b[s][0] for s in seeds], float), np.array([b[s][1] for s in seeds], bool)
            aa = np.array([a[s][0] for s in seeds], float), np.array([a[s][1] for s in seeds], bool)
            sd, k = log_ratio_sd(bb[0], bb[1], aa[0], aa[1])
            nh = seeds_for_half_width(sd, half_width, level)
            npw = seeds_for_power(sd, speedup, power, level)
            rows.append({
                "arm": arm, "threshold": float(t), "pairs": k, "sd": sd,
                "n_half_width": max(nh, floor) if nh is not None else np.nan,
                "n_power": max(npw, floor) if npw is not None else np.nan,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["arm", "threshold", "pairs", "sd", "n_half_width", "n_power"])


def seeds_note(speedup: float = DEFAULT_SPEEDUP, half_width: float = DEFAULT_HALF_WIDTH,
               power: float = DEFAULT_POWER, min_seeds: int | None = None) -> str:
    """The assumptions behind seeds_table, in words, for the report."""
    return (
        f"Each cell: SD of the per-seed log speedup log(baseline time / arm time) over the "
        f"pairs where both runs crossed -> paired seeds for a 95% interval within "
        f"x/{1 + half_width:g} of the point / for {power:.0%} power to detect a {speedup:g}x "
        "speedup (two-sided, 5%). Assumes normal per-seed log speedups with that SD and an "
        "interval that behaves like the t-interval of their mean (Fieller's does, on the "
        "log scale)"
        + (f"; never fewer than {min_seeds}, the fewest seeds the interval is calibrated at"
           if min_seeds else "")
        + ". An SD from 2-5 seeds is itself rough: read these as orders of magnitude."
    )
