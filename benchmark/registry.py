"""One small registry class and the registries (datasets, models, losses, switch rules).

Entries are import strings resolved on first use, so listing and validating names never
imports torch (DESIGN.md convention 7). A registered component may declare its options as a
pydantic model (meta `options`, the class or its import string): the suite's options for it
(`distill.kwargs` of a loss, `student.kwargs` of a model, the switch rule's options) are
validated against that model with their YAML paths before anything runs.

User plugins come in through Python entry points in the group `w2s_bench.plugins`: each entry
point names a callable `register(registries)` that adds entries to `registries.models`,
`.losses`, `.switches` or `.datasets` (examples/plugin/ is a complete one). Plugins load on the
first lookup of any registry; one that fails to load, or imports torch while registering (it
would make `validate` slow), is recorded and reported with its name (`plugin_problems`), and
whatever it had registered is removed again.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

BUILTIN = "w2s-bench"  # the origin of the entries below
ENTRY_POINT_GROUP = "w2s_bench.plugins"
HEAVY = ("torch",)  # what registering a plugin must not import (validate stays torch-free)


class PluginError(UserError):
    """A plugin failed to load or registered something malformed; the message names it."""


@dataclass
class Entry:
    name: str
    target: Any  # "module:attribute", or the object itself (a plugin may register objects)
    help: str
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str = BUILTIN  # the distribution that registered it
    kind: str = ""  # the registry's: "model", "loss", ...

    def load(self) -> Any:
        return resolve(self.target)

    @property
    def target_name(self) -> str:
        if isinstance(self.target, str):
            return self.target
        return f"{getattr(self.target, '__module__', '?')}:{getattr(self.target, '__qualname__', self.target)}"

    def title(self) -> str:
        """`loss 'kd'`, with the package for a plugin's: `loss 'x' (from my-package)`."""
        return f"{self.kind} {self.name!r}" + (f" (from {self.origin})" if self.origin != BUILTIN else "")

    def options_model(self) -> Any:
        """The pydantic model of this component's options (meta `options`), or None when it
        declares none (its options are then not checked before the run)."""
        opts = self.meta.get("options")
        if opts is None:
            return None
        model = resolve(opts)
        from pydantic import BaseModel

        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginError(f"{self.kind} {self.name!r} (from {self.origin}): meta `options` must be a pydantic "
                              f"model class, got {model!r}")
        return model


def resolve(target: Any) -> Any:
    """An object named by "module:attribute" (dots in attribute walk attributes); an object as is."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: Any, help: str, **meta: Any) -> None:
        """Register `name`. `target`: "module:attribute" (resolved on first use) or the object."""
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"{self.kind} name must be a non-empty string without ':', got {name!r}")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target must be 'module:attribute', got {target!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._entries[name].origin})")
        self._entries[name] = Entry(name, target, help, meta, _LOADING.origin, self.kind)
        if _LOADING.state == "loading":
            _LOADING.added.append((self, name))

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __getitem__(self, name: str) -> Entry:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: Any, known: list[str] | None = None) -> str:
        """The message for a name that is not registered: every known one, and any plugin that
        failed to load (it may have been meant to provide it)."""
        known = self.names() if known is None else known
        msg = f"unknown {self.kind} {name!r}; known: {', '.join(known) or 'none'}"
        if isinstance(name, str) and ":" in name:
            msg += (f" (a {self.kind} from your own package is registered through an entry point in "
                    f"the {ENTRY_POINT_GROUP!r} group, not named by module:attribute)")
        broken = [p.name for p in _PLUGINS if p.error]
        if broken:
            msg += f"; plugin(s) that failed to load: {', '.join(broken)}"
        return msg

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")
SWITCHES = Registry("switch rule")


@dataclass(frozen=True)
class Registries:
    """What a plugin's `register(registries)` receives."""

    datasets: Registry
    models: Registry
    losses: Registry
    switches: Registry


REGISTRIES = Registries(DATASETS, MODELS, LOSSES, SWITCHES)


# ------------------------------------------------------------------------------ plugins
@dataclass
class Plugin:
    name: str  # the entry point's name
    value: str  # what it points at ("package.module:register")
    origin: str  # the distribution that declares it
    error: str | None = None
    names: list[str] = field(default_factory=list)  # "kind name" of what it registered


@dataclass
class _Loading:
    state: str = "idle"  # idle -> loading -> done
    origin: str = BUILTIN
    added: list = field(default_factory=list)


_LOADING = _Loading()
_PLUGINS: list[Plugin] = []


def _entry_points() -> list:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_plugins() -> list[Plugin]:
    """Load every `w2s_bench.plugins` entry point once (later calls return the same list).
    Never raises: a plugin that fails is recorded with its error (see `plugin_problems`)."""
    if _LOADING.state != "idle":
        return _PLUGINS
    _LOADING.state = "loading"
    try:
        for ep in _entry_points():
            _PLUGINS.append(_load_one(ep))
    finally:
        _LOADING.state, _LOADING.origin = "done", BUILTIN
    return _PLUGINS


def _load_one(ep) -> Plugin:
    dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
    plugin = Plugin(ep.name, ep.value, dist)
    _LOADING.origin, _LOADING.added = dist, []
    heavy_before = {m for m in HEAVY if m in sys.modules}
    try:
        register = ep.load()
        if not callable(register):
            raise TypeError(f"{ep.value} is not callable; the entry point must name a function "
                            "register(registries)")
        register(REGISTRIES)
        heavy = [m for m in HEAVY if m in sys.modules and m not in heavy_before]
        if heavy:
            raise ImportError(f"it imported {', '.join(heavy)} while registering; name targets by import "
                              "string ('module:attribute') so that `w2s-bench validate` stays torch-free")
    except Exception as e:  # noqa: BLE001 - any failure of user code is reported, with its name
        plugin.error = f"{type(e).__name__}: {e}"
        for reg, name in _LOADING.added:
            reg.remove(name)
    else:
        plugin.names = [f"{reg.kind} {name}" for reg, name in _LOADING.added]
    _LOADING.origin, _LOADING.added = BUILTIN, []
    return plugin


def plugin_problems() -> list[str]:
    """One message per plugin that failed to load, naming it and its package."""
    return [f"plugin {p.name!r} ({p.value}, from package {p.origin}) failed to load: {p.error}"
            for p in load_plugins() if p.error]


def _reset_plugins_for_tests() -> None:
    """Unload every plugin entry and forget them, so the next lookup loads them again."""
    for reg in (DATASETS, MODELS, LOSSES, SWITCHES):
        for name in [n for n, e in reg._entries.items() if e.origin != BUILTIN]:
            reg.remove(name)
    _PLUGINS.clear()
    _LOADING.state = "idle"


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

# --- losses: what the distillation term is; meta options: the model of `distill.kwargs` --
# A target is a class with the interface of benchmark/distill/losses.py (from_config, called on
# Outputs, returns the unweighted term); every task weights it there, in `combine`.
LOSSES.add("kd", "benchmark.distill.classification:KD", "(1-a)*CE + a*T^2*KL(teacher_T || student_T) (Hinton et al. 2015)", task="classification", needs_teacher=True, options="benchmark.distill.options:NoOptions")
LOSSES.add("tfkd", "benchmark.distill.classification:TfKD", "teacher-free variant: T^2*KL(a on the true class, rest uniform || student_T); NOT Yuan et al.'s Tf-KD_reg (use tfkd_reg)", task="classification", needs_teacher=False, options="benchmark.distill.options:NoOptions")
LOSSES.add("tfkd_reg", "benchmark.distill.classification:TfKDReg", "Tf-KD_reg as published (Yuan et al. CVPR 2020): multiplier*KL_mean(softmax(p_d/T) || softmax(z_s)), no T^2", task="classification", needs_teacher=False, options="benchmark.distill.options:TfkdRegOptions")

# --- switch rules: when distillation stops (benchmark/distill/switch.py). meta options: the
# model of the rule's options, `{rule: {option: value}}` in YAML; `config`: built-in rules
# whose whole mapping is one scalar (`{fixed_epoch: 3}`) give the schema of that mapping.
# needs_teacher / uses_holdout: validate requires a teacher / a held-out split --------------
SWITCHES.add("surpass_teacher", "benchmark.distill.switch:SurpassTeacher", "off at the first evaluation where the student's held-out metric reaches the teacher's", needs_teacher=True, uses_holdout=True)
SWITCHES.add("never", "benchmark.distill.switch:Never", "KD on for the whole budget")
SWITCHES.add("fixed_epoch", "benchmark.distill.switch:FixedEpochRule", "off at the first evaluation at or after epoch E: {fixed_epoch: E}", config="benchmark.suite_schema:FixedEpoch")
SWITCHES.add("same_as", "benchmark.distill.switch:SameAsRule", "off at the step where <arm> of the same seed switched off: {same_as: <arm>}", config="benchmark.suite_schema:SameAs")


# --- diffusion (task/diffusion.py): the DDPM UNet and epsilon-matching distillation -------
MODELS.add("unet", "benchmark.models.unet:unet", "DDPM UNet (Ho et al. 2020); defaults = the 35.7M CIFAR-10 model", task="diffusion")
LOSSES.add("eps_distill", "benchmark.distill.diffusion:EpsDistill", "||eps_s-eps||^2 + lambda*||eps_s-sg(eps_t)||^2 (distill.beta=lambda) or the (1-alpha)/alpha mix", task="diffusion", needs_teacher=True, reads_beta=True, options="benchmark.distill.options:NoOptions")


# --- detection (issue 5): COCO-format data, torchvision detectors, detector KD losses ---
# (their distill.kwargs are checked by tasks/detection_options.py)
DATASETS.add("coco", "benchmark.data.coco:load_coco", "COCO 2017 at <root>/coco/{train2017,val2017,annotations}", task="detection", kwargs=())
DATASETS.add("coco_json", "benchmark.data.coco:load_coco_json", "image folder + COCO annotation file (kwargs.path, e.g. coco128)", task="detection", kwargs=("path", "images", "annotations", "test_annotations", "test_images"))
DATASETS.add("synthetic_detection", "benchmark.data.synthetic_detection:load", "procedural shapes with exact boxes, 5 classes (no download)", task="detection", kwargs=("train", "test", "size", "max_objects", "noise"))
for _fam in ("retinanet", "fcos", "fasterrcnn"):
    for _bb in ("resnet18", "resnet34", "resnet50", "mobilenet_v3"):
        MODELS.add(f"{_fam}_{_bb}_fpn", "benchmark.models.detection:build_detector", f"torchvision {_fam} with a {_bb} FPN backbone, from scratch", task="detection")
LOSSES.add("pkd", "benchmark.distill.detection:PKD", "PKD (Cao et al. 2022): 1 - Pearson r of standardized FPN features, summed over levels", task="detection", needs_teacher=True, reads_beta=True)
LOSSES.add("det_logit_kd", "benchmark.distill.detection:DetLogitKD", "sigmoid KD on dense-detector class logits (binary KL with temperature, T^2)", task="detection", needs_teacher=True, reads_beta=True)


def is_timm_name(name: str) -> bool:
    """A `timm:` prefix names a timm model explicitly (e.g. `timm:resnet50`)."""
    return name.startswith("timm:")
