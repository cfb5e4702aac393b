"""How many seeds (benchmark.analysis.seeds): exact answers on tiny inputs, power vs scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.analysis.seeds import (
    log_ratio_sd,
    power_paired_t,
    seeds_for_half_width,
    seeds_for_power,
    seeds_table,
)


def test_seeds_for_half_width_by_hand():
    # t_{n-1,0.975} * 0.1 / sqrt(n) <= log(1.1) = 0.09531:
    # n = 6: 2.5706 * 0.1 / 2.4495 = 0.1049 (too wide); n = 7: 2.4469 * 0.1 / 2.6458 = 0.0925
    assert seeds_for_half_width(0.1, 0.10) == 7
    # tiny spread: the floor of 3 seeds (an interval needs 3)
    assert seeds_for_half_width(0.001, 0.10) == 3
    assert seeds_for_half_width(float("nan")) is None


@pytest.mark.parametrize("n", [3, 4, 5, 8, 20, 100])
@pytest.mark.parametrize("sd", [0.05, 0.2, 0.6])
def test_power_is_the_noncentral_t_tail(n, sd):
    nu, c = n - 1, sps.t.ppf(0.975, n - 1)
    lam = math.log(1.2) * math.sqrt(n) / sd
    ref = sps.nct.sf(c, nu, lam) + sps.nct.cdf(-c, nu, lam)
    if np.isnan(ref):  # scipy's nct gives up far in the tail (lambda > ~10): power is ~1
        assert lam - c > 7 and power_paired_t(n, sd, 1.2) > 1 - 1e-9
        return
    assert power_paired_t(n, sd, 1.2) == pytest.approx(ref, abs=1e-7)


def test_seeds_for_power_is_the_first_n_past_80_percent():
    def power(n, sd):
        lam = math.log(1.2) * math.sqrt(n) / sd
        c = sps.t.ppf(0.975, n - 1)
        return sps.nct.sf(c, n - 1, lam) + sps.nct.cdf(-c, n - 1, lam)

    # sd 0.1: power(4) = 0.63 < 0.8 <= power(5) = 0.88
    assert power(4, 0.1) < 0.8 <= power(5, 0.1)
    assert seeds_for_power(0.1, 1.2, 0.8) == 5
    n = seeds_for_power(0.25, 1.2, 0.8)
    assert power(n - 1, 0.25) < 0.8 <= power(n, 0.25)
    assert seeds_for_power(0.25, 1.0) is None  # no effect to detect


def test_log_ratio_sd_uses_pairs_that_both_crossed():
    # log ratios ln 2, 0, ln 2 (the 4th pair is censored, the 5th has a 0 time):
    # SD = sqrt(((ln2/3)^2 + (2 ln2/3)^2 + (ln2/3)^2) / 2) = ln 2 / sqrt(3)
    bt = np.array([6.0, 6.0, 8.0, 20.0, 0.0])
    at = np.array([3.0, 6.0, 4.0, 5.0, 0.0])
    be = np.array([True, True, True, False, True])
    ae = np.ones(5, bool)
    sd, k = log_ratio_sd(bt, be, at, ae)
    assert k == 3 and sd == pytest.approx(math.log(2) / math.sqrt(3))
    assert np.isnan(log_ratio_sd(bt[:1], be[:1], at[:1], ae[:1])[0])


def test_seeds_table_per_arm_and_threshold():
    rows = []
    for seed, (b, a) in enumerate([(6.0, 3.0), (6.0, 6.0), (8.0, 4.0)]):
        rows += [
            {"arm": "baseline", "seed": seed, "threshold": 50.0, "unit": "epochs", "time": b,
             "event": True},
            {"arm": "kd", "seed": seed, "threshold": 50.0, "unit": "epochs", "time": a,
             "event": True},
            {"arm": "kd", "seed": seed, "threshold": 50.0, "unit": "steps", "time": 1.0,
             "event": True},
        ]
    tab = seeds_table(pd.DataFrame(rows), "epochs", [50.0], ["baseline", "kd"], min_seeds=4)
    assert len(tab) == 1
    r = tab.iloc[0]
    sd = math.log(2) / math.sqrt(3)
    assert r["arm"] == "kd" and r["pairs"] == 3 and r["sd"] == pytest.approx(sd)
    assert r["n_half_width"] == seeds_for_half_width(sd)
    assert r["n_power"] == seeds_for_power(sd)
    # the floor: never fewer seeds than the interval is calibrated at
    tiny = seeds_table(pd.DataFrame(rows).assign(time=lambda d: d["time"].where(
        d["arm"] == "baseline", d["time"])), "epochs", [50.0], ["kd"], min_seeds=40)
    assert tiny.iloc[0]["n_power"] >= 40
