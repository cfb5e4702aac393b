"""KD and Tf-KD losses against direct formulas computed by hand."""

import math

import pytest
import torch

from benchmark.distill.losses import kd_loss, tfkd_loss, tfkd_target


def _softmax(z, t):
    e = [math.exp(v / t) for v in z]
    s = sum(e)
    return [v / s for v in e]


def test_kd_loss_matches_hand_formula():
    zs, zt, y = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0], 1
    alpha, t = 0.7, 3.0
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    ce = -math.log(_softmax(zs, 1.0)[y])
    expected = (1 - alpha) * ce + alpha * t * t * kl
    loss, parts = kd_loss(torch.tensor([zs]), torch.tensor([y]), torch.tensor([zt]), alpha=alpha, temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5)


def test_kd_weight_zero_is_plain_cross_entropy_and_needs_no_teacher():
    zs = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 2])
    loss, _ = kd_loss(zs, y, None, alpha=0.9, temperature=4.0, weight=0.0)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(zs, y).item())


def test_kd_weight_scales_alpha():
    zs, zt, y = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    half, _ = kd_loss(zs, y, zt, alpha=0.8, temperature=2.0, weight=0.5)
    direct, _ = kd_loss(zs, y, zt, alpha=0.4, temperature=2.0)
    assert half.item() == pytest.approx(direct.item())


def test_tfkd_target_and_loss():
    p = tfkd_target(torch.tensor([2, 0]), 4, 0.9)
    assert p[0].tolist() == pytest.approx([0.1 / 3, 0.1 / 3, 0.9, 0.1 / 3])
    assert p.sum(1).tolist() == pytest.approx([1.0, 1.0])
    zs, y, a, t, alpha = [0.5, 1.5, -0.5, 0.0], 2, 0.9, 2.0, 0.6
    target = [0.1 / 3, 0.1 / 3, 0.9, 0.1 / 3]
    ps = _softmax(zs, t)
    kl = sum(p_ * math.log(p_ / q) for p_, q in zip(target, ps))
    ce = -math.log(_softmax(zs, 1.0)[y])
    loss, _ = tfkd_loss(torch.tensor([zs]), torch.tensor([y]), alpha=alpha, temperature=t, tfkd_a=a)
    assert loss.item() == pytest.approx((1 - alpha) * ce + alpha * t * t * kl, rel=1e-5)
