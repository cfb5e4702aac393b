"""A new user's first hour (issue 22): signed deltas with units, a verdict table of nothing but
'too few seeds' collapsed to one line, LaTeX escaping, reports that never clobber (no-argument
`report` writes only stale suites; --new-results folders report under reports/<NAME>/;
unchanged results regenerate byte-identical files), wall-clock speedups flagged when the
clock was noisy, `status` reasons, the closing lines of `run`, the busy-machine warning and
the load in the manifest, the suite ETA."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import tiny_suite_dict
from test_analysis_report import step_curve
from test_analysis_tree import write_run, write_suite

from benchmark.analysis.load import load_suite
from benchmark.analysis.report import (
    analyze_suite,
    fmt_delta,
    render_tex,
    report_is_current,
    report_subdir,
    results_stamp,
    tex_escape,
    write_report,
)
from benchmark.analysis.timing import noisy_pairs
from benchmark.cli import closing_lines, main, status_row
from benchmark.runner.progress import (
    SuiteProgress,
    busy_warning,
    eta_seconds,
    fmt_eta,
    machine_load,
)

nan = float("nan")


def two_seed_tree(root: Path, name: str = "toy") -> Path:
    """baseline and kd, 2 seeds (fewer than any interval needs), kd reaching 50 and 80 sooner."""
    s = write_suite(root, name, seeds=(0, 1))
    for seed in (0, 1):
        write_run(s, "baseline", seed, step_curve(3, 6), budget_epochs=10,
                  manifest_extra={"ended": f"2026-01-02T03:0{seed}:05+0000"})
        write_run(s, "kd", seed, step_curve(1, 3), budget_epochs=10,
                  manifest_extra={"ended": f"2026-01-02T04:0{seed}:05+0000"})
    return s


# ------------------------------------------------------------------ wording and tables


def test_signed_delta_with_units():
    assert fmt_delta(-0.44, -0.92, 0.03, "accuracy") == "-0.44 points [-0.92, +0.03]"
    assert fmt_delta(2.0, nan, nan, "accuracy") == "+2 points (CI n/a)"
    assert fmt_delta(0.5, 0.25, 0.75, "AP") == "+0.5 points [+0.25, +0.75]"
    assert fmt_delta(-3.5, -4.0, -3.0, "fid") == "-3.5 fid [-4, -3]"
    assert fmt_delta(nan, nan, nan, "accuracy") == "n/a"


def test_report_deltas_signed_and_all_too_few_seeds_table_collapses(tmp_path):
    s = two_seed_tree(tmp_path / "res")
    [md] = write_report([s], tmp_path / "reports", reps=200)
    text = md.read_text("utf-8")
    # final accuracy: kd ends where baseline ends (both reach 90 in step_curve): a signed 0
    assert "Final test accuracy: +0 points (CI n/a) vs baseline" in text
    verdict = text.split("## Verdict")[1].split("## Headline")[0]
    assert "| Arm | Threshold |" not in verdict  # no grid of 'too few seeds' cells
    assert "All 2 rows of the verdict table (arm x threshold, every unit) read 'too few seeds'" in verdict
    page = (md.parent / "index.html").read_text("utf-8")
    assert 'id="verdict-collapsed"' in page and 'id="verdict"' not in page


def test_tex_escapes_less_than_and_friends(tmp_path):
    assert tex_escape("n<3 | a>b_c") == r"n$<$3 $|$ a$>$b\_c"
    an = analyze_suite(load_suite(two_seed_tree(tmp_path / "res")), reps=200)
    tex = render_tex(an)
    assert "$n<3$" in tex
    # no bare '<' or '>' in text mode: every one sits inside $...$
    outside = "".join(part for i, part in enumerate(tex.split("$")) if i % 2 == 0)
    assert "<" not in outside and ">" not in outside


# ------------------------------------------------------------------ reports never clobber


def test_results_stamp_from_results_only(tmp_path):
    s = two_seed_tree(tmp_path / "res")
    st = results_stamp(load_suite(s))
    assert st["results_as_of"] == "2026-01-02 04:01 UTC"  # the last finished run's end
    assert len(st["results_fingerprint"]) == 16
    # a run still in progress is not a result yet: the stamp does not move
    write_run(s, "kd", 2, step_curve(1, 3), status="running")
    assert results_stamp(load_suite(s)) == st


def test_report_subdir_mirrors_results_layout(tmp_path):
    root = tmp_path / "results"
    assert report_subdir(root / "quickstart", root) == Path(".")
    assert report_subdir(root / "v2" / "quickstart", root) == Path("v2")
    assert report_subdir(tmp_path / "elsewhere" / "quickstart", root) == Path()


def test_report_without_arguments_writes_only_stale_suites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("W2S_RESULTS", raising=False)
    two_seed_tree(tmp_path / "results")
    two_seed_tree(tmp_path / "results" / "v2")  # made by `run --new-results v2`
    run = CliRunner().invoke
    r = run(main, ["report", "--reps", "200"])
    assert r.exit_code == 0, r.output
    main_md = tmp_path / "reports" / "toy" / "report.md"
    v2_md = tmp_path / "reports" / "v2" / "toy" / "report.md"
    assert main_md.is_file() and v2_md.is_file()  # the new protocol never overwrites the main one
    snap = {p: p.read_bytes() for p in (tmp_path / "reports").rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in snap}

    # nothing changed: nothing written
    r = run(main, ["report", "--reps", "200"])
    assert r.exit_code == 0, r.output
    assert r.output.count("up to date: reports") == 2 and "wrote" not in r.output
    assert {p: p.stat().st_mtime_ns for p in snap} == mtimes

    # a named suite is always written, and unchanged results give byte-identical files
    r = run(main, ["report", "results/toy", "--reps", "200"])
    assert r.exit_code == 0 and "wrote reports/toy/report.md" in r.output
    assert {p: p.read_bytes() for p in snap} == snap

    # a run that finished since makes that suite's report stale (and only that one)
    s = tmp_path / "results" / "toy"
    write_run(s, "baseline", 2, step_curve(3, 6), manifest_extra={"ended": "2026-01-03T00:00:00+0000"})
    current, why = report_is_current(load_suite(s), main_md.parent)
    assert not current and why == ("results changed: finished runs as of 2026-01-03 00:00 UTC, "
                                   "report made from results as of 2026-01-02 04:01 UTC")
    assert report_is_current(load_suite(tmp_path / "results" / "v2" / "toy"), v2_md.parent)[0]


def test_report_from_before_stamps_is_current_until_a_run_ends_after_it(tmp_path):
    s = two_seed_tree(tmp_path / "res")
    d = tmp_path / "old" / "toy"
    d.mkdir(parents=True)
    (d / "report.md").write_text("# w2s-bench report: toy\n\nGenerated 2026-01-02 04:01 UTC by w2s-bench\n")
    assert report_is_current(load_suite(s), d)[0]
    (d / "report.md").write_text("# w2s-bench report: toy\n\nGenerated 2026-01-02 04:00 UTC by w2s-bench\n")
    current, why = report_is_current(load_suite(s), d)
    assert not current and why == "1 run(s) finished after the report was generated"
    assert report_is_current(load_suite(s), tmp_path / "nothing") == (False, "no report yet")


# ------------------------------------------------------------------ noisy wall clocks


def test_noisy_pairs_exact():
    base = {0: 1.0, 1: 1.1, 2: 1.2}
    band, ratios, flagged = noisy_pairs(base, {0: 1.0, 1: 2.2, 2: 0.9})
    assert band == pytest.approx(1.2)
    assert ratios == pytest.approx({0: 1.0, 1: 2.0, 2: 0.75})
    assert flagged == [1, 2]
    # one baseline seed shows no spread: the floor (5%) is the band
    assert noisy_pairs({0: 1.0}, {0: 1.04})[2] == [] and noisy_pairs({0: 1.0}, {0: 1.06})[2] == [0]


def test_report_flags_seconds_when_a_pair_ran_on_a_busy_clock(tmp_path):
    s = write_suite(tmp_path / "res")
    for seed, sec in enumerate((10.0, 10.5, 11.0)):  # baseline seeds differ by 1.1x at most
        write_run(s, "baseline", seed, step_curve(3, 6), sec_per_epoch=sec)
        # kd seed 1 ran beside other jobs: 25 s per epoch for the same work per epoch
        write_run(s, "kd", seed, step_curve(1, 3), sec_per_epoch=25.0 if seed == 1 else sec)
    [md] = write_report([s], tmp_path / "reports", reps=200)
    text = md.read_text("utf-8")
    assert ("arm kd: speedups in train seconds are unreliable (seed 1 at 2.38x the baseline's "
            "wall time per FLOP, beyond the 1.10x") in text
    assert "read the speedups in epochs, steps or FLOPs instead" in text
    import pandas as pd

    summ = pd.read_csv(md.parent / "summary.csv")
    sec = summ[summ["unit"] == "seconds"]
    assert sec["notes"].str.contains("unreliable in seconds").all()
    assert not summ.loc[summ["unit"] == "epochs", "notes"].fillna("").str.contains("unreliable").any()


# ------------------------------------------------------------------ status, run, progress


def test_status_rows_reason_interrupted_superseded_and_new_results(tmp_path):
    root = tmp_path / "results"
    m = root / "s" / "runs" / "r1" / "manifest.json"
    man = {"status": "failed", "reason": "interrupted; rerun the suite to resume", "resumed": 1}
    assert status_row(root, m, man) == ["s", "run", "r1", "interrupted", "1",
                                        "interrupted; rerun the suite to resume"]
    m = root / "s" / "runs" / "r2" / "manifest.json"
    row = status_row(root, m, {"status": "failed", "reason": "RuntimeError: boom\nTraceback"})
    assert row[3:] == ["failed", "0", "RuntimeError: boom"]
    m = root / "s" / "teachers" / "weak-abc" / "superseded" / "1" / "manifest.json"
    assert status_row(root, m, {"status": "complete"})[:4] == [
        "s", "teacher (superseded build 1)", "weak-abc", "complete"]
    m = root / "v2" / "s" / "runs" / "r3" / "manifest.json"
    assert status_row(root, m, {"status": "diverged", "reason": "loss is NaN"})[:4] == [
        "v2/s", "run", "r3", "diverged"]
    from benchmark.runner.provenance import host

    dead = {"status": "running", "host": host(), "pid": 2**22 + 12345}  # above pid_max
    row = status_row(root, root / "s" / "runs" / "r4" / "manifest.json", dead)
    assert row[3] == "stopped" and "is gone" in row[5]
    assert status_row(root, root / "s" / "manifest.json", {"status": "complete"}) is None
    # rows without a checkpoint (a fresh clone of committed results): rerunning restarts it
    m = root / "s" / "runs" / "r5" / "manifest.json"
    m.parent.mkdir(parents=True)
    (m.parent / "metrics.jsonl").write_text("{}\n")
    assert status_row(root, m, man)[3:] == [
        "interrupted", "1", "interrupted; no checkpoint here: rerunning the suite restarts it from scratch"]
    (m.parent / "checkpoints").mkdir()
    (m.parent / "checkpoints" / "last.pt").write_bytes(b"x")
    assert status_row(root, m, man)[5] == "interrupted; rerun the suite to resume"


def test_status_command_shows_the_reason_column(tmp_path):
    d = tmp_path / "results" / "s" / "runs" / "r1"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(
        {"status": "failed", "reason": "interrupted; rerun the suite to resume"}))
    r = CliRunner().invoke(main, ["status", str(tmp_path / "results")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "reason" in r.output and "interrupted" in r.output and "failed" not in r.output


def test_closing_lines_count_skips_and_say_what_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("W2S_RESULTS", raising=False)
    item = lambda i, kind, st: SimpleNamespace(id=i, kind=kind, status=st)  # noqa: E731
    before = [item("t", "teacher", "complete"), item("r1", "run", "complete"),
              item("r2", "run", "pending")]
    out = {"t": "complete", "r1": "complete", "r2": "complete"}
    assert closing_lines(before, out, Path("results") / "quickstart") == [
        "3/3 complete (2 already were and were skipped: 1 run(s), 1 teacher(s))",
        "next: w2s-bench report results/quickstart   (writes reports/quickstart/report.md and "
        "index.html)",
    ]
    lines = closing_lines(before, {**out, "r2": "failed"}, Path("results") / "v2" / "quickstart")
    assert lines[0].endswith("; not complete: {'r2': 'failed'}")
    assert "(writes reports/v2/quickstart/report.md" in lines[1]


def test_plan_data_root_has_help():
    r = CliRunner().invoke(main, ["plan", "--help"], env={"COLUMNS": "200"})
    line = next(x for x in r.output.splitlines() if "--data-root" in x)
    assert "Folder holding the datasets" in line


def test_busy_warning_and_machine_load():
    assert busy_warning({"loadavg_1m": 2.0, "cpus": 2}, 2) is None  # at the core count: not busy
    assert busy_warning(None, 2) is None
    w = busy_warning({"loadavg_1m": 3.04, "cpus": 2}, 1)
    assert w.startswith("this machine is already busy: 1-minute load average 3.0 on 2 CPU core(s), "
                        "before this run adds 1 thread(s).")
    load = machine_load()
    assert load is None or (load["cpus"] == os.cpu_count() and load["loadavg_1m"] >= 0)


def test_eta_from_measured_work():
    assert eta_seconds(2.0, 6.0, 10.0) == 30.0  # 6 epochs left at 5 s per epoch
    assert eta_seconds(0.0, 6.0, 10.0) is None and eta_seconds(1.0, 6.0, 0.0) is None
    assert fmt_eta(3725.4) == "ETA 1:02:05" and fmt_eta(None) == "ETA -:--:--"


def test_suite_progress_eta_counts_only_work_done_now():
    """A teacher (1 epoch) and two runs (2 epochs each, one already complete): after the
    teacher's 10 steps in 10 s, 2 epochs are left at 10 s per epoch: ETA 20 s."""
    from rich.console import Console

    now = [0.0]
    plan = [
        SimpleNamespace(id="t", kind="teacher", status="pending", arm=None, seed=None,
                        spec={"name": "weak", "checkpoint": None, "snapshot_epoch": None,
                              "train": {"epochs": 1}}),
        SimpleNamespace(id="a", kind="run", status="complete", arm="baseline", seed=0,
                        spec={"budget": {"epochs": 2}}),
        SimpleNamespace(id="b", kind="run", status="pending", arm="w2s", seed=0,
                        spec={"budget": {"epochs": 2}}),
    ]
    prog = SuiteProgress(Console(file=open(os.devnull, "w")), every=1, plan=plan,
                         clock=lambda: now[0])
    with prog:
        prog.start_suite(3)
        loop = SimpleNamespace(stop_step=10, clock=SimpleNamespace(step=0), kd_active=False,
                               switch=None, epoch=lambda: 0.0)
        hook = prog.step_hook("teacher weak")
        for step in range(1, 11):
            now[0] = float(step)
            loop.clock.step = step
            hook(loop)
        assert prog.done == pytest.approx(1.0) and prog.work_left() == pytest.approx(2.0)
        prog.item_done(plan[0], "complete")
        assert prog.eta() == pytest.approx(20.0)
        # a run resumed at its half (first hook after step 6): only that half counts as done
        hook = prog.step_hook("w2s seed 0")
        loop.clock.step, loop.stop_step = 6, 10
        hook(loop)
        loop.clock.step = 10
        now[0] = 20.0
        hook(loop)
        assert prog.done == pytest.approx(2.0) and prog.work_left() == pytest.approx(0.0)


def test_run_warns_when_busy_records_load_and_says_what_next(tmp_path, monkeypatch, write_suite,
                                                            inproc_env):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("W2S_RESULTS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 50.0, 10.0))
    suite = write_suite(tiny_suite_dict(arms={"baseline": {"distill": None}}))
    r = CliRunner().invoke(main, ["run", str(suite)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "warning: this machine is already busy: 1-minute load average 99.0" in r.output
    assert "preparing data and models" in r.output
    assert "1/1 complete" in r.output
    assert "next: w2s-bench report results/tiny" in r.output
    (man,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "tiny" / "runs").glob("*/manifest.json")]
    assert man["load"]["start"] == {"loadavg_1m": 99.0, "cpus": os.cpu_count()}
    assert man["load"]["end"]["loadavg_1m"] == 99.0
    r = CliRunner().invoke(main, ["run", str(suite)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "1/1 complete (1 already were and were skipped: 1 run(s), 0 teacher(s))" in r.output
    assert math.isfinite(man["load"]["start"]["loadavg_1m"])
