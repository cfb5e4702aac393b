"""Large ImageFolder trees (ImageNet and any <root>/<path>/{train,val}/<class>/*) streamed
through DataLoader workers; never held in memory.

What this layer does: decode, crop and flip in the workers and hand back uint8 batches
(N, S, S, 3) (NHWC: the task views them as channels_last NCHW without a copy) with int64
labels. What it does not: normalisation (the task does it on the
training device, in float, so the host copies and the pinned transfer stay uint8: a quarter
of float32's bytes), evaluation and metrics (tasks/classification.py, the same code as for
in-memory data), and seeds (the task passes each epoch's order and augmentation seed).

Reproducibility: sample i of the train split in an epoch gets its own torch.Generator,
seeded from (the task's augmentation seed for that epoch, i), and draws its RandomResizedCrop
box and flip from it, so an augmentation is a pure function of (run seed, epoch, image):
identical across paired arms, across worker counts and after a resume, and the global torch
RNG is never touched. Options and their defaults: data/imagefolder_options.py.

Speed (perf/loader.py measures it against timm's loader): JPEGs are decoded with
torchvision.io.decode_jpeg (libjpeg-turbo straight into a tensor; PIL for other formats), the
crop is resized with torch's uint8 antialiased kernel, workers persist across epochs and
evaluations, batches are pinned when the device is a GPU.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .imagefolder_options import ImageFolderOptions, parse
from .paths import data_root
from .split import make_splits

JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class _Split:
    """File paths (bytes, relative to `root`) and labels as numpy arrays: forked workers
    share them without the copy-on-access that a list of Python objects causes through
    reference counting (pytorch/pytorch#13246), which matters at ImageNet's 1.28M files."""

    root: str
    rel: np.ndarray  # dtype S: path under root, utf-8
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        return str(Path(self.root) / self.rel[i].decode())

    def subset(self, idx) -> _Split:
        idx = np.asarray(idx, dtype=np.int64)
        return _Split(self.root, self.rel[idx], self.labels[idx])


# ------------------------------------------------------------------ per-sample transforms
def sample_seed(epoch_seed: int, index: int) -> int:
    """The seed of sample `index`'s generator in an epoch: SeedSequence hashing of
    (epoch seed, index), so neighbouring indices give decorrelated streams. 63 bits."""
    s = np.random.SeedSequence([int(epoch_seed) & 0xFFFFFFFFFFFFFFFF, int(index)])
    return int(s.generate_state(1, np.uint64)[0] >> np.uint64(1))


def crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
             gen: torch.Generator) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box (top, left, h, w) (Szegedy et al. 2015, sec. 6): up to 10 draws
    of an area fraction uniform in `scale` and an aspect ratio w/h log-uniform in `ratio`,
    the first whose box fits in the image, at a uniform position; if none fits, the largest
    centred box with the ratio clamped into `ratio`. Every draw comes from `gen`."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        r = math.exp(log_lo + (log_hi - log_lo) * u[1])
        w = int(round(math.sqrt(target * r)))
        h = int(round(math.sqrt(target / r)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    r = width / height
    if r < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif r > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@functools.lru_cache(maxsize=1)
def _tv_decode_jpeg():
    """torchvision.io.decode_jpeg (looked up once per process), or None where this torchvision
    has none. torchvision 0.29 deprecates its image codecs in favour of TorchCodec and warns on
    every call; that one warning is silenced around the call (~5 us), and PIL takes over once
    the function is gone."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None

    def dec(data: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities",
                                    category=DeprecationWarning)
            return decode_jpeg(data, mode=ImageReadMode.RGB)

    return dec


def decode(path: str) -> torch.Tensor:
    """uint8 (3, H, W) RGB. JPEGs through torchvision.io.decode_jpeg (libjpeg-turbo straight
    into a tensor: 1.1 ms against PIL's 2.0 ms for decode + convert + copy of a ~370x420 JPEG,
    perf/loader.py); anything else, or a JPEG it cannot read (e.g. CMYK on an old
    torchvision), through PIL."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e}") from None
    tv = _tv_decode_jpeg()
    if raw[:3] == JPEG_MAGIC and tv is not None:
        try:
            return tv(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
        except RuntimeError:
            pass  # fall through to PIL, which reads more JPEG variants
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image {path}: {e}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def train_transform(img: torch.Tensor, opts: ImageFolderOptions, gen: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop to image_size (antialiased bilinear) + horizontal flip (p = 0.5) of a
    uint8 (3, H, W) image; uint8 (S, S, 3) out (see _resize_hwc)."""
    top, left, h, w = crop_box(img.shape[-1], img.shape[-2], opts.crop_scale, opts.crop_ratio, gen)
    out = _resize_hwc(img[:, top:top + h, left:left + w], opts.image_size, opts.image_size)
    if bool(torch.rand(1, generator=gen) < 0.5):
        out = out.flip(1)
    return out


def eval_transform(img: torch.Tensor, opts: ImageFolderOptions) -> torch.Tensor:
    """Resize the short side to floor(image_size / eval_crop_pct) (the long side in proportion,
    truncated, as torchvision's Resize), centre-crop image_size; uint8 (S, S, 3) out."""
    s = opts.image_size
    short = int(math.floor(s / opts.eval_crop_pct))
    h, w = img.shape[-2:]
    nh, nw = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    out = _resize_hwc(img, nh, nw)
    top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))  # torchvision's CenterCrop
    return out[top:top + s, left:left + s].contiguous()


def _resize_hwc(chw: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 (3, h0, w0) view to a contiguous (h, w, 3).

    The input is made channels_last (a row-wise copy of the crop) so that torch's uint8
    antialias kernel reads and writes channels_last: its output is then HWC memory, and the
    batches collate to (B, S, S, 3), which the task views as channels_last (B, 3, S, S) with no
    copy. Same pixels as torchvision's resized_crop; 0.32 against 0.93 ms for its output made
    HWC (a 300 px crop to 224 px, one core)."""
    x = chw[None].contiguous(memory_format=torch.channels_last)
    out = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).contiguous()  # a no-op view when the kernel kept channels_last


class _Files(torch.utils.data.Dataset):
    """Items are keyed (split, index, epoch_seed): epoch_seed None means evaluation (no
    randomness). A key, not a bare index, so one persistent worker pool serves every epoch."""

    def __init__(self, splits: dict[str, _Split], opts: ImageFolderOptions):
        self.splits, self.opts = splits, opts

    def __len__(self) -> int:  # not used for sampling: the batch sampler yields the keys
        return sum(len(s) for s in self.splits.values())

    def __getitem__(self, key):
        split, i, epoch_seed = key
        sp = self.splits[split]
        img = decode(sp.path(i))
        if epoch_seed is None:
            x = eval_transform(img, self.opts)
        else:
            x = train_transform(img, self.opts, torch.Generator().manual_seed(sample_seed(epoch_seed, i)))
        return x, int(sp.labels[i])


class _Batches(torch.utils.data.Sampler):
    """A batch sampler whose batches are set before each pass (persistent workers reuse the
    DataLoader, so the keys cannot be fixed when it is built)."""

    def __init__(self):
        self.batches: list[list[tuple]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _unwrapped(loader):
    """Iterate a DataLoader; a DataError raised in a worker arrives re-raised with the worker's
    whole traceback in its message, so keep only its own message (the CLI prints it as is)."""
    try:
        yield from loader
    except DataError as e:
        lines = str(e).strip().splitlines()
        if len(lines) > 1 and "Traceback" in str(e):
            raise DataError(lines[-1].split("DataError: ", 1)[-1]) from None
        raise


@dataclass
class StreamingData:
    train: _Split
    holdout: _Split
    test: _Split
    num_classes: int
    classes: list[str]
    options: ImageFolderOptions
    mean: tuple = (0.485, 0.456, 0.406)  # ImageNet statistics (torchvision convention)
    std: tuple = (0.229, 0.224, 0.225)
    info: dict = field(default_factory=dict)
    streaming: bool = True
    _loaders: dict = field(default_factory=dict, repr=False)

    @property
    def image_size(self) -> int:
        return self.options.image_size

    def split(self, name: str) -> _Split:
        return {"train": self.train, "holdout": self.holdout, "test": self.test}[name]

    def _loader(self, role: str, pin: bool):
        """One DataLoader per role ("train" / "eval"), built once and kept: its workers
        persist across epochs, evaluations and the runs that share this (memoised) data."""
        key = (role, pin)
        if key not in self._loaders:
            w = self.options.workers
            sampler = _Batches()
            ds = _Files({"train": self.train, "holdout": self.holdout, "test": self.test}, self.options)
            loader = torch.utils.data.DataLoader(
                ds, batch_sampler=sampler, num_workers=w, pin_memory=pin, persistent_workers=w > 0,
                prefetch_factor=self.options.prefetch_factor if w else None)
            self._loaders[key] = (loader, sampler)
        return self._loaders[key]

    def train_batches(self, order: np.ndarray, epoch_seed: int, batch_size: int, *, pin: bool = False):
        """uint8 (B, S, S, 3) and int64 (B,) CPU batches of the train split in `order` (indices
        into it), len(order) // batch_size full batches; augmentation seeded by epoch_seed."""
        loader, sampler = self._loader("train", pin)
        order = np.asarray(order, dtype=np.int64)
        n = len(order) // batch_size * batch_size
        sampler.batches = [[("train", int(i), int(epoch_seed)) for i in order[lo:lo + batch_size]]
                           for lo in range(0, n, batch_size)]
        yield from _unwrapped(loader)

    def eval_batches(self, split: str, batch_size: int, *, pin: bool = False):
        """uint8 (B, S, S, 3) and int64 (B,) CPU batches of `split` ("test" | "holdout") in file
        order, resized and centre-cropped; the last batch may be short."""
        loader, sampler = self._loader("eval", pin)
        n = len(self.split(split))
        sampler.batches = [[(split, i, None) for i in range(lo, min(lo + batch_size, n))]
                           for lo in range(0, n, batch_size)]
        yield from _unwrapped(loader)

    def sample_uint8(self, n: int, device) -> torch.Tensor:
        """The first n test images, eval-transformed, uint8 (n, 3, S, S) (for FLOPs counting)."""
        ds = _Files({"test": self.test}, self.options)
        x = torch.stack([ds[("test", i, None)][0] for i in range(min(n, len(self.test)))])
        return x.permute(0, 3, 1, 2).contiguous().to(device)


def _scan(folder: Path) -> tuple[list[str], _Split]:
    from .cache import list_imagefolder

    classes, items = list_imagefolder(folder)
    rel = np.array([str(p.relative_to(folder)).encode() for p, _ in items], dtype=np.bytes_)
    return classes, _Split(str(folder), rel, np.array([c for _, c in items], dtype=np.int64))


def load(cfg, dataset: str = "imagefolder") -> StreamingData:
    """Scan <data root>/<kwargs.path>/{train,val}, carve the held-out split from train and the
    subsets by data_seed. Options (data.kwargs): data/imagefolder_options.py."""
    opts = parse(cfg.kwargs, dataset)
    base = data_root(cfg.root) / opts.path
    for sub in ("train", "val"):
        if not (base / sub).is_dir():
            raise DataError(f"missing {base / sub} (expected <data root>/{opts.path}/{{train,val}}/<class>/*)")
    classes, train = _scan(base / "train")
    classes_v, val = _scan(base / "val")
    if classes != classes_v:
        raise DataError(f"train and val class folders differ under {base}")
    try:
        idx = make_splits(train.labels, val.labels, holdout=cfg.holdout, train_subset=cfg.train_subset,
                          test_subset=cfg.test_subset, data_seed=cfg.data_seed)
    except ValueError as e:
        raise DataError(f"cannot carve splits from {len(train)} train / {len(val)} val images: {e}") from None
    return StreamingData(train=train.subset(idx["train"]), holdout=train.subset(idx["holdout"]),
                         test=val.subset(idx["test"]), num_classes=len(classes), classes=classes, options=opts,
                         info={"source": dataset, "path": str(base), "n_train": len(idx["train"]),
                               "n_holdout": len(idx["holdout"]), "n_test": len(idx["test"])})


def load_imagenet(cfg) -> StreamingData:
    return load(cfg, dataset="imagenet")
