"""Switch policies and KD weight schedules; rules built through the SWITCHES registry."""

import pytest

from benchmark.distill.switch import (
    SameAsRule,
    SwitchPolicy,
    SwitchRule,
    SwitchState,
    build_policy,
)
from benchmark.registry import SWITCHES
from benchmark.suite import FixedEpoch, SameAs, parse_switch


def _fire_if(p, epoch, step, hold):
    r = p.should_switch(epoch=epoch, step=step, student_holdout=hold)
    if r:
        p.fire(epoch=epoch, step=step)
    p.after_eval()
    return r


def _policy(switch_yaml, **kw):
    """A policy built the way the runner builds it: YAML value -> schema -> registry."""
    return build_policy(parse_switch(switch_yaml), **kw)


def test_surpass_teacher_higher_is_better_and_stays_off():
    p = _policy("surpass_teacher", direction="higher", teacher_holdout=60.0)
    assert _fire_if(p, 1.0, 10, 55.0) is None and p.weight(1.0) == 1.0
    assert _fire_if(p, 2.0, 20, 60.0)  # reaching it counts
    assert p.state.off_step == 20 and p.weight(2.0) == 0.0
    assert _fire_if(p, 3.0, 30, 40.0) is None and p.weight(3.0) == 0.0  # never back on


def test_surpass_teacher_lower_is_better():
    p = _policy("surpass_teacher", direction="lower", teacher_holdout=30.0)
    assert _fire_if(p, 1.0, 10, 31.0) is None
    assert _fire_if(p, 2.0, 20, 29.5)


def test_never_and_fixed_epoch_and_same_as():
    never = _policy("never")
    assert _fire_if(never, 100.0, 1000, 99.0) is None and never.weight(100.0) == 1.0
    fixed = _policy({"fixed_epoch": 2.5})
    assert _fire_if(fixed, 2.0, 20, None) is None
    assert _fire_if(fixed, 2.5, 25, None) == "fixed epoch 2.5"
    same = _policy({"same_as": "w2s"}, same_as_step=30)
    assert isinstance(same.rule, SameAsRule)
    assert _fire_if(same, 2.0, 20, None) is None
    assert _fire_if(same, 3.0, 30, None) and same.state.off_step == 30
    unmatched = _policy({"same_as": "w2s"}, same_as_step=None)  # the followed arm never switched
    assert _fire_if(unmatched, 9.0, 90, None) is None
    assert SwitchPolicy("never").name == "never"  # a rule without options by its name


def test_ramp_in_epochs_and_evals():
    p = _policy({"fixed_epoch": 2.0}, ramp_epochs=2.0)
    _fire_if(p, 2.0, 20, None)
    assert p.weight(2.0) == 1.0 and p.weight(3.0) == 0.5 and p.weight(4.0) == 0.0 and p.weight(5.0) == 0.0
    q = _policy({"fixed_epoch": 1.0}, ramp_evals=4)
    _fire_if(q, 1.0, 10, None)
    assert q.weight(1.0) == 0.75
    _fire_if(q, 1.5, 15, None)
    assert q.weight(1.5) == 0.5
    _fire_if(q, 2.0, 20, None)
    _fire_if(q, 2.5, 25, None)
    assert q.weight(2.5) == 0.0


def test_builtin_configs_keep_their_yaml_shape():
    # the resolved spec (and so every run id) holds these dumps: they must not change
    assert isinstance(parse_switch({"fixed_epoch": 3}), FixedEpoch)
    assert parse_switch({"fixed_epoch": 3}).model_dump(mode="json") == {"fixed_epoch": 3.0}
    assert isinstance(parse_switch({"same_as": "w2s"}), SameAs)
    assert parse_switch("never") == "never" and parse_switch("surpass_teacher") == "surpass_teacher"
    with pytest.raises(ValueError, match="unknown switch rule 'nope'; known: fixed_epoch, never"):
        parse_switch("nope")
    with pytest.raises(ValueError, match="takes no options"):
        parse_switch({"never": {"x": 1}})
    with pytest.raises(ValueError, match="needs options"):
        parse_switch("fixed_epoch")


class _EveryOther(SwitchRule):
    """Off at the `n`-th evaluation: state kept in the memo (checkpointed)."""

    def __init__(self, n: int):
        self.n = n

    def decide(self, ev, memo):
        memo["seen"] = memo.get("seen", 0) + 1
        return f"evaluation {memo['seen']}" if memo["seen"] >= self.n else None


def test_a_new_rule_is_a_registered_class_and_its_memo_survives_resume():
    from pydantic import BaseModel, ConfigDict

    class Opts(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = 3

    SWITCHES.add("test_nth_eval", _EveryOther, "test rule", options=Opts)
    try:
        sw = parse_switch({"test_nth_eval": {"n": 2}})
        assert sw.model_dump(mode="json") == {"test_nth_eval": {"n": 2}}
        assert parse_switch("test_nth_eval").model_dump(mode="json") == {"test_nth_eval": {"n": 3}}
        p = build_policy(sw)
        assert _fire_if(p, 1.0, 10, None) is None
        saved = dict(vars(p.state))  # what Loop.state() checkpoints
        q = build_policy(sw)
        q.state = SwitchState(**saved)  # what Loop.load() restores
        assert _fire_if(q, 2.0, 20, None) == "evaluation 2"
    finally:
        SWITCHES.remove("test_nth_eval")


def test_checkpoints_written_before_rules_had_a_memo_still_load():
    old = {"off_step": None, "off_epoch": None, "ramp_evals_done": 0, "zero_logged": False}
    p = _policy({"fixed_epoch": 1.0})
    p.state = SwitchState(**old)
    assert p.state.memo == {} and _fire_if(p, 1.0, 10, None)
