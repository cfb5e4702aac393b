"""End to end on hand-built trees: speedups with known answers, censoring bounds and
restricted means, lower-is-better, post-hoc labelling, and the written files."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_analysis_tree import write_run, write_suite, write_teacher

from benchmark.analysis.load import ResultsError, load_suite
from benchmark.analysis.report import analyze_suite, summarize, write_report


def step_curve(c50: float | None, c80: float | None, epochs: int = 10):
    """Test accuracy at epochs 1..epochs: 10 before c50, 60 from c50, 90 from c80."""
    out = []
    for e in range(1, epochs + 1):
        v = (
            90.0
            if c80 is not None and e >= c80
            else (60.0 if c50 is not None and e >= c50 else 10.0)
        )
        out.append((float(e), v))
    return out


def build(tmp_path, base80=(4, 6, 8), kd80=(2, 2, 5), base_status=None):
    s = write_suite(tmp_path)
    write_teacher(s, flops=6e12)
    for seed, (b, k) in enumerate(zip(base80, kd80)):
        write_run(
            s,
            "baseline",
            seed,
            step_curve(1, b),
            budget_epochs=10,
            status=(base_status or {}).get(seed, "complete"),
        )
        write_run(
            s,
            "kd",
            seed,
            step_curve(1, k),
            budget_epochs=10,
            teacher="t1",
            switch_epoch=1.0 + seed,
            sec_per_epoch=3.0,
            flops_per_epoch=1.5e12,
        )
    return s


def row(summary: pd.DataFrame, threshold: float, unit: str, arm: str = "kd") -> pd.Series:
    r = summary[
        (summary["arm"] == arm) & (summary["threshold"] == threshold) & (summary["unit"] == unit)
    ]
    assert len(r) == 1
    return r.iloc[0]


def test_exact_per_seed_ratios_and_point_estimate(tmp_path):
    an = analyze_suite(load_suite(build(tmp_path)), reps=2000)
    r = row(an.summary, 80.0, "epochs")
    assert r["point"] == pytest.approx(6.0 / 3.0)
    assert r["per_seed_ratios"] == "0:2;1:3;2:1.6"
    assert r["bound"] == "" and r["n_censored_arm"] == 0 and r["n_censored_base"] == 0
    assert r["n_seeds"] == 3
    assert r["ci_low"] <= r["point"] <= r["ci_high"]
    assert r["p_sooner"] == pytest.approx(1.0)
    assert r["rmst_ratio"] == pytest.approx(2.0)  # no censoring: RMST = mean
    assert row(an.summary, 80.0, "steps")["point"] == pytest.approx(2.0)
    # kd runs take 3 s/epoch vs 2 s/epoch: 12 / 9
    assert row(an.summary, 80.0, "seconds")["point"] == pytest.approx(12.0 / 9.0)
    # + the teacher's 10 training seconds (its teacher.json) per kd run -> 12 / 19
    assert row(an.summary, 80.0, "seconds_teacher_train")["point"] == pytest.approx(12.0 / 19.0)
    # FLOPs: 1.5e12/epoch for kd (teacher forwards) -> 6e12 / 4.5e12
    assert row(an.summary, 80.0, "flops")["point"] == pytest.approx(6.0 / 4.5)
    # + teacher training 6e12 per kd run -> 6e12 / 10.5e12
    assert row(an.summary, 80.0, "flops_teacher_train")["point"] == pytest.approx(6.0 / 10.5)
    # 50 is crossed at epoch 1 by everyone
    assert row(an.summary, 50.0, "epochs")["point"] == pytest.approx(1.0)
    assert not an.summary["post_hoc"].any()
    assert (an.summary["headline"] == (an.summary["unit"] == "epochs")).all()


def test_censored_baseline_gives_lower_bound_and_restricted_mean(tmp_path):
    # baseline seed 2 never reaches 80 within the 10-epoch budget
    an = analyze_suite(load_suite(build(tmp_path, base80=(4, 6, None))), reps=2000)
    r = row(an.summary, 80.0, "epochs")
    assert r["bound"] == ">=" and r["n_censored_base"] == 1 and r["n_censored_arm"] == 0
    assert r["point"] == pytest.approx((4 + 6 + 10) / 3 / 3)
    assert r["tau"] == 10.0
    assert r["rmst_base"] == pytest.approx(20 / 3) and r["rmst_arm"] == pytest.approx(3.0)
    assert r["per_seed_ratios"].split(";")[2] == "2:>=2"
    assert any("censored" in w for w in an.warnings)


def test_diverged_run_censored_at_the_budget(tmp_path):
    s = write_suite(tmp_path, thresholds=[80.0])
    for seed, (b, k) in enumerate([(4, 2), (6, 2)]):
        write_run(s, "baseline", seed, step_curve(1, b), budget_epochs=10)
        write_run(s, "kd", seed, step_curve(1, k), budget_epochs=10)
    write_run(s, "baseline", 2, step_curve(1, None, epochs=5), budget_epochs=10, status="diverged")
    write_run(s, "kd", 2, step_curve(1, 5), budget_epochs=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = analyze_suite(load_suite(s), reps=2000)
    r = row(an.summary, 80.0, "epochs")
    # a diverged run can never cross: censored at the 10-epoch budget, not at its last row (5)
    assert r["point"] == pytest.approx((4 + 6 + 10) / (2 + 2 + 5)) and r["bound"] == ">="
    # KM: S = 2/3 on [4, 6), 1/3 on [6, 10) (the diverged run stays at risk to the budget)
    assert r["rmst_base"] == pytest.approx(4 + 2 * 2 / 3 + 4 / 3)
    assert r["rmst_ratio"] == pytest.approx((20 / 3) / 3)


def test_censored_arm_gives_upper_bound(tmp_path):
    an = analyze_suite(load_suite(build(tmp_path, kd80=(2, 2, None))), reps=500)
    r = row(an.summary, 80.0, "epochs")
    assert r["bound"] == "<=" and r["n_censored_arm"] == 1
    assert r["point"] == pytest.approx(6.0 / (14 / 3))


def test_lower_is_better_speedup(tmp_path):
    s = write_suite(tmp_path, metric="fid_cifarnet", direction="lower", thresholds=[20.0])
    # 4 seeds: the smallest number at which the report's interval holds its level
    for seed, (rb, rk) in enumerate([(10, 20)] * 4):
        write_run(
            s, "baseline", seed, [(e, 100.0 - rb * e) for e in range(1, 11)], metric="fid_cifarnet"
        )
        write_run(s, "kd", seed, [(e, 100.0 - rk * e) for e in range(1, 11)], metric="fid_cifarnet")
    an = analyze_suite(load_suite(s), reps=500)
    r = row(an.summary, 20.0, "epochs")
    assert r["point"] == pytest.approx(8.0 / 4.0)  # FID <= 20 at epoch 8 vs 4
    q = an.quality.set_index("arm")
    assert q.loc["kd", "delta"] == pytest.approx(-100.0 - (0.0))  # 100-200 vs 100-100
    # the verdict reads direction: a lower final FID is better, reaching <= 20 sooner is sooner
    from benchmark.analysis.report import verdict_sentences

    (arm, text), = verdict_sentences(an)
    assert arm == "kd" and "epochs: sooner at 20." in text and text.endswith("(better).")


def test_post_hoc_thresholds_labelled_everywhere(tmp_path):
    s = build(tmp_path)
    out = tmp_path / "reports"
    [md] = write_report([s], out, thresholds=[80.0, 65.0], reps=500)
    summary = pd.read_csv(md.parent / "summary.csv")
    assert set(summary.loc[summary["post_hoc"], "threshold"]) == {65.0}
    assert not summary.loc[summary["threshold"] == 80.0, "post_hoc"].any()
    assert set(summary["threshold"]) == {50.0, 80.0, 65.0}  # pre-registered never hidden
    text = md.read_text()
    assert "65 (post hoc)" in text and "**Post hoc thresholds**" in text
    assert "--threshold 65" in text
    assert "$^\\dagger$" in (md.parent / "tables.tex").read_text()
    crossings = pd.read_csv(md.parent / "crossings.csv")
    assert set(crossings.loc[crossings["post_hoc"], "threshold"]) == {65.0}


def test_write_report_files_and_contents(tmp_path):
    s = build(tmp_path)
    out = tmp_path / "reports"
    written = write_report([tmp_path], out, reps=500)  # parent dir holding one suite
    assert written == [out / "toy" / "report.md"]
    d = out / "toy"
    for f in (
        "report.md",
        "summary.csv",
        "tables.tex",
        "evaluations.csv",
        "crossings.csv",
        "sweep.csv",
        "quality.csv",
        "switch.csv",
        "learning_curves.png",
        "speedup_map.png",
        "speedup_vs_threshold.png",
        "per_seed.png",
        "km.png",
    ):
        assert (d / f).is_file(), f
    text = written[0].read_text()
    assert f"w2s-bench report {s} --out {out} --reps 500 --seed 0" in text
    assert "2.00x [" in text  # headline at 80
    for section in (
        "## Headline",
        "## Final quality",
        "## Switch-off",
        "## Provenance",
        "## Threshold sweep",
        "## Kaplan-Meier",
        "## Warnings",
    ):
        assert section in text
    assert "0123456789ab" in text and "2.5.0" in text  # git sha, torch version
    ev = pd.read_csv(d / "evaluations.csv")
    assert len(ev) == 6 * 10 * 2 and {"run_id", "arm", "seed"} <= set(ev.columns)
    sw = pd.read_csv(d / "switch.csv")
    assert sorted(sw["switch_epoch"]) == [1.0, 2.0, 3.0]
    assert (sw["teacher_holdout"] == 60.0).all() and (sw["teacher_test"] == 59.0).all()
    tex = (d / "tables.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    # the LaTeX switch row: medians of switch.csv's shock columns, signed
    kd = sw[sw["arm"] == "kd"]
    shock = f"{kd.next_change.median():+.4g} ({kd.baseline_next_change.median():+.4g}) \\\\"
    assert f"kd & 3/3 & 2 & 60 & 59 & {shock}" in tex
    # every headline number is recomputable from crossings.csv
    cr = pd.read_csv(d / "crossings.csv")
    c = cr[(cr["threshold"] == 80.0) & (cr["unit"] == "epochs")]
    summary = pd.read_csv(d / "summary.csv")
    r = row(summary, 80.0, "epochs")
    assert r["point"] == pytest.approx(
        c[c.arm == "baseline"].time.mean() / c[c.arm == "kd"].time.mean()
    )


def test_fewer_than_three_seeds_says_ci_not_meaningful(tmp_path):
    s = write_suite(tmp_path, thresholds=[80.0])
    for seed, (b, k) in enumerate([(4, 2), (6, 3)]):
        write_run(s, "baseline", seed, step_curve(1, b))
        write_run(s, "kd", seed, step_curve(1, k))
    [md] = write_report([s], tmp_path / "r", reps=200)
    summary = pd.read_csv(md.parent / "summary.csv")
    assert summary["ci_low"].isna().all()
    assert summary["notes"].str.contains("CI not meaningful").all()
    text = md.read_text()
    assert "CI not meaningful" in text and "(CI n/a, n<3)" in text


def test_unit_option_and_bad_options(tmp_path):
    s = build(tmp_path)
    an = analyze_suite(load_suite(s), unit="steps", reps=200)
    assert an.unit == "steps" and set(an.sweep["unit"]) == {"steps"}
    assert (an.summary["headline"] == (an.summary["unit"] == "steps")).all()
    with pytest.raises(ResultsError):
        analyze_suite(load_suite(s), unit="hours")
    with pytest.raises(ResultsError):
        analyze_suite(load_suite(s), ci_method="studentized")


def test_summarize_and_same_seed_reproducible(tmp_path):
    s = build(tmp_path)
    a = summarize([s], reps=1000, seed=3)
    b = summarize([s], reps=1000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert {
        "arm",
        "threshold",
        "unit",
        "post_hoc",
        "n_seeds",
        "n_censored_arm",
        "n_censored_base",
        "point",
        "ci_low",
        "ci_high",
        "bound",
        "p_sooner",
        "rmst_arm",
        "rmst_base",
        "rmst_ratio",
        "per_seed_ratios",
    } <= set(a.columns)
    assert len(a) == 2 * 6  # 1 arm x 2 thresholds x 6 units
    bca = summarize([s], reps=1000, ci_method="bca")
    assert np.isfinite(bca["point"]).all()


def test_sweep_marks_preregistered_thresholds(tmp_path):
    an = analyze_suite(load_suite(build(tmp_path)), reps=200)
    sw = an.sweep
    assert len(sw) >= 41 and sw["threshold"].is_monotonic_increasing
    assert sw.loc[sw["threshold"] == 80.0, "pre_registered"].all()
    # sweep and headline share resamples: identical at a pre-registered threshold
    h = row(an.summary, 80.0, "epochs")
    s80 = sw[sw["threshold"] == 80.0].iloc[0]
    assert s80["ci_low"] == pytest.approx(h["ci_low"]) and s80["point"] == h["point"]


def test_verdict_reads_the_ci_and_respects_censoring():
    from benchmark.analysis.report import verdict

    nan = float("nan")
    assert verdict(1.8, 1.2, 2.4, "", 5) == "sooner"
    assert verdict(0.8, 0.6, 0.95, "", 5) == "slower"
    assert verdict(1.1, 0.9, 1.4, "", 5) == "no clear difference"
    # baseline censored: the true ratio is larger, so 'sooner' stands but 'slower' cannot
    assert verdict(1.5, 1.1, 2.0, ">=", 5) == "sooner"
    assert verdict(0.8, 0.6, 0.9, ">=", 5) == "inconclusive (censored)"
    # arm censored: the reverse
    assert verdict(0.8, 0.6, 0.9, "<=", 5) == "slower"
    assert verdict(1.5, 1.1, 2.0, "<=", 5) == "inconclusive (censored)"
    assert verdict(1.5, 1.1, 2.0, "?", 5) == "inconclusive (censored)"
    assert verdict(1.5, nan, nan, "", 2) == "too few seeds"
    assert verdict(3.0, 1.2, float("inf"), "", 5) == "sooner"  # an arm crossing at step 0
    assert verdict(1.5, nan, nan, "", 5) == "CI n/a"
    assert verdict(nan, nan, nan, "", 5) == "n/a"


def test_final_quality_counts_finished_runs_only(tmp_path):
    """A run still running (or stopped part way) has no final value: its last evaluation, far
    below the finished runs', must not drag the final-quality mean down."""
    from benchmark.analysis.report import final_quality

    s = write_suite(tmp_path, thresholds=(50.0, 80.0))
    write_run(s, "baseline", 0, step_curve(2, 4))  # ends at 90
    write_run(s, "baseline", 1, step_curve(2, 4))
    write_run(s, "baseline", 2, step_curve(2, 4)[:1], status="running")  # 10 so far
    write_run(s, "kd", 0, step_curve(1, 3))
    write_run(s, "kd", 1, step_curve(1, 3)[:2], status="failed")  # stopped at 60
    # diverged: finished, and its final value is the NaN it ended on, not an earlier 90
    write_run(s, "kd", 2, [*step_curve(1, 3)[:4], (5.0, float("nan"))], status="diverged")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = final_quality(load_suite(s), reps=200).set_index("arm")
    assert q.loc["baseline", "n"] == 2 and q.loc["baseline", "mean"] == 90.0
    assert q.loc["kd", "n"] == 1 and q.loc["kd", "n_nan"] == 1
    assert q.loc["kd", "n_paired"] == 1 and q.loc["kd", "delta"] == 0.0


def test_rebuilt_teacher_and_device_mix_are_reported(tmp_path):
    """A teacher trained again after its weights were lost keeps its old record under
    superseded/; a run records the build it learned from. The report gives each run its own
    build's metrics and says when an arm mixes builds, or pairs runs from different devices."""
    import json

    s = write_suite(tmp_path)
    write_teacher(s, holdout=57.3, test=54.5)  # build 1 ...
    old = s / "teachers" / "t1" / "superseded" / "1"
    old.mkdir(parents=True)
    (s / "teachers" / "t1" / "teacher.json").rename(old / "teacher.json")
    write_teacher(s, holdout=56.6, test=54.2)  # ... and build 2, the current one
    cur = json.loads((s / "teachers" / "t1" / "teacher.json").read_text())
    (s / "teachers" / "t1" / "teacher.json").write_text(json.dumps({**cur, "generation": 2}))
    for seed in range(3):
        later = {"device": "cpu B", "teacher_generations": [2]} if seed == 2 else {"device": "cpu A"}
        write_run(s, "baseline", seed, step_curve(1, 4), budget_epochs=10,
                  manifest_extra={"device": "cpu A"})
        write_run(s, "kd", seed, step_curve(1, 3), budget_epochs=10, teacher="t1",
                  switch_epoch=2.0, manifest_extra=later)
    an = analyze_suite(load_suite(s), reps=200)
    sw = an.switch.set_index("seed")
    assert list(sw["teacher_generation"]) == ["1", "1", "2"]
    assert list(sw["teacher_holdout"]) == [57.3, 57.3, 56.6]
    assert list(sw["teacher_test"]) == [54.5, 54.5, 54.2]
    mixed = [w for w in an.warnings if "different builds of teacher t1" in w]
    assert len(mixed) == 1 and "seed(s) 0, 1 from build 1 (held-out 57.3, test 54.5)" in mixed[0]
    assert "seed(s) 2 from build 2 (held-out 56.6, test 54.2)" in mixed[0]
    dev = [w for w in an.warnings if "another device" in w]
    assert len(dev) == 1 and dev[0].startswith("arm kd: seed(s) 2 ")
    # wall-clock ratios across machines are not computed; the other units are
    sec = an.summary[an.summary["unit"] == "seconds"]
    assert sec["point"].isna().all() and set(sec["verdict"]) == {"n/a"}
    assert all("seed(s) 2 ran on another device" in n for n in sec["notes"])
    ep = an.summary[an.summary["unit"] == "epochs"]
    assert ep["point"].notna().all()
    from benchmark.analysis.report import machine_kind

    assert machine_kind("cuda:3 NVIDIA H100 80GB HBM3") == machine_kind("cuda:0 NVIDIA H100 80GB HBM3")
    assert machine_kind("cpu Xeon AVX512 (2 threads)") != machine_kind("cpu Xeon AVX2 (2 threads)")
    [md_path] = write_report([s], tmp_path / "reports", reps=200)
    md = md_path.read_text()
    assert "57.3 / 56.6" in md and "different builds of teacher t1" in md
    assert "train seconds not computed (see the warnings)" in md
    html = (md_path.parent / "index.html").read_text()
    assert "t1 (build 1, superseded)" in html and "t1 (build 2)" in html


def test_teacher_seconds_from_another_device_are_not_charged(tmp_path):
    """A teacher trained on another kind of machine than the baseline runs: its training
    seconds cannot be added to the runs' clocks, so "seconds + teacher training" is n/a while
    the runs' own seconds and every other unit stay computed; a teacher on the same kind of
    machine (here a GPU index aside) is charged as before."""
    import json

    from benchmark.analysis.quality import teacher_device_seeds

    s = write_suite(tmp_path)
    write_teacher(s)
    (s / "teachers" / "t1" / "manifest.json").write_text(json.dumps({"device": "cpu B"}))
    for seed in range(3):
        write_run(s, "baseline", seed, step_curve(1, 4), budget_epochs=10, manifest_extra={"device": "cpu A"})
        write_run(s, "kd", seed, step_curve(1, 3), budget_epochs=10, teacher="t1", switch_epoch=2.0,
                  manifest_extra={"device": "cpu A"})
    data = load_suite(s)
    assert set(data.runs.loc[data.runs["arm"] == "kd", "teacher_device"]) == {"cpu B"}
    assert data.runs.loc[data.runs["arm"] == "baseline", "teacher_device"].isna().all()
    assert teacher_device_seeds(data, "kd", [0, 1, 2]) == [0, 1, 2]
    assert teacher_device_seeds(data, "kd", [1]) == [1]
    an = analyze_suite(data, reps=200)
    charged = an.summary[an.summary["unit"] == "seconds_teacher_train"]
    assert charged["point"].isna().all() and set(charged["verdict"]) == {"n/a"}
    assert all("seed(s) 0, 1, 2 were charged a teacher's training seconds from another device" in n
               for n in charged["notes"])
    for unit in ("seconds", "epochs", "flops_teacher_train"):
        assert an.summary.loc[an.summary["unit"] == unit, "point"].notna().all(), unit
    # the same kind of machine: charged
    (s / "teachers" / "t1" / "manifest.json").write_text(json.dumps({"device": "cuda:1 G"}))
    for seed in range(3):
        for arm in ("baseline", "kd"):
            man = next((s / "runs").glob(f"{arm}-s{seed}*")) / "manifest.json"
            man.write_text(json.dumps({**json.loads(man.read_text()), "device": "cuda:0 G"}))
    data = load_suite(s)
    assert teacher_device_seeds(data, "kd", [0, 1, 2]) == []
    an = analyze_suite(data, reps=200)
    assert an.summary.loc[an.summary["unit"] == "seconds_teacher_train", "point"].notna().all()
