"""Torch-free checks of a detection run's settings (`w2s-bench validate` runs them).

Registered as suite.TASK_OPTION_CHECKS["detection"]. Also the one place that knows the
detection task's options with their defaults, so the checks and the runtime cannot disagree;
what a detector name means lives with the models (models/detection_names.py).
"""

from __future__ import annotations

from pathlib import Path

from ..models.detection_names import (
    COMMON_KWARGS,
    DENSE,
    FAMILY_KWARGS,
    default_anchor_sizes,
    fpn_group,
    parse_name,
)

METRICS = ("AP", "AP50", "AP75")
# task_options: name -> (default, description). Images are letterboxed (aspect kept, padded
# bottom/right) to image_size x image_size once, at load time.
OPTIONS = {
    "image_size": (128, "square input size in pixels, a multiple of 32"),
    "score_thresh": (0.05, "detections below this score are dropped before COCOeval"),
    "detections_per_img": (100, "at most this many detections per image (COCO's maxDets)"),
}
# kwargs the pkd / det_logit_kd losses read from distill.kwargs
LOSS_KWARGS = {"pkd": ("eps",), "det_logit_kd": ()}


def options(settings) -> dict:
    """task_options with defaults filled in."""
    return {k: settings.task_options.get(k, d) for k, (d, _) in OPTIONS.items()}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _model_problems(path: str, cfg) -> list[tuple[str, str]]:
    parsed = parse_name(cfg.name)
    if parsed is None:
        return []  # the suite's own check reports unknown model names
    fam, _ = parsed
    out = []
    allowed = COMMON_KWARGS + FAMILY_KWARGS[fam]
    for k in cfg.kwargs:
        if k not in allowed:
            out.append(
                (
                    f"{path}.kwargs.{k}",
                    f"unknown kwarg for {cfg.name}; allowed: {', '.join(allowed)}",
                )
            )
    kw = cfg.kwargs
    if "fpn_channels" in kw and not (_is_int(kw["fpn_channels"]) and kw["fpn_channels"] > 0):
        out.append((f"{path}.kwargs.fpn_channels", "must be a positive integer"))
    if (
        fam == "fcos"
        and _is_int(kw.get("fpn_channels", 256))
        and kw.get("fpn_channels", 256) % 32 != 0
    ):
        out.append(
            (
                f"{path}.kwargs.fpn_channels",
                "FCOS heads use GroupNorm(32): fpn_channels must be a multiple of 32",
            )
        )
    if "head_convs" in kw and not (_is_int(kw["head_convs"]) and kw["head_convs"] >= 0):
        out.append((f"{path}.kwargs.head_convs", "must be an integer >= 0"))
    if "anchor_sizes" in kw:
        a = kw["anchor_sizes"]
        if not (isinstance(a, list) and len(a) == 5 and all(_num(x) and x > 0 for x in a)):
            out.append(
                (
                    f"{path}.kwargs.anchor_sizes",
                    "must be a list of 5 positive sizes (pixels), one per FPN level",
                )
            )
    if kw.get("backbone_checkpoint") is not None:
        p = kw["backbone_checkpoint"]
        if not isinstance(p, str) or not Path(p).expanduser().is_file():
            out.append((f"{path}.kwargs.backbone_checkpoint", f"file not found: {p}"))
    return out


def check(settings) -> list[tuple[str, str]]:
    """Every problem with a detection run's settings, as (yaml path, message)."""
    probs: list[tuple[str, str]] = []
    to = settings.task_options
    for k in to:
        if k not in OPTIONS:
            probs.append(
                (f"task_options.{k}", f"unknown detection option; known: {', '.join(OPTIONS)}")
            )
    o = options(settings)
    if not (
        _is_int(o["image_size"]) and 32 <= o["image_size"] <= 4096 and o["image_size"] % 32 == 0
    ):
        probs.append(("task_options.image_size", "must be an integer multiple of 32 in [32, 4096]"))
    if not (_num(o["score_thresh"]) and 0 <= o["score_thresh"] < 1):
        probs.append(("task_options.score_thresh", "must be a number in [0, 1)"))
    if not (_is_int(o["detections_per_img"]) and o["detections_per_img"] > 0):
        probs.append(("task_options.detections_per_img", "must be a positive integer"))
    if settings.targets.metric not in METRICS:
        probs.append(
            (
                "targets.metric",
                f"detection reports {', '.join(METRICS)} (COCO bbox AP, percent), "
                f"not {settings.targets.metric!r}",
            )
        )
    probs += _model_problems("student", settings.student)
    for name, t in settings.teachers.items():
        probs += _model_problems(f"teachers.{name}.model", t.model)
    d = settings.data
    if d.dataset == "coco_json" and not d.kwargs.get("test_annotations") and not d.test_subset:
        probs.append(
            (
                "data.test_subset",
                "coco_json without kwargs.test_annotations carves the test split from "
                "the one annotation file: give test_subset (images)",
            )
        )
    dist = settings.distill
    if dist is not None and dist.loss in LOSS_KWARGS:
        for k in dist.kwargs:
            if k not in LOSS_KWARGS[dist.loss]:
                probs.append(
                    (
                        f"distill.kwargs.{k}",
                        f"unknown kwarg for {dist.loss}; allowed: "
                        f"{', '.join(LOSS_KWARGS[dist.loss]) or 'none'}",
                    )
                )
        t = settings.teachers.get(dist.teacher) if dist.teacher else None
        ps, pt = parse_name(settings.student.name), parse_name(t.model.name) if t else None
        if ps and pt:
            s_kw, t_kw = settings.student.kwargs, t.model.kwargs
            if dist.loss == "pkd":
                if fpn_group(ps[0]) != fpn_group(pt[0]):
                    probs.append(
                        (
                            "distill.loss",
                            f"pkd matches FPN levels one to one: {settings.student.name} "
                            f"and {t.model.name} have different FPN layouts",
                        )
                    )
                if s_kw.get("fpn_channels", 256) != t_kw.get("fpn_channels", 256):
                    probs.append(
                        ("distill.loss", "pkd needs the same fpn_channels in teacher and student")
                    )
            if dist.loss == "det_logit_kd":
                if ps[0] not in DENSE or ps[0] != pt[0]:
                    probs.append(
                        (
                            "distill.loss",
                            "det_logit_kd needs two dense detectors of the same family "
                            f"(retinanet or fcos), got {settings.student.name} and {t.model.name}",
                        )
                    )
                elif (s_kw.get("anchor_sizes") or default_anchor_sizes(ps[0])) != (
                    t_kw.get("anchor_sizes") or default_anchor_sizes(pt[0])
                ):
                    probs.append(
                        (
                            "distill.loss",
                            "det_logit_kd needs identical anchors: anchor_sizes differ",
                        )
                    )
    return probs
