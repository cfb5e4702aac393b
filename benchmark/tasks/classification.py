"""Classification: CIFAR-style in-memory datasets (augmented as tensors on the device) and
streamed ImageFolder trees (ImageNet), any registered or timm model, KD losses."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..data.tensors import ClassificationData, apply_augment, augment_draws
from ..errors import DataError
from ..models import build_model
from ..registry import DATASETS, LOSSES
from .base import count_flops, memo_data
from .base import stream_seed as _seed


def load_data(settings) -> ClassificationData:
    """Load (and memoise per process) the dataset a run's settings name."""
    return memo_data(settings.data.model_dump_json(),
                     lambda: DATASETS[settings.data.dataset].load()(settings.data))


class Classification:
    direction = "higher"

    def __init__(self, settings, *, seeds: dict, device: torch.device):
        self.s = settings
        self.seeds = seeds
        self.device = device
        self.metric = settings.targets.metric
        if self.metric not in ("accuracy", "top5"):
            raise DataError(f"classification reports accuracy/top5, not {self.metric!r}")
        data = load_data(settings)
        self.data = data
        self.streaming = data.streaming
        self.batch_size = settings.train.batch_size
        n = len(data.train)
        if n < self.batch_size:
            raise DataError(f"train split has {n} images, fewer than batch_size {self.batch_size}")
        # drop the last partial batch: every step sees a full batch (BN statistics, pairing)
        self.steps_per_epoch = n // self.batch_size
        self.num_classes = data.num_classes
        self.info = dict(data.info)
        if not self.streaming:
            self.train = data.train.to(device)
            self.splits = {"test": data.test.to(device), "holdout": data.holdout.to(device)}
        self.mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(data.std, device=device).view(1, -1, 1, 1) * 255
        self.channels_last = settings.train.channels_last
        d = settings.distill
        self.loss_fn = LOSSES[d.loss].load() if d is not None else None

    # ------------------------------------------------------------------ model & data
    def build_model(self, model_cfg, init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        m = build_model(model_cfg.name, self.num_classes, model_cfg.kwargs).to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        # (x - mean) / std in place on a fresh float copy: the same values as out of place,
        # one full-size allocation instead of three (measured on one CPU core, a 64-image
        # channels_last batch at 224 px: 2.5 -> 1.2 ms per image)
        x = x_uint8.to(torch.float32, copy=True).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def batches(self, epoch: int, start: int):
        if self.streaming:
            yield from self._stream_batches(epoch, start)
            return
        n, b = len(self.train), self.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.seeds["data_order"], epoch)))
        aug = self.s.train.augment
        pad, flip = aug.crop_padding, aug.hflip
        # Indices and augmentation draws for a chunk of steps are made on the CPU (each batch
        # from its own (seed, epoch, index) generator, so batches stay a pure function of
        # them) and reach the device in one transfer: no host-device sync inside a step.
        chunk = 64
        for lo in range(start, self.steps_per_epoch, chunk):
            hi = min(lo + chunk, self.steps_per_epoch)
            draws = torch.stack([augment_draws(b, torch.Generator().manual_seed(
                _seed(self.seeds["augment"], epoch, i)), pad, flip) for i in range(lo, hi)])
            plan = torch.cat([order[lo * b:hi * b].view(hi - lo, 1, b), draws], 1)  # (steps, 4, B)
            if self.device.type == "cuda":
                plan = plan.pin_memory().to(self.device, non_blocking=True)
            for k in range(hi - lo):
                idx = plan[k, 0]
                x = apply_augment(self.train.x[idx], plan[k, 1:], pad, flip)
                yield self.normalize(x), self.train.y[idx]

    def _stream_batches(self, epoch: int, start: int):
        """Streamed ImageFolder batches: the epoch's order (data_order stream) and the seed of
        its per-sample augmentation generators (augment stream) are drawn here, decoding and
        cropping run in the data layer's workers; uint8 crosses to the device (pinned and
        non-blocking on a GPU) and is normalised there."""
        n, b = len(self.data.train), self.batch_size
        order = np.random.default_rng(_seed(self.seeds["data_order"], epoch)).permutation(n)
        order = order[start * b: self.steps_per_epoch * b]
        pin = self.device.type == "cuda"
        for x, y in self.data.train_batches(order, _seed(self.seeds["augment"], epoch), b, pin=pin):
            x = self._from_nhwc(x.to(self.device, non_blocking=True))
            yield self.normalize(x), y.to(self.device, non_blocking=True)

    def _from_nhwc(self, x: torch.Tensor) -> torch.Tensor:
        """The streaming loader's (B, H, W, C) uint8 as (B, C, H, W): a channels_last view, no
        copy (made contiguous when the run is not channels_last)."""
        x = x.permute(0, 3, 1, 2)
        return x if self.channels_last else x.contiguous()

    # ------------------------------------------------------------------------ losses
    def loss(self, model, batch, teacher, weight: float, step: int):
        x, y = batch
        logits = model(x)
        ls = self.s.train.label_smoothing
        d = self.s.distill
        if d is None or weight == 0:
            ce = F.cross_entropy(logits.float(), y, label_smoothing=ls)
            return ce, {"ce": ce.detach()}
        t_logits = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
        kw = {"tfkd_a": d.tfkd_a} if d.loss == "tfkd" else dict(d.kwargs)
        return self.loss_fn(logits, y, t_logits, alpha=d.alpha, temperature=d.temperature,
                            weight=weight, label_smoothing=ls, **kw)

    # -------------------------------------------------------------------- evaluation
    @torch.inference_mode()
    def evaluate(self, model, split: str) -> dict[str, float]:
        n = len(self.data.split(split)) if self.streaming else len(self.splits[split])
        if n == 0:
            return {}
        correct = top5 = 0
        prec = self.s.train.precision  # evaluate in the training's autocast precision
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec)
        for x, y in self._eval_batches(split):
            with torch.autocast(self.device.type, dtype=amp, enabled=amp is not None):
                logits = model(self.normalize(x))
            correct += (logits.argmax(1) == y).sum()
            if self.metric == "top5":
                top5 += (logits.topk(min(5, logits.shape[1]), 1).indices == y[:, None]).any(1).sum()
        out = {"accuracy": 100.0 * float(correct) / n}
        if self.metric == "top5":
            out["top5"] = 100.0 * float(top5) / n
        return out

    def _eval_batches(self, split: str):
        """uint8 images and labels of `split` on the device, in eval-batch-size chunks: slices
        of the in-memory tensors, or the streamed files resized and centre-cropped by the data
        layer's workers. Both paths then share evaluate's autocast and metrics."""
        bs = self.s.train.eval.batch_size
        if self.streaming:
            pin = self.device.type == "cuda"
            for x, y in self.data.eval_batches(split, bs, pin=pin):
                yield self._from_nhwc(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)
            return
        sp = self.splits[split]
        for lo in range(0, len(sp), bs):
            yield sp.x[lo:lo + bs], sp.y[lo:lo + bs]

    def flops(self, model, teacher) -> dict[str, float]:
        """Per-step FLOPs measured on a 2-image batch and scaled by the batch size (both
        linear in batch), on copies so BN statistics and grads are untouched."""
        x = self.normalize(self.splits["test"].x[:2] if not self.streaming else self.data.sample_uint8(2, self.device))
        m = copy.deepcopy(model)
        m.train()

        def fwd_bwd():
            m(x).float().sum().backward()

        per2 = count_flops(fwd_bwd)
        out = {"student_step": per2 / 2 * self.batch_size, "teacher_step": 0.0}
        if teacher is not None:
            with torch.no_grad():
                out["teacher_step"] = count_flops(lambda: teacher(x)) / 2 * self.batch_size
        with torch.no_grad():
            m.eval()
            out["eval_per_sample"] = count_flops(lambda: m(x)) / 2
        return out


def build(settings, *, seeds: dict, device: torch.device) -> Classification:
    return Classification(settings, seeds=seeds, device=device)
