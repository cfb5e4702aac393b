"""torchvision detectors (RetinaNet, FCOS, Faster R-CNN) with ResNet-18/34/50 or MobileNetV3
FPN backbones, always built from scratch (weights=None, weights_backbone=None); a backbone
checkpoint may be given as a local file.

Every detector is wrapped in `Detector`, which exposes one training forward returning the
detector's own losses *and* what distillation needs (the FPN feature maps, and for dense
detectors the per-anchor classification logits), so the task runs each model once per step.

Labels are contiguous 0..K-1 everywhere outside this module; Faster R-CNN reserves 0 for the
background, so its labels are shifted by one on the way in and out.

FPN layouts: dense detectors (RetinaNet, FCOS) use P3-P7 (C3-C5 plus two extra stride-2
levels, Lin et al. 2017 / Tian et al. 2019); Faster R-CNN uses P2-P6 (C2-C5 plus max-pool).
Feature distillation between two detectors therefore needs both from the same group.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from .detection_names import default_anchor_sizes, fpn_group  # noqa: F401 (re-export)
from .detection_names import parse_name as _parse

# block outputs of mobilenet_v3_large.features at strides 4, 8, 16, 32 (found by probing;
# the stride-2 blocks are 2, 4, 7, 13) and their channel counts
_MNV3_LAYERS = {4: ("3", 24), 8: ("6", 40), 16: ("12", 112), 32: ("16", 960)}
_RESNET_CH = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}


def parse_name(name: str) -> tuple[str, str]:
    """'retinanet_resnet18_fpn' -> ('retinanet', 'resnet18')."""
    parsed = _parse(name)
    if parsed is None:
        raise UserError(f"not a detector name: {name!r} (expected <family>_<backbone>_fpn)")
    return parsed


def _backbone(family: str, bb: str, fpn_channels: int, checkpoint: str | None) -> nn.Module:
    import torchvision
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    dense = family != "fasterrcnn"
    # dense: C3..C5 + P6, P7 computed from P5 (in == out channels -> torchvision uses P5)
    extra = LastLevelP6P7(fpn_channels, fpn_channels) if dense else LastLevelMaxPool()
    if bb.startswith("resnet"):
        body = getattr(torchvision.models, bb)(weights=None)
        layers = [2, 3, 4] if dense else [1, 2, 3, 4]
        ret = {f"layer{k}": str(i) for i, k in enumerate(layers)}
        in_ch = [_RESNET_CH[bb][k - 1] for k in layers]
    else:
        body = torchvision.models.mobilenet_v3_large(weights=None).features
        strides = [8, 16, 32] if dense else [4, 8, 16, 32]
        ret = {_MNV3_LAYERS[s][0]: str(i) for i, s in enumerate(strides)}
        in_ch = [_MNV3_LAYERS[s][1] for s in strides]
    if checkpoint:
        _load_backbone(body, checkpoint)
    return BackboneWithFPN(body, ret, in_ch, fpn_channels, extra_blocks=extra)


def _load_backbone(body: nn.Module, path: str) -> None:
    """Load a local classification checkpoint into the backbone body (the fc layer and any
    key the body lacks are ignored; nothing that the body has may be missing)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"backbone_checkpoint not found: {p}")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"backbone_checkpoint {p} is not a torch state dict: {e}") from None
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    own = body.state_dict()
    # mobilenet checkpoints are whole models: strip the `features.` prefix
    sd = {k[len("features.") :] if k.startswith("features.") else k: v for k, v in sd.items()}
    fit = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in fit]
    if missing:
        raise UserError(
            f"backbone_checkpoint {p} does not fit the backbone: {len(missing)} tensors missing "
            f"or of another shape, e.g. {missing[:3]}"
        )
    body.load_state_dict(fit, strict=False)


class Detector(nn.Module):
    """A torchvision detector plus the forward passes the detection task needs."""

    def __init__(self, family: str, det: nn.Module, num_classes: int):
        super().__init__()
        self.family = family
        self.det = det
        self.num_classes = num_classes
        self.shift = 1 if family == "fasterrcnn" else 0

    @property
    def fpn_group(self) -> str:
        return fpn_group(self.family)

    def _targets(self, targets):
        if targets is None or not self.shift:
            return targets
        return [{"boxes": t["boxes"], "labels": t["labels"] + self.shift} for t in targets]

    def train_forward(
        self, images: list[torch.Tensor], targets: list[dict] | None, want_logits: bool = False
    ) -> tuple[dict, list[torch.Tensor], torch.Tensor | None]:
        """(losses, FPN features, cls logits (N, anchors, K) or None).

        With targets None only features (and logits) are computed: the teacher's pass.
        Mirrors torchvision's RetinaNet/FCOS/GeneralizedRCNN forward, which return only the
        losses in training mode.
        """
        m = self.det
        targets = self._targets(targets)
        imgs, targets = m.transform(images, targets)
        feats = m.backbone(imgs.tensors)
        if isinstance(feats, torch.Tensor):
            feats = OrderedDict([("0", feats)])
        flist = list(feats.values())
        if self.family == "fasterrcnn":
            if targets is None:
                return {}, flist, None
            proposals, rpn_losses = m.rpn(imgs, feats, targets)
            _, det_losses = m.roi_heads(feats, proposals, imgs.image_sizes, targets)
            return {**rpn_losses, **det_losses}, flist, None
        head = m.head(flist)
        logits = head["cls_logits"] if want_logits else None
        if targets is None:
            return {}, flist, logits
        anchors = m.anchor_generator(imgs, flist)
        if self.family == "fcos":
            n_per_level = [f.size(2) * f.size(3) for f in flist]
            losses = m.compute_loss(targets, head, anchors, n_per_level)
        else:
            losses = m.compute_loss(targets, head, anchors)
        return losses, flist, logits

    def forward(self, images: list[torch.Tensor]) -> list[dict]:
        """Detections (eval mode): [{boxes (k, 4) xyxy, scores (k,), labels (k,) in 0..K-1}]."""
        out = self.det(images)
        if self.shift:
            out = [{**o, "labels": o["labels"] - self.shift} for o in out]
        return out


def build_detector(
    name: str,
    *,
    num_classes: int,
    image_size: int,
    score_thresh: float = 0.05,
    detections_per_img: int = 100,
    fpn_channels: int = 256,
    backbone_checkpoint: str | None = None,
    anchor_sizes: list[float] | None = None,
    head_convs: int = 4,
) -> Detector:
    """A freshly initialised detector for square `image_size` inputs (no resizing inside).

    anchor_sizes: base anchor size per FPN level in pixels (torchvision's defaults, 32..512
    for dense detectors, suit 800-px images; small images need smaller ones). RetinaNet adds
    the usual 3 octave scales and 3 aspect ratios per level; FCOS uses one point per location
    and reads the sizes only to assign objects to levels.
    """
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    family, bb = parse_name(name)
    base = list(anchor_sizes or default_anchor_sizes(family))
    if len(base) != 5:
        raise UserError(f"{name}: anchor_sizes needs one size per FPN level (5), got {len(base)}")
    backbone = _backbone(family, bb, int(fpn_channels), backbone_checkpoint)
    common = dict(
        min_size=image_size,
        max_size=image_size,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    if family == "retinanet":
        sizes = tuple((s, s * 2 ** (1 / 3), s * 2 ** (2 / 3)) for s in base)
        ag = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
        det = RetinaNet(
            backbone,
            num_classes,
            anchor_generator=ag,
            score_thresh=score_thresh,
            detections_per_img=detections_per_img,
            **common,
        )
    elif family == "fcos":
        from torchvision.models.detection.fcos import FCOSHead

        ag = AnchorGenerator(tuple((s,) for s in base), ((1.0,),) * len(base))
        head = FCOSHead(backbone.out_channels, 1, num_classes, num_convs=int(head_convs))
        det = FCOS(
            backbone,
            num_classes,
            anchor_generator=ag,
            head=head,
            score_thresh=score_thresh,
            detections_per_img=detections_per_img,
            **common,
        )
    else:
        ag = AnchorGenerator(tuple((s,) for s in base), ((0.5, 1.0, 2.0),) * len(base))
        det = FasterRCNN(
            backbone,
            num_classes + 1,
            rpn_anchor_generator=ag,
            box_score_thresh=score_thresh,
            box_detections_per_img=detections_per_img,
            **common,
        )
    det.transform._skip_resize = True  # inputs are already image_size square (training path)
    return Detector(family, det, num_classes)
