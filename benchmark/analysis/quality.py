"""Per-run tables beside the speedups: final quality, switch-off, provenance and the
reliability of wall-clock seconds. Pure: SuiteData in, DataFrames / messages out."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from benchmark.analysis.crossing import FAILED_STATUSES, WALL_UNITS
from benchmark.analysis.fmt import fmt_num
from benchmark.analysis.load import SuiteData, teacher_build
from benchmark.analysis.speedup import BASELINE
from benchmark.analysis.stats import t_mean

FINISHED = ("complete", "diverged")  # run statuses whose last evaluation is final
QUALITY_NOTE = (
    "Last test evaluation of each finished run (complete or diverged; a run still running or "
    "stopped part way has no final value yet); mean over seeds [95% Student-t CI]; "
    "delta = arm - baseline paired by seed. Diverged and failed runs are counted next to n; "
    "one without a finite final value is left out of the mean, which then flatters its arm "
    "(survivorship: the run that failed would have scored worst)."
)


def final_quality(
    suite: SuiteData, *, reps: int = 10_000, seed: int = 0, baseline: str = BASELINE
) -> pd.DataFrame:
    """Final test value per arm and metric: mean [CI] over seeds and paired delta vs baseline.

    The final value of a run is its last test evaluation of that metric (for a diverged run
    that may be NaN; NaNs are excluded and counted in n_nan). Only finished runs (complete or
    diverged) count: a run still running, or stopped part way, has no final value yet.
    n_diverged: the arm's runs that diverged or failed; n_left_out: those of its diverged /
    failed / finished runs with no finite final value (n_nan plus failed runs), left out of
    the mean, which is then biased in the arm's favour (quality_rows says which way).
    """
    status_of = suite.runs.groupby("arm")["status"]
    n_div = status_of.apply(lambda x: int(x.isin(FAILED_STATUSES).sum()))
    n_failed = status_of.apply(lambda x: int((x == "failed").sum()))
    finished = suite.runs.loc[suite.runs["status"].isin(FINISHED), "run_id"]
    ev = suite.evals[(suite.evals["split"] == "test") & suite.evals["run_id"].isin(finished)]
    if ev.empty:
        return pd.DataFrame()
    last = (  # tail(1), not last(): last() skips NaN, and a diverged run may end on NaN
        ev.sort_values(["run_id", "step"], kind="stable")
        .groupby(["arm", "seed", "metric"], as_index=False)
        .tail(1)
    )
    rows = []

    def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
        # Student-t, not a percentile bootstrap: at 3-5 seeds the bootstrap interval of a mean
        # is too narrow (no t factor), which read small final-quality deltas as real
        return t_mean(x)

    metrics = sorted(last["metric"].unique(), key=lambda m: (m != suite.metric, m))
    for metric in metrics:
        lm = last[last["metric"] == metric]
        base = lm[lm["arm"] == baseline].set_index("seed")["value"]
        for arm in [a for a in suite.arms if a in set(lm["arm"])]:
            v = lm[lm["arm"] == arm].set_index("seed")["value"].astype(float)
            mean, lo, hi = mean_ci(v.to_numpy())
            row = {
                "arm": arm,
                "metric": metric,
                "n": int(np.isfinite(v).sum()),
                "n_nan": int((~np.isfinite(v)).sum()),
                "n_diverged": int(n_div.get(arm, 0)),
                "n_left_out": int((~np.isfinite(v)).sum()) + int(n_failed.get(arm, 0)),
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "delta": np.nan,
                "delta_ci_low": np.nan,
                "delta_ci_high": np.nan,
                "n_paired": 0,
            }
            if arm != baseline and len(base):
                common = sorted(set(v.index) & set(base.index))
                d = v.reindex(common).to_numpy(float) - base.reindex(common).to_numpy(float)
                dm, dlo, dhi = mean_ci(d)
                row.update(
                    delta=dm,
                    delta_ci_low=dlo,
                    delta_ci_high=dhi,
                    n_paired=int(np.isfinite(d).sum()),
                )
            rows.append(row)
    return pd.DataFrame(rows)


def switch_table(suite: SuiteData) -> pd.DataFrame:
    """One row per run that distils (from a teacher, or with a teacher-free loss such as
    tfkd): switch-off epoch/step (NaN = never switched) and the teacher's holdout/test value
    of the target metric (teacher.json; NaN without a teacher)."""
    runs = suite.runs[suite.runs["teacher_id"].notna() | suite.runs["distill_loss"].notna()]
    rows = []
    for r in runs.itertuples(index=False):
        m, gens = {}, None
        if not pd.isna(r.teacher_id):
            gens = str(r.teacher_generation or "1")
            # the build the run learned from (a run resumed across a rebuild: the last one)
            t = teacher_build(suite.teachers.get(r.teacher_id) or {}, int(gens.split(",")[-1]))
            m = t.get("metrics") or {}
        rows.append(
            {
                "arm": r.arm,
                "seed": r.seed,
                "run_id": r.run_id,
                "status": r.status,
                "switch_epoch": r.switch_epoch,
                "switch_step": r.switch_step,
                "teacher_id": r.teacher_id,
                "teacher_name": r.teacher_name if gens else f"none ({r.distill_loss})",
                "teacher_generation": gens,
                "teacher_holdout": (m.get("holdout") or {}).get(suite.metric, np.nan),
                "teacher_test": (m.get("test") or {}).get(suite.metric, np.nan),
            }
        )
    cols = [
        "arm",
        "seed",
        "run_id",
        "status",
        "switch_epoch",
        "switch_step",
        "teacher_id",
        "teacher_name",
        "teacher_generation",
        "teacher_holdout",
        "teacher_test",
    ]
    return switch_shock(pd.DataFrame(rows, columns=cols), suite.evals, suite.metric)


def switch_shock(switch: pd.DataFrame, evals: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The switch table with two columns more (exploratory: how much switching off shakes the
    curve, against the curve's own movement there). `next_change`: the change of a run's test
    `metric` from its evaluation at the switch-off epoch to its next test evaluation.
    `baseline_next_change`: the same change of the baseline run of its seed between the same
    two epochs. NaN where the run never switched, has no test evaluation at its switch-off or
    none after it, or the seed has not exactly one baseline run evaluated at both epochs.
    Epochs are matched after rounding to 9 decimals (one is read back from events.jsonl).

    switch: switch_table's columns (arm, seed, run_id, switch_epoch, ...); evals: the
    evaluations table (EVAL_COLUMNS)."""
    test = evals[(evals["split"] == "test") & (evals["metric"] == metric)]
    curves = {rid: dict(zip(np.round(g["epoch"].to_numpy(float), 9), g["value"].to_numpy(float)))
              for rid, g in test.groupby("run_id", sort=False)}
    base_ids = test.loc[test["arm"] == BASELINE, ["seed", "run_id"]].drop_duplicates()
    counts = base_ids["seed"].value_counts()
    base = {int(s): curves[rid] for s, rid in base_ids.itertuples(index=False) if counts[s] == 1}
    own, other = [], []
    for r in switch.itertuples(index=False):
        c, a = curves.get(r.run_id, {}), round(float(r.switch_epoch), 9)
        later = [e for e in c if e > a] if np.isfinite(a) and a in c else []
        b = min(later) if later else None
        own.append(c[b] - c[a] if b is not None else np.nan)
        bc = base.get(int(r.seed), {})
        other.append(bc[b] - bc[a] if b is not None and a in bc and b in bc else np.nan)
    return switch.assign(next_change=own, baseline_next_change=other)


SWITCH_NOTE = (
    "Medians are over runs that switched off; 'never' = no switch_off event. "
    "Change to the next evaluation (exploratory): the test value's change from a run's "
    "evaluation at its switch-off to its next one, and in brackets the change of the baseline "
    "run of the same seed between the same two epochs (how much switching off moves the curve, "
    "against how much the curve moves there anyway)."
)


RUNS_NOTE = (
    "One row per run, straight from its metrics.jsonl (its status and switch-off epoch: "
    "manifest.json and events.jsonl). Last test value: the "
    "target metric at the run's last test evaluation (its final value when the status is complete "
    "or diverged). Train s: training wall seconds (evaluation and lost work excluded). s/eval: "
    "evaluation wall seconds per evaluation before the last one (a finished run's final "
    "evaluation is often larger, e.g. the full test set: its own column). Seconds are this "
    "machine's at the time; compare them paired and through the timing warnings. Device, "
    "resumes and lost seconds: the provenance table."
)
RUNS_COLUMNS = (
    "arm", "seed", "run_id", "status", "last_epoch", "last_value", "switch_epoch",
    "train_wall_s", "n_evals", "s_per_eval", "final_eval_s",
)  # fmt: skip


def runs_table(suite: SuiteData) -> pd.DataFrame:
    """One row per run (RUNS_COLUMNS), in suite arm order then seed: the last test value of the
    target metric and its epoch, the switch-off epoch (NaN: none), training seconds, and the
    evaluation cost: n_evals test evaluations; s_per_eval = cumulative eval_wall_s at the
    second-to-last one / (n_evals - 1) and final_eval_s = the last one's increment for a
    finished run (FINISHED) with >= 2; otherwise s_per_eval = eval_wall_s / n_evals over all
    of them and final_eval_s NaN. A run with no test evaluation has NaN throughout."""
    ev = suite.evals
    ev = ev[(ev["split"] == "test") & (ev["metric"] == suite.metric)]
    by_run = {rid: g.sort_values(["step", "epoch"], kind="stable")
              for rid, g in ev.groupby("run_id", observed=True)}
    order = {a: i for i, a in enumerate(suite.arms)}
    runs = suite.runs.assign(_o=suite.runs["arm"].map(order)).sort_values(
        ["_o", "seed", "run_id"], kind="stable")
    rows = []
    for r in runs.itertuples(index=False):
        g = by_run.get(r.run_id)
        row = {"arm": r.arm, "seed": int(r.seed), "run_id": r.run_id, "status": r.status,
               "last_epoch": np.nan, "last_value": np.nan, "switch_epoch": r.switch_epoch,
               "train_wall_s": np.nan, "n_evals": 0, "s_per_eval": np.nan,
               "final_eval_s": np.nan}
        if g is not None and len(g):
            ew = g["eval_wall_s"].to_numpy(dtype=float)
            n = len(g)
            row.update(last_epoch=float(g["epoch"].iloc[-1]), last_value=float(g["value"].iloc[-1]),
                       train_wall_s=float(g["train_wall_s"].max()), n_evals=n)
            if r.status in FINISHED and n >= 2:
                row.update(s_per_eval=ew[-2] / (n - 1), final_eval_s=ew[-1] - ew[-2])
            else:
                row["s_per_eval"] = ew[-1] / n
        rows.append(row)
    return pd.DataFrame(rows, columns=list(RUNS_COLUMNS))


def provenance_warnings(suite: SuiteData, switch: pd.DataFrame) -> list[str]:
    """What a reader must know about where the runs came from: an arm whose runs learned from
    different builds of a teacher (a teacher trained again, e.g. on another CPU, is not
    bit-identical), and arms whose runs ran on other devices than their paired baseline runs
    (wall-clock seconds then compare machine speeds too; epochs, steps and FLOPs do not)."""
    out = []
    runs = suite.runs[suite.runs["status"] == "complete"]
    # switch: one row per distilling run, with the metrics of the teacher build it learned from
    done = switch[switch["status"] == "complete"]
    for arm, g in done.groupby("arm", sort=False):
        if g["teacher_generation"].nunique() < 2:
            continue
        tid = g["teacher_id"].iloc[0]
        parts = []
        for gen, gg in g.groupby("teacher_generation", sort=True):
            parts.append(
                f"seed(s) {', '.join(str(x) for x in sorted(gg['seed']))} from build {gen} (held-out "
                f"{fmt_num(gg['teacher_holdout'].iloc[0], 4)}, test {fmt_num(gg['teacher_test'].iloc[0], 4)})"
            )
        out.append(
            f"arm {arm}: runs learned from different builds of teacher {tid} (it was trained again "
            f"after its weights were lost; earlier records under teachers/{tid}/superseded/): "
            + "; ".join(parts)
        )
    kinds = device_kinds(suite)
    for arm in dict.fromkeys(runs.loc[runs["arm"] != BASELINE, "arm"]):
        seeds = sorted(set(runs.loc[runs["arm"] == arm, "seed"]))
        seeds = other_device_seeds(suite, arm, seeds, kinds)
        if seeds:
            out.append(
                f"arm {arm}: seed(s) {', '.join(map(str, seeds))} ran on another device than the "
                "baseline run of the same seed (provenance table), so its speedups in seconds are "
                "not computed (n/a); epochs, steps and FLOPs do not depend on the machine"
            )
    return out


def machine_kind(device) -> str:
    """A manifest's device without the GPU index: "cuda:3 NVIDIA H100" -> "cuda NVIDIA H100"
    (two GPUs of one model are the same kind of machine)."""
    return re.sub(r"^cuda:\d+ ", "cuda ", str(device))


def device_kinds(suite: SuiteData) -> dict[tuple[str, int], str]:
    """(arm, seed) -> machine_kind of its run (the latest one of a duplicated pair)."""
    runs = suite.runs.drop_duplicates(["arm", "seed"], keep="last")
    return {(a, s): machine_kind(d) for a, s, d in zip(runs["arm"], runs["seed"], runs["device"])}


def other_device_seeds(suite: SuiteData, arm: str, seeds, kinds: dict | None = None) -> list[int]:
    """Seeds whose `arm` run and baseline run ran on different kinds of device. kinds: the
    suite's device_kinds, when the caller has it already."""
    dev = device_kinds(suite) if kinds is None else kinds
    return [int(s) for s in seeds if (arm, s) in dev and (BASELINE, s) in dev
            and dev[(arm, s)] != dev[(BASELINE, s)]]


def teacher_device_seeds(suite: SuiteData, arm: str, seeds, kinds: dict | None = None) -> list[int]:
    """Seeds whose `arm` run is charged its teacher's training seconds (> 0) measured on another
    kind of device than their baseline run: "seconds + teacher training" would add two
    machines' clocks. A teacher without a recorded device is not flagged."""
    dev = device_kinds(suite) if kinds is None else kinds
    r = suite.runs[suite.runs["arm"] == arm].drop_duplicates(["seed"], keep="last")
    teacher = {int(s): (d, float(c)) for s, d, c in zip(r["seed"], r["teacher_device"], r["teacher_train_s"])}
    out = []
    for sd in map(int, seeds):
        d, cost = teacher.get(sd, (None, float("nan")))
        if isinstance(d, str) and cost > 0 and (BASELINE, sd) in dev and machine_kind(d) != dev[(BASELINE, sd)]:
            out.append(sd)
    return out


def noisy_seconds(suite: SuiteData, summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Mark an arm's speedups in train seconds unreliable where a paired run's wall time per
    unit of work left the noise band of the suite's own baseline seeds (timing.noisy_pairs,
    per kind of machine). returns (a copy of summary with a note on those seconds rows, one
    warning per such arm saying to read epochs, steps or FLOPs). Numbers are left as
    computed; arms whose seconds are already n/a (runs on another device) are left alone."""
    from benchmark.analysis.timing import cost_rates, noisy_pairs

    rates = cost_rates(suite.evals, suite.runs)
    if rates.empty or not len(summary):
        return summary, []
    s = summary.copy()
    rates = rates.assign(kind=rates["device"].map(machine_kind))
    rates = rates.drop_duplicates(["arm", "seed"], keep="last")
    base = rates[rates["arm"] == BASELINE]
    warnings = []
    for arm in dict.fromkeys(s["arm"]):
        sec = (s["arm"] == arm) & s["unit"].isin(WALL_UNITS)
        if not np.isfinite(s.loc[sec, "point"].astype(float)).any():
            continue
        a = rates[rates["arm"] == arm]
        found, bands = {}, []
        for (kind, per), b in base.groupby(["kind", "per"], sort=True):
            ak = a[(a["kind"] == kind) & (a["per"] == per)]
            band, ratios, flagged = noisy_pairs(dict(zip(b["seed"], b["rate"])),
                                                dict(zip(ak["seed"], ak["rate"])))
            found.update({sd: ratios[sd] for sd in flagged})
            bands.append((band, per, len(b)))
        if not found:
            continue
        band, per, nb = max(bands)
        what = ", ".join(f"seed {sd} at {q:.2f}x" for sd, q in sorted(found.items()))
        per_what = "FLOP" if per == "flop" else "epoch"
        note = (f"unreliable in seconds: wall time per {per_what} vs the paired baseline run "
                f"{what}, outside the {band:.2f}x spread of {nb} baseline seed(s); read epochs, "
                "steps or FLOPs")
        s.loc[sec, "notes"] = [
            "; ".join(x for x in (n if isinstance(n, str) else "", note) if x)
            for n in s.loc[sec, "notes"]
        ]
        warnings.append(
            f"arm {arm}: speedups in train seconds are unreliable ({what} the baseline's wall time "
            f"per {per_what}, beyond the {band:.2f}x the baseline seeds differ among themselves: "
            "other work probably shared the machine); read the speedups in epochs, steps or "
            "FLOPs instead"
        )
    return s, warnings
