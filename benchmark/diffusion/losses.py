"""Epsilon-matching distillation for DDPM students.

On the same (x_t, t, eps) the student predicts eps_s and the frozen teacher eps_t:

    lambda form (distill.beta = lambda):  L = ||eps_s - eps||^2 + w*lambda*||eps_s - sg(eps_t)||^2
    alpha mix   (distill.beta = null):    L = (1 - a)*||eps_s - eps||^2 + a*||eps_s - sg(eps_t)||^2,
                                          a = w*alpha

where ||.||^2 is the mean squared error over every element (DDPM's L_simple, Ho et al. 2020
eq. 14), sg is stop-gradient and w in [0, 1] is the switch/ramp weight. With w = 0 the loss
is plain L_simple and the teacher is not needed (nor run).
"""

from __future__ import annotations

import torch


def eps_distill_loss(eps_s: torch.Tensor, eps: torch.Tensor, eps_t: torch.Tensor | None, *,
                     alpha: float, beta: float | None, weight: float) -> tuple[torch.Tensor, dict]:
    mse = (eps_s.float() - eps.float()).pow(2).mean()
    if weight == 0 or eps_t is None or (beta is None and alpha == 0) or beta == 0:
        return mse, {"mse": mse.detach()}
    kd = (eps_s.float() - eps_t.detach().float()).pow(2).mean()
    if beta is not None:
        loss = mse + weight * beta * kd
    else:
        a = alpha * weight
        loss = (1 - a) * mse + a * kd
    return loss, {"mse": mse.detach(), "kd": kd.detach()}
