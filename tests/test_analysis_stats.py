"""Intervals for a ratio of paired means (bootstrap vs scipy.stats.bootstrap, Fieller by hand
and by inverting the t-test), Student t, Holm, P(sooner), zero times."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from benchmark.analysis.stats import (
    bootstrap_mean,
    fieller_ratio,
    holm,
    p_sooner,
    paired_ratio_bootstrap,
    ratio_interval,
    resample_counts,
    safe_ratio,
    t_quantile,
    t_sf_two_sided,
)


def data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.gamma(5.0, 2.0, size=n) + 5
    arm = base / rng.uniform(1.5, 2.5, size=n)
    return base, arm


def ratio(b, a, axis=-1):
    return b.mean(axis=axis) / a.mean(axis=axis)


def test_resample_counts_rows_sum_to_n_and_match_index_draws():
    w = resample_counts(np.random.default_rng(3), 7, 50)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    idx = np.random.default_rng(3).integers(0, 7, size=(50, 7))
    assert (np.stack([np.bincount(r, minlength=7) for r in idx]) == w).all()


def test_point_estimate_is_ratio_of_means():
    base = np.array([4.0, 6.0, 8.0])
    arm = np.array([2.0, 2.0, 5.0])
    res = paired_ratio_bootstrap(base, arm, np.random.default_rng(0), reps=100)
    assert res.point[0] == pytest.approx(2.0)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_ci_agrees_with_scipy_paired(method):
    base, arm = data()
    reps = 20_000
    ours = paired_ratio_bootstrap(base, arm, np.random.default_rng(0), reps=reps, method=method)
    ref = sps.bootstrap(
        (base, arm),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=reps,
        method="BCa" if method == "bca" else "percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    width = ref.high - ref.low
    # Monte-Carlo error of a 2.5% quantile with 20k resamples is ~1% of the CI width;
    # allow 5% of the width.
    assert ours.ci_low[0] == pytest.approx(ref.low, abs=0.05 * width)
    assert ours.ci_high[0] == pytest.approx(ref.high, abs=0.05 * width)


def test_percentile_ci_exact_against_index_bootstrap():
    base, arm = data(n=9)
    res = paired_ratio_bootstrap(base, arm, np.random.default_rng(5), reps=2000)
    idx = np.random.default_rng(5).integers(0, 9, size=(2000, 9))
    boot = base[idx].mean(axis=1) / arm[idx].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert res.ci_low[0] == pytest.approx(lo, rel=1e-12)
    assert res.ci_high[0] == pytest.approx(hi, rel=1e-12)


def test_same_seed_identical_and_columns_vectorised():
    base, arm = data()
    a = paired_ratio_bootstrap(base, arm, np.random.default_rng(42), reps=5000)
    b = paired_ratio_bootstrap(base, arm, np.random.default_rng(42), reps=5000)
    assert (a.ci_low == b.ci_low).all() and (a.ci_high == b.ci_high).all()
    both = paired_ratio_bootstrap(
        np.stack([base, 2 * base], 1), np.stack([arm, arm], 1), np.random.default_rng(42), reps=5000
    )
    assert both.ci_low[0] == pytest.approx(a.ci_low[0], rel=1e-12)
    assert both.ci_low[1] == pytest.approx(2 * a.ci_low[0])


def test_fewer_than_three_seeds_gives_no_ci():
    res = paired_ratio_bootstrap(
        np.array([4.0, 6.0]), np.array([2.0, 3.0]), np.random.default_rng(0), reps=100
    )
    assert res.point[0] == pytest.approx(2.0)
    assert np.isnan(res.ci_low[0]) and np.isnan(res.ci_high[0])
    assert np.isnan(bootstrap_mean(np.array([1.0, 2.0]), np.random.default_rng(0))[1])


def test_bootstrap_mean_against_scipy():
    x = np.random.default_rng(2).normal(90, 1, size=10)
    m, lo, hi = bootstrap_mean(x, np.random.default_rng(0), reps=20_000)
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    assert m == pytest.approx(x.mean())
    w = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.05 * w) and hi == pytest.approx(
        ref.high, abs=0.05 * w
    )


def test_p_sooner_with_censoring():
    # seed 0: arm 2 vs base 4 -> arm; seed 1: arm 6 vs base 4 -> base;
    # seed 2: arm 5 vs base censored at 10 -> arm; seed 3: both censored -> 1/2;
    # seed 4: tie -> 1/2
    bt = np.array([4.0, 4.0, 10.0, 10.0, 3.0])
    be = np.array([True, True, False, False, True])
    at = np.array([2.0, 6.0, 5.0, 10.0, 3.0])
    ae = np.array([True, True, True, False, True])
    assert p_sooner(bt, be, at, ae)[0] == pytest.approx((1 + 0 + 1 + 0.5 + 0.5) / 5)


# ---------------------------------------------------------------- issue 18: BCa ties, zeros


def test_bca_counts_permuted_resamples_as_ties_like_scipy():
    """Issue 18's failing input: resamples that only permute the 3 seeds equal the point
    estimate up to the last bit; counted as 'above' (exact <, <=) they moved the interval to
    [1.019, 1.391]. scipy's BCa gives [1.047, 1.585]; the fix must too (same resamples)."""
    base = np.array([22.27968457447747, 25.6998573949294, 22.178672365625275])
    arm = np.array([14.055922135791587, 25.21796447124063, 19.85401070449125])
    ours = paired_ratio_bootstrap(base, arm, np.random.default_rng(123), reps=9999, method="bca")
    ref = sps.bootstrap(
        (base, arm), ratio, paired=True, vectorized=True, n_resamples=9999, method="BCa",
        rng=np.random.default_rng(123),
    ).confidence_interval
    assert ref.low == pytest.approx(1.047, abs=5e-4) and ref.high == pytest.approx(1.585, abs=5e-4)
    assert ours.ci_low[0] == pytest.approx(ref.low, rel=1e-9)
    assert ours.ci_high[0] == pytest.approx(ref.high, rel=1e-9)


@pytest.mark.parametrize("method", ["percentile", "bca", "fieller"])
def test_zero_times_equal_at_the_start(method):
    """Both arms crossing at the epoch-0 evaluation: 0/0 is 1 (equal), never NaN."""
    base, arm = np.array([0.0, 5.0, 6.0]), np.array([0.0, 3.0, 4.0])
    res = ratio_interval(base, arm, np.random.default_rng(0), method=method, reps=2000)
    assert res.point[0] == pytest.approx(11 / 7)
    assert not np.isnan(res.ci_low[0]) and not np.isnan(res.ci_high[0])
    if method != "fieller":  # resamples of seed 0 alone are 0/0 = 1, the rest finite
        assert np.isfinite(res.ci_high[0]) and res.ci_low[0] == pytest.approx(1.0)
    else:  # the arm's mean is not significantly above 0 with t_2 = 4.30: unbounded, not NaN
        assert res.ci_low[0] == 0.0 and res.ci_high[0] == np.inf
    zero = ratio_interval(np.zeros(3), np.zeros(3), np.random.default_rng(0), method=method)
    assert zero.point[0] == 1.0 and not np.isnan(zero.ci_low[0])
    assert safe_ratio(np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 2.0])).tolist() == [
        1.0, np.inf, 0.0]


# ---------------------------------------------------------------- Student t, Fieller, Holm


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 30, 101])
def test_t_distribution_against_scipy(df):
    for q in (0.001, 0.025, 0.6, 0.975, 0.999):
        assert t_quantile(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-10, abs=1e-12)
    x = np.array([0.0, 0.3, 1.7, 5.0, 40.0])
    assert t_sf_two_sided(x, df) == pytest.approx(2 * sps.t.sf(x, df), abs=1e-13)


def test_t_quantile_by_hand():
    # df = 1 is Cauchy: F(t) = 1/2 + atan(t)/pi, so the 97.5% point is tan(0.475 pi)
    assert t_quantile(0.975, 1) == pytest.approx(np.tan(0.475 * np.pi), rel=1e-12)
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)); 97.5% -> t / sqrt(2 + t^2) = 0.95
    assert t_quantile(0.975, 2) == pytest.approx(0.95 * np.sqrt(2 / (1 - 0.95**2)), rel=1e-12)


def test_fieller_by_hand_and_by_inverting_the_t_test():
    # Zero-variance differences at R = 2: d(R) = b - R a = (4 - 2R, 6 - 3R, 8 - 4R) = (2 - R) a,
    # and with a constant ratio every seed says R = 2 exactly: the interval is the point.
    res = fieller_ratio(np.array([4.0, 6.0, 8.0]), np.array([2.0, 3.0, 4.0]))
    assert res.ci_low[0] == pytest.approx(2.0) and res.ci_high[0] == pytest.approx(2.0)
    assert res.p_value[0] == pytest.approx(2 * sps.t.sf(6 / (2 / np.sqrt(3)) , 2))
    # General case: the set {R : |t(R)| <= t_crit} on a fine grid, and scipy's paired t-test.
    base, arm = data(n=6, seed=4)
    res = fieller_ratio(base, arm)
    grid = np.linspace(0.5, 5.0, 400_001)
    d = base[:, None] - grid * arm[:, None]
    t = d.mean(0) / (d.std(0, ddof=1) / np.sqrt(6))
    inside = grid[np.abs(t) <= sps.t.ppf(0.975, 5)]
    step = grid[1] - grid[0]
    assert res.ci_low[0] == pytest.approx(inside.min(), abs=step)
    assert res.ci_high[0] == pytest.approx(inside.max(), abs=step)
    assert res.p_value[0] == pytest.approx(sps.ttest_rel(base, arm).pvalue, rel=1e-9)
    # columns are independent problems
    both = fieller_ratio(np.stack([base, 2 * base], 1), np.stack([arm, arm], 1))
    assert both.ci_low[0] == pytest.approx(res.ci_low[0])
    assert both.ci_low[1] == pytest.approx(2 * res.ci_low[0])


def test_fieller_unbounded_when_the_arm_mean_is_not_above_zero():
    res = fieller_ratio(np.array([5.0, 6.0, 7.0]), np.array([0.1, 4.0, 0.2]))
    assert res.ci_low[0] == 0.0 and res.ci_high[0] == np.inf


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_p_value_inverts_its_interval(method):
    """The interval at level 1 - p has 1 as an end (up to interpolation between resamples)."""
    rng = np.random.default_rng(7)
    base = rng.gamma(5, 2, 6) + 3
    arm = base / 1.02 + rng.normal(0, 1.5, 6)
    res = paired_ratio_bootstrap(base, arm, np.random.default_rng(1), reps=20_000, method=method)
    p = res.p_value[0]
    assert 0.01 < p < 0.5
    at_p = paired_ratio_bootstrap(
        base, arm, np.random.default_rng(1), reps=20_000, method=method, level=1 - p
    )
    assert min(abs(at_p.ci_low[0] - 1), abs(at_p.ci_high[0] - 1)) < 1e-3


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04): 0.03, 0.06, 0.06
    adj = holm(np.array([0.01, 0.04, 0.03, np.nan]))
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adj[3])
    assert holm(np.array([0.5, 0.9])).tolist() == [1.0, 1.0]
    assert np.isnan(holm(np.array([np.nan]))).all()


def test_t_mean_interval_by_hand():
    from benchmark.analysis.stats import t_mean

    m, lo, hi = t_mean(np.array([1.0, 2.0, np.nan, 3.0]))
    # mean 2, sd 1, t_{0.975, 2} = 4.302653: 2 -/+ 4.302653 / sqrt(3)
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / 3**0.5, abs=1e-5)
    assert hi == pytest.approx(2 + 4.302653 / 3**0.5, abs=1e-5)
    assert np.isnan(t_mean(np.array([1.0, 2.0]))[1])  # fewer than 3 values: no interval
