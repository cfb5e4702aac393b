"""Detection: COCO-format data (or the synthetic shapes), torchvision detectors, PKD feature
and sigmoid logit distillation, COCO bbox AP (percent) from pycocotools' COCOeval.

A batch is (images: list of float (3, S, S) in [0, 1], targets: list of {boxes, labels}),
all on the device; the only augmentation is a horizontal flip (train.augment.hflip), drawn
per image from a generator seeded by (augment seed, epoch, batch index), so batches are a
pure function of (seeds, epoch, index). train.augment.crop_padding does not apply here.
"""

from __future__ import annotations

import copy

import torch

from ..data.coco import DetectionData, coco_ap, to_coco_dets
from ..distill.detection import DetectorOutputs
from ..distill.losses import Outputs, build_distillation
from ..errors import DataError
from ..models.detection import build_detector
from ..registry import DATASETS
from .base import count_flops, memo_data
from .base import stream_seed as _seed
from .detection_options import METRICS, options


def load_data(settings) -> DetectionData:
    """Load (and memoise per process) the dataset a run's settings name."""
    size = options(settings)["image_size"]
    return memo_data(settings.data.model_dump_json() + f"|{size}",
                     lambda: DATASETS[settings.data.dataset].load()(settings.data, size))


class Detection:
    direction = "higher"

    def __init__(self, settings, *, seeds: dict, device: torch.device):
        self.s = settings
        self.seeds = seeds
        self.device = device
        self.metric = settings.targets.metric
        if self.metric not in METRICS:
            raise DataError(f"detection reports {', '.join(METRICS)}, not {self.metric!r}")
        self.opts = options(settings)
        data = load_data(settings)
        self.num_classes = data.num_classes
        self.cat_ids = data.cat_ids
        self.batch_size = settings.train.batch_size
        n = len(data.train)
        if n < self.batch_size:
            raise DataError(f"train split has {n} images, fewer than batch_size {self.batch_size}")
        self.steps_per_epoch = n // self.batch_size  # full batches only (pairing, BN statistics)
        self.info = dict(data.info)
        self.train = data.train.to(device)
        self.splits = {"test": data.test.to(device), "holdout": data.holdout.to(device)}
        self.hflip = settings.train.augment.hflip
        self.distill = build_distillation(settings.distill)  # None: no distillation

    # ------------------------------------------------------------------ model & data
    def build_model(self, model_cfg, init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        m = build_detector(
            model_cfg.name,
            num_classes=self.num_classes,
            image_size=self.opts["image_size"],
            score_thresh=float(self.opts["score_thresh"]),
            detections_per_img=int(self.opts["detections_per_img"]),
            **model_cfg.kwargs,
        )
        return m.to(self.device)

    def _batch(self, split, idx: list[int], flip: list[bool] | None = None):
        x = split.uint8(idx).to(self.device).float().div_(255)
        size = x.shape[-1]
        images, targets = [], []
        for j, i in enumerate(idx):
            img, b = x[j], split.boxes[i]
            if flip is not None and flip[j]:
                img = img.flip(-1)
                b = torch.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], dim=1)
            images.append(img)
            targets.append({"boxes": b, "labels": split.labels[i]})
        return images, targets

    def batches(self, epoch: int, start: int):
        n, b = len(self.train), self.batch_size
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(_seed(self.seeds["data_order"], epoch))
        )
        for i in range(start, self.steps_per_epoch):
            idx = order[i * b : (i + 1) * b].tolist()
            flip = None
            if self.hflip:
                g = torch.Generator().manual_seed(_seed(self.seeds["augment"], epoch, i))
                flip = (torch.rand(b, generator=g) < 0.5).tolist()
            yield self._batch(self.train, idx, flip)

    # ------------------------------------------------------------------------ losses
    def _wants_logits(self) -> bool:
        """Whether the registered loss reads the dense class logits (its extra_outputs)."""
        return self.distill is not None and "logits" in self.distill.extra_outputs

    def loss(self, model, batch, teacher, weight: float, step: int):
        """The detector's summed losses and, when active, the registered distillation term on
        DetectorOutputs (FPN features; class logits if the loss asks), weighted by
        distill.losses.combine."""
        images, targets = batch
        dist = self.distill
        on = dist is not None and dist.active(teacher, weight)
        want_logits = on and self._wants_logits()
        losses, feats, logits = model.train_forward(images, targets, want_logits=want_logits)
        det = sum(v.float() for v in losses.values())
        parts = {k: v.detach() for k, v in losses.items()}
        parts["det"] = det.detach()
        if not on:
            return det, parts
        t_out = None
        if dist.needs_teacher:
            with torch.no_grad():
                _, t_feats, t_logits = teacher.train_forward(images, None, want_logits=want_logits)
            t_out = DetectorOutputs(t_feats, t_logits)
        return dist.apply(det, parts, Outputs(DetectorOutputs(feats, logits), t_out, targets), weight)

    # -------------------------------------------------------------------- evaluation
    @torch.inference_mode()
    def predict(self, model, split: str) -> list[dict]:
        """COCO-format detections of `model` (in eval mode) on a split, original pixels."""
        sp = self.splits[split]
        bs = self.s.train.eval.batch_size
        dets = []
        for lo in range(0, len(sp), bs):
            idx = list(range(lo, min(len(sp), lo + bs)))
            images, _ = self._batch(sp, idx)
            out = model(images)
            dets += to_coco_dets(
                out, [sp.image_ids[i] for i in idx], [sp.scales[i] for i in idx], self.cat_ids
            )
        return dets

    def evaluate(self, model, split: str) -> dict[str, float]:
        sp = self.splits[split]
        if len(sp) == 0:
            return {}
        return coco_ap(sp.gt, self.predict(model, split))

    def flops(self, model, teacher) -> dict[str, float]:
        """Per-step FLOPs measured on a 2-image batch and scaled by the batch size, on a copy
        so BN statistics and grads are untouched. Counts convolutions/matmuls only (box
        matching, NMS and the loss bookkeeping are not FLOPs in torch's counter)."""
        images, targets = self._batch(self.train, [0, 1] if len(self.train) > 1 else [0])
        k = len(images)
        m = copy.deepcopy(model)
        m.train()
        want = self._wants_logits()

        def fwd_bwd():
            losses, _, _ = m.train_forward(images, targets)
            sum(losses.values()).backward()

        out = {"student_step": count_flops(fwd_bwd) / k * self.batch_size, "teacher_step": 0.0}
        if teacher is not None:
            with torch.no_grad():
                out["teacher_step"] = (
                    count_flops(lambda: teacher.train_forward(images, None, want_logits=want))
                    / k
                    * self.batch_size
                )
        with torch.no_grad():
            m.eval()
            out["eval_per_sample"] = count_flops(lambda: m(images)) / k
        return out


def build(settings, *, seeds: dict, device: torch.device) -> Detection:
    return Detection(settings, seeds=seeds, device=device)
