"""Baseline health check: the statistics on hand-computed cases, `reference build`, and the
report's PASS / FAIL line on a tree equal to the reference and on a deliberately weakened
baseline (curves as if trained with a tenth of the learning rate)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from test_analysis_tree import write_run, write_suite, write_teacher

from benchmark.analysis.health import (
    assess,
    build_reference,
    check_baseline,
    gehan_scores,
    holm_reject,
    permutation_pvalue,
    read_reference,
)
from benchmark.analysis.load import load_suite
from benchmark.cli import main

SEEDS = (0, 1, 2, 3, 4)
TAUS = (2.0, 2.2, 1.9, 2.1, 2.05)  # per-seed time constant of the healthy baseline, epochs


def curve(tau: float, epochs: int = 10, top: float = 90.0):
    """Test accuracy at epochs 1..epochs: top * (1 - exp(-epoch / tau))."""
    return [(float(e), top * (1.0 - math.exp(-e / tau))) for e in range(1, epochs + 1)]


def healthy_tree(root, name="toy", seeds=SEEDS):
    s = write_suite(root, name, thresholds=(50.0, 80.0), seeds=seeds)
    write_teacher(s)
    for seed in seeds:
        write_run(s, "baseline", seed, curve(TAUS[seed]), budget_epochs=10)
        write_run(
            s, "kd", seed, curve(TAUS[seed] / 2), budget_epochs=10, teacher="t1", switch_epoch=2.0
        )
    return s


def weak_tree(root, name="toy"):
    """Same suite, baseline as if lr/10: 4x slower, never reaches 80 in the budget, ends
    lower (90 * (1 - e^-10/8) = 64 at epoch 10)."""
    s = write_suite(root, name, thresholds=(50.0, 80.0), seeds=SEEDS)
    write_teacher(s)
    for seed in SEEDS:
        write_run(s, "baseline", seed, curve(4 * TAUS[seed]), budget_epochs=10)
        write_run(
            s, "kd", seed, curve(TAUS[seed] / 2), budget_epochs=10, teacher="t1", switch_epoch=2.0
        )
    return s


def test_gehan_without_censoring_is_mann_whitney():
    scipy_stats = pytest.importorskip("scipy.stats")
    new = np.array([5.0, 7.0, 9.5, 6.5])
    ref = np.array([4.0, 6.0, 5.5, 8.0, 3.0])
    x = np.concatenate([new, ref])
    s = gehan_scores(x, np.ones(len(x), bool))
    # Sum over the new group = #(new > ref) - #(new < ref) = 2 U - n m.
    u = sum(a > b for a in new for b in ref)
    assert s[:4].sum() == 2 * u - len(new) * len(ref)
    assert s.sum() == 0
    p, p_min, exact = permutation_pvalue(s, len(new), np.random.default_rng(0))
    ref_p = scipy_stats.mannwhitneyu(new, ref, alternative="greater", method="exact").pvalue
    assert exact and p == pytest.approx(ref_p)
    assert p_min == pytest.approx(1 / math.comb(9, 4))


def test_gehan_censoring_and_extreme_p():
    # new run censored at the budget 10 vs reference that crossed at 6: certainly slower;
    # new censored at 5 vs reference crossing at 6: order unknown (0).
    s = gehan_scores(np.array([10.0, 6.0]), np.array([False, True]))
    assert list(s) == [1.0, -1.0]
    s = gehan_scores(np.array([5.0, 6.0]), np.array([False, True]))
    assert list(s) == [0.0, 0.0]
    # 3 vs 3, every new run slower than every reference run: p = 1 / C(6, 3) = 0.05.
    x = np.array([7.0, 8.0, 9.0, 1.0, 2.0, 3.0])
    p, p_min, _ = permutation_pvalue(gehan_scores(x, np.ones(6, bool)), 3, None)
    assert p == pytest.approx(0.05) and p_min == pytest.approx(0.05)


def test_holm():
    reject, level = holm_reject(np.array([0.01, 0.04, 0.03, np.nan]), 0.05)
    assert list(reject) == [True, False, False, False]
    assert level[0] == pytest.approx(0.05 / 3) and level[2] == pytest.approx(0.05 / 2)
    assert level[1] == pytest.approx(0.05) and np.isnan(level[3])
    reject, _ = holm_reject(np.array([0.001, 0.02]), 0.05)
    assert list(reject) == [True, True]


def test_reference_build_cli_contents(tmp_path):
    s = healthy_tree(tmp_path / "res")
    out = tmp_path / "suites" / "reference" / "toy.json"
    res = CliRunner().invoke(main, ["reference", "build", str(s), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "5 complete baseline run(s)" in res.output
    ref = read_reference(out)
    assert ref["suite"] == "toy" and ref["metric"] == "accuracy" and ref["n_runs"] == 5
    assert ref["thresholds"] == [50.0, 80.0]
    r0 = next(r for r in ref["runs"] if r["seed"] == 0)
    # tau 2: 90(1 - e^-e/2) >= 50 first at epoch 2 (77.8), >= 80 first at epoch 5 (82.6).
    t = {(e["threshold"], e["unit"]): e for e in r0["time_to_threshold"]}
    assert t[(50.0, "epochs")] == {
        "threshold": 50.0,
        "unit": "epochs",
        "time": 2.0,
        "reached": True,
    }
    assert t[(80.0, "epochs")]["time"] == 5.0 and t[(80.0, "steps")]["time"] == 50.0
    assert r0["final_value"] == pytest.approx(90 * (1 - math.exp(-5)))
    assert "seconds" not in ref["units"]
    # A tree with no complete baseline run cannot give a reference.
    bad = write_suite(tmp_path / "res2")
    write_run(bad, "baseline", 0, curve(2.0), status="running")
    res = CliRunner().invoke(main, ["reference", "build", str(bad), "--out", str(out)])
    assert res.exit_code != 0 and "no complete 'baseline' run" in res.output


def test_passes_on_reference_fails_on_weakened_baseline(tmp_path):
    ref_tree = healthy_tree(tmp_path / "ref")
    ref_path = tmp_path / "toy.json"
    assert (
        CliRunner()
        .invoke(main, ["reference", "build", str(ref_tree), "--out", str(ref_path)])
        .exit_code
        == 0
    )

    # Same runs as the reference: PASS, printed first in report.md, exit 0.
    out = tmp_path / "reports"
    res = CliRunner().invoke(
        main,
        ["report", str(ref_tree), "--out", str(out), "--reps", "200", "--reference", str(ref_path)],
    )
    assert res.exit_code == 0, res.output
    assert "Baseline health check: PASS" in res.output
    md = (out / "toy" / "report.md").read_text().splitlines()
    assert md[2].startswith("**Baseline health check: PASS (new n=5 vs reference n=5")
    health = json.loads((out / "toy" / "health.json").read_text())
    assert health["status"] == "PASS" and health["n_new"] == 5 and health["n_ref"] == 5
    assert 'class="banner pass"' in (out / "toy" / "index.html").read_text()

    # Weakened baseline (lr/10): slower to 50, never reaches 80, ends worse -> FAIL, exit 3.
    weak = weak_tree(tmp_path / "weak")
    out2 = tmp_path / "reports2"
    res = CliRunner().invoke(
        main,
        ["report", str(weak), "--out", str(out2), "--reps", "200", "--reference", str(ref_path)],
    )
    assert res.exit_code == 3, res.output
    assert "Baseline health check: FAIL" in res.output
    text = (out2 / "toy" / "report.md").read_text()
    assert text.splitlines()[2].startswith("**Baseline health check: FAIL")
    assert "slower on time to 80 (epochs)" in text and "worse on final test accuracy" in text
    # The failure is also the first warning.
    warn = text.split("## Warnings")[1].split("##")[0]
    assert warn.strip().startswith("- Baseline health check: FAIL")
    tests = json.loads((out2 / "toy" / "health.json").read_text())
    assert tests["status"] == "FAIL"
    page = (out2 / "toy" / "index.html").read_text()
    assert 'class="banner fail"' in page and "Baseline health check: FAIL" in page

    # The p-values: every weak run is slower than every reference run -> 1 / C(10, 5).
    an_tests = check_baseline(load_suite(weak), read_reference(ref_path)).tests
    assert an_tests["p"].tolist() == pytest.approx([1 / 252] * 3)
    assert an_tests["reject"].all()
    assert an_tests.loc[1, "n_censored_new"] == 5 and an_tests.loc[1, "n_censored_ref"] == 0


def test_reference_from_lock_relative_path_and_failures(tmp_path, monkeypatch):
    s = healthy_tree(tmp_path / "res", seeds=(0, 1))
    ref = build_reference(load_suite(s))
    (tmp_path / "suites" / "reference").mkdir(parents=True)
    (tmp_path / "suites" / "reference" / "toy.json").write_text(json.dumps(ref))
    lock = json.loads((s / "suite.lock.json").read_text())
    lock["resolved"] = {"reference": "suites/reference/toy.json"}
    (s / "suite.lock.json").write_text(json.dumps(lock))
    monkeypatch.chdir(tmp_path)
    h = assess(load_suite(s))
    assert h is not None and h.reference == "suites/reference/toy.json"
    # 2 vs 2: the smallest possible p is 1/6, above every Holm level: the check is powerless,
    # so it cannot pass either: NOT TESTED, never PASS.
    assert h.status == "NOT TESTED" and not h.passed and not h.failed
    assert h.headline().startswith(
        "Baseline health check: NOT TESTED (2 new and 2 reference runs: too few to detect a "
        "slower baseline;"
    )
    assert "PASS" not in h.headline() and json.loads(h.to_json())["status"] == "NOT TESTED"
    assert any(n.startswith("NO POWER") for n in h.notes)

    # Named only in the suite file the lock was made from (added after the runs): not read.
    # The report reads the results contract only; such a reference is passed with --reference.
    (tmp_path / "suites" / "toy.yaml").write_text(
        "name: toy\nreference: suites/reference/toy.json\n"
    )
    lock["resolved"], lock["source"] = {}, "suites/toy.yaml"
    (s / "suite.lock.json").write_text(json.dumps(lock))
    assert assess(load_suite(s)) is None
    h = assess(load_suite(s), reference="suites/reference/toy.json")
    assert h is not None and h.reference == "suites/reference/toy.json"
    # A recipe changed since the reference: still tested, with a note.
    lock["locked"] = {"recipe": {"lr": 0.1}}
    (s / "suite.lock.json").write_text(json.dumps(lock))
    ref_p = tmp_path / "suites" / "reference" / "toy.json"
    ref_p.write_text(json.dumps(dict(ref, protocol_sha256="0" * 64)))
    h = assess(load_suite(s), reference=ref_p)
    assert h.status == "NOT TESTED" and any("locked protocol" in n for n in h.notes)
    ref_p.write_text(json.dumps(ref))
    # Named but missing: FAIL, saying why.
    h = assess(load_suite(s), reference=tmp_path / "nope.json")
    assert h.status == "FAIL" and "reference unusable" in h.headline()
    # Reference for another metric: FAIL.
    other = dict(ref, metric="AP")
    (tmp_path / "ap.json").write_text(json.dumps(other))
    h = assess(load_suite(s), reference=tmp_path / "ap.json")
    assert h.status == "FAIL" and "reference is for test AP" in h.headline()
    # Seconds are machine-dependent: the check falls back to epochs and says so.
    h = assess(
        load_suite(s), reference=tmp_path / "suites" / "reference" / "toy.json", unit="seconds"
    )
    assert h.unit == "epochs" and any("tested in epochs" in n for n in h.notes)


def test_powerless_check_reads_not_tested_in_the_report_and_exits_0(tmp_path):
    """2 new vs 2 reference runs cannot fail the check (smallest p 1/6 > 0.05 / 3): the report
    says NOT TESTED at the top and among the warnings, never PASS; that is not an error."""
    s = healthy_tree(tmp_path / "res", seeds=(0, 1))
    ref = tmp_path / "ref.json"
    assert CliRunner().invoke(main, ["reference", "build", str(s), "--out", str(ref)]).exit_code == 0
    out = tmp_path / "reports"
    res = CliRunner().invoke(
        main, ["report", str(s), "--out", str(out), "--reps", "200", "--reference", str(ref)]
    )
    assert res.exit_code == 0, res.output
    assert "Baseline health check: NOT TESTED (2 new and 2 reference runs" in res.output
    md = (out / "toy" / "report.md").read_text()
    assert md.splitlines()[2].startswith("**Baseline health check: NOT TESTED (2 new and 2")
    assert "PASS" not in md.split("## Warnings")[0]
    warn = md.split("## Warnings")[1].split("##")[0]
    assert warn.strip().startswith("- Baseline health check: NOT TESTED")
    assert json.loads((out / "toy" / "health.json").read_text())["status"] == "NOT TESTED"
    page = (out / "toy" / "index.html").read_text()
    assert 'class="banner untested" id="health"' in page and 'class="banner pass"' not in page
