"""COCO-format detection data and COCO bbox evaluation.

Images are decoded (Pillow, `.convert("RGB")`: coco128 holds a greyscale image) and
letterboxed to `image_size` x `image_size` (aspect kept, scaled so the long side fits,
padded bottom/right with zeros); a split that fits IN_MEMORY_BYTES is decoded once and kept
as uint8 (N, 3, S, S), a larger one (full COCO) is decoded per batch. Training boxes are
scaled with the image; evaluation maps detections back to original pixels and scores them
against the *original* annotations with pycocotools' COCOeval, so AP is the standard number.

Labels are contiguous 0..K-1 in the order of the annotation file's sorted category ids;
`cat_ids[label]` maps back. Crowd annotations are left out of training targets and kept
in the evaluation ground truth (COCOeval ignores matches to them). Images without
annotations are kept: they teach the background and count false positives.

Splits are chosen by image id with the data seed alone: held-out images are drawn from the
train pool among images with at least one object (so the switch split has something to
detect); test is a separate annotation file (`coco` val2017) or, for a single-file dataset
(`coco_json`), `test_subset` images carved off first. The three are disjoint by image id.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .coco_paths import coco_files, coco_json_files
from .paths import data_root


@dataclass
class DetSplit:
    """One split. images: uint8 (N, 3, S, S), or None when the split is too large to hold in
    memory (then `files` are decoded per batch); boxes[i]: float32 (k, 4) xyxy in letterboxed
    pixels; labels[i]: int64 (k,); scales[i]: letterboxed px per original px; gt: COCO dict."""

    images: torch.Tensor | None
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    image_ids: list[int]
    scales: list[float]
    gt: dict
    files: list[Path] | None = None
    size: int = 0

    def __len__(self) -> int:
        return len(self.image_ids)

    def to(self, device) -> DetSplit:
        return DetSplit(
            None if self.images is None else self.images.to(device),
            [b.to(device) for b in self.boxes],
            [x.to(device) for x in self.labels],
            self.image_ids,
            self.scales,
            self.gt,
            self.files,
            self.size,
        )

    def uint8(self, idx: list[int]) -> torch.Tensor:
        """uint8 (len(idx), 3, S, S) images, decoded now for a streamed split."""
        if self.images is not None:
            return self.images[idx]
        from concurrent.futures import ThreadPoolExecutor

        def one(i: int) -> np.ndarray:
            return _decode(self.files[i], self.size)[0]

        # Pillow releases the GIL while decoding: threads overlap the JPEG work
        with ThreadPoolExecutor(max_workers=min(8, len(idx))) as pool:
            return torch.from_numpy(np.stack(list(pool.map(one, idx))))


@dataclass
class DetectionData:
    train: DetSplit
    holdout: DetSplit
    test: DetSplit
    cat_ids: list[int]  # label -> COCO category id
    class_names: list[str]
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)


# ------------------------------------------------------------------------ evaluation
def coco_ap(gt: dict, dets: list[dict]) -> dict[str, float]:
    """COCO bbox AP@[.5:.95], AP50, AP75 in percent (pycocotools COCOeval).

    gt: COCO-format dict (images, annotations, categories); dets: [{image_id, category_id,
    bbox [x, y, w, h] in original pixels, score}]. No detections -> 0 for every metric.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not dets:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    gt = copy.deepcopy(gt)
    renumber_annotation_ids(gt["annotations"])
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        c = COCO()
        c.dataset = gt
        c.createIndex()
        r = c.loadRes(dets)
        ev = COCOeval(c, r, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats  # -1 where no ground truth exists: report 0
    return {
        "AP": 100.0 * max(0.0, float(s[0])),
        "AP50": 100.0 * max(0.0, float(s[1])),
        "AP75": 100.0 * max(0.0, float(s[2])),
    }


def renumber_annotation_ids(anns: list[dict]) -> bool:
    """Give every annotation a unique id >= 1, in place; returns True if ids were changed.

    pycocotools' COCOeval marks a ground truth as matched by storing the matching detection's
    id (and a detection by the ground truth's id) in arrays initialised to 0, so an annotation
    with id 0 never counts as matched: perfect predictions of a set containing one score below
    100 AP (coco128 with one id-0 box: 62.6). Duplicate ids corrupt the matching the same way.
    Missing ids are filled silently (common in hand-made files); id 0 or duplicates are
    renumbered 1..N with a warning, since the file's own ids are then not the ones evaluated.
    """
    ids = [a.get("id") for a in anns]
    present = [i for i in ids if i is not None]
    bad = any(i == 0 for i in present) or len(set(present)) != len(present)
    if bad:
        warnings.warn(
            "COCO annotations have id 0 or duplicate ids, which pycocotools' evaluation "
            "miscounts as unmatched; renumbering all annotations 1..N for evaluation",
            stacklevel=2,
        )
        for k, a in enumerate(anns):
            a["id"] = k + 1
        return True
    if len(present) != len(ids):
        taken = set(present)
        nxt = max(taken, default=0) + 1
        for a in anns:
            if a.get("id") is None:
                a["id"] = nxt
                nxt += 1
        return True
    return False


def to_coco_dets(
    outputs: list[dict], image_ids: list[int], scales: list[float], cat_ids: list[int]
) -> list[dict]:
    """Detector outputs (letterboxed xyxy, labels 0..K-1) -> COCO results in original pixels."""
    out = []
    for o, iid, sc in zip(outputs, image_ids, scales):
        b = o["boxes"].detach().float().cpu().numpy() / sc
        s = o["scores"].detach().float().cpu().numpy()
        lab = o["labels"].detach().cpu().numpy()
        for (x0, y0, x1, y1), score, k in zip(b.tolist(), s.tolist(), lab.tolist()):
            out.append(
                {
                    "image_id": int(iid),
                    "category_id": int(cat_ids[k]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return out


# --------------------------------------------------------------------------- decoding
def letterbox(img, size: int) -> tuple[np.ndarray, float]:
    """PIL image -> (uint8 (3, size, size), scale). Long side scaled to `size`, padded."""
    from PIL import Image

    img = img.convert("RGB")
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[:nh, :nw] = np.asarray(img)
    return out.transpose(2, 0, 1), scale


def _targets(
    anns: list[dict], scale: float, cat_index: dict[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training targets from one image's annotations: non-crowd, positive-size boxes."""
    boxes, labels = [], []
    for a in anns:
        if a.get("iscrowd", 0):
            continue
        x, y, w, h = a["bbox"]
        if w <= 0 or h <= 0:
            continue
        boxes.append([x * scale, y * scale, (x + w) * scale, (y + h) * scale])
        labels.append(cat_index[a["category_id"]])
    return (
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(labels, dtype=torch.int64),
    )


def _decode(f: Path, size: int) -> tuple[np.ndarray, float]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as im:
            return letterbox(im, size)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot read image {f}: {e}") from None


# above this many bytes of letterboxed uint8 pixels a split is decoded per batch instead
IN_MEMORY_BYTES = 4 * 2**30


def read_split(coco: dict, images_dir: Path, ids: list[int], image_size: int) -> DetSplit:
    """Decode and letterbox the images `ids` of a COCO dict (or, for a split larger than
    IN_MEMORY_BYTES, note their files for per-batch decoding); its gt restricted to them."""
    by_id = {im["id"]: im for im in coco["images"]}
    anns: dict[int, list] = {i: [] for i in ids}
    for a in coco["annotations"]:
        if a["image_id"] in anns:
            anns[a["image_id"]].append(a)
    cats = sorted(c["id"] for c in coco["categories"])
    cat_index = {c: i for i, c in enumerate(cats)}
    files = [images_dir / by_id[iid]["file_name"] for iid in ids]
    stream = len(ids) * 3 * image_size**2 > IN_MEMORY_BYTES
    imgs = None if stream else np.zeros((len(ids), 3, image_size, image_size), dtype=np.uint8)
    boxes, labels, scales = [], [], []
    for n, iid in enumerate(ids):
        if stream:
            im = by_id[iid]
            if not im.get("width") or not im.get("height"):
                raise DataError(f"image {iid} has no width/height in the annotation file")
            sc = image_size / max(im["width"], im["height"])
        else:
            imgs[n], sc = _decode(files[n], image_size)
        b, lab = _targets(anns[iid], sc, cat_index)
        boxes.append(b)
        labels.append(lab)
        scales.append(sc)
    gt = {
        "images": [by_id[i] for i in ids],
        "annotations": [a for i in ids for a in anns[i]],
        "categories": coco["categories"],
    }
    # pycocotools needs area/iscrowd/id on every annotation (ids unique and never 0)
    gt["annotations"] = [dict(a) for a in gt["annotations"]]
    for a in gt["annotations"]:
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
    renumber_annotation_ids(gt["annotations"])
    return DetSplit(
        None if stream else torch.from_numpy(imgs),
        boxes,
        labels,
        list(ids),
        scales,
        gt,
        files=files,
        size=image_size,
    )


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read COCO annotations {path}: {e}") from None
    for k in ("images", "annotations", "categories"):
        if k not in d:
            raise DataError(f"{path} is not a COCO detection file: no `{k}`")
    return d


def choose_ids(
    coco: dict,
    *,
    holdout: int,
    train_subset: int | None,
    test_subset: int | None,
    data_seed: int,
    carve_test: bool,
) -> dict[str, list[int]]:
    """Image ids per split, fixed by the data seed. Held-out ids only from images with a
    (non-crowd) object. With carve_test, test_subset ids come first from the same pool."""
    rng = np.random.default_rng(np.random.SeedSequence([data_seed, 0xDE7]))
    ids = np.array(sorted(im["id"] for im in coco["images"]))
    rng.shuffle(ids)
    test: list[int] = []
    if carve_test:
        if not test_subset or test_subset >= len(ids):
            raise DataError(f"test_subset must be in [1, {len(ids) - 1}] for a single-file dataset")
        test, ids = sorted(ids[:test_subset].tolist()), ids[test_subset:]
    with_obj = {a["image_id"] for a in coco["annotations"] if not a.get("iscrowd", 0)}
    cand = [i for i in ids.tolist() if i in with_obj]
    if holdout > len(cand):
        raise DataError(f"holdout {holdout} is more than the {len(cand)} train images with objects")
    hold = sorted(cand[:holdout])
    rest = [i for i in ids.tolist() if i not in set(hold)]
    if train_subset:
        if train_subset > len(rest):
            raise DataError(
                f"train_subset {train_subset} is more than the {len(rest)} train images left"
            )
        rest = rest[:train_subset]
    return {"train": sorted(rest), "holdout": hold, "test": test}


def _build(
    train_coco: dict,
    train_dir: Path,
    test_coco: dict | None,
    test_dir: Path | None,
    cfg,
    image_size: int,
    source: str,
) -> DetectionData:
    carve = test_coco is None
    ids = choose_ids(
        train_coco,
        holdout=cfg.holdout,
        train_subset=cfg.train_subset,
        test_subset=cfg.test_subset,
        data_seed=cfg.data_seed,
        carve_test=carve,
    )
    if not carve:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.data_seed, 0x7E57]))
        tids = sorted(im["id"] for im in test_coco["images"])
        if cfg.test_subset and cfg.test_subset < len(tids):
            tids = sorted(rng.choice(tids, cfg.test_subset, replace=False).tolist())
        ids["test"] = tids
    if not ids["train"]:
        raise DataError(f"{source}: the train split is empty")
    cats = sorted(train_coco["categories"], key=lambda c: c["id"])
    splits = {
        k: read_split(train_coco, train_dir, v, image_size)
        for k, v in ids.items()
        if k != "test" or carve
    }
    if not carve:
        splits["test"] = read_split(test_coco, test_dir, ids["test"], image_size)
    if not any(len(b) for b in splits["test"].boxes):
        raise DataError(f"{source}: the test split has no annotated objects; AP is undefined")
    info = {
        "source": source,
        "image_size": image_size,
        "num_classes": len(cats),
        **{f"{k}_images": len(v) for k, v in splits.items()},
        **{f"{k}_objects": int(sum(len(b) for b in v.boxes)) for k, v in splits.items()},
    }
    return DetectionData(
        splits["train"],
        splits["holdout"],
        splits["test"],
        [c["id"] for c in cats],
        [c.get("name", str(c["id"])) for c in cats],
        info,
    )


def load_coco(cfg, image_size: int) -> DetectionData:
    """COCO 2017: train2017 (held-out carved from it) and val2017 as the test split."""
    f = coco_files(data_root(cfg.root))
    return _build(
        _read_json(f["train_ann"]),
        f["train_images"],
        _read_json(f["val_ann"]),
        f["val_images"],
        cfg,
        image_size,
        "coco",
    )


def load_coco_json(cfg, image_size: int) -> DetectionData:
    """Any image folder + COCO annotation file (kwargs path/images/annotations); the test split is
    kwargs.test_annotations (+ test_images) if given, else test_subset images of the same file."""
    f = coco_json_files(cfg, data_root(cfg.root))
    test = _read_json(f["test_ann"]) if f.get("test_ann") else None
    return _build(
        _read_json(f["annotations"]),
        f["images"],
        test,
        f.get("test_images"),
        cfg,
        image_size,
        f"coco_json {f['annotations']}",
    )
