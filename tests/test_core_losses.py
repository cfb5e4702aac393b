"""The distillation-loss interface: the classification terms against direct formulas computed
by hand, the one weighting function (`combine`) and the built objective (`Distillation`):
when it is active, how it records parts, how it is built from a run's `distill` settings."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from benchmark.distill.classification import KD, TfKD, TfKDReg, tfkd_target
from benchmark.distill.losses import Distillation, Outputs, build_distillation, combine
from benchmark.errors import UserError


def _softmax(z, t):
    e = [math.exp(v / t) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _distill(**over):
    """A run's `distill` settings as the builder reads them (the suite schema's defaults)."""
    d = dict(loss="kd", teacher="weak", alpha=0.5, temperature=4.0, beta=None, tfkd_a=0.9, kwargs={})
    d.update(over)
    return SimpleNamespace(**d)


# --------------------------------------------------------------- terms by hand
def test_kd_term_and_its_mix_match_the_hand_formula():
    zs, zt, y = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0], 1
    alpha, t = 0.7, 3.0
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    ce = -math.log(_softmax(zs, 1.0)[y])
    term = KD(temperature=t)(Outputs(torch.tensor([zs]), torch.tensor([zt]), torch.tensor([y])))
    assert term.item() == pytest.approx(t * t * kl, rel=1e-5)
    dist = build_distillation(_distill(alpha=alpha, temperature=t))
    ce_t = F.cross_entropy(torch.tensor([zs]), torch.tensor([y]))
    loss, parts = dist.apply(ce_t, {"ce": ce_t}, Outputs(torch.tensor([zs]), torch.tensor([zt]), torch.tensor([y])), 1.0)
    assert loss.item() == pytest.approx((1 - alpha) * ce + alpha * t * t * kl, rel=1e-5)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5) and parts["kd"].item() == pytest.approx(t * t * kl, rel=1e-5)


def test_tfkd_target_and_term():
    p = tfkd_target(torch.tensor([2, 0]), 4, 0.9)
    assert p[0].tolist() == pytest.approx([0.1 / 3, 0.1 / 3, 0.9, 0.1 / 3])
    assert p.sum(1).tolist() == pytest.approx([1.0, 1.0])
    zs, y, a, t = [0.5, 1.5, -0.5, 0.0], 2, 0.9, 2.0
    target = [0.1 / 3, 0.1 / 3, 0.9, 0.1 / 3]
    ps = _softmax(zs, t)
    kl = sum(p_ * math.log(p_ / q) for p_, q in zip(target, ps))
    term = TfKD(temperature=t, tfkd_a=a)(Outputs(torch.tensor([zs]), None, torch.tensor([y])))
    assert term.item() == pytest.approx(t * t * kl, rel=1e-5)


def test_tfkd_reg_term_is_the_released_codes_kl_mean():
    """multiplier * sum_{b,k} q (log q - log softmax(z_s)) / (B*K), q = softmax(p_d / T), the
    student NOT softened by T and no T^2 (Yuan et al. 2020, released code)."""
    zs, y, cp, t, mult = [[0.5, 1.5, -0.5], [2.0, 0.0, 1.0]], [2, 0], 0.8, 5.0, 10.0
    total = 0.0
    for z, yy in zip(zs, y):
        p_d = [cp if k == yy else (1 - cp) / 2 for k in range(3)]
        q = _softmax(p_d, t)
        ls = [math.log(v) for v in _softmax(z, 1.0)]
        total += sum(qk * (math.log(qk) - lk) for qk, lk in zip(q, ls))
    term = TfKDReg(temperature=t, correct_prob=cp, multiplier=mult)(Outputs(torch.tensor(zs), None, torch.tensor(y)))
    assert term.item() == pytest.approx(mult * total / 6, rel=1e-5)


# ------------------------------------------------------------------- combine
def test_combine_is_the_alpha_mix_or_the_beta_form_in_the_committed_operation_order():
    task, kd = torch.tensor(1.7), torch.tensor(0.3)
    for w in (0.0, 0.25, 1.0):
        a = 0.6 * w
        assert torch.equal(combine(task, kd, w, alpha=0.6, beta=None), (1 - a) * task + a * kd)
        assert torch.equal(combine(task, kd, w, alpha=0.6, beta=2.5), task + w * 2.5 * kd)
    assert combine(task, kd, 0.5, alpha=0.8, beta=None).item() == pytest.approx(0.6 * 1.7 + 0.4 * 0.3)
    assert combine(task, kd, 0.5, alpha=0.8, beta=3.0).item() == pytest.approx(1.7 + 1.5 * 0.3)


def test_weight_scales_alpha():
    zs, zt, y = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    out, ce = Outputs(zs, zt, y), F.cross_entropy(zs, y)
    half, _ = build_distillation(_distill(alpha=0.8, temperature=2.0)).apply(ce, {}, out, 0.5)
    direct, _ = build_distillation(_distill(alpha=0.4, temperature=2.0)).apply(ce, {}, out, 1.0)
    assert half.item() == pytest.approx(direct.item())


def test_active_only_with_a_nonzero_weight_and_the_teacher_it_needs():
    teacher = object()
    kd = build_distillation(_distill())
    assert kd.active(teacher, 0.5) and not kd.active(teacher, 0.0) and not kd.active(None, 1.0)
    assert not build_distillation(_distill(alpha=0.0)).active(teacher, 1.0)
    free = build_distillation(_distill(loss="tfkd", teacher=None))
    assert free.active(None, 1.0) and not free.needs_teacher
    # beta is read only by losses registered with reads_beta; there, beta 0 switches the term off
    assert build_distillation(_distill(beta=2.0)).beta is None
    assert build_distillation(_distill(loss="pkd", beta=2.0)).beta == 2.0
    assert not build_distillation(_distill(loss="pkd", beta=0.0)).active(teacher, 1.0)
    assert build_distillation(None) is None


def test_named_terms_are_recorded_and_summed():
    def two_terms(out):
        return {"a": out.student.sum(), "b": 2 * out.student.sum()}

    dist = Distillation("two", two_terms, needs_teacher=False, alpha=0.5, beta=None)
    task = torch.tensor(1.0)
    loss, parts = dist.apply(task, {"ce": task}, Outputs(torch.tensor([1.0, 2.0]), None, None), 1.0)
    assert parts["a"].item() == 3.0 and parts["b"].item() == 6.0 and parts["kd"].item() == 9.0
    assert loss.item() == pytest.approx(0.5 * 1.0 + 0.5 * 9.0)
    bad = Distillation("bad", lambda out: 1.0, needs_teacher=False, alpha=0.5, beta=None)
    with pytest.raises(UserError, match="'bad' must return a scalar tensor"):
        bad.apply(task, {}, Outputs(None, None, None), 1.0)


# -------------------------------------------------------------------- builder
def test_builder_reads_each_loss_options_and_rejects_unknown_ones():
    reg = build_distillation(_distill(loss="tfkd_reg", teacher=None, temperature=20.0, kwargs={"multiplier": 50}))
    assert isinstance(reg.loss, TfKDReg)
    # defaults from the loss's options model (distill/options.py), values as validated floats
    assert (reg.loss.temperature, reg.loss.correct_prob, reg.loss.multiplier) == (20.0, 0.99, 50.0)
    assert build_distillation(_distill(loss="tfkd", tfkd_a=0.7)).loss.tfkd_a == 0.7
    assert build_distillation(_distill(loss="pkd", kwargs={"eps": 1e-3})).loss.eps == 1e-3
    with pytest.raises(UserError, match="multiplier"):
        build_distillation(_distill(loss="tfkd_reg", kwargs={"multiplier": -1.0}))
    with pytest.raises(UserError, match="eps_typo"):  # pkd declares no options model: the class rejects it
        build_distillation(_distill(loss="pkd", kwargs={"eps_typo": 1.0}))
    with pytest.raises(UserError, match="unknown loss 'nope'"):
        build_distillation(_distill(loss="nope"))
