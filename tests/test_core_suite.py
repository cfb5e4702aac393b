"""Suite schema: every problem at once with its YAML path, env expansion, arms, run ids."""

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, cli_cmd, tiny_suite_dict

from benchmark.errors import SuiteError
from benchmark.suite import expand_env, load_suite, run_specs, validate_dict

BAD = """
name: bad suite
task: classification
seeds: [0, 0]
threads: two
data: {dataset: cifar11, holdout: -1, bogus: 1}
student: {name: resnet21}
train: {epochs: 0, batch_size: 64, optimizer: {name: sgdx}}
distill: {teacher: nope, alpha: 2}
targets: {metric: accuracy, direction: higher, thresholds: [150]}
arms: {w2s: {distill: {switch: {same_as: ghost}}}}
"""


def test_malformed_suite_reports_every_problem_with_its_path(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    with pytest.raises(SuiteError) as e:
        load_suite(f)
    paths = dict(e.value.problems)
    for p in ("name", "seeds", "threads", "data.dataset", "data.holdout", "data.bogus", "student.name",
              "train.epochs", "train.optimizer.name", "distill.teacher", "distill.alpha",
              "targets.thresholds[0]", "arms", "arms.w2s.distill.switch.same_as"):
        assert p in paths, (p, paths)
    assert paths["data.bogus"] == "unknown key"


def test_validate_cli_exit_2_without_traceback_and_imports_no_torch(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    r = subprocess.run(cli_cmd("validate", f), capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "14 problem(s)" in r.stderr
    code = ("import sys; from benchmark.suite import load_suite; "
            f"load_suite({str(ROOT / 'suites/quickstart.yaml')!r}); "
            "heavy = [m for m in ('torch', 'timm', 'torchvision', 'pycocotools', 'torch_fidelity') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_yaml_syntax_error_names_line(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\n  bad: [\n")
    with pytest.raises(SuiteError) as e:
        load_suite(f)
    assert e.value.problems[0][0].startswith("line 2")


def test_env_expansion_with_defaults_and_missing():
    probs = []
    out = expand_env({"a": "${X}/d", "b": ["${Y:-dflt}"], "c": "${Z}"}, problems=probs, env={"X": "/x"})
    assert out["a"] == "/x/d" and out["b"] == ["dflt"]
    assert probs == [("c", "environment variable Z is not set and has no default")]


def test_arm_overrides_and_pairing_seeds():
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {},
                              "kd_always": {"distill": {"switch": "never"}},
                              "fixed": {"distill": {"switch": {"fixed_epoch": 1}}},
                              "matched": {"distill": {"switch": {"same_as": "w2s"}}}})
    d["seeds"] = [0, 1]
    suite = validate_dict(d)
    assert suite.arm_settings["baseline"].distill is None
    assert suite.arm_settings["kd_always"].distill.switch == "never"
    assert suite.arm_settings["kd_always"].distill.alpha == 0.5  # inherited from the suite
    specs = run_specs(suite)
    assert len(specs) == 10 and len({s["run_id"] for s in specs}) == 10
    by = {(s["arm"], s["seed"]): s for s in specs}
    # paired: same seed -> same init/data/augment streams whatever the arm
    assert by[("baseline", 0)]["seeds"] == by[("w2s", 0)]["seeds"]
    assert by[("baseline", 0)]["seeds"] != by[("baseline", 1)]["seeds"]
    assert by[("w2s", 0)]["teacher"]["id"] == by[("kd_always", 1)]["teacher"]["id"]  # one teacher
    assert by[("baseline", 0)]["teacher"] is None


def test_unknown_arm_key_is_reported_under_the_arm():
    d = tiny_suite_dict()
    d["arms"]["w2s"] = {"distill": {"temprature": 3}}
    with pytest.raises(SuiteError) as e:
        validate_dict(d)
    assert ("arms.w2s.distill.temprature", "unknown key") in e.value.problems


def test_missing_cifar_data_says_where_it_looked(tmp_path):
    d = tiny_suite_dict(data={"dataset": "cifar10", "root": str(tmp_path), "kwargs": {}})
    d["data"].pop("kwargs")
    with pytest.raises(SuiteError) as e:
        validate_dict(d)
    msg = dict(e.value.problems)["data.root"]
    assert str(tmp_path / "cifar10") in msg and "W2S_DATA_ROOT" in msg


def test_every_shipped_suite_validates_its_schema():
    for f in sorted((ROOT / "suites").glob("*.yaml")):
        load_suite(f, check_paths=False)
        yaml.safe_load(f.read_text())
