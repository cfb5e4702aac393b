"""FID (and optionally KID) through torch-fidelity, from uint8 image tensors.

Two feature spaces, never confused (the metric name says which one produced a number):

- "fid": standard FID on torch-fidelity's InceptionV3 ("inception-v3-compat", 2048-d pool
  features). Needs its weights: a local file (task_options fid.weights or W2S_FID_WEIGHTS),
  torch hub's cache, or a download; if none works the run stops with a clear message. It
  never falls back to another feature space.
- "fid_cifarnet": the same Frechet distance on the 256-d pooled features of `CifarNet`, a
  small classifier the harness trains on the run's own training split (fixed seed and
  recipe, cached on disk). Registered with torch-fidelity as the feature extractor
  "w2s-cifarnet". Its values are NOT comparable with Inception FID or across datasets and
  feature nets; they are for offline machines and relative comparisons within one suite.

FID(mu1, S1, mu2, S2) = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))  (Heusel et al. 2017),
computed by torch_fidelity.metric_fid. Reference statistics are computed once per real split
and cached in memory and on disk (keyed by the split's pixels and the extractor).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError

CIFARNET = "w2s-cifarnet"
INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


# ------------------------------------------------------------------ feature networks
class CifarNet(nn.Module):
    """A small VGG-style classifier for 16x16..32x32 images; uint8 (B, 3, H, W) input.

    Three stages of two 3x3 conv-BN-ReLU layers (w, 2w, 4w channels), max-pooling between
    them, global average pooling -> `features` (4w-d) -> linear `logits`.
    """

    def __init__(self, num_classes: int = 10, width: int = 64):
        super().__init__()

        def stage(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        w = width
        self.body = nn.Sequential(*stage(3, w), nn.MaxPool2d(2), *stage(w, 2 * w), nn.MaxPool2d(2),
                                  *stage(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * w, num_classes)
        self.dim = 4 * w

    def features(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return self.body(x_uint8.float() / 127.5 - 1)

    def forward(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x_uint8))


def _extractor_class():
    from torch_fidelity import FeatureExtractorBase

    class CifarNetExtractor(FeatureExtractorBase):
        """torch-fidelity interface around a trained CifarNet (uint8 NCHW in, features out)."""

        def __init__(self, name, features_list, net: CifarNet | None = None, **kwargs):
            super().__init__(name, features_list)
            if net is None:
                raise UserError("the w2s-cifarnet extractor needs a trained CifarNet (net=...)")
            self.net = net

        @staticmethod
        def get_provided_features_list():
            return ("features", "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            f = self.net.features(x)
            out = {"features": f, "logits": self.net.fc(f)}
            return tuple(out[k] for k in self.features_list)

    return CifarNetExtractor


def register_cifarnet() -> None:
    """Register "w2s-cifarnet" with torch-fidelity's feature-extractor registry (once)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if CIFARNET not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(CIFARNET, _extractor_class())


def _seed(*parts: int) -> int:
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(ss.generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def train_cifarnet(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, width: int, epochs: int,
                   batch_size: int, lr: float, seed: int, device) -> CifarNet:
    """Train the feature classifier: SGD (momentum 0.9, nesterov, wd 5e-4), cosine LR,
    random flips and 2-pixel-padded crops. x: uint8 (N, 3, H, W), y: (N,) int64. Runs under
    its own RNG (torch.random.fork_rng), so the caller's global RNG is untouched."""
    from ..data.tensors import augment

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = CifarNet(num_classes, width).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        steps_per_epoch = max(1, len(x) // batch_size)
        total = epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
        net.train()
        for ep in range(epochs):
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(_seed(seed, ep)))
            for i in range(steps_per_epoch):
                idx = order[i * batch_size:(i + 1) * batch_size]
                g = torch.Generator().manual_seed(_seed(seed, ep, i, 7))
                xb = augment(x[idx.to(x.device)], g, 2, True).to(device)
                loss = F.cross_entropy(net(xb), y[idx.to(y.device)].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@torch.no_grad()
def accuracy(net: CifarNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    correct = 0
    for lo in range(0, len(x), batch_size):
        correct += int((net(x[lo:lo + batch_size]).argmax(1) == y[lo:lo + batch_size]).sum())
    return 100.0 * correct / max(1, len(x))


def tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        a = t.detach().cpu().contiguous()
        h.update(str((tuple(a.shape), str(a.dtype))).encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def _atomic_save(obj, path: Path) -> None:
    from ..store import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def cached_cifarnet(train_x, train_y, num_classes: int, *, cfg: dict, cache_dir: Path, device,
                    eval_x=None, eval_y=None, log=None) -> tuple[CifarNet, dict]:
    """Train (or load from `cache_dir`) the CifarNet for this training split and recipe.

    Returns the frozen net and info {key, test_accuracy, path}. The key hashes the pixels,
    the labels and the recipe, so a different subset or image size gets its own net."""
    key = hashlib.sha256(json.dumps({"data": tensor_digest(train_x, train_y), "cfg": cfg,
                                     "classes": num_classes, "v": 1}, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"cifarnet-{key}.pt"
    net = CifarNet(num_classes, cfg["width"]).to(device)
    if path.is_file():
        blob = torch.load(path, map_location=device, weights_only=True)
        net.load_state_dict(blob["state"])
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        info = {"key": key, "path": str(path), **blob["info"]}
        return net, info
    if log:
        log(f"training the fid_cifarnet feature classifier ({cfg['epochs']} epochs on {len(train_x)} images)")
    net = train_cifarnet(train_x, train_y, num_classes, width=cfg["width"], epochs=cfg["epochs"],
                         batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"], device=device)
    info = {"test_accuracy": accuracy(net, eval_x.to(device), eval_y.to(device)) if eval_x is not None else None,
            "n_train": len(train_x)}
    _atomic_save({"state": net.state_dict(), "info": info}, path)
    return net, {"key": key, "path": str(path), **info}


# ------------------------------------------------------------------ Inception weights
def inception_weights(path: str | None) -> str:
    """A local file with torch-fidelity's InceptionV3 weights, or a UserError saying how to
    provide one. Order: the explicit path, W2S_FID_WEIGHTS, torch hub's cache, a download."""
    path = path or os.environ.get("W2S_FID_WEIGHTS") or None
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"Inception weights for FID not found at {p} (task_options fid.weights / "
                            "W2S_FID_WEIGHTS)")
        return str(p)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if hub.is_file():
        return str(hub)
    import socket

    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        torch.hub.load_state_dict_from_url(URL_INCEPTION_V3, progress=False)
    except Exception as e:  # no network, proxy, HTTP error: all mean "cannot be fetched"
        raise UserError(
            f"metric `fid` needs torch-fidelity's InceptionV3 weights ({INCEPTION_FILE}), which could "
            f"not be downloaded from {URL_INCEPTION_V3} ({type(e).__name__}: {e}). Put the file on this "
            "machine and set task_options.fid.weights or W2S_FID_WEIGHTS to its path, or use the offline "
            "metric `fid_cifarnet` (a different feature space: its values are not Inception FID).") from None
    finally:
        socket.setdefaulttimeout(old)
    return str(hub)


# ------------------------------------------------------------------------- evaluator
class FidEvaluator:
    """Frechet distance (and KID) between generated uint8 images and cached real statistics.

    `extractor` is a torch-fidelity FeatureExtractorBase taking uint8 (B, 3, H, W);
    `feature` names the layer used; `name` prefixes the metric keys ("fid" or "fid_cifarnet"
    -> keys fid / kid or fid_cifarnet / kid_cifarnet)."""

    def __init__(self, *, name: str, extractor, feature: str, extractor_key: str, device,
                 batch_size: int = 250, kid: bool = False, kid_subset_size: int = 1000,
                 kid_subsets: int = 100, cache_dir: Path | None = None):
        self.name = name
        self.extractor = extractor
        self.feature = feature
        self.extractor_key = extractor_key
        self.device = device
        self.batch_size = batch_size
        self.kid = kid
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.refs: dict[str, dict] = {}

    @property
    def kid_name(self) -> str:
        return "kid" + self.name[3:]

    @torch.no_grad()
    def features(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """(N, D) float64 CPU features of uint8 (N, 3, H, W) images."""
        if x_uint8.dtype != torch.uint8:
            raise ValueError("FID features take uint8 images")
        out = []
        for lo in range(0, len(x_uint8), self.batch_size):
            f = self.extractor(x_uint8[lo:lo + self.batch_size].to(self.device))
            f = self.extractor.convert_features_tuple_to_dict(f)[self.feature]
            out.append(f.double().cpu())
        return torch.cat(out)

    def statistics(self, feats: torch.Tensor) -> dict:
        from torch_fidelity.metric_fid import fid_features_to_statistics

        return fid_features_to_statistics(feats)

    def set_reference(self, split: str, x_uint8: torch.Tensor) -> dict:
        """Statistics of a real split (memory, then disk cache, then computed)."""
        key = f"{self.extractor_key}-{tensor_digest(x_uint8)[:16]}"
        path = self.cache_dir / f"ref-{key}.pt" if self.cache_dir else None
        if path is not None and path.is_file():
            ref = torch.load(path, weights_only=False)
        else:
            feats = self.features(x_uint8)
            ref = {**self.statistics(feats), "n": len(x_uint8)}
            if self.kid:
                ref["features"] = feats
            if path is not None:
                _atomic_save(ref, path)
        if self.kid and "features" not in ref:
            ref["features"] = self.features(x_uint8)
        self.refs[split] = ref
        return ref

    def score(self, samples_uint8: torch.Tensor, split: str, feats: torch.Tensor | None = None) -> dict[str, float]:
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

        ref = self.refs[split]
        feats = self.features(samples_uint8) if feats is None else feats
        fid = fid_statistics_to_metric(self.statistics(feats), ref, verbose=False)[KEY_METRIC_FID]
        out = {self.name: max(0.0, float(fid))}  # tiny negative values are round-off
        if self.kid:
            from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

            n = min(self.kid_subset_size, len(feats), len(ref["features"]))
            out[self.kid_name] = float(kid_features_to_metric(
                feats, ref["features"], kid_subsets=self.kid_subsets, kid_subset_size=n, verbose=False,
                rng_seed=2020)[KEY_METRIC_KID_MEAN])
        return out


def cifarnet_evaluator(net: CifarNet, *, key: str, device, **kw) -> FidEvaluator:
    from torch_fidelity.utils import create_feature_extractor

    register_cifarnet()
    ext = create_feature_extractor(CIFARNET, ["features"], cuda=False, net=net, verbose=False).to(device)
    return FidEvaluator(name="fid_cifarnet", extractor=ext, feature="features",
                        extractor_key=f"cifarnet-{key}", device=device, **kw)


def inception_evaluator(weights: str | None, *, device, **kw) -> FidEvaluator:
    from torch_fidelity.utils import create_feature_extractor

    path = inception_weights(weights)
    try:
        ext = create_feature_extractor(INCEPTION, ["2048"], cuda=False, verbose=False,
                                       feature_extractor_weights_path=path).to(device)
    except Exception as e:
        raise UserError(f"cannot load Inception weights from {path}: {type(e).__name__}: {e}") from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return FidEvaluator(name="fid", extractor=ext, feature="2048", extractor_key=f"inception-{digest}",
                        device=device, **kw)
