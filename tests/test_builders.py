"""Builders: a teacher is built from the teacher's own resolved spec (issue 19, item 1)."""

from __future__ import annotations

from conftest import tiny_suite_dict

from benchmark.runner.plan import plan
from benchmark.runner.teachers import TeacherBuilder
from benchmark.suite import validate_dict


def _two_teacher_suite():
    # both distilled arms name the teacher `weak`; the second trains on a 400-image subset, so
    # its teacher is another teacher (its id hashes the subset) and must be trained on it
    d = tiny_suite_dict(arms={"baseline": {"distill": None}, "w2s": {},
                              "w2s_small": {"data": {"train_subset": 400}, "threads": 2}})
    return validate_dict(d, "<test>", check_paths=False)


def test_teacher_is_built_from_its_own_spec_not_the_first_arm(tmp_path):
    suite = _two_teacher_suite()
    teachers = [it for it in plan(suite, tmp_path) if it.kind == "teacher"]
    assert len(teachers) == 2  # the subset is part of the teacher's identity
    builder = TeacherBuilder(suite, tmp_path)
    by_subset = {}
    for it in teachers:
        s = builder.settings(it.spec)
        by_subset[it.spec["data"]["train_subset"]] = s
        # every field the id hashes is the field the teacher is built from
        assert s.data.model_dump(exclude={"root", "download"}) == it.spec["data"]
        assert s.threads == it.spec["threads"]
        assert s.task_options == it.spec["task_options"]
        assert s.student.model_dump() == it.spec["model"]
        assert s.train.model_dump(mode="json") == it.spec["train"]
        assert s.distill is None
    assert set(by_subset) == {None, 400}
    assert by_subset[400].data.train_subset == 400 and by_subset[400].threads == 2
    assert by_subset[None].data.train_subset is None and by_subset[None].threads == 1


def test_teacher_settings_take_cli_overrides(tmp_path):
    suite = _two_teacher_suite()
    it = next(it for it in plan(suite, tmp_path) if it.kind == "teacher")
    s = TeacherBuilder(suite, tmp_path, device="cpu", threads=3).settings(it.spec)
    assert (s.device, s.threads) == ("cpu", 3)
