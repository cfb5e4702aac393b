"""Switch policies and KD weight schedules."""

from benchmark.distill.switch import SwitchPolicy


def _fire_if(p, epoch, step, hold):
    r = p.should_switch(epoch=epoch, step=step, student_holdout=hold)
    if r:
        p.fire(epoch=epoch, step=step)
    p.after_eval()
    return r


def test_surpass_teacher_higher_is_better_and_stays_off():
    p = SwitchPolicy("surpass_teacher", direction="higher", teacher_holdout=60.0)
    assert _fire_if(p, 1.0, 10, 55.0) is None and p.weight(1.0) == 1.0
    assert _fire_if(p, 2.0, 20, 60.0)  # reaching it counts
    assert p.state.off_step == 20 and p.weight(2.0) == 0.0
    assert _fire_if(p, 3.0, 30, 40.0) is None and p.weight(3.0) == 0.0  # never back on


def test_surpass_teacher_lower_is_better():
    p = SwitchPolicy("surpass_teacher", direction="lower", teacher_holdout=30.0)
    assert _fire_if(p, 1.0, 10, 31.0) is None
    assert _fire_if(p, 2.0, 20, 29.5)


def test_never_and_fixed_epoch_and_same_as():
    never = SwitchPolicy("never")
    assert _fire_if(never, 100.0, 1000, 99.0) is None and never.weight(100.0) == 1.0
    fixed = SwitchPolicy("fixed_epoch", fixed_epoch=2.5)
    assert _fire_if(fixed, 2.0, 20, None) is None
    assert _fire_if(fixed, 2.5, 25, None)
    same = SwitchPolicy("same_as", same_as_step=30)
    assert _fire_if(same, 2.0, 20, None) is None
    assert _fire_if(same, 3.0, 30, None) and same.state.off_step == 30
    unmatched = SwitchPolicy("same_as", same_as_step=None)  # the followed arm never switched
    assert _fire_if(unmatched, 9.0, 90, None) is None


def test_ramp_in_epochs_and_evals():
    p = SwitchPolicy("fixed_epoch", fixed_epoch=2.0, ramp_epochs=2.0)
    _fire_if(p, 2.0, 20, None)
    assert p.weight(2.0) == 1.0 and p.weight(3.0) == 0.5 and p.weight(4.0) == 0.0 and p.weight(5.0) == 0.0
    q = SwitchPolicy("fixed_epoch", fixed_epoch=1.0, ramp_evals=4)
    _fire_if(q, 1.0, 10, None)
    assert q.weight(1.0) == 0.75
    _fire_if(q, 1.5, 15, None)
    assert q.weight(1.5) == 0.5
    _fire_if(q, 2.0, 20, None)
    _fire_if(q, 2.5, 25, None)
    assert q.weight(2.5) == 0.0
