"""A built-in detection dataset drawn procedurally (no download), for tests and the CPU suite.

Each image is a textured two-colour background with 0 to `max_objects` non-overlapping
shapes of 5 classes (disk, square, triangle, cross, ring) of random size, position and
colour, plus pixel noise. A box is the exact pixel extent of its shape's mask,
[x0, y0, x1, y1) with x1/y1 one past the last covered pixel, so boxes and drawings agree
by construction. About 1 image in 10 has no object. Deterministic given the seed.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

CLASSES = ["disk", "square", "triangle", "cross", "ring"]
KWARGS = {"train": 1200, "test": 300, "size": 64, "max_objects": 3, "noise": 0.06}
GENERATOR_VERSION = 1


def _mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape membership in local coordinates scaled so the shape spans about [-1, 1]."""
    r = np.sqrt(u**2 + v**2)
    if cls == 0:
        return r < 1
    if cls == 1:
        return np.maximum(np.abs(u), np.abs(v)) < 0.85
    if cls == 2:
        return (v > -0.8) & (v < 0.9) & (np.abs(u) < (0.9 - v) * 0.6)
    if cls == 3:
        return ((np.abs(u) < 0.3) & (np.abs(v) < 1)) | ((np.abs(v) < 0.3) & (np.abs(u) < 1))
    return (r < 1) & (r > 0.55)


def generate(
    n: int,
    seed: int,
    size: int = 64,
    max_objects: int = 3,
    noise: float = 0.06,
    return_masks: bool = False,
):
    """n images: (uint8 (n, size, size, 3), boxes [float32 (k, 4) xyxy], labels [int64 (k,)]),
    plus per-image bool masks (k, size, size) when return_masks."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB0C5]))
    g = np.arange(size) + 0.5
    gy, gx = np.meshgrid(g, g, indexing="ij")
    c = np.linspace(-1, 1, size)
    cy, cx = np.meshgrid(c, c, indexing="ij")
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    all_boxes, all_labels, all_masks = [], [], []
    for i in range(n):
        bg1, bg2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        f = rng.uniform(1, 5, 2)
        tex = 0.5 + 0.5 * np.sin(np.pi * (f[0] * cx + f[1] * cy) + rng.uniform(0, 2 * np.pi))
        img = bg1 * tex[..., None] + bg2 * (1 - tex[..., None])
        k = 0 if rng.uniform() < 0.1 else int(rng.integers(1, max_objects + 1))
        occupied = np.zeros((size, size), dtype=bool)
        boxes, labels, masks = [], [], []
        for _ in range(k):
            for _attempt in range(20):
                cls = int(rng.integers(len(CLASSES)))
                rad = rng.uniform(0.09, 0.22) * size  # half-size in pixels
                px, py = rng.uniform(rad, size - rad, 2)
                ang = rng.uniform(0, 2 * np.pi) if cls in (1, 2, 3) else 0.0
                dx, dy = gx - px, gy - py
                u = (np.cos(ang) * dx + np.sin(ang) * dy) / rad
                v = (-np.sin(ang) * dx + np.cos(ang) * dy) / rad
                m = _mask(cls, u, v)
                # keep a 2-px gap to other shapes so no mask is occluded
                grown = np.zeros_like(occupied)
                ys, xs = np.nonzero(m)
                if len(ys) < 9:
                    continue
                grown[max(0, ys.min() - 2) : ys.max() + 3, max(0, xs.min() - 2) : xs.max() + 3] = (
                    True
                )
                if (grown & occupied).any():
                    continue
                occupied |= grown
                fg = rng.uniform(0, 1, 3)
                fg = np.where(np.abs(fg - (bg1 + bg2) / 2) < 0.3, 1 - fg, fg)
                img[m] = fg
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                labels.append(cls)
                masks.append(m)
                break
        img = img + rng.normal(0, noise, img.shape)
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
        all_boxes.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        all_labels.append(np.array(labels, dtype=np.int64))
        all_masks.append(np.array(masks, dtype=bool).reshape(-1, size, size))
    if return_masks:
        return images, all_boxes, all_labels, all_masks
    return images, all_boxes, all_labels


def to_coco(boxes: list[np.ndarray], labels: list[np.ndarray], size: int, first_id: int) -> dict:
    """A COCO dict for generated images with ids first_id.. (category id = label + 1)."""
    images, anns = [], []
    for n, (b, lab) in enumerate(zip(boxes, labels)):
        iid = first_id + n
        images.append({"id": iid, "width": size, "height": size, "file_name": f"{iid}.png"})
        for (x0, y0, x1, y1), k in zip(b.tolist(), lab.tolist()):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": iid,
                    "category_id": k + 1,
                    "iscrowd": 0,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                }
            )
    cats = [{"id": k + 1, "name": nm} for k, nm in enumerate(CLASSES)]
    return {"images": images, "annotations": anns, "categories": cats}


def load(cfg, image_size: int):
    """kwargs: train (1200), test (300), size (64), max_objects (3), noise (0.06). Held-out
    images are carved from the train stream (by image id, only images with objects)."""
    import torch

    from .coco import DetectionData, DetSplit, choose_ids

    kw = {**KWARGS, **cfg.kwargs}
    unknown = set(kw) - set(KWARGS)
    if unknown:
        raise DataError(
            f"synthetic_detection: unknown data.kwargs {sorted(unknown)}; "
            f"known: {', '.join(KWARGS)}"
        )
    size = int(kw["size"])
    if size != image_size:
        raise DataError(
            f"synthetic_detection draws {size}-px images: set task_options.image_size: {size}"
        )
    gen = dict(size=size, max_objects=int(kw["max_objects"]), noise=float(kw["noise"]))
    # train and test are disjoint streams of the same generator; test ids follow train ids
    ntr, nte = int(kw["train"]), int(kw["test"])
    trx, trb, trl = generate(ntr, cfg.data_seed * 2 + 1, **gen)
    tex, teb, tel = generate(nte, cfg.data_seed * 2 + 2, **gen)
    train_coco = to_coco(trb, trl, size, 1)
    test_coco = to_coco(teb, tel, size, ntr + 1)

    def split(x, b, lab, coco, ids, first):
        sel = [i - first for i in ids]
        gt = {
            "images": [coco["images"][j] for j in sel],
            "annotations": [a for a in coco["annotations"] if a["image_id"] in set(ids)],
            "categories": coco["categories"],
        }
        return DetSplit(
            torch.from_numpy(np.ascontiguousarray(x[sel].transpose(0, 3, 1, 2))),
            [torch.from_numpy(b[j]) for j in sel],
            [torch.from_numpy(lab[j]) for j in sel],
            list(ids),
            [1.0] * len(sel),
            gt,
        )

    ids = choose_ids(
        train_coco,
        holdout=cfg.holdout,
        train_subset=cfg.train_subset,
        test_subset=None,
        data_seed=cfg.data_seed,
        carve_test=False,
    )
    tids = list(range(ntr + 1, ntr + nte + 1))
    if cfg.test_subset:
        tids = tids[: cfg.test_subset]
    tr = split(trx, trb, trl, train_coco, ids["train"], 1)
    ho = split(trx, trb, trl, train_coco, ids["holdout"], 1)
    te = split(tex, teb, tel, test_coco, tids, ntr + 1)
    info = {
        "source": "synthetic_detection",
        **kw,
        "train_images": len(tr),
        "holdout_images": len(ho),
        "test_images": len(te),
        "train_objects": int(sum(len(b) for b in tr.boxes)),
    }
    return DetectionData(
        tr, ho, te, [c["id"] for c in test_coco["categories"]], list(CLASSES), info
    )
