"""A built-in 10-class 32x32 RGB dataset drawn procedurally, so the quickstart needs no
download. Each class is a shape (disk, square, triangle, ring, cross, bar, pair of dots,
half-disk, hollow square, crescent), drawn at a random rotation, scale and position, in a
colour scattered around its class's hue (a partial cue), over a textured, noisy background
with a random distractor blob. A tiny CNN picks up the colour cue early; separating the
shapes takes a deeper network longer. Deterministic given the seed.
"""

from __future__ import annotations

import numpy as np

from .tensors import from_arrays

CLASSES = ["disk", "square", "triangle", "ring", "cross", "bar", "pair", "halfdisk",
           "hollow_square", "crescent"]


def _masks(cls: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape membership in local coordinates. cls: (N,), u/v: (N, H, W) -> bool (N, H, W)."""
    r = np.sqrt(u**2 + v**2)
    m = np.max(np.stack([np.abs(u), np.abs(v)]), axis=0)
    shapes = [
        r < 1,
        m < 0.85,
        (v > -0.5) & (v < 1 - 0.0) & (np.abs(u) < (1 - v) * 0.58) ,
        (r < 1) & (r > 0.6),
        ((np.abs(u) < 0.3) & (np.abs(v) < 1)) | ((np.abs(v) < 0.3) & (np.abs(u) < 1)),
        (np.abs(u) < 1) & (np.abs(v) < 0.28),
        (np.sqrt((u - 0.55) ** 2 + v**2) < 0.4) | (np.sqrt((u + 0.55) ** 2 + v**2) < 0.4),
        (r < 1) & (v > 0),
        (m < 0.9) & (m > 0.55),
        (r < 1) & (np.sqrt((u - 0.45) ** 2 + v**2) > 0.75),
    ]
    out = np.zeros(u.shape, dtype=bool)
    for k, s in enumerate(shapes):
        sel = cls == k
        out[sel] = s[sel]
    return out


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) hue/saturation/value in [0, 1] -> (N, 3) RGB (the standard hexcone formula)."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(x, -1) for x in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table[i, np.arange(len(h))]


def generate(n: int, seed: int, size: int = 32, noise: float = 0.04,
             contrast: float = 0.2, hue_noise: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 images and (n,) int64 labels, balanced over 10 classes.

    `noise`: std of additive Gaussian pixel noise (on [0, 1]); `contrast`: how far the two
    background texture colours may differ per channel; `hue_noise`: spread of each class's
    foreground hue around its prototype (larger: colour is a weaker cue). They set the
    difficulty."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    y = np.arange(n) % 10
    rng.shuffle(y)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    g = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    gy, gx = np.meshgrid(g, g, indexing="ij")
    for lo in range(0, n, 2048):  # chunks bound the memory of the float intermediates
        c = y[lo:lo + 2048]
        b = len(c)
        ang = rng.uniform(0, 2 * np.pi, b)[:, None, None]
        scale = rng.uniform(0.45, 0.7, b)[:, None, None]
        cx = rng.uniform(-0.3, 0.3, b)[:, None, None]
        cy = rng.uniform(-0.3, 0.3, b)[:, None, None]
        dx, dy = gx[None] - cx, gy[None] - cy
        u = (np.cos(ang) * dx + np.sin(ang) * dy) / scale
        v = (-np.sin(ang) * dx + np.cos(ang) * dy) / scale
        mask = _masks(c, u, v)
        # background: two random colours blended by a random-frequency sinusoidal texture
        bg1 = rng.uniform(0, 1, (b, 1, 1, 3))
        bg2 = np.clip(bg1 + rng.uniform(-contrast, contrast, (b, 1, 1, 3)), 0, 1)
        f = rng.uniform(1, 6, (b, 1, 1, 2))
        ph = rng.uniform(0, 2 * np.pi, (b, 1, 1, 1))
        tex = 0.5 + 0.5 * np.sin(np.pi * (f[..., :1] * gx[None, ..., None] + f[..., 1:] * gy[None, ..., None]) + ph)
        img = bg1 * tex + bg2 * (1 - tex)
        # foreground colour kept away from the background mean so the shape is visible
        # foreground hue: a per-class prototype plus noise, so colour is a partial cue a
        # small network picks up early and shape is what separates the rest
        hue = (c / 10 + rng.normal(0, hue_noise, b)) % 1.0
        fg = _hsv_to_rgb(hue, rng.uniform(0.6, 1.0, b), rng.uniform(0.6, 1.0, b))[:, None, None, :]
        shade = 0.8 + 0.2 * np.sin(3 * u + rng.uniform(0, 6, (b, 1, 1)))[..., None]
        img = np.where(mask[..., None], fg * shade, img)
        # distractor blob of a random colour
        bx, by = rng.uniform(-1, 1, (2, b, 1, 1))
        blob = (gx[None] - bx) ** 2 + (gy[None] - by) ** 2 < rng.uniform(0.002, 0.015, (b, 1, 1))
        img = np.where(blob[..., None], rng.uniform(0, 1, (b, 1, 1, 3)), img)
        img = img + rng.normal(0, noise, img.shape)
        out[lo:lo + b] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out, y.astype(np.int64)


def load(cfg):
    """kwargs: train (default 10000), test (2000), size (32), noise (0.04), contrast (0.2),
    hue_noise (0.06)."""
    kw = {"train": 10000, "test": 2000, "size": 32, "noise": 0.04, "contrast": 0.2, "hue_noise": 0.06,
          **cfg.kwargs}
    unknown = set(kw) - {"train", "test", "size", "noise", "contrast", "hue_noise"}
    if unknown:
        from ..errors import DataError

        raise DataError(f"synthetic: unknown data.kwargs {sorted(unknown)}")
    look = (int(kw["size"]), float(kw["noise"]), float(kw["contrast"]), float(kw["hue_noise"]))
    # train and test come from disjoint streams of the same generator family
    trx, try_ = _cached(int(kw["train"]), cfg.data_seed * 2 + 1, *look)
    tex, tey = _cached(int(kw["test"]), cfg.data_seed * 2 + 2, *look)
    return from_arrays(trx, try_, tex, tey, CLASSES, cfg, info={"source": "synthetic", **kw})


GENERATOR_VERSION = 3  # bump when the drawing code changes, so caches are not reused


def _cached(n: int, seed: int, size: int, noise: float, contrast: float,
            hue_noise: float) -> tuple[np.ndarray, np.ndarray]:
    import os

    from .cache import cache_dir

    f = cache_dir() / f"synthetic-v{GENERATOR_VERSION}-{n}-{seed}-{size}-{noise}-{contrast}-{hue_noise}.npz"
    if f.is_file():
        try:
            with np.load(f) as z:
                return z["x"], z["y"]
        except Exception:
            pass  # torn cache file: regenerate
    x, y = generate(n, seed, size, noise, contrast, hue_noise)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y)
    os.replace(tmp, f)
    return x, y
