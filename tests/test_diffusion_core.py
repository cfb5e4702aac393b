"""Unit tests of the DDPM pieces: schedule closed forms, UNet shapes and size, the
distillation loss, and samplers driven by an exact epsilon oracle on a known distribution."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from benchmark.diffusion.schedule import cosine_betas, make_schedule
from benchmark.distill.diffusion import EpsDistill
from benchmark.distill.losses import Distillation, Outputs
from benchmark.models.unet import unet

torch.set_num_threads(1)


# ------------------------------------------------------------------------ schedule
def test_linear_schedule_closed_forms_match_direct_computation():
    s = make_schedule("linear", T=1000, beta_start=1e-4, beta_end=0.02)
    assert s.T == 1000
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    for t in (0, 1, 10, 500, 999):
        ab = 1.0
        for i in range(t + 1):  # direct product, in plain Python floats
            ab *= 1 - (1e-4 + (0.02 - 1e-4) * i / 999)
        ab_prev = ab / (1 - (1e-4 + (0.02 - 1e-4) * t / 999))
        beta = 1e-4 + (0.02 - 1e-4) * t / 999
        assert s.alpha_bar[t].item() == pytest.approx(ab, rel=1e-9)
        # posterior variance beta~_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t (Ho et al. eq. 7)
        assert s.posterior_variance[t].item() == pytest.approx((1 - ab_prev) / (1 - ab) * beta, rel=1e-9, abs=1e-15)
    assert s.posterior_variance[0].item() == 0.0  # abar_{-1} = 1
    # the well-known endpoint of the DDPM schedule: abar_T ~ 4.0e-5
    assert s.alpha_bar[-1].item() == pytest.approx(4.04e-5, rel=0.01)


def test_posterior_mean_coefficients_match_bayes_rule():
    """q(x_{t-1}|x_t, x_0) from the product of two Gaussians, computed numerically."""
    s = make_schedule("linear", T=50, beta_start=1e-3, beta_end=0.2)
    t = 20
    ab_prev, beta = s.alpha_bar_prev[t].item(), s.betas[t].item()
    # prior x_{t-1} ~ N(sqrt(ab_prev) x0, 1 - ab_prev); likelihood x_t ~ N(sqrt(1-beta) x_{t-1}, beta)
    prec = 1 / (1 - ab_prev) + (1 - beta) / beta
    var = 1 / prec
    x0, xt = 0.7, -0.3
    mean = var * (math.sqrt(ab_prev) * x0 / (1 - ab_prev) + math.sqrt(1 - beta) * xt / beta)
    got = s.posterior_coef_x0[t].item() * x0 + s.posterior_coef_xt[t].item() * xt
    assert got == pytest.approx(mean, rel=1e-9)
    assert s.posterior_variance[t].item() == pytest.approx(var, rel=1e-9)


def test_cosine_schedule_alpha_bar_follows_its_definition():
    T, s_ = 1000, 0.008
    sched = make_schedule("cosine", T=T)
    f = [math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2 for t in range(T + 1)]
    for t in (0, 100, 500, 900):
        assert sched.alpha_bar[t].item() == pytest.approx(f[t + 1] / f[0], rel=1e-9)
    assert float(cosine_betas(T).max()) <= 0.999


def test_q_sample_is_the_closed_form():
    s = make_schedule()
    x0 = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 10, 500, 999])
    xt = s.q_sample(x0, t, eps)
    for i, ti in enumerate(t.tolist()):
        ab = s.alpha_bar[ti].item()
        assert torch.allclose(xt[i], math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * eps[i], atol=1e-6)


# ---------------------------------------------------------------------------- UNet
def test_default_unet_is_the_35_7m_cifar10_model():
    m = unet()
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - 35.7e6) / 35.7e6 < 0.01, n


@pytest.mark.parametrize("kw,size", [
    (dict(ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), dropout=0.0), 8),
    (dict(ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,), dropout=0.1), 16),
    (dict(ch=24, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0), 4),
    (dict(ch=12, ch_mult=(1, 2, 3), num_res_blocks=1, attn_resolutions=(), norm_groups=32), 12),
])
def test_unet_output_shape(kw, size):
    m = unet(image_size=size, **kw)
    x = torch.randn(3, 3, size, size)
    out = m(x, torch.tensor([0, 499, 999]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_unet_rejects_indivisible_size():
    with pytest.raises(ValueError, match="divisible"):
        unet(image_size=10, ch=8, ch_mult=(1, 2, 2))


# ----------------------------------------------------------------- distillation loss
def _eps_loss(eps_s, eps, eps_t, *, alpha, beta, weight):
    """The diffusion task's loss: L_simple, and the eps_distill term mixed in when active."""
    mse = (eps_s.float() - eps.float()).pow(2).mean()
    dist = Distillation("eps_distill", EpsDistill(), needs_teacher=True, alpha=alpha, beta=beta)
    if not dist.active(eps_t, weight):
        return mse, {"mse": mse.detach()}
    return dist.apply(mse, {"mse": mse.detach()}, Outputs(eps_s, eps_t, eps), weight)


def test_eps_distill_loss_hand_computed():
    eps_s = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    eps = torch.tensor([0.0, 2.0, 5.0, 4.0])
    eps_t = torch.tensor([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    # mse = (1 + 0 + 4 + 0) / 4 = 1.25 ; kd = (0 + 1 + 4 + 9) / 4 = 3.5
    assert EpsDistill()(Outputs(eps_s, eps_t, eps)).item() == pytest.approx(3.5)
    loss, parts = _eps_loss(eps_s, eps, eps_t, alpha=0.5, beta=0.3, weight=1.0)
    assert loss.item() == pytest.approx(1.25 + 0.3 * 3.5)
    assert parts["mse"].item() == pytest.approx(1.25) and parts["kd"].item() == pytest.approx(3.5)
    loss, _ = _eps_loss(eps_s, eps, eps_t, alpha=0.5, beta=0.3, weight=0.5)  # ramp weight
    assert loss.item() == pytest.approx(1.25 + 0.5 * 0.3 * 3.5)
    loss, _ = _eps_loss(eps_s, eps, eps_t, alpha=0.4, beta=None, weight=1.0)  # alpha mix
    assert loss.item() == pytest.approx(0.6 * 1.25 + 0.4 * 3.5)
    loss.backward()
    assert eps_t.grad is None  # stop-gradient through the teacher
    # d/d eps_s of 0.6*mean((s-e)^2) + 0.4*mean((s-t)^2) = (1.2 (s-e) + 0.8 (s-t)) / 4
    want = (1.2 * (eps_s.detach() - eps) + 0.8 * (eps_s.detach() - eps_t.detach())) / 4
    assert torch.allclose(eps_s.grad, want)


def test_eps_distill_loss_without_teacher_is_l_simple():
    eps_s, eps = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])
    loss, parts = _eps_loss(eps_s, eps, None, alpha=0.5, beta=2.0, weight=0.0)
    assert loss.item() == pytest.approx(5.0) and "kd" not in parts


# ------------------------------------------------------------------ samplers (oracle)
MUS, STD = (-2.0, 2.0), 0.3  # toy data: an even mixture of N(-2, 0.3^2) and N(2, 0.3^2)


def mixture_oracle(sched):
    """The exact E[eps | x_t] for the mixture: with a = sqrt(abar), b = sqrt(1 - abar),
    x_t | k ~ N(a mu_k, a^2 s^2 + b^2) and E[eps | x_t, k] = b (x_t - a mu_k) / (a^2 s^2 + b^2)."""
    ab_tab = sched.alpha_bar

    def model(x, t):
        ab = ab_tab[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
        a, b = ab.sqrt(), (1 - ab).sqrt()
        var = a**2 * STD**2 + b**2
        logits = torch.stack([-(x - a * m) ** 2 / (2 * var) for m in MUS])
        r = torch.softmax(logits, 0)
        return sum(r[k] * b * (x - a * m) / var for k, m in enumerate(MUS))

    return model


def _check_mixture(x):
    x = x.flatten().double()
    right = x[x > 0]
    assert 0.45 < len(right) / len(x) < 0.55
    assert right.mean().item() == pytest.approx(2.0, abs=0.05)
    assert x[x < 0].mean().item() == pytest.approx(-2.0, abs=0.05)
    assert right.std().item() == pytest.approx(STD, abs=0.05)
    assert x[x < 0].std().item() == pytest.approx(STD, abs=0.05)


def test_ddim_with_exact_eps_oracle_recovers_the_toy_distribution():
    sched = make_schedule("linear", T=1000)
    g = torch.Generator().manual_seed(0)
    x = ddim_sample(mixture_oracle(sched), sched, (4000, 1, 1, 1), steps=200, generator=g,
                    device=torch.device("cpu"), eta=0.0, clip=False)
    _check_mixture(x)


def test_ddpm_ancestral_with_exact_eps_oracle_recovers_the_toy_distribution():
    sched = make_schedule("linear", T=1000)
    g = torch.Generator().manual_seed(1)
    x = ddpm_sample(mixture_oracle(sched), sched, (4000, 1, 1, 1), generator=g,
                    device=torch.device("cpu"), variance="fixedsmall", clip=False)
    _check_mixture(x)


def test_samplers_are_deterministic_given_the_generator():
    sched = make_schedule("linear", T=100)
    model = mixture_oracle(sched)
    a = ddim_sample(model, sched, (8, 1, 2, 2), steps=10, eta=1.0, generator=torch.Generator().manual_seed(3),
                    device=torch.device("cpu"))
    b = ddim_sample(model, sched, (8, 1, 2, 2), steps=10, eta=1.0, generator=torch.Generator().manual_seed(3),
                    device=torch.device("cpu"))
    assert torch.equal(a, b)
    assert ddim_timesteps(1000, 4) == [0, 250, 500, 750]
