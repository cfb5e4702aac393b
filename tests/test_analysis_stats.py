"""Paired bootstrap of a ratio of means vs scipy.stats.bootstrap; P(sooner); counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from benchmark.analysis.stats import (
    bootstrap_mean,
    p_sooner,
    paired_ratio_bootstrap,
    resample_counts,
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
