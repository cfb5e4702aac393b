"""Detector names and the layouts they imply: torch-free, so the suite's checks
(tasks/detection_options.py) and the model builder (models/detection.py) read one source.

A detector name is `<family>_<backbone>_fpn`; the family fixes the FPN layout (P3-P7 for the
dense detectors RetinaNet and FCOS, P2-P6 for Faster R-CNN) and the default anchor sizes.
"""

from __future__ import annotations

FAMILIES = ("retinanet", "fcos", "fasterrcnn")
BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3")
DENSE = ("retinanet", "fcos")
# model kwargs every detector takes, and those only one family takes
COMMON_KWARGS = ("fpn_channels", "backbone_checkpoint", "anchor_sizes")
FAMILY_KWARGS = {"fcos": ("head_convs",), "retinanet": (), "fasterrcnn": ()}


def detector_names() -> list[str]:
    return [f"{f}_{b}_fpn" for f in FAMILIES for b in BACKBONES]


def parse_name(name: str) -> tuple[str, str] | None:
    """'retinanet_resnet18_fpn' -> ('retinanet', 'resnet18'); None if not a detector name."""
    for fam in FAMILIES:
        for bb in BACKBONES:
            if name == f"{fam}_{bb}_fpn":
                return fam, bb
    return None


def fpn_group(family: str) -> str:
    """Which FPN layout a family uses: P3-P7 (dense detectors) or P2-P6 (Faster R-CNN)."""
    return "p2p6" if family == "fasterrcnn" else "p3p7"


def default_anchor_sizes(family: str) -> list[float]:
    return [8, 16, 32, 64, 128] if family == "fcos" else [32, 64, 128, 256, 512]
