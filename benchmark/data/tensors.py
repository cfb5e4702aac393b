"""In-memory classification data: uint8 NCHW tensors, augmented as tensors in batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from .split import make_splits


@dataclass
class Split:
    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class ClassificationData:
    train: Split
    holdout: Split
    test: Split
    num_classes: int
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    info: dict = field(default_factory=dict)
    streaming: bool = False


def from_arrays(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                classes: list[str], cfg, info: dict | None = None) -> ClassificationData:
    """Split by the data seed and wrap. *_x: uint8 (N, H, W, C) or (N, C, H, W)."""
    if train_x.ndim != 4:
        raise DataError(f"expected 4-d image arrays, got shape {train_x.shape}")
    if train_x.shape[-1] in (1, 3):
        train_x = train_x.transpose(0, 3, 1, 2)
        test_x = test_x.transpose(0, 3, 1, 2)
    try:
        idx = make_splits(np.asarray(train_y), np.asarray(test_y), holdout=cfg.holdout,
                          train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                          data_seed=cfg.data_seed)
    except ValueError as e:
        raise DataError(f"cannot carve splits from {len(train_y)} train / {len(test_y)} test images: {e}") from None
    tx, ty = torch.from_numpy(np.ascontiguousarray(train_x)), torch.as_tensor(np.asarray(train_y), dtype=torch.int64)
    vx, vy = torch.from_numpy(np.ascontiguousarray(test_x)), torch.as_tensor(np.asarray(test_y), dtype=torch.int64)
    t, h, s = (torch.as_tensor(idx[k]) for k in ("train", "holdout", "test"))
    train = Split(tx[t].contiguous(), ty[t])
    # normalisation statistics from the training split only
    xf = train.x.float().div_(255)
    mean = tuple(float(v) for v in xf.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in xf.std(dim=(0, 2, 3)))
    del xf
    info = dict(info or {})
    info.update(n_train=len(t), n_holdout=len(h), n_test=len(s))
    return ClassificationData(train=train, holdout=Split(tx[h].contiguous(), ty[h]),
                              test=Split(vx[s].contiguous(), vy[s]), num_classes=len(classes),
                              classes=list(classes), mean=mean, std=std, info=info)


def augment(x: torch.Tensor, gen: torch.Generator, padding: int, hflip: bool) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip, for a whole uint8 batch at once.

    x: (B, C, H, W) on any device; `gen` is a CPU generator so the draws are identical on
    every device (pairing and exact resume depend on it).
    """
    return apply_augment(x, augment_draws(len(x), gen, padding, hflip).to(x.device), padding, hflip)


def augment_draws(b: int, gen: torch.Generator, padding: int, hflip: bool) -> torch.Tensor:
    """The random draws of `augment` for a batch of b: int64 (3, B) = crop x/y offsets in
    [0, 2*padding] and the flip flag. Drawn on the CPU, so a whole epoch's draws can be made
    up front and copied to the device in one transfer (no host-device sync per step)."""
    out = torch.zeros(3, b, dtype=torch.int64)
    if padding:
        out[0] = torch.randint(0, 2 * padding + 1, (b,), generator=gen)
        out[1] = torch.randint(0, 2 * padding + 1, (b,), generator=gen)
    if hflip:
        out[2] = (torch.rand(b, generator=gen) < 0.5).long()
    return out


def reflect_index(n: int, pad: int, device=None) -> torch.Tensor:
    """Source index of each position of a reflect-padded axis: n=4, pad=2 -> 2 1 0 1 2 3 2 1."""
    i = torch.arange(-pad, n + pad, device=device).abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def apply_augment(x: torch.Tensor, draws: torch.Tensor, padding: int, hflip: bool,
                  pad_mode: str = "zero") -> torch.Tensor:
    """Apply `augment_draws` (already on x's device) to x: (B, C, H, W) uint8. pad_mode "zero"
    or "reflect" (by indexing, exact on uint8; works for any dtype)."""
    b, _, h, w = x.shape
    if padding:
        if pad_mode == "reflect":
            padded = x[:, :, reflect_index(h, padding, x.device)][:, :, :, reflect_index(w, padding, x.device)]
        else:
            padded = torch.nn.functional.pad(x, (padding,) * 4)
        # gather crops with one advanced-indexing op: rows (B,H,1), cols (B,1,W)
        rows = draws[1][:, None] + torch.arange(h, device=x.device)[None, :]
        cols = draws[0][:, None] + torch.arange(w, device=x.device)[None, :]
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if hflip:
        x = torch.where(draws[2].bool()[:, None, None, None], x.flip(3), x)
    return x.contiguous()
