"""Where COCO-format datasets live under the data root. Torch-free: `validate` uses it.

coco:       <root>/coco/{train2017,val2017}/ and
            <root>/coco/annotations/instances_{train,val}2017.json
coco_json:  <root>/<kwargs.path>/ (or an absolute path) holding kwargs.images (default `images`)
            and kwargs.annotations (default `annotations/instances.json`); optional
            kwargs.test_annotations / kwargs.test_images (relative to the same folder) for a
            separate test split.
"""

from __future__ import annotations

from pathlib import Path

COCO_JSON_KWARGS = ("path", "images", "annotations", "test_annotations", "test_images")


def coco_files(root: Path) -> dict[str, Path]:
    base = Path(root) / "coco"
    return {
        "train_images": base / "train2017",
        "val_images": base / "val2017",
        "train_ann": base / "annotations" / "instances_train2017.json",
        "val_ann": base / "annotations" / "instances_val2017.json",
    }


def coco_json_files(data, root: Path) -> dict[str, Path]:
    kw = data.kwargs
    base = Path(kw["path"]).expanduser()
    if not base.is_absolute():
        base = Path(root) / base
    out = {
        "base": base,
        "images": base / kw.get("images", "images"),
        "annotations": base / kw.get("annotations", "annotations/instances.json"),
    }
    if kw.get("test_annotations"):
        out["test_ann"] = base / kw["test_annotations"]
        out["test_images"] = base / kw.get("test_images", kw.get("images", "images"))
    return out


def coco_problem(data, root: Path) -> str | None:
    """A message naming what is missing, or None when the dataset is there."""
    if data.dataset == "coco":
        f = coco_files(root)
        missing = [
            str(p)
            for k, p in f.items()
            if not (p.is_dir() if k.endswith("images") else p.is_file())
        ]
        if missing:
            return (
                f"COCO 2017 not found under data root {root}: missing {', '.join(missing)}. "
                "Set --data-root / W2S_DATA_ROOT or data.root."
            )
        return None
    unknown = sorted(set(data.kwargs) - set(COCO_JSON_KWARGS))
    if unknown:
        return f"coco_json: unknown data.kwargs {unknown}; known: {', '.join(COCO_JSON_KWARGS)}"
    if not data.kwargs.get("path"):
        return (
            "coco_json needs data.kwargs.path: a folder (under the data root, or absolute) with "
            "images/ and annotations/instances.json"
        )
    f = coco_json_files(data, root)
    missing = [str(f[k]) for k in ("images", "test_images") if k in f and not f[k].is_dir()]
    missing += [str(f[k]) for k in ("annotations", "test_ann") if k in f and not f[k].is_file()]
    if missing:
        return f"coco_json: missing {', '.join(missing)} (data root {root})"
    return None
