"""One small registry class and the three registries (datasets, models, losses).

Entries are import strings resolved on first use, so listing and validating names
never imports torch (DESIGN.md convention 7).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    name: str
    target: str  # "module:attribute"
    help: str
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, help: str, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = Entry(name, target, help, meta)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")

# --- datasets: meta["task"] says which task reads them; meta["kwargs"], where given, names
# every `data.kwargs` option the loader reads (validate rejects any other) ----------------
DATASETS.add("synthetic", "benchmark.data.synthetic:load", "procedural 10-class 32x32 shapes/textures (no download)", task=("classification", "diffusion"), kwargs=("train", "test", "size", "noise", "contrast", "hue_noise"))
DATASETS.add("cifar10", "benchmark.data.cifar:load_cifar10", "CIFAR-10: torchvision format or ImageFolder copy under <root>/cifar10", task=("classification", "diffusion"), kwargs=())
DATASETS.add("cifar100", "benchmark.data.cifar:load_cifar100", "CIFAR-100: torchvision format or ImageFolder copy under <root>/cifar100", task="classification", kwargs=())
DATASETS.add("imagefolder", "benchmark.data.imagefolder:load", "any <root>/<kwargs.path>/{train,val}/<class>/* tree, streamed", task="classification", kwargs=("path", "image_size", "workers", "prefetch_factor", "crop_scale", "crop_ratio", "eval_crop_pct"))
DATASETS.add("imagenet", "benchmark.data.imagefolder:load_imagenet", "ImageNet in ImageFolder layout at <root>/imagenet/{train,val}", task="classification", kwargs=("path", "image_size", "workers", "prefetch_factor", "crop_scale", "crop_ratio", "eval_crop_pct"))
DATASETS.add("pack", "benchmark.data.pack:load", "a `w2s-bench pack` file (kwargs.path), decoded into memory", task="classification", kwargs=("path",))

# --- models: CIFAR-style 32x32 networks; any other name is looked up in timm ----------
MODELS.add("tinycnn", "benchmark.models.cifar:tinycnn", "small plain CNN, a credibly weak teacher (~0.1M params)", task="classification")
MODELS.add("resnet8", "benchmark.models.cifar:resnet8", "CIFAR ResNet-8 (He et al. 2016)", task="classification")
MODELS.add("resnet20", "benchmark.models.cifar:resnet20", "CIFAR ResNet-20 (He et al. 2016), 0.27M params", task="classification")
MODELS.add("resnet56", "benchmark.models.cifar:resnet56", "CIFAR ResNet-56 (He et al. 2016), 0.85M params", task="classification")
MODELS.add("resnet18_cifar", "benchmark.models.cifar:resnet18_cifar", "ResNet-18 with a 3x3 CIFAR stem (11M params)", task="classification")
MODELS.add("airbench94", "benchmark.models.airbench:airbench94", "airbench94 (Jordan 2024, arXiv 2404.00498): whitening conv + 3 conv groups, 1.97M params; kwargs widths, logit_scale, bn_momentum, bn_eps, whiten_kernel", task="classification")

# --- losses: what the distillation term is ------------------------------------------
LOSSES.add("kd", "benchmark.distill.losses:kd_loss", "(1-a)*CE + a*T^2*KL(teacher_T || student_T) (Hinton et al. 2015)", task="classification", needs_teacher=True, options={})
LOSSES.add("tfkd", "benchmark.distill.losses:tfkd_loss", "teacher-free variant: T^2*KL(a on the true class, rest uniform || student_T); NOT Yuan et al.'s Tf-KD_reg (use tfkd_reg)", task="classification", needs_teacher=False, options={})
# options: name -> (low, high) open interval of the value allowed in `distill.kwargs`
LOSSES.add("tfkd_reg", "benchmark.distill.losses:tfkd_reg_loss", "Tf-KD_reg as published (Yuan et al. CVPR 2020): multiplier*KL_mean(softmax(p_d/T) || softmax(z_s)), no T^2", task="classification", needs_teacher=False, options={"correct_prob": (0.0, 1.0), "multiplier": (0.0, float("inf"))})


# --- diffusion (task/diffusion.py): the DDPM UNet and epsilon-matching distillation -------
MODELS.add("unet", "benchmark.models.unet:unet", "DDPM UNet (Ho et al. 2020); defaults = the 35.7M CIFAR-10 model", task="diffusion")
LOSSES.add("eps_distill", "benchmark.diffusion.losses:eps_distill_loss", "||eps_s-eps||^2 + lambda*||eps_s-sg(eps_t)||^2 (distill.beta=lambda) or the (1-alpha)/alpha mix", task="diffusion", needs_teacher=True, reads_beta=True)


# --- detection (issue 5): COCO-format data, torchvision detectors, detector KD losses ---
DATASETS.add("coco", "benchmark.data.coco:load_coco", "COCO 2017 at <root>/coco/{train2017,val2017,annotations}", task="detection", kwargs=())
DATASETS.add("coco_json", "benchmark.data.coco:load_coco_json", "image folder + COCO annotation file (kwargs.path, e.g. coco128)", task="detection", kwargs=("path", "images", "annotations", "test_annotations", "test_images"))
DATASETS.add("synthetic_detection", "benchmark.data.synthetic_detection:load", "procedural shapes with exact boxes, 5 classes (no download)", task="detection", kwargs=("train", "test", "size", "max_objects", "noise"))
for _fam in ("retinanet", "fcos", "fasterrcnn"):
    for _bb in ("resnet18", "resnet34", "resnet50", "mobilenet_v3"):
        MODELS.add(f"{_fam}_{_bb}_fpn", "benchmark.models.detection:build_detector", f"torchvision {_fam} with a {_bb} FPN backbone, from scratch", task="detection")
LOSSES.add("pkd", "benchmark.distill.detection:pkd_loss", "PKD (Cao et al. 2022): 1 - Pearson r of standardized FPN features, summed over levels", task="detection", needs_teacher=True, reads_beta=True)
LOSSES.add("det_logit_kd", "benchmark.distill.detection:logit_kd_loss", "sigmoid KD on dense-detector class logits (binary KL with temperature, T^2)", task="detection", needs_teacher=True, reads_beta=True)

def is_timm_name(name: str) -> bool:
    """A `timm:` prefix names a timm model explicitly (e.g. `timm:resnet50`)."""
    return name.startswith("timm:")
