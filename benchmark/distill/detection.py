"""Distillation terms for detectors (the interface: distill/losses.py). Each returns the
unweighted scalar term; the task mixes it with the detector's own losses by
distill.losses.combine: det + w*beta*kd with distill.beta, else (1 - a) * det + a * kd, a = w*alpha.
Student and teacher outputs are DetectorOutputs; a loss that reads the class logits declares
"logits" in extra_outputs (the detector computes them only then).

pkd (Cao et al., NeurIPS 2022, "PKD: General Distillation Framework for Object Detectors via
Pearson Correlation Coefficient"): on every FPN level, standardise each channel of student
and teacher features over (batch, height, width) to zero mean and unit variance, then take
MSE / 2. With population statistics this equals 1 - r, r the Pearson correlation of the
channel, averaged over channels; levels are summed (as in the reference implementation,
mmrazor PKDLoss). Invariant to any per-channel positive affine rescaling of either side,
which is why it works across backbones of different magnitude. A teacher level of another
spatial size is resized to the student's (bilinear).

det_logit_kd: for dense detectors with identical anchors/points, per-anchor sigmoid KD on the
classification logits: T^2 * sum over classes of the binary KL between sigmoid(z_t / T) and
sigmoid(z_s / T), averaged over anchors and images. Binary KL = BCE(z_s/T, p_t) minus the
teacher's entropy, so its gradient is the BCE one and it is 0 when the logits agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError
from .losses import DistillLoss, Outputs, TemperatureLoss


@dataclass(frozen=True)
class DetectorOutputs:
    """One detector pass: FPN features (list of (N, C, H, W)) and, when a loss asked for
    "logits", the dense class logits (N, anchors, K) (else None)."""

    features: list[torch.Tensor]
    logits: torch.Tensor | None = None


def standardize(feat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(N, C, H, W) -> the same, each channel zero mean / unit population std over N, H, W."""
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    std = feat.var(dim=(0, 2, 3), keepdim=True, unbiased=False).add(eps).sqrt()
    return (feat - mean) / std


def pkd_loss(
    student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor], *, eps: float = 1e-6
) -> torch.Tensor:
    """Sum over FPN levels of mean-over-channels (1 - Pearson r). Lists of (N, C, H, W)."""
    if len(student_feats) != len(teacher_feats):
        raise UserError(
            f"pkd: student has {len(student_feats)} FPN levels, teacher {len(teacher_feats)}"
        )
    total = student_feats[0].new_zeros((), dtype=torch.float32)
    for s, t in zip(student_feats, teacher_feats):
        s, t = s.float(), t.float()
        if s.shape[1] != t.shape[1]:
            raise UserError(
                f"pkd: FPN widths differ (student {s.shape[1]}, teacher {t.shape[1]} channels); "
                "set the same fpn_channels on both models"
            )
        if s.shape[2:] != t.shape[2:]:
            t = F.interpolate(t, size=s.shape[2:], mode="bilinear", align_corners=False)
        total = total + F.mse_loss(standardize(s, eps), standardize(t, eps)) / 2
    return total


def logit_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """T^2 * mean over (images, anchors) of sum over classes of binary KL. Shapes (N, A, K)."""
    if student_logits.shape != teacher_logits.shape:
        raise UserError(
            f"det_logit_kd needs identical anchors and classes: student logits "
            f"{tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}"
        )
    T = temperature
    zs, zt = student_logits.float() / T, teacher_logits.float() / T
    p_t = torch.sigmoid(zt)
    bce = F.binary_cross_entropy_with_logits(zs, p_t, reduction="none")
    ent = F.binary_cross_entropy_with_logits(zt, p_t, reduction="none")
    return (bce - ent).sum(-1).mean() * T**2


class PKD(DistillLoss):
    """pkd_loss on the FPN features of student and teacher; `eps` from distill.kwargs."""

    def __init__(self, *, eps: float = 1e-6):
        self.eps = float(eps)

    def __call__(self, out: Outputs) -> torch.Tensor:
        return pkd_loss(out.student.features, out.teacher.features, eps=self.eps)


class DetLogitKD(TemperatureLoss):
    """logit_kd_loss on the dense class logits of student and teacher."""

    extra_outputs = frozenset({"logits"})

    def __call__(self, out: Outputs) -> torch.Tensor:
        return logit_kd_loss(out.student.logits, out.teacher.logits, temperature=self.temperature)
