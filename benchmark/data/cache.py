"""Decode an ImageFolder split once into a uint8 array cached on disk, keyed by content.

The key hashes every file's relative path and bytes, so an edited or replaced image makes
a new cache entry instead of silently reusing stale pixels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


def cache_dir() -> Path:
    return Path(os.environ.get("W2S_CACHE", Path.home() / ".cache" / "w2s-bench")).expanduser()


def list_imagefolder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    if not root.is_dir():
        raise DataError(f"not a directory: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"no class folders in {root} (expected {root}/<class>/<image>)")
    items = []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMG_EXT:
                items.append((f, ci))
    if not items:
        raise DataError(f"no images under {root}")
    return classes, items


def decode_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"cannot decode image {path}: {e}") from None


def load_imagefolder_arrays(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, H, W, 3) uint8, (N,) int64, class names; decoded once, then read from cache."""
    classes, items = list_imagefolder(root)
    h = hashlib.sha256()
    blobs = []
    for f, ci in items:
        try:
            b = f.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read image {f}: {e}") from None
        h.update(f"{f.relative_to(root)}\0{ci}\0{len(b)}\0".encode())
        h.update(b)
        blobs.append(b)
    key = h.hexdigest()[:24]
    cfile = cache_dir() / f"imagefolder-{key}.npz"
    if cfile.is_file():
        try:
            with np.load(cfile) as z:
                return z["x"], z["y"], list(z["classes"])
        except Exception:
            pass  # a torn cache file is rebuilt below
    import io

    from PIL import Image, UnidentifiedImageError

    arrs = []
    for (f, _), b in zip(items, blobs):
        try:
            with Image.open(io.BytesIO(b)) as im:
                arrs.append(np.asarray(im.convert("RGB")))
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"cannot decode image {f}: {e}") from None
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise DataError(f"images under {root} differ in size ({sorted(shapes)[:3]}...); "
                        "in-memory datasets need one size (use `imagefolder`, which resizes)")
    x = np.stack(arrs)
    y = np.array([ci for _, ci in items], dtype=np.int64)
    cfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfile.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y, classes=np.array(classes))
    os.replace(tmp, cfile)
    return x, y, classes
