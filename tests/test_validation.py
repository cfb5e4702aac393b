"""Validation before the lock (issue 19, item 2): every typo in free-form kwargs, an option
the chosen loss ignores and the classification metric are problems with their YAML path,
found by `validate` (torch-free) or `validate --deep` / `run` (torch) before anything is
written."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, cli_cmd, tiny_suite_dict

from benchmark.errors import SuiteError
from benchmark.runner.deep_check import deep_problems
from benchmark.runner.execute import run_suite
from benchmark.suite import validate_dict


def _problems(d) -> dict[str, str]:
    with pytest.raises(SuiteError) as e:
        validate_dict(d, "<test>", check_paths=False)
    return dict(e.value.problems)


def test_data_kwargs_typo_is_a_problem_with_its_path():
    d = tiny_suite_dict(data={"kwargs": {"trian": 600}},
                        arms={"baseline": {"distill": None}, "w2s": {"data": {"kwargs": {"nosie": 0.1}}}})
    p = _problems(d)
    assert "'trian'" in p["data.kwargs.trian"] and "hue_noise" in p["data.kwargs.trian"]
    assert "'nosie'" in p["arms.w2s.data.kwargs.nosie"]
    assert "arms.baseline.data.kwargs.trian" not in p  # a body problem is reported once


def test_dataset_without_options_rejects_any_kwargs():
    d = tiny_suite_dict(data={"dataset": "cifar10", "kwargs": {"path": "x"}})
    assert "its options: none" in _problems(d)["data.kwargs.path"]


def test_beta_where_the_loss_does_not_read_it():
    p = _problems(tiny_suite_dict(distill={"beta": 2.0}))
    assert "does not read beta" in p["distill.beta"]
    p = _problems(tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {"distill": {"beta": 1.0}}}))
    assert "does not read beta" in p["arms.w2s.distill.beta"]


def test_classification_metric_is_checked_by_validate():
    p = _problems(tiny_suite_dict(targets={"metric": "AP"}))
    assert "accuracy or top5" in p["targets.metric"]
    validate_dict(tiny_suite_dict(targets={"metric": "top5"}), "<test>", check_paths=False)


def test_validate_without_deep_imports_no_torch_for_a_timm_suite(tmp_path, write_suite):
    path = write_suite(tiny_suite_dict(student={"name": "timm:resnet18", "kwargs": {}}))
    code = ("import sys; from benchmark.suite import load_suite; "
            f"load_suite({str(path)!r}, check_paths=False); "
            "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_deep_check_model_names_and_constructor_arguments():
    d = tiny_suite_dict(
        student={"name": "resnet8", "kwargs": {"widht": 8}},
        teachers={"weak": {"model": {"name": "timm:resnet18", "kwargs": {"drop_rat": 0.1}}},
                  "other": {"model": {"name": "timm:no_such_net"}}},
        arms={"baseline": {"distill": None}, "w2s": {},
              "wide": {"student": {"kwargs": {"num_classes": 3}}}})
    suite = validate_dict(d, "<test>", check_paths=False)  # the torch-free checks pass
    p = dict(deep_problems(suite))
    assert "has no argument 'widht'" in p["student.kwargs.widht"] and "width" in p["student.kwargs.widht"]
    assert "drop_rat" in p["teachers.weak.model.kwargs"]
    assert "unknown timm model 'no_such_net'" in p["teachers.other.model.name"]
    assert "set by the classification task" in p["arms.wide.student.kwargs.num_classes"]
    assert not any(k.startswith("arms.w2s") for k in p)  # the body's problems once, unprefixed
    assert deep_problems(validate_dict(tiny_suite_dict(), "<t>", check_paths=False)) == []


def test_run_checks_model_kwargs_before_writing_the_lock(tmp_path):
    suite = validate_dict(tiny_suite_dict(student={"kwargs": {"widht": 8}}), "<test>", check_paths=False)
    with pytest.raises(SuiteError) as e:
        run_suite(suite, tmp_path / "r", log=lambda *a, **k: None)
    assert "student.kwargs.widht" in dict(e.value.problems)
    assert not (tmp_path / "r").exists()  # no lock, no results directory


def test_validate_deep_cli_exit_2_without_traceback(tmp_path, write_suite, cli_env):
    path = write_suite(tiny_suite_dict(student={"kwargs": {"widht": 8}}))
    r = subprocess.run(cli_cmd("validate", path), capture_output=True, text=True, cwd=ROOT, env=cli_env)
    assert r.returncode == 0, r.stderr  # the torch-free check cannot see constructor arguments
    r = subprocess.run(cli_cmd("validate", "--deep", path), capture_output=True, text=True, cwd=ROOT,
                       env=cli_env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "student.kwargs.widht: model 'resnet8' has no argument 'widht'" in r.stderr


def test_declared_data_options_match_what_the_loaders_read():
    from benchmark.data.coco_paths import COCO_JSON_KWARGS
    from benchmark.data.synthetic_detection import KWARGS
    from benchmark.registry import DATASETS

    assert DATASETS["synthetic_detection"].meta["kwargs"] == tuple(KWARGS)
    assert DATASETS["coco_json"].meta["kwargs"] == COCO_JSON_KWARGS


def test_empty_timm_name_is_caught_without_torch():
    p = _problems(tiny_suite_dict(student={"name": "timm:", "kwargs": {}}))
    assert "needs a model name" in p["student.name"]


def test_teacher_train_override_problems_keep_their_path_even_for_an_empty_key():
    # found by test_validate_fuzz: an empty key under teachers.<t>.train passed validation and
    # failed later, in run_specs, with a bare pydantic error
    d = tiny_suite_dict(train={"epochs": 2})
    d["teachers"]["weak"]["train"] = {"": None, "epochs": -1}
    p = _problems(d)
    assert p == {"teachers.weak.train.''": "unknown key",
                 "teachers.weak.train.epochs": "Input should be greater than 0"}
    # a problem of the suite's own train is reported there, once, not again under the teacher
    d = tiny_suite_dict(train={"bogus": 1})
    d["teachers"]["weak"]["train"] = {"epochs": 3}
    assert set(_problems(d)) == {"train.bogus"}


def test_arm_override_problems_keep_their_path_even_for_an_empty_key():
    # arms and teachers share one filter (pydantic_problems' `within`), on pydantic's location
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {"": 1, "train": {"": 2, "epochs": -1}}})
    assert _problems(d) == {"arms.w2s.''": "unknown key", "arms.w2s.train.''": "unknown key",
                            "arms.w2s.train.epochs": "Input should be greater than 0"}
    # a body problem is reported once, under the body, even where the arm overrides beside it
    d = tiny_suite_dict(train={"bogus": 1}, arms={"baseline": {"distill": None}, "w2s": {"train": {"epochs": 3}}})
    assert set(_problems(d)) == {"train.bogus"}
