"""Logit matching (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?"): the student
regresses the teacher's logits. The term this loss returns is

    term = scale * mean_{b,k} (z_s - z_t)^2,

with z optionally centred per sample (softmax ignores a shift of the logits, so only the
centred logits carry what the teacher knows). w2s-bench mixes it with the task's own loss
(classification: L = (1 - a) * CE + a * term, a = alpha * the switch/ramp weight); the loss
never sees the weights, and `temperature` plays no part here.

The interface (benchmark/distill/losses.py): the registered target is a class built by
`from_config(distill, options)` -- by default `cls(**options)`, with `options` the suite's
`distill.kwargs` validated by LogitMSEOptions (defaults filled in) -- and called on
`Outputs(student, teacher, targets)`: classification passes logits (B, K), the teacher's
logits (B, K) and labels (B,); it returns a scalar tensor (recorded as part "kd").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.distill.losses import DistillLoss, Outputs


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, center: bool) -> torch.Tensor:
    """mean over (B, K) of (z_s - z_t)^2, each row centred first if `center`."""
    zs, zt = student_logits.float(), teacher_logits.float()
    if center:
        zs = zs - zs.mean(dim=1, keepdim=True)
        zt = zt - zt.mean(dim=1, keepdim=True)
    return F.mse_loss(zs, zt)


class LogitMSE(DistillLoss):
    def __init__(self, *, scale: float = 1.0, center: bool = True):
        self.scale = scale
        self.center = center

    def __call__(self, out: Outputs) -> torch.Tensor:
        return self.scale * logit_mse(out.student, out.teacher, center=self.center)
