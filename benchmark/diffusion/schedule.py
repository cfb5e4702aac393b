"""Noise schedules of DDPM (Ho, Jain, Abbeel 2020, "Denoising Diffusion Probabilistic Models").

Forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with abar_t = prod_{s<=t}
(1 - beta_s). Timesteps are 0-based here: t = 0..T-1 is the paper's t = 1..T.

- linear: beta_t evenly spaced from beta_start to beta_end (paper section 4: 1e-4..0.02, T=1000).
- cosine (Nichol & Dhariwal 2021, "Improved DDPM", eq. 17): abar(t) = f(t)/f(0) with
  f(t) = cos^2(((t/T) + s)/(1 + s) * pi/2), s = 0.008, betas clipped at 0.999.

All tables are float64 on the CPU (built once) and copied to the device as float32.
"""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """Closed-form tables of a beta schedule. `betas`: (T,) float64."""

    def __init__(self, betas: torch.Tensor):
        b = betas.to(torch.float64)
        if b.ndim != 1 or not bool(((b > 0) & (b < 1)).all()):
            raise ValueError("betas must be a 1-d tensor in (0, 1)")
        self.T = len(b)
        self.betas = b
        self.alphas = 1.0 - b
        self.alpha_bar = torch.cumprod(self.alphas, 0)
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        # q(x_{t-1} | x_t, x_0) = N(c1 x_0 + c2 x_t, beta~_t I)  (Ho et al. eq. 6-7)
        self.posterior_variance = b * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)
        self.posterior_coef_x0 = b * self.alpha_bar_prev.sqrt() / (1 - self.alpha_bar)
        self.posterior_coef_xt = (1 - self.alpha_bar_prev) * self.alphas.sqrt() / (1 - self.alpha_bar)
        self._dev: dict = {}

    def table(self, name: str, device) -> torch.Tensor:
        """A float32 copy of one table on `device` (cached)."""
        key = (name, str(device))
        if key not in self._dev:
            self._dev[key] = getattr(self, name).to(device=device, dtype=torch.float32)
        return self._dev[key]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. x0, noise: (B, ...); t: (B,) int64."""
        ab = self.table("alpha_bar", x0.device)[t].view(-1, *([1] * (x0.ndim - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    return torch.tensor([min(1 - f(i + 1) / f(i), max_beta) for i in range(T)], dtype=torch.float64)


def make_schedule(name: str = "linear", T: int = 1000, beta_start: float = 1e-4,
                  beta_end: float = 0.02, cosine_s: float = 0.008) -> NoiseSchedule:
    if name == "linear":
        return NoiseSchedule(linear_betas(T, beta_start, beta_end))
    if name == "cosine":
        return NoiseSchedule(cosine_betas(T, cosine_s))
    raise ValueError(f"unknown schedule {name!r} (linear | cosine)")
