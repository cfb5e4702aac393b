"""Where each dataset lives under the data root. Torch-free: `validate` uses it."""

from __future__ import annotations

import os
from pathlib import Path

TV_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def data_root(root: str | None) -> Path:
    """The data root: the suite's data.root, else W2S_DATA_ROOT, else ./data."""
    return Path(root or os.environ.get("W2S_DATA_ROOT") or "data").expanduser()


def cifar_candidates(name: str, root: str | None) -> dict[str, Path]:
    r = data_root(root)
    return {
        "imagefolder": r / name,  # <root>/cifar10/{train,test}/<class>/*
        "torchvision": r / TV_DIRS[name],  # <root>/cifar-10-batches-py
        "torchvision_nested": r / name / TV_DIRS[name],
        "pack": r / f"{name}.w2spack",  # one file written by `w2s-bench pack` (data/pack.py)
    }


def find_cifar(name: str, root: str | None) -> tuple[str, Path] | None:
    c = cifar_candidates(name, root)
    if (c["imagefolder"] / "train").is_dir() and (c["imagefolder"] / "test").is_dir():
        return "imagefolder", c["imagefolder"]
    if c["pack"].is_file():  # same pixels, labels and order as the ImageFolder copy it packs
        return "pack", c["pack"]
    for kind in ("torchvision", "torchvision_nested"):
        if c[kind].is_dir():
            return "torchvision", c[kind].parent
    return None


def locate_problem(data) -> str | None:
    """A message naming every place looked at, or None when the data is there."""
    name = data.dataset
    if name == "synthetic" or name == "synthetic_detection":
        return None
    r = data_root(data.root)
    if name in TV_DIRS:
        if find_cifar(name, data.root) or data.download:
            return None
        c = cifar_candidates(name, data.root)
        return (f"{name} not found under data root {r}: looked for an ImageFolder copy at "
                f"{c['imagefolder']}/{{train,test}}, a pack {c['pack']} and torchvision's {c['torchvision']} "
                f"(and {c['torchvision_nested']}). Set --data-root / W2S_DATA_ROOT or "
                f"data.root, or set data.download: true to fetch it with torchvision.")
    if name in ("imagefolder", "imagenet"):
        sub = data.kwargs.get("path", "imagenet" if name == "imagenet" else None)
        if sub is None:
            return "imagefolder needs data.kwargs.path (a folder under the data root with train/ and val/)"
        base = r / sub
        missing = [str(base / s) for s in ("train", "val") if not (base / s).is_dir()]
        return f"missing {', '.join(missing)} (data root {r})" if missing else None
    if name == "pack":
        p = data.kwargs.get("path")
        if not p:
            return "pack needs data.kwargs.path (a file written by `w2s-bench pack`)"
        f = Path(p) if Path(p).is_absolute() else r / p
        return None if f.is_file() else f"pack file not found: {f}"
    if name in ("coco", "coco_json"):
        from .coco_paths import coco_problem  # detection task, torch-free

        return coco_problem(data, r)
    return None
