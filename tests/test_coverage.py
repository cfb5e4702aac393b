"""The coverage study (perf/coverage.py): committed numbers reproduce when a slice of the
simulation is rerun, the package's table agrees with them, and calibration reads it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from benchmark.analysis import calibration, coverage_table
from benchmark.analysis.stats import CI_METHODS, DEFAULT_CI_METHOD

ROOT = Path(__file__).resolve().parents[1]


def _cov():
    spec = importlib.util.spec_from_file_location("coverage_study", ROOT / "perf" / "coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def committed():
    return json.loads((ROOT / "perf" / "coverage.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "cell, methods",
    [
        # the chosen method where it fails at 3 seeds (the report's "too few seeds") ...
        ("coarse/t3/0.2/3", ("fieller", "delta_t")),
        # ... and where it holds at 5
        ("skewed/lognormal/0/5", ("fieller",)),
        # the old percentile bootstrap under-covering at 5 seeds
        ("typical/lognormal/0/5", ("percentile",)),
    ],
)
def test_rerun_cell_reproduces_committed_coverage(committed, cell, methods):
    cov = _cov()
    scenario, family, cens, n = cell.split("/")
    cfg = {**committed["config"]}
    i_sc, i_fam = list(cov.SCENARIOS).index(scenario), cov.FAMILIES.index(family)
    i_cens = cov.CENSORING.index(float(cens))
    truths = cov.truth_and_budget(i_sc, i_fam, cfg["truth_draws"], cfg["seed"])
    assert truths[float(cens)][1] == committed["truths"][f"{scenario}/{family}/{cens}"]["truth"]
    got = cov.run_cell(i_sc, i_fam, i_cens, int(n), cfg, truths, methods=methods)
    for m in methods:
        assert got[m]["coverage"] == committed["cells"][cell][m]["coverage"]  # bit for bit


def test_package_table_is_the_committed_study(committed):
    stress = _cov().STRESS
    assert coverage_table.SEED == committed["seed"]
    assert coverage_table.CHOSEN == committed["chosen"] == DEFAULT_CI_METHOD
    for m in CI_METHODS:
        for n, (unc, cens) in coverage_table.WORST[m].items():
            s = committed["summary"][m][str(n)]
            assert (unc, cens) == (round(s["uncensored"], 4), round(s["censored"], 4))
            # recompute the worst case from the cells (scenarios of the choice rule)
            cells = [v[m]["coverage"] for k, v in committed["cells"].items()
                     if k.endswith(f"/0/{n}") and k.split("/")[0] not in stress]
            assert min(cells) == pytest.approx(s["uncensored"], abs=1e-12)


def test_chosen_method_holds_its_level_within_monte_carlo_error(committed):
    """At 5 seeds and beyond the chosen method's worst cell is at the target or above, and
    no cell is below it by more than 3 Monte-Carlo standard errors (at 3 seeds it is not:
    that is why reports say '3 seeds: too few for a calibrated interval')."""
    m = committed["chosen"]
    target = committed["target"]
    stress = _cov().STRESS
    for key, cell in committed["cells"].items():
        scenario, _, cens, n = key.split("/")
        if scenario in stress or int(n) < 5:
            continue
        t = target["censored" if cens != "0" else "uncensored"]
        assert cell[m]["coverage"] >= t - 3 * cell[m]["mc_se"], key
    assert not committed["summary"][m]["3"]["holds"]
    assert committed["summary"][m]["5"]["holds"]


def test_calibration_reads_the_table():
    m = DEFAULT_CI_METHOD
    assert not calibration.holds(m, 3) and calibration.holds(m, 5)
    assert calibration.coverage(m, 7) == calibration.coverage(m, 5)  # largest n below
    assert calibration.coverage(m, 50) == calibration.coverage(m, 10)
    assert calibration.coverage(m, 2) is None and not calibration.holds(m, 2)
    assert calibration.min_calibrated_n("percentile") is None
    text = calibration.interval_statement(m, [3, 5])
    assert "3 seeds:" in text and "so no verdict" in text and "5 seeds:" in text
    assert str(coverage_table.SEED) in text
    assert calibration.too_few(3) == "3 seeds: too few for a calibrated interval"


def test_cli_report_defaults_to_the_calibrated_interval():
    from benchmark.cli import report

    opt = next(p for p in report.params if p.name == "ci_method")
    assert opt.default == DEFAULT_CI_METHOD
    assert set(opt.type.choices) == set(CI_METHODS)
