"""Are wall-clock speedups trustworthy? A check of the train clock against the suite's own noise.

A speedup in train seconds compares two runs' clocks. When other jobs share the machine during
one run and not the other, the ratio measures the load, not the method (issue 22: a smoke
report showed 2.38x in seconds against 1.50x in epochs because the baseline's epochs took 167 s
and the w2s run's 87 s). Epochs, steps and FLOPs do not depend on the machine's load.

The check compares each run's *cost rate*: train seconds per FLOP at its last evaluation (FLOPs
count the teacher's forward passes, so a teacher's extra work is not mistaken for noise; runs
without a FLOP count use seconds per epoch). For one arm, the paired ratio q_s = rate(arm, seed
s) / rate(baseline, seed s) should be near 1; how far baseline runs of the same suite already
spread, max(rate) / min(rate) over the baseline seeds, is the noise the machine shows with
identical work. A pair is flagged when q_s lies outside [1 / band, band], where band = that
spread, at least NOISE_FLOOR. Pure functions; report.py turns flags into notes and warnings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The smallest band: identical work measured twice on a quiet machine differs by a few percent
# (timer and cache effects; a teacher's forward pass also runs at a slightly different rate per
# FLOP than the student's training step), so ratios within 5% are never called noisy.
NOISE_FLOOR = 1.05


def cost_rates(evals: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run with evaluations: run_id, arm, seed, device, rate, per.

    rate: train_wall_s / flops at the run's last test evaluation (seconds per FLOP), or
    train_wall_s / epoch when the run has no positive FLOP count (per = "flop" or "epoch").
    evals: tidy evaluation rows (load.EVAL_COLUMNS); runs: load.RUN_COLUMNS.
    """
    ev = evals[evals["split"] == "test"]
    cols = ["run_id", "arm", "seed", "device", "rate", "per"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    last = ev.sort_values(["run_id", "step"], kind="stable").groupby("run_id", observed=True).tail(1)
    rows = []
    info = {rid: (arm, int(seed), str(dev))
            for rid, arm, seed, dev in zip(runs["run_id"], runs["arm"], runs["seed"], runs["device"])}
    for r in last.itertuples(index=False):
        if r.run_id not in info:
            continue
        wall, flops, epoch = float(r.train_wall_s), float(r.flops), float(r.epoch)
        if np.isfinite(flops) and flops > 0:
            rate, per = wall / flops, "flop"
        elif np.isfinite(epoch) and epoch > 0:
            rate, per = wall / epoch, "epoch"
        else:
            continue
        if not (np.isfinite(rate) and rate > 0):
            continue
        arm, seed, dev = info[r.run_id]
        rows.append([r.run_id, arm, seed, dev, rate, per])
    return pd.DataFrame(rows, columns=cols)


def noisy_pairs(
    base: dict[int, float], arm: dict[int, float], floor: float = NOISE_FLOOR
) -> tuple[float, dict[int, float], list[int]]:
    """Flag the seeds whose arm/baseline cost-rate ratio exceeds the baseline's own spread.

    base, arm: seed -> cost rate (seconds per unit of work), positive.
    returns (band, {seed: q = arm rate / baseline rate} for paired seeds, flagged seeds sorted):
    band = max(floor, max(base) / min(base)); flagged: q > band or q < 1 / band.
    """
    vals = np.array(list(base.values()), dtype=float)
    band = max(floor, float(vals.max() / vals.min())) if len(vals) else floor
    ratios = {s: arm[s] / base[s] for s in sorted(set(base) & set(arm))}
    flagged = [s for s, q in ratios.items() if q > band or q < 1.0 / band]
    return band, ratios, flagged
