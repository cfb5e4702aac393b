"""Classification: CIFAR-style in-memory datasets (augmented as tensors on the device) and
streamed ImageFolder trees (ImageNet), any registered or timm model, KD losses."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..data.split import stratified_indices
from ..data.tensors import ClassificationData, apply_augment, augment_draws
from ..distill.losses import Outputs, build_distillation
from ..errors import DataError, UserError
from ..models import build_model
from ..registry import DATASETS
from .base import count_flops, memo_data
from .base import stream_seed as _seed
from .classification_options import parse as parse_options

FLIP_STREAM = 0xF11B  # key of the augment seed stream that draws the alternating-flip bits
TTA_VIEWS = {0: 1, 1: 2, 2: 6}


@torch.no_grad()
def logits_tta(model, x: torch.Tensor, level: int) -> torch.Tensor:
    """Test-time augmentation as airbench94 publishes it. level 0: the image; 1: the mean of
    the image's and its mirror's logits; 2: 1/2 (level 1) + 1/4 each (level 1 of the image
    translated one pixel up-left and down-right, reflect padding): 6 forward passes."""
    def mirror(z):
        return 0.5 * model(z) + 0.5 * model(z.flip(-1))

    if level == 0:
        return model(x)
    if level == 1:
        return mirror(x)
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * mirror(p[:, :, :h, :w]) + 0.5 * mirror(p[:, :, 2:2 + h, 2:2 + w])
    return 0.5 * mirror(x) + 0.5 * shifted


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
        self.distill = build_distillation(settings.distill)  # None: no distillation
        self._init_options(settings.task_options)

    def _init_options(self, task_options: dict) -> None:
        """task_options (classification_options): the recipe the loop reads as `task.recipe`,
        the alternating-flip bits and the fixed test subset of evaluations before the last."""
        self.opts = parse_options(task_options)
        self.recipe = self.opts.recipe
        self.eval_final = True  # the loop sets it before every evaluation
        self.base_flip = None
        if self.opts.augment.flip == "alternating":
            if self.streaming:
                raise UserError("task_options.augment.flip: alternating needs an in-memory dataset")
            g = torch.Generator().manual_seed(_seed(self.seeds["augment"], FLIP_STREAM))
            self.base_flip = (torch.rand(len(self.data.train), generator=g) < 0.5).long()
        self.test_subset = None
        n = self.opts.eval.test_subset
        if n is not None:
            if self.streaming:
                raise UserError("task_options.eval.test_subset needs an in-memory dataset")
            labels = self.data.test.y.numpy()
            if n > len(labels):
                raise DataError(f"task_options.eval.test_subset {n} exceeds the {len(labels)} test images")
            # fixed by the data seed: every arm, seed and the teacher see the same subset
            rng = np.random.default_rng(_seed(self.s.data.data_seed, FLIP_STREAM + 1))
            self.test_subset = torch.as_tensor(np.sort(stratified_indices(labels, n, rng)), device=self.device)

    # ------------------------------------------------------------------ model & data
    def build_model(self, model_cfg, init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        m = build_model(model_cfg.name, self.num_classes, model_cfg.kwargs).to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        init = self.recipe.data_init
        if init is not None:
            self._init_from_data(m, model_cfg.name, init.images, init_seed)
        return m

    def _init_from_data(self, m: torch.nn.Module, name: str, n: int, init_seed: int) -> None:
        """recipe.data_init: the model's `init_from_data` hook sees n normalised training
        images chosen by the init seed (paired arms share them)."""
        if not hasattr(m, "init_from_data"):
            raise UserError(f"task_options.recipe.data_init: model {name!r} has no init_from_data hook")
        if self.streaming:
            x = self.data.sample_uint8(n, self.device)
        else:
            n = min(n, len(self.train))
            idx = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(init_seed))[:n]
            x = self.train.x[idx.to(self.device)]
        with torch.no_grad():
            m.init_from_data(self.normalize(x))

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
        pad_mode = self.opts.augment.pad_mode
        # Indices and augmentation draws for a chunk of steps are made on the CPU (each batch
        # from its own (seed, epoch, index) generator, so batches stay a pure function of
        # them) and reach the device in one transfer: no host-device sync inside a step.
        chunk = 64
        for lo in range(start, self.steps_per_epoch, chunk):
            hi = min(lo + chunk, self.steps_per_epoch)
            draws = torch.stack([augment_draws(b, torch.Generator().manual_seed(
                _seed(self.seeds["augment"], epoch, i)), pad, flip) for i in range(lo, hi)])
            plan = torch.cat([order[lo * b:hi * b].view(hi - lo, 1, b), draws], 1)  # (steps, 4, B)
            if self.base_flip is not None:  # alternating: each image's own bit, inverted every odd epoch
                plan[:, 3] = self.base_flip[plan[:, 0]] ^ (epoch % 2)
            if self.device.type == "cuda":
                plan = plan.pin_memory().to(self.device, non_blocking=True)
            for k in range(hi - lo):
                idx = plan[k, 0]
                x = apply_augment(self.train.x[idx], plan[k, 1:], pad, flip, pad_mode)
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
        """CE (with label smoothing) and, when active, the registered distillation term on
        the logits, weighted by distill.losses.combine. A teacher-free loss gets no teacher
        logits (the teacher is not run)."""
        x, y = batch
        logits = model(x)
        ce = F.cross_entropy(logits.float(), y, label_smoothing=self.s.train.label_smoothing)
        parts = {"ce": ce.detach()}
        dist = self.distill
        if dist is None or not dist.active(teacher, weight):
            return ce, parts
        t_logits = None
        if dist.needs_teacher:
            with torch.no_grad():
                t_logits = teacher(x)
        return dist.apply(ce, parts, Outputs(logits, t_logits, y), weight)

    # -------------------------------------------------------------------- evaluation
    @torch.inference_mode()
    def evaluate(self, model, split: str) -> dict[str, float]:
        n = len(self.data.split(split)) if self.streaming else len(self.splits[split])
        subset = self.test_subset if split == "test" and not self.eval_final else None
        if subset is not None:
            n = len(subset)
        if n == 0:
            return {}
        correct = top5 = 0
        prec = self.s.train.precision  # evaluate in the training's autocast precision
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec)
        level = self.opts.eval.tta_test if split == "test" else self.opts.eval.tta_holdout
        for x, y in self._eval_batches(split, subset):
            with torch.autocast(self.device.type, dtype=amp, enabled=amp is not None):
                logits = logits_tta(model, self.normalize(x), level)
            correct += (logits.argmax(1) == y).sum()
            if self.metric == "top5":
                top5 += (logits.topk(min(5, logits.shape[1]), 1).indices == y[:, None]).any(1).sum()
        out = {"accuracy": 100.0 * float(correct) / n}
        if self.metric == "top5":
            out["top5"] = 100.0 * float(top5) / n
        return out

    def _eval_batches(self, split: str, subset: torch.Tensor | None = None):
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
        if subset is not None:
            for lo in range(0, len(subset), bs):
                yield sp.x[subset[lo:lo + bs]], sp.y[subset[lo:lo + bs]]
            return
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
            # one test image's evaluation: every TTA view is a forward pass
            out["eval_per_sample"] = count_flops(lambda: m(x)) / 2 * TTA_VIEWS[self.opts.eval.tta_test]
        return out


def build(settings, *, seeds: dict, device: torch.device) -> Classification:
    return Classification(settings, seeds=seeds, device=device)
