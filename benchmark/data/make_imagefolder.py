"""Write a small ImageNet-shaped ImageFolder of real JPEGs, with no download.

    python -m benchmark.data.make_imagefolder --out data/imagenet-smoke
    python -m benchmark.data.make_imagefolder --out data/imagenet-smoke --from-cifar ../shared/datasets/cifar10

writes <out>/{train,val}/<class>/<n>.jpg: JPEGs of mixed sizes and aspect ratios (short side
160-375 px, aspect 1-1.6 in either orientation, long side at most 500 px), the shape of
ImageNet photos, so that `suites/imagenet-smoke.yaml` exercises the streaming loader
(decode, RandomResizedCrop, resize of every size to one) as `suites/imagenet.yaml` does.

Sources:
  * procedural (default): each class is a kind of object (disk, square, triangle, star,
    cross, ring), scattered 3-9 times at random sizes and rotations over a noisy gradient
    background with distractor lines. Object colours scatter around a hue of the class's own
    (a partial cue a small network picks up first; the shapes take a larger one longer), as
    in the built-in 32x32 `synthetic` set. Several instances per image keep the class visible
    in most RandomResizedCrop windows.
  * `--from-cifar DIR`: the first images of the first classes of a CIFAR-10 ImageFolder copy
    (`DIR/{train,test}/<class>/*`), upscaled (bicubic) to the same random sizes.

Deterministic: image k of (split, class) is drawn from a generator seeded by (seed, split,
class, k), and PIL's JPEG encoder is deterministic, so a given Pillow writes the same bytes.
Torch-free (numpy + Pillow). Never commit the output; write it under a git-ignored data root.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import sys
from pathlib import Path

import numpy as np

SHAPES = ["disk", "square", "triangle", "star", "cross", "ring"]
CLASS_HUES = [0.0, 0.2, 0.4, 0.6, 0.8, 0.1]  # fractions of the colour circle, one per shape
SPLITS = {"train": 0, "val": 1}


def image_size(rng: np.random.Generator, short: tuple[int, int] = (160, 375),
               max_aspect: float = 1.6, long_max: int = 500) -> tuple[int, int]:
    """(width, height): short side uniform in `short`, aspect log-uniform in [1, max_aspect],
    landscape or portrait with equal odds, long side capped at `long_max`."""
    s = int(rng.integers(short[0], short[1] + 1))
    ar = math.exp(rng.uniform(0.0, math.log(max_aspect)))
    long_side = min(long_max, int(round(s * ar)))
    return (long_side, s) if rng.random() < 0.5 else (s, long_side)


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius r centred at (cx, cy), rotated by `angle` (rad)."""
    if kind == "square":
        pts = [(math.cos(a), math.sin(a)) for a in (math.pi / 4 + k * math.pi / 2 for k in range(4))]
    elif kind == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    elif kind == "star":  # 5 points, inner radius 0.4 of the outer
        pts = [((1.0 if k % 2 == 0 else 0.4) * math.cos(a), (1.0 if k % 2 == 0 else 0.4) * math.sin(a))
               for k, a in enumerate(-math.pi / 2 + k * math.pi / 5 for k in range(10))]
    elif kind == "cross":  # a plus sign of arm half-width 0.3
        w = 0.3
        pts = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w), (-1, w),
               (-w, w), (-w, 1)]
    else:
        raise ValueError(kind)
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def draw_scene(kind: str, size: tuple[int, int], rng: np.random.Generator):
    """One procedural image (PIL RGB) of class `kind` at `size` = (width, height)."""
    from PIL import Image, ImageDraw

    w, h = size
    # background: a linear gradient between two random colours along a random direction,
    # plus Gaussian pixel noise (std 12 of 255) so JPEG has texture to code
    a, b = np.array(_colour(rng), float), np.array(_colour(rng), float)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = (xx * math.cos(theta) + yy * math.sin(theta))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    bg = a + (b - a) * t[..., None] + rng.normal(0, 12, (h, w, 3))
    im = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    short = min(w, h)
    for _ in range(int(rng.integers(2, 6))):  # distractor lines, in every class
        pts = [tuple(float(v) for v in rng.uniform(0, 1, 2) * (w, h)) for _ in range(2)]
        d.line(pts, fill=_colour(rng), width=int(rng.integers(1, max(2, short // 40))))
    hue = CLASS_HUES[SHAPES.index(kind)]
    for _ in range(int(rng.integers(3, 10))):
        r = rng.uniform(0.08, 0.22) * short
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        # hue within +-0.15 (of the colour circle) of the class's, any saturation and value
        # that keep it visible: a cue that overlaps between neighbouring classes
        rgb = colorsys.hsv_to_rgb((hue + rng.uniform(-0.15, 0.15)) % 1.0, rng.uniform(0.5, 1.0),
                                  rng.uniform(0.5, 1.0))
        fill = tuple(int(255 * c) for c in rgb)
        if kind == "disk":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif kind == "ring":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, int(r * 0.3)))
        else:
            d.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fill)
    return im


def _rng(seed: int, split: str, cls: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], cls, k]))


def write_procedural(out: Path, classes: int, per_class: dict[str, int], seed: int = 0,
                     quality: int = 90, short: tuple[int, int] = (160, 375)) -> int:
    """Draw `per_class[split]` images for each of the first `classes` shapes. Returns the count."""
    if not 1 <= classes <= len(SHAPES):
        raise ValueError(f"--classes must be in [1, {len(SHAPES)}] for the procedural source")
    n = 0
    for split, count in per_class.items():
        for ci, kind in enumerate(SHAPES[:classes]):
            folder = out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                rng = _rng(seed, split, ci, k)
                draw_scene(kind, image_size(rng, short), rng).save(folder / f"{k:05d}.jpg", quality=quality)
                n += 1
    return n


def write_from_cifar(out: Path, cifar: Path, classes: int, per_class: dict[str, int], seed: int = 0,
                     quality: int = 90, short: tuple[int, int] = (160, 375)) -> int:
    """Upscale the first `per_class[split]` images of the first `classes` classes of a CIFAR-10
    ImageFolder copy (train -> train, test -> val) to random ImageNet-like sizes."""
    from PIL import Image

    src = {"train": cifar / "train", "val": cifar / "test"}
    if not all(p.is_dir() for p in src.values()):
        raise FileNotFoundError(f"expected a CIFAR-10 ImageFolder copy at {cifar}/{{train,test}}/<class>/*")
    names = sorted(p.name for p in src["train"].iterdir() if p.is_dir())[:classes]
    n = 0
    for split, count in per_class.items():
        for ci, name in enumerate(names):
            files = sorted(f for f in (src[split] / name).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if len(files) < count:
                raise FileNotFoundError(f"{src[split] / name} has {len(files)} images, fewer than {count}")
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k, f in enumerate(files[:count]):
                with Image.open(f) as im:
                    big = im.convert("RGB").resize(image_size(_rng(seed, split, ci, k), short), Image.BICUBIC)
                big.save(folder / f"{k:05d}.jpg", quality=quality)
                n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.make_imagefolder", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write <out>/{train,val}/<class>/*.jpg into")
    p.add_argument("--classes", type=int, default=5, help="number of classes (default 5)")
    p.add_argument("--train", type=int, default=100, help="train images per class (default 100)")
    p.add_argument("--val", type=int, default=30, help="val images per class (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--short-side", type=int, nargs=2, default=(160, 375), metavar=("MIN", "MAX"),
                   help="range of the short side in px (default 160 375; long side <= 500)")
    p.add_argument("--from-cifar", metavar="DIR", help="upscale a CIFAR-10 ImageFolder copy instead of drawing")
    a = p.parse_args(argv)
    out = Path(a.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} exists and is not empty; choose a new folder (outputs are never merged)",
              file=sys.stderr)
        return 2
    per = {"train": a.train, "val": a.val}
    lo, hi = a.short_side
    if not 16 <= lo <= hi <= 500:
        print("error: --short-side needs 16 <= MIN <= MAX <= 500", file=sys.stderr)
        return 2
    try:
        if a.from_cifar:
            n = write_from_cifar(out, Path(a.from_cifar), a.classes, per, a.seed, a.quality, (lo, hi))
        else:
            n = write_procedural(out, a.classes, per, a.seed, a.quality, (lo, hi))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} JPEGs to {out}/{{train,val}}/<class>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
