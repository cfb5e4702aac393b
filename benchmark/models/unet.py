"""The DDPM UNet (Ho et al. 2020, appendix B), a PyTorch port of the official TF model.

Defaults reproduce the CIFAR-10 model: base channels 128, multipliers (1, 2, 2, 2), two
residual blocks per resolution, self-attention at 16x16, dropout 0.1, GroupNorm(32),
sinusoidal timestep embedding -> MLP (4*ch) added in every residual block: 35.7M parameters.
As in the official code, the last conv of each residual block, the attention output
projection and the output conv start at (near) zero, so the initial network predicts eps ~ 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017, as in the DDPM code). t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def _groups(channels: int, groups: int) -> int:
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


def norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(_groups(channels, groups), channels, eps=1e-6)


def _zero(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb, cout)
        self.norm2 = norm(cout, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H*W positions (the DDPM code's attn block)."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.norm = norm(ch, groups)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None],
                                             v.transpose(1, 2)[:, None])[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class Down(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x):
        # the TF code pads (0, 1) on each spatial axis before a stride-2 valid conv
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Up(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, *, image_size: int = 32, in_channels: int = 3, ch: int = 128,
                 ch_mult: tuple[int, ...] = (1, 2, 2, 2), num_res_blocks: int = 2,
                 attn_resolutions: tuple[int, ...] = (16,), dropout: float = 0.1,
                 norm_groups: int = 32):
        super().__init__()
        if image_size % (2 ** (len(ch_mult) - 1)):
            raise ValueError(f"image_size {image_size} is not divisible by 2^{len(ch_mult) - 1} "
                             f"(one halving per extra entry of ch_mult {list(ch_mult)})")
        self.ch = ch
        temb = 4 * ch
        g = norm_groups
        self.temb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        cur, res = ch, image_size
        for level, m in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                blk = nn.ModuleList([ResBlock(cur, ch * m, temb, dropout, g)])
                cur = ch * m
                if res in attn_resolutions:
                    blk.append(AttnBlock(cur, g))
                self.down.append(blk)
                skips.append(cur)
            if level != len(ch_mult) - 1:
                self.down.append(nn.ModuleList([Down(cur)]))
                skips.append(cur)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(cur, cur, temb, dropout, g), AttnBlock(cur, g),
                                  ResBlock(cur, cur, temb, dropout, g)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                blk = nn.ModuleList([ResBlock(cur + skips.pop(), ch * m, temb, dropout, g)])
                cur = ch * m
                if res in attn_resolutions:
                    blk.append(AttnBlock(cur, g))
                self.up.append(blk)
            if level != 0:
                self.up.append(nn.ModuleList([Up(cur)]))
                res *= 2
        self.out = nn.Sequential(norm(cur, g), nn.SiLU(), _zero(nn.Conv2d(cur, in_channels, 3, padding=1)))

    @staticmethod
    def _run(blk: nn.ModuleList, h, temb):
        for layer in blk:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) noisy images in [-1, 1] scale; t: (B,) int64 -> predicted eps."""
        temb = self.temb(timestep_embedding(t, self.ch))
        h = self.conv_in(x)
        hs = [h]
        for blk in self.down:
            h = self._run(blk, h, temb)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(blk, h, temb)
        return self.out(h)


def unet(*, image_size: int = 32, in_channels: int = 3, ch: int = 128, ch_mult=(1, 2, 2, 2),
         num_res_blocks: int = 2, attn_resolutions=(16,), dropout: float = 0.1,
         norm_groups: int = 32) -> UNet:
    """Registry factory (lists from YAML become tuples)."""
    return UNet(image_size=image_size, in_channels=in_channels, ch=ch, ch_mult=tuple(ch_mult),
                num_res_blocks=num_res_blocks, attn_resolutions=tuple(attn_resolutions),
                dropout=dropout, norm_groups=norm_groups)
