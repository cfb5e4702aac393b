"""Large ImageFolder trees (ImageNet and any <root>/<path>/{train,val}/<class>/*) streamed
through a DataLoader with workers, pinned memory and prefetch; never held in memory.

The order of each epoch is a permutation drawn from (data_order seed, epoch), and a resumed
run skips the batches it already took, so pairing and resume hold as for in-memory data.
Augmentation (RandomResizedCrop + flip) runs in the workers; each sample's transform is
seeded from (augment seed, epoch, index), so it is reproducible and identical across arms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from .paths import data_root
from .split import make_splits


@dataclass
class _Split:
    samples: list  # [(path, label)]

    def __len__(self) -> int:
        return len(self.samples)


@dataclass
class StreamingData:
    train: _Split
    holdout: _Split
    test: _Split
    num_classes: int
    classes: list[str]
    image_size: int
    workers: int
    mean: tuple = (0.485, 0.456, 0.406)  # ImageNet statistics (torchvision convention)
    std: tuple = (0.229, 0.224, 0.225)
    info: dict = field(default_factory=dict)
    streaming: bool = True

    # -- used by tasks/classification.py
    def _loader(self, split: _Split, indices, transform_seed, train: bool, batch_size: int):
        ds = _Files(split.samples, indices, self.image_size, train, transform_seed)
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=self.workers,
                                           pin_memory=torch.cuda.is_available(), drop_last=train,
                                           persistent_workers=False, prefetch_factor=4 if self.workers else None)

    def stream_batches(self, task, epoch: int, start: int):
        from ..tasks.base import stream_seed as _seed

        n, b = len(self.train), task.batch_size
        order = np.random.default_rng(_seed(task.seeds["data_order"], epoch)).permutation(n)
        order = order[start * b: task.steps_per_epoch * b]
        loader = self._loader(self.train, order, (_seed(task.seeds["augment"], epoch), start * b), True, b)
        for x, y in loader:
            x = x.to(task.device, non_blocking=True)
            yield task.normalize(x), y.to(task.device, non_blocking=True)

    def stream_evaluate(self, task, model, split: str) -> dict:
        sp = self.test if split == "test" else self.holdout
        if len(sp) == 0:
            return {}
        loader = self._loader(sp, np.arange(len(sp)), (0, 0), False, task.s.train.eval.batch_size)
        correct = top5 = 0
        for x, y in loader:
            logits = model(task.normalize(x.to(task.device)))
            y = y.to(task.device)
            correct += int((logits.argmax(1) == y).sum())
            top5 += int((logits.topk(min(5, logits.shape[1]), 1).indices == y[:, None]).any(1).sum())
        out = {"accuracy": 100.0 * correct / len(sp)}
        if task.metric == "top5":
            out["top5"] = 100.0 * top5 / len(sp)
        return out

    def sample_uint8(self, n: int, device) -> torch.Tensor:
        ds = _Files(self.test.samples, np.arange(n), self.image_size, False, (0, 0))
        return torch.stack([ds[i][0] for i in range(n)]).to(device)


class _Files(torch.utils.data.Dataset):
    """uint8 CHW tensors: train = RandomResizedCrop + flip, eval = resize + center crop."""

    def __init__(self, samples, indices, size: int, train: bool, seed: tuple[int, int]):
        self.samples, self.indices, self.size, self.train = samples, np.asarray(indices), size, train
        self.seed = seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms import v2

        path, label = self.samples[int(self.indices[i])]
        try:
            with Image.open(path) as im:
                img = v2.functional.pil_to_tensor(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"cannot decode image {path}: {e}") from None
        if self.train:
            torch.manual_seed(self.seed[0] * 1_000_003 + self.seed[1] + i)
            t = v2.Compose([v2.RandomResizedCrop(self.size, antialias=True), v2.RandomHorizontalFlip()])
        else:
            t = v2.Compose([v2.Resize(int(self.size * 256 / 224), antialias=True), v2.CenterCrop(self.size)])
        return t(img), label


def _scan(folder) -> tuple[list[str], list]:
    from .cache import list_imagefolder

    classes, items = list_imagefolder(folder)
    return classes, [(str(p), c) for p, c in items]


def load(cfg, default_path: str | None = None):
    """kwargs: path (folder under the data root), image_size (224), workers (8)."""
    kw = {"path": default_path, "image_size": 224, "workers": 8, **cfg.kwargs}
    if not kw["path"]:
        raise DataError("imagefolder needs data.kwargs.path")
    base = data_root(cfg.root) / kw["path"]
    for sub in ("train", "val"):
        if not (base / sub).is_dir():
            raise DataError(f"missing {base / sub} (expected <data root>/{kw['path']}/{{train,val}}/<class>/*)")
    classes, train = _scan(base / "train")
    classes_v, val = _scan(base / "val")
    if classes != classes_v:
        raise DataError(f"train and val class folders differ under {base}")
    ty = np.array([c for _, c in train])
    vy = np.array([c for _, c in val])
    idx = make_splits(ty, vy, holdout=cfg.holdout, train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                      data_seed=cfg.data_seed)
    pick = lambda items, ix: _Split([items[i] for i in ix])  # noqa: E731
    return StreamingData(train=pick(train, idx["train"]), holdout=pick(train, idx["holdout"]),
                         test=pick(val, idx["test"]), num_classes=len(classes), classes=classes,
                         image_size=int(kw["image_size"]), workers=int(kw["workers"]),
                         info={"source": "imagefolder", "path": str(base), "n_train": len(idx["train"]),
                               "n_holdout": len(idx["holdout"]), "n_test": len(idx["test"])})


def load_imagenet(cfg):
    return load(cfg, default_path="imagenet")
