"""airbench94: the network of K. Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU"
(arXiv 2404.00498; public code in the `cifar10-airbench` repository), written here
from the paper's description.

    x (3 x 32 x 32, normalised)
    -> whitening conv k x k, 3 -> 2*3*k*k (k = 2: 24 channels), bias, no padding; weights set
       by `init_whitening` from training patches and frozen -> GELU
    -> 3 groups, widths 64 / 256 / 256 by default, each
       conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU
    -> maxpool 3 -> flatten -> linear (no bias) -> logits * 1/9

BatchNorm: eps 1e-12, PyTorch momentum 0.4 (the published code's "0.6" is 1 - PyTorch's
momentum), weight fixed at 1 (requires_grad False), bias learned. Every conv is initialised
by PyTorch's default and then its first `in_channels` filters are set to the identity (dirac):
an implicit residual path at initialisation. The default net has 1,972,792 parameters
(1,971,352 trainable: the frozen ones are the 288 whitening weights and the 1,152 BN weights),
i.e. ~1.97M: computed from the layer list, which matches the public airbench94.py's make_net
(tests/test_airbench.py checks the count).

`forward` raises until `init_whitening` has run (or a checkpoint of a whitened net is loaded):
an unwhitened net would train silently to a worse accuracy. `Airbench.init_from_data(images)`
is the same call, as a model-init hook a training loop can look for.

What the training recipe adds (decoupled SGD, 64x lr on BN biases, whitening-bias freezing,
lookahead, alternating flip, TTA) lives in the training code, not in the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..errors import UserError

# Defaults of the published airbench94 (the paper and its airbench94.py).
WIDTHS = (64, 256, 256)
LOGIT_SCALE = 1 / 9
BN_MOMENTUM = 0.4  # PyTorch convention: running = (1 - m) * running + m * batch
BN_EPS = 1e-12
WHITEN_EPS = 5e-4  # added to each eigenvalue before the 1/sqrt scaling (as published)


class FixedScaleBN(nn.BatchNorm2d):
    """BatchNorm whose scale stays at 1 (not trained); only the shift (bias) is learned."""

    def __init__(self, channels: int, momentum: float, eps: float):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


class DiracConv(nn.Conv2d):
    """Conv without bias (unless asked) whose first `in_channels` filters start as identity."""

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        w = self.weight
        # dirac_ on the first min(out, in) filters: output channel i copies input channel i
        # (the kernel's centre tap); the remaining filters keep PyTorch's default init.
        with torch.no_grad():
            nn.init.dirac_(w[: min(w.shape[0], w.shape[1])])


class ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int, bn_momentum: float, bn_eps: float):
        super().__init__()
        self.conv1 = DiracConv(cin, cout, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FixedScaleBN(cout, bn_momentum, bn_eps)
        self.conv2 = DiracConv(cout, cout, 3, padding="same", bias=False)
        self.norm2 = FixedScaleBN(cout, bn_momentum, bn_eps)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Airbench(nn.Module):
    """The airbench94 network; see the module docstring for the layer list."""

    def __init__(self, num_classes: int, widths: Sequence[int], whiten_kernel: int,
                 logit_scale: float, bn_momentum: float, bn_eps: float):
        super().__init__()
        k = whiten_kernel
        # 2 * (3 k^2): one filter per eigenvector of the 3k^2-dim patch covariance, and its
        # negative (so GELU passes both signs of every whitened component)
        self.whiten = DiracConv(3, 2 * 3 * k * k, k, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        groups, cin = [], self.whiten.out_channels
        for w in widths:
            groups.append(ConvGroup(cin, w, bn_momentum, bn_eps))
            cin = w
        self.groups = nn.Sequential(*groups)
        self.pool = nn.MaxPool2d(3)
        self.head = nn.Linear(cin, num_classes, bias=False)
        self.logit_scale = float(logit_scale)
        # Without `init_whitening` the frozen first layer is an arbitrary projection and the
        # net trains, silently, to a worse accuracy: forward refuses until it has been run.
        # The flag persists in checkpoints as a buffer; forward reads a Python copy (no device
        # sync, no graph break under torch.compile), refreshed on load_state_dict.
        self.register_buffer("whitened", torch.zeros((), dtype=torch.bool))
        self._whitened = False
        self.register_load_state_dict_post_hook(_sync_whitened_flag)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.act(self.whiten(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._whitened:
            raise UserError("airbench94: the whitening layer is not initialised; call "
                            "init_whitening(model, training_images) (the data-init hook) or "
                            "load a trained checkpoint first")
        return self.head(self.features(x)) * self.logit_scale

    def init_from_data(self, images: torch.Tensor) -> torch.Tensor:
        """Model-init hook: whiten from normalised training images (see `init_whitening`)."""
        return init_whitening(self, images)


def airbench94(num_classes: int = 10, widths: Sequence[int] = WIDTHS, whiten_kernel: int = 2,
               logit_scale: float = LOGIT_SCALE, bn_momentum: float = BN_MOMENTUM,
               bn_eps: float = BN_EPS) -> Airbench:
    """The registered factory (`student: {name: airbench94, kwargs: {...}}`); defaults = the
    published net. widths: channels of the three conv groups; logit_scale multiplies the logits;
    bn_momentum in PyTorch's convention."""
    problems = airbench94_problems(num_classes, widths, whiten_kernel, logit_scale, bn_momentum,
                                   bn_eps)
    if problems:
        raise UserError("airbench94: " + "; ".join(problems))
    return Airbench(num_classes, tuple(widths), whiten_kernel, logit_scale, bn_momentum, bn_eps)


def airbench94_problems(num_classes: int = 10, widths: Sequence[int] = WIDTHS,
                        whiten_kernel: int = 2, logit_scale: float = LOGIT_SCALE,
                        bn_momentum: float = BN_MOMENTUM, bn_eps: float = BN_EPS) -> list[str]:
    """Every problem with airbench94's options, without building it (read by `validate --deep`
    through the factory's `check_options` attribute)."""
    problems = []
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) != 3 \
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        problems.append(f"widths must be a list of 3 positive integers, got {widths!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        problems.append(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if not isinstance(whiten_kernel, int) or isinstance(whiten_kernel, bool) or whiten_kernel < 1:
        problems.append(f"whiten_kernel must be a positive integer, got {whiten_kernel!r}")
    for name, v, lo, hi in (("logit_scale", logit_scale, 0.0, math.inf),
                            ("bn_momentum", bn_momentum, 0.0, 1.0), ("bn_eps", bn_eps, 0.0, 1.0)):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo < v and (v <= hi)
        if not ok or not math.isfinite(float(v)):
            problems.append(f"{name} must be a number in ({lo:g}, {hi:g}], got {v!r}")
    return problems


airbench94.check_options = airbench94_problems


def _sync_whitened_flag(module: Airbench, _incompatible) -> None:
    module._whitened = bool(module.whitened)


# ----------------------------------------------------------------- whitening init
def patch_moment(images: torch.Tensor, kernel: int, chunk: int = 256) -> tuple[torch.Tensor, int]:
    """Second moment E[p p^T] of every k x k patch (stride 1, no padding) of `images`.

    images: float (N, C, H, W). Returns (C*k*k, C*k*k) float64 and the number of patches,
    N*(H-k+1)*(W-k+1). Patches are flattened in (channel, row, col) order, the layout of a
    conv weight (out, C, k, k), so an eigenvector reshapes straight into a filter.
    Accumulated in float64 over chunks of images (5,000 CIFAR images give 4.8M patches).
    """
    c = images.shape[1]
    d = c * kernel * kernel
    acc = torch.zeros(d, d, dtype=torch.float64, device=images.device)
    n = 0
    for lo in range(0, len(images), chunk):
        x = images[lo:lo + chunk].double()
        # (B, C, H', W', k, k) -> (B, H', W', C, k, k) -> (B*H'*W', C*k*k)
        p = x.unfold(2, kernel, 1).unfold(3, kernel, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, d)
        acc += p.T @ p
        n += p.shape[0]
    return acc / n, n


@torch.no_grad()
def init_whitening(model: Airbench, images: torch.Tensor, eps: float = WHITEN_EPS) -> torch.Tensor:
    """Set the whitening conv from the patch statistics of (normalised) training images and
    freeze its weights (as published). Returns the eigenvalues, descending.

    With Sigma = E[p p^T] = V diag(lam) V^T over all k x k patches p, filter i is
    v_i / sqrt(lam_i + eps) and filter i + 3k^2 is its negative. Output channel i is then
    v_i.p / sqrt(lam_i + eps), so the first 3k^2 channels have second moment
    V^T Sigma V / (lam + eps) = diag(lam_i / (lam_i + eps)): the identity up to eps/lam.
    As published, the moment is not centred: the images are normalised per channel, so the
    patch mean is ~0 and this is (almost exactly) the covariance.

    images: float (N, 3, H, W), normalised as the network sees them (the paper uses 5,000).
    """
    conv = getattr(model, "whiten", None)
    if not isinstance(conv, nn.Conv2d):
        raise UserError("init_whitening needs an airbench model (a `whiten` conv layer)")
    k = conv.kernel_size[0]
    c = conv.in_channels
    d = c * k * k
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != c:
        got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise UserError(f"init_whitening: images must be a (N, {c}, H, W) tensor, got {got}")
    if not images.is_floating_point():
        raise UserError("init_whitening: images must be float and normalised like the network's "
                        "input (got integer pixels)")
    if min(images.shape[2:]) < k:
        raise UserError(f"init_whitening: images smaller than the {k}x{k} whitening kernel")
    if conv.out_channels != 2 * d:
        raise UserError(f"init_whitening: the whitening conv has {conv.out_channels} filters, "
                        f"needs 2 * {d}")
    sigma, n = patch_moment(images, k)
    if n < d:
        raise UserError(f"init_whitening: {n} patches cannot estimate a {d}x{d} covariance")
    lam, vec = torch.linalg.eigh(sigma)  # ascending eigenvalues, eigenvectors in columns
    lam, vec = lam.flip(0), vec.flip(1)  # descending: channel 0 = largest-variance direction
    # eigh's sign of each eigenvector is arbitrary (LAPACK-dependent); fix it (largest-magnitude
    # entry positive) so the same images give the same filters on every machine.
    sign = torch.sign(vec.gather(0, vec.abs().argmax(0, keepdim=True)))
    vec = vec * sign
    filters = (vec.T / torch.sqrt(lam.clamp_min(0) + eps)[:, None]).reshape(d, c, k, k)
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight.dtype))
    conv.weight.requires_grad_(False)
    if isinstance(getattr(model, "whitened", None), torch.Tensor):
        model.whitened.fill_(True)
        model._whitened = True
    return lam.to(torch.float32)
