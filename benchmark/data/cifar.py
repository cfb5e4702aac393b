"""CIFAR-10/100 from torchvision's format or an ImageFolder copy under the data root."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .cache import load_imagefolder_arrays
from .paths import cifar_candidates, data_root, find_cifar
from .tensors import from_arrays


def _load(name: str, cfg):
    found = find_cifar(name, cfg.root)
    if found is None:
        if not cfg.download:
            c = cifar_candidates(name, cfg.root)
            raise DataError(f"{name} not found: looked for {c['imagefolder']}/{{train,test}}, {c['pack']} and "
                            f"{c['torchvision']}. Point --data-root / W2S_DATA_ROOT at the folder "
                            "holding it, or set data.download: true.")
        found = ("torchvision", data_root(cfg.root))
    kind, path = found
    if kind == "pack":
        from .pack import load_file

        return load_file(path, cfg)
    if kind == "imagefolder":
        trx, try_, classes = load_imagefolder_arrays(path / "train")
        tex, tey, classes_te = load_imagefolder_arrays(path / "test")
        if classes != classes_te:
            raise DataError(f"train and test class folders differ under {path}")
    else:
        import torchvision

        ds_cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        try:
            tr = ds_cls(str(path), train=True, download=cfg.download)
            te = ds_cls(str(path), train=False, download=cfg.download)
        except Exception as e:  # download or integrity failure
            raise DataError(f"could not load {name} from {path}: {e}") from None
        trx, try_, tex, tey = tr.data, np.array(tr.targets), te.data, np.array(te.targets)
        classes = list(tr.classes)
    return from_arrays(trx, try_, tex, tey, classes, cfg, info={"source": kind, "path": str(path)})


def load_cifar10(cfg):
    return _load("cifar10", cfg)


def load_cifar100(cfg):
    return _load("cifar100", cfg)
