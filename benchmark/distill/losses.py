"""Classification distillation losses.

kd (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network"):
    L = (1 - a) * CE(z_s, y) + a * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))
The T^2 factor keeps the soft term's gradient magnitude comparable across temperatures.

tfkd (Yuan et al., CVPR 2020, "Revisiting Knowledge Distillation via Label Smoothing
Regularization", Tf-KD_reg): the teacher's distribution is replaced by a hand-made one,
probability `tfkd_a` on the true class and (1 - tfkd_a)/(K - 1) on every other class; the
same weighted, temperature-scaled KL is applied to it.

Both return per-batch means. `weight` in [0, 1] scales `a` (the switch/ramp schedule):
weight 0 gives plain cross-entropy and the teacher is not needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_soft(student_logits: torch.Tensor, target_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(p_target || softmax(z_s / T)), averaged over the batch. Shapes (B, K)."""
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, target_probs.float(), reduction="batchmean")
    return kl * temperature**2


def kd_loss(student_logits, targets, teacher_logits, *, alpha: float, temperature: float,
            weight: float = 1.0, label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict]:
    ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
    a = alpha * weight
    if a == 0:
        return ce, {"ce": ce.detach()}
    p_t = F.softmax(teacher_logits.float() / temperature, dim=1)
    soft = kl_soft(student_logits, p_t, temperature)
    return (1 - a) * ce + a * soft, {"ce": ce.detach(), "kd": soft.detach()}


def tfkd_target(targets: torch.Tensor, num_classes: int, a: float) -> torch.Tensor:
    """(B, K) distribution: `a` on the true class, (1-a)/(K-1) elsewhere."""
    off = (1 - a) / (num_classes - 1)
    p = torch.full((targets.shape[0], num_classes), off, device=targets.device)
    p.scatter_(1, targets[:, None], a)
    return p


def tfkd_loss(student_logits, targets, teacher_logits=None, *, alpha: float, temperature: float,
              weight: float = 1.0, label_smoothing: float = 0.0, tfkd_a: float = 0.9) -> tuple[torch.Tensor, dict]:
    ce = F.cross_entropy(student_logits.float(), targets, label_smoothing=label_smoothing)
    a = alpha * weight
    if a == 0:
        return ce, {"ce": ce.detach()}
    p = tfkd_target(targets, student_logits.shape[1], tfkd_a)
    soft = kl_soft(student_logits, p, temperature)
    return (1 - a) * ce + a * soft, {"ce": ce.detach(), "kd": soft.detach()}
