"""Epsilon-matching distillation for DDPM students (the interface: distill/losses.py).

On the same (x_t, t, eps) the student predicts eps_s and the frozen teacher eps_t; the term is

    kd = ||eps_s - sg(eps_t)||^2

the mean squared error over every element, sg the stop-gradient. The task's own loss is DDPM's
L_simple = ||eps_s - eps||^2 (Ho et al. 2020 eq. 14), and distill.losses.combine mixes them:

    lambda form (distill.beta = lambda):  L = L_simple + w*lambda*kd
    alpha mix   (distill.beta = null):    L = (1 - a)*L_simple + a*kd,   a = w*alpha

with w in [0, 1] the switch/ramp weight. With w = 0 the loss is plain L_simple and the
teacher is not run.
"""

from __future__ import annotations

import torch

from .losses import DistillLoss, Outputs


class EpsDistill(DistillLoss):
    """||eps_s - sg(eps_t)||^2: student and teacher outputs are predicted noise (B, C, H, W)."""

    def __call__(self, out: Outputs) -> torch.Tensor:
        return (out.student.float() - out.teacher.detach().float()).pow(2).mean()
