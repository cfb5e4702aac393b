"""A data pack: one file holding a small image dataset's encoded images, labels and index.

Written by `w2s-bench pack`, read by the `pack` dataset (`data.kwargs.path`), so a machine
without the dataset (a GPU box with no network) can carry one file instead of 60,000.

Format (an uncompressed .npz: a zip of .npy members, readable with `numpy.load` and no
pickle; the images are already JPEG/PNG, so compressing again would gain nothing):

    bytes    uint8 (total,)   every image file's bytes as they are, concatenated
    offsets  int64 (N + 1,)   image i is bytes[offsets[i]:offsets[i + 1]] (the index)
    labels   int64 (N,)       class index into `classes`
    split    uint8 (N,)       0 = train, 1 = test
    names    uint8 (...)      the images' relative paths, utf-8, newline-joined (provenance)
    classes  str (K,)         class names, sorted (the ImageFolder order)
    meta     str ()           JSON: format, version, dataset, source, counts

Images are stored in the order `cache.list_imagefolder` walks a tree (classes sorted, files
sorted within a class), train first, so decoding a pack gives exactly the arrays the
ImageFolder loader gives and `tensors.from_arrays` carves the same splits from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cache import cache_dir, list_imagefolder
from .paths import data_root, find_cifar

FORMAT = "w2s-pack"
VERSION = 1
SPLITS = ("train", "test")


# ----------------------------------------------------------------------------- write
def source_dir(dataset: str, root: str | None) -> Path:
    """The ImageFolder tree (with train/ and test/) a dataset name or a path stands for."""
    p = Path(dataset).expanduser()
    if p.is_dir():
        base = p
    else:
        found = find_cifar(dataset, root) if dataset in ("cifar10", "cifar100") else None
        if found is None:
            raise DataError(
                f"cannot pack {dataset!r}: not a folder, and no ImageFolder copy of it under "
                f"data root {data_root(root)} (expected <root>/{dataset}/{{train,test}})"
            )
        kind, base = found
        if kind == "pack":
            raise DataError(
                f"{dataset} under data root {data_root(root)} is already a pack: {base}"
            )
        if kind != "imagefolder":
            raise DataError(
                f"{dataset} under {base} is in torchvision's pickled format (raw pixels, no "
                "encoded images to pack); pack an ImageFolder copy instead"
            )
    missing = [s for s in SPLITS if not (base / s).is_dir()]
    if missing:
        raise DataError(
            f"cannot pack {base}: no {' or '.join(missing)} folder (expected {base}/{{train,test}}"
            "/<class>/<image>)"
        )
    return base


def write_pack(dataset: str, out: Path, root: str | None = None) -> dict:
    """Pack the ImageFolder tree behind `dataset` into `out`; returns the meta dict."""
    base = source_dir(dataset, root)
    blobs, labels, split, names, classes = [], [], [], [], None
    for si, s in enumerate(SPLITS):
        cls, items = list_imagefolder(base / s)
        if classes is None:
            classes = cls
        elif cls != classes:
            raise DataError(f"train and test class folders differ under {base}")
        for f, ci in items:
            try:
                blobs.append(f.read_bytes())
            except OSError as e:
                raise DataError(f"cannot read image {f}: {e}") from None
            labels.append(ci)
            split.append(si)
            names.append(f"{s}/{f.relative_to(base / s).as_posix()}")
    sizes = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    split_a = np.asarray(split, dtype=np.uint8)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": Path(dataset).name,
        "source": str(base),
        "n": len(blobs),
        "n_train": int((split_a == 0).sum()),
        "n_test": int((split_a == 1).sum()),
        "image_bytes": int(offsets[-1]),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a path
        np.savez(
            fh,
            bytes=np.frombuffer(b"".join(blobs), dtype=np.uint8),
            offsets=offsets,
            labels=np.asarray(labels, dtype=np.int64),
            split=split_a,
            names=np.frombuffer("\n".join(names).encode(), dtype=np.uint8),
            classes=np.array(classes),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    os.replace(tmp, out)
    return meta


# ------------------------------------------------------------------------------ read
def read_pack(path: Path) -> dict:
    """The raw members of a pack (encoded bytes, index, labels, split, classes, meta)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {
                k: z[k] for k in ("bytes", "offsets", "labels", "split", "names", "classes", "meta")
            }
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path} is not a readable w2s-bench pack: {e}") from None
    meta = json.loads(str(d["meta"]))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DataError(
            f"{path}: pack format {meta.get('format')} v{meta.get('version')}, "
            f"this w2s-bench reads {FORMAT} v{VERSION}"
        )
    n = len(d["labels"])
    if (
        len(d["offsets"]) != n + 1
        or len(d["split"]) != n
        or int(d["offsets"][-1]) != len(d["bytes"])
    ):
        raise DataError(f"{path}: index does not match the stored images (torn or edited file)")
    d["meta"] = meta
    d["classes"] = [str(c) for c in d["classes"]]
    return d


def decode_images(data: np.ndarray, offsets: np.ndarray, where: str = "pack") -> np.ndarray:
    """(N, H, W, 3) uint8 from the concatenated encoded images, decoded as PIL does for the
    ImageFolder loader (`.convert("RGB")`), so pixels are identical to decoding the files."""
    from PIL import Image, UnidentifiedImageError

    buf = data.tobytes()
    arrs = []
    for i in range(len(offsets) - 1):
        try:
            with Image.open(io.BytesIO(buf[offsets[i] : offsets[i + 1]])) as im:
                arrs.append(np.asarray(im.convert("RGB")))
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"cannot decode image {i} of {where}: {e}") from None
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise DataError(
            f"images in {where} differ in size ({sorted(shapes)[:3]}...); in-memory datasets "
            "need one size"
        )
    return np.stack(arrs)


def decoded(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict]:
    """(x uint8 (N, H, W, 3), labels, split, classes, meta); decoded once, then cached under
    the cache dir keyed by the pack's sha256 (so an edited pack is decoded afresh)."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    d = read_pack(path)
    cfile = cache_dir() / f"pack-{h.hexdigest()[:24]}.npy"
    x = None
    if cfile.is_file():
        try:
            x = np.load(cfile, allow_pickle=False)
            if len(x) != len(d["labels"]):
                x = None
        except (OSError, ValueError):
            x = None  # a torn cache file is rebuilt below
    if x is None:
        x = decode_images(d["bytes"], d["offsets"], str(path))
        cfile.parent.mkdir(parents=True, exist_ok=True)
        tmp = cfile.with_name(cfile.name + f".tmp{os.getpid()}.npy")
        np.save(tmp, x)
        os.replace(tmp, cfile)
    return x, d["labels"], d["split"], d["classes"], d["meta"]


def pack_path(cfg) -> Path:
    p = cfg.kwargs.get("path")
    if not p:
        raise DataError("dataset pack needs data.kwargs.path (a file written by `w2s-bench pack`)")
    f = Path(p).expanduser()
    return f if f.is_absolute() else data_root(cfg.root) / f


def load(cfg):
    """The `pack` dataset: decode into the in-memory uint8 path, splits as for any array data."""
    path = pack_path(cfg)
    if not path.is_file():
        raise DataError(f"pack file not found: {path}")
    return load_file(path, cfg)


def load_file(path: Path, cfg):
    """ClassificationData from the pack at `path` (`cifar10` reads <root>/cifar10.w2spack so)."""
    from .tensors import from_arrays

    x, y, split, classes, meta = decoded(path)
    tr, te = split == 0, split == 1
    return from_arrays(
        x[tr],
        y[tr],
        x[te],
        y[te],
        classes,
        cfg,
        info={"source": "pack", "path": str(path), "packed_from": meta.get("source")},
    )
