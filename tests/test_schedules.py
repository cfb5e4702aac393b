"""The loop's schedule and optimizer helpers as plain functions (no runner, no task): settings
in, numbers out, every expected value computed by hand in the comments."""

from __future__ import annotations

import pytest
import torch

from benchmark.suite import EvalCfg, OptimCfg, ScheduleCfg
from benchmark.train.loop import build_optimizer, eval_steps, lr_factor


def test_lr_factor_cosine_with_warmup_and_floor():
    s = ScheduleCfg(name="cosine", warmup_epochs=0.5)  # 0.5 epochs x 4 steps = 2 warm-up steps
    # warm-up: (step + 1) / 2
    assert lr_factor(0, 10, 4, s) == 0.5 and lr_factor(1, 10, 4, s) == 1.0
    # after warm-up, progress = (step - 2) / (10 - 2): 0 -> 1, 0.5 -> cos(pi/2) -> 0.5, 1 -> 0
    assert lr_factor(2, 10, 4, s) == 1.0
    assert lr_factor(6, 10, 4, s) == pytest.approx(0.5)
    assert lr_factor(10, 10, 4, s) == pytest.approx(0.0)
    floor = ScheduleCfg(name="cosine", warmup_epochs=0.5, min_lr_ratio=0.1)
    assert lr_factor(6, 10, 4, floor) == pytest.approx(0.1 + 0.9 * 0.5)  # 0.55
    # past the budget the cosine stays at its floor (progress is capped at 1)
    assert lr_factor(14, 10, 4, floor) == pytest.approx(0.1)


def test_lr_factor_linear_constant_and_step():
    lin = ScheduleCfg(name="linear", min_lr_ratio=0.2)
    assert lr_factor(0, 10, 4, lin) == 1.0
    assert lr_factor(5, 10, 4, lin) == pytest.approx(0.2 + 0.8 * 0.5)  # 0.6
    assert lr_factor(10, 10, 4, lin) == pytest.approx(0.2)
    const = ScheduleCfg(name="constant", warmup_epochs=1.0)  # 4 warm-up steps
    assert [lr_factor(i, 10, 4, const) for i in (0, 3, 4, 9)] == [0.25, 1.0, 1.0, 1.0]
    step = ScheduleCfg(name="step", milestones=[1.0, 2.0], gamma=0.1)
    # epoch = step / 4: 0.75 -> no milestone passed, 1.0 -> one, 2.25 -> two
    assert lr_factor(3, 12, 4, step) == 1.0
    assert lr_factor(4, 12, 4, step) == pytest.approx(0.1)
    assert lr_factor(9, 12, 4, step) == pytest.approx(0.01)


def test_eval_steps():
    # every epoch of 4 steps in a 10-step budget: the initial model, 4, 8 and the end
    assert eval_steps(10, 4, EvalCfg(every_epochs=1.0)) == [0, 4, 8, 10]
    assert eval_steps(10, 4, EvalCfg(every_epochs=0.5)) == [0, 2, 4, 6, 8, 10]
    assert eval_steps(9, 4, EvalCfg(every_steps=3)) == [0, 3, 6, 9]  # the end is not repeated
    # 0.1 epochs x 4 steps rounds to 0: at least every step
    assert eval_steps(3, 4, EvalCfg(every_epochs=0.1)) == [0, 1, 2, 3]


def _linear():
    m = torch.nn.Linear(1, 1)
    with torch.no_grad():
        m.weight.fill_(1.0)
        m.bias.fill_(0.0)
    m.bias.requires_grad_(False)  # frozen parameters are left out of the optimizer
    return m


def test_build_optimizer_sgd_one_step_by_hand():
    m = _linear()
    opt = build_optimizer(m, OptimCfg(name="sgd", lr=0.1, momentum=0.0, nesterov=True, weight_decay=0.5))
    assert isinstance(opt, torch.optim.SGD)
    [g] = opt.param_groups
    assert len(g["params"]) == 1 and g["params"][0] is m.weight
    assert g["nesterov"] is False  # Nesterov needs momentum: without it, plain SGD
    m(torch.tensor([[2.0]])).sum().backward()  # d(w*2)/dw = 2
    opt.step()
    # w <- w - lr * (grad + wd * w) = 1 - 0.1 * (2 + 0.5 * 1) = 0.75
    assert m.weight.item() == pytest.approx(0.75)


def test_build_optimizer_adam_and_adamw_settings():
    cfg = dict(lr=1e-3, betas=(0.8, 0.99), weight_decay=0.01)
    adam = build_optimizer(_linear(), OptimCfg(name="adam", **cfg))
    adamw = build_optimizer(_linear(), OptimCfg(name="adamw", **cfg))
    assert type(adam) is torch.optim.Adam and type(adamw) is torch.optim.AdamW
    for opt in (adam, adamw):
        g = opt.param_groups[0]
        assert (g["lr"], tuple(g["betas"]), g["weight_decay"]) == (1e-3, (0.8, 0.99), 0.01)
    sgd = build_optimizer(_linear(), OptimCfg(name="sgd", lr=0.05))  # schema defaults
    g = sgd.param_groups[0]
    assert (g["momentum"], g["nesterov"], g["weight_decay"]) == (0.9, True, 5e-4)
    assert g["lr"] == 0.05
