"""Samplers for an epsilon-prediction model `model(x_t, t) -> eps` with t: (B,) int64.

- ddpm: ancestral sampling (Ho et al. 2020, Algorithm 2) over all T steps. Variance
  "fixedlarge" (sigma_t^2 = beta_t, with the posterior variance at t=1, as in the official
  CIFAR-10 code) or "fixedsmall" (sigma_t^2 = posterior variance beta~_t).
- ddim: Song, Meng, Ermon 2021 ("Denoising Diffusion Implicit Models", eq. 12) on `steps`
  evenly spaced timesteps ("uniform" skip); eta = 0 is deterministic, eta = 1 is DDPM-like.

Randomness comes only from the explicit `generator` (never the global RNG), so evaluation
does not disturb training's RNG stream and a fixed sampling seed gives identical samples.
"""

from __future__ import annotations

import torch

from .schedule import NoiseSchedule


def _predict_x0(sched: NoiseSchedule, x, t, eps, clip: bool):
    ab = sched.table("alpha_bar", x.device)[t].view(-1, *([1] * (x.ndim - 1)))
    x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
    return x0.clamp(-1, 1) if clip else x0


def _randn(shape, generator, device):
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@torch.no_grad()
def ddpm_sample(model, sched: NoiseSchedule, shape: tuple, *, generator: torch.Generator,
                device, variance: str = "fixedlarge", clip: bool = True) -> torch.Tensor:
    x = _randn(shape, generator, device)
    if variance == "fixedlarge":
        var = torch.cat([sched.posterior_variance[1:2], sched.betas[1:]])
    elif variance == "fixedsmall":
        var = sched.posterior_variance
    else:
        raise ValueError(f"unknown variance {variance!r}")
    c0 = sched.table("posterior_coef_x0", device)
    ct = sched.table("posterior_coef_xt", device)
    for i in reversed(range(sched.T)):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        x0 = _predict_x0(sched, x, t, model(x, t).float(), clip)
        x = c0[i] * x0 + ct[i] * x
        if i > 0:
            x = x + float(var[i]) ** 0.5 * _randn(shape, generator, device)
    return x


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """Evenly spaced timesteps 0, T/steps, 2T/steps, ... (DDIM's "uniform" skip)."""
    if not 1 <= steps <= T:
        raise ValueError(f"DDIM steps must be in [1, {T}]")
    return [int(round(i * T / steps)) for i in range(steps)]


@torch.no_grad()
def ddim_sample(model, sched: NoiseSchedule, shape: tuple, *, steps: int, generator: torch.Generator,
                device, eta: float = 0.0, clip: bool = True) -> torch.Tensor:
    x = _randn(shape, generator, device)
    seq = ddim_timesteps(sched.T, steps)
    ab_all = sched.alpha_bar
    for j in reversed(range(len(seq))):
        i = seq[j]
        ab_t = float(ab_all[i])
        ab_prev = float(ab_all[seq[j - 1]]) if j > 0 else 1.0
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        eps = model(x, t).float()
        x0 = _predict_x0(sched, x, t, eps, clip)
        if clip:  # keep eps consistent with the clipped x0 (as in the DDIM reference code)
            eps = (x - ab_t**0.5 * x0) / (1 - ab_t) ** 0.5
        sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
        x = ab_prev**0.5 * x0 + max(0.0, 1 - ab_prev - sigma**2) ** 0.5 * eps
        if sigma > 0 and j > 0:
            x = x + sigma * _randn(shape, generator, device)
    return x


def sample(model, sched: NoiseSchedule, shape: tuple, *, name: str, steps: int, eta: float,
           generator: torch.Generator, device, variance: str = "fixedlarge", clip: bool = True):
    if name == "ddim":
        return ddim_sample(model, sched, shape, steps=steps, generator=generator, device=device,
                           eta=eta, clip=clip)
    if name == "ddpm":
        return ddpm_sample(model, sched, shape, generator=generator, device=device,
                           variance=variance, clip=clip)
    raise ValueError(f"unknown sampler {name!r} (ddpm | ddim)")


def network_evals(name: str, steps: int, T: int) -> int:
    """Model evaluations per generated sample (for the FLOPs of evaluation)."""
    return T if name == "ddpm" else steps
