"""Classification distillation terms (the interface: distill/losses.py). Each returns the
unweighted term; the task mixes it with its cross-entropy CE(z_s, y) (label smoothing
included) as (1 - a) * CE + a * term, a = alpha * w (distill.losses.combine).

kd (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network"):
    term = T^2 * KL(softmax(z_t / T) || softmax(z_s / T))
The T^2 factor keeps the soft term's gradient magnitude comparable across temperatures.

tfkd_reg (Yuan et al., CVPR 2020, "Revisiting Knowledge Distillation via Label Smoothing
Regularization", Tf-KD_reg, as published and as in the authors' released code): a hand-designed
"teacher" p_d with probability `correct_prob` (released code: 0.99) on the true class and
(1 - correct_prob)/(K - 1) elsewhere, softened as softmax(p_d / T) (the *target* is softened, the
probabilities themselves divided by T), against the student's plain log_softmax(z_s) (no T on the
student), with PyTorch's KLDivLoss default reduction (the mean over all B*K elements, not over
the batch) times `multiplier`, and no T^2 factor:
    term = multiplier * mean_{b,k} q_k (log q_k - log softmax(z_s)_k),   q = softmax(p_d / T).
The released CIFAR-100 ResNet-18 setting is a = 0.1, T = 20, multiplier = 100 (the defaults of
its options model, distill/options.py).

tfkd (kept under its old name so that committed runs stay readable; NOT Yuan et al.'s method):
KL towards the same kind of hand-made distribution (`tfkd_a` on the true class) but with the
*student* softened by T and a T^2 factor, as in Hinton KD. Its soft-term gradient grows with T
(a confidence-sharpening term at T = 4), so it is a different regulariser than Tf-KD_reg.

All are per-batch means. tfkd and tfkd_reg are teacher-free (registered needs_teacher=False):
they read only the student's logits and the labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import Outputs, TemperatureLoss


def kl_soft(student_logits: torch.Tensor, target_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(p_target || softmax(z_s / T)), averaged over the batch. Shapes (B, K)."""
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, target_probs.float(), reduction="batchmean")
    return kl * temperature**2


def tfkd_target(targets: torch.Tensor, num_classes: int, a: float) -> torch.Tensor:
    """(B, K) distribution: `a` on the true class, (1-a)/(K-1) elsewhere."""
    off = (1 - a) / (num_classes - 1)
    p = torch.full((targets.shape[0], num_classes), off, device=targets.device)
    p.scatter_(1, targets[:, None], a)
    return p


def tfkd_reg_soft(student_logits: torch.Tensor, targets: torch.Tensor, *, temperature: float,
                  correct_prob: float, multiplier: float) -> torch.Tensor:
    """multiplier * mean over (B, K) of KL terms q (log q - log softmax(z_s)), q = softmax(p_d / T)."""
    p_d = tfkd_target(targets, student_logits.shape[1], correct_prob)
    q = F.softmax(p_d / temperature, dim=1)
    log_p_s = F.log_softmax(student_logits.float(), dim=1)
    # KLDivLoss's "mean" reduction (the released code's) = sum over all B*K terms / (B*K); spelled
    # out because torch announces that "mean" will change to mean "batchmean".
    return F.kl_div(log_p_s, q, reduction="sum") / q.numel() * multiplier


class KD(TemperatureLoss):
    """Hinton KD: T^2 * KL(softmax(z_t / T) || softmax(z_s / T)). Needs the teacher's logits."""

    def __call__(self, out: Outputs) -> torch.Tensor:
        p_t = F.softmax(out.teacher.float() / self.temperature, dim=1)
        return kl_soft(out.student, p_t, self.temperature)


class TfKD(TemperatureLoss):
    """The repository's teacher-free variant (module docstring): T^2 * KL(p_a || softmax(z_s / T)),
    p_a = `tfkd_a` on the true class (distill.tfkd_a)."""

    def __init__(self, *, temperature: float, tfkd_a: float):
        super().__init__(temperature=temperature)
        self.tfkd_a = tfkd_a

    @classmethod
    def from_config(cls, distill, options):
        return cls(temperature=distill.temperature, tfkd_a=distill.tfkd_a, **options)

    def __call__(self, out: Outputs) -> torch.Tensor:
        p = tfkd_target(out.targets, out.student.shape[1], self.tfkd_a)
        return kl_soft(out.student, p, self.temperature)


class TfKDReg(TemperatureLoss):
    """Tf-KD_reg (Yuan et al. 2020) as published (module docstring); options from distill.kwargs."""

    def __init__(self, *, temperature: float, correct_prob: float, multiplier: float):
        super().__init__(temperature=temperature)
        self.correct_prob = correct_prob
        self.multiplier = multiplier

    def __call__(self, out: Outputs) -> torch.Tensor:
        return tfkd_reg_soft(out.student, out.targets, temperature=self.temperature,
                             correct_prob=self.correct_prob, multiplier=self.multiplier)
