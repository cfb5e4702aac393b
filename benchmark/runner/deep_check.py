"""The checks `validate` leaves out because they need torch: model names and constructor
arguments (`validate --deep`, and `run` before it writes suite.lock.json).

`benchmark.suite` stays torch-free, so a `timm:` name or a typo in `student.kwargs` /
`teachers.<t>.model.kwargs` cannot be caught there. Here every distinct model of the suite is
checked once against its constructor: a keyword the constructor does not take (read from
`inspect.signature` for registered models, or from the TypeError a timm constructor raises
when the model is built on the meta device: no memory, no weights) is a problem with its YAML
path. Nothing is trained or written.
"""

from __future__ import annotations

import inspect
import json

from ..errors import SuiteError, UserError
from ..registry import MODELS, is_timm_name
from ..suite import ModelCfg, RunSettings, Suite

# Keywords each task passes to a registered model's constructor itself (tasks/*.build_model):
# a `kwargs` entry with one of these names would collide with the task's own value.
TASK_ARGS = {
    "classification": ("num_classes",),
    "diffusion": ("image_size",),
    "detection": ("name", "num_classes", "image_size", "score_thresh", "detections_per_img"),
}

# Class count used to instantiate a classifier on the meta device: only the constructor's
# arguments are checked, the dataset (and so its real class count) is not loaded.
_PROBE_CLASSES = 10


def _models(s: RunSettings) -> list[tuple[str, ModelCfg]]:
    """(YAML path of the model mapping, its config): the student, then every teacher."""
    out = [("student", s.student)]
    out += [(f"teachers.{k}.model", t.model) for k, t in s.teachers.items()]
    return out


def model_problems(task: str, cfg: ModelCfg, path: str) -> list[tuple[str, str]]:
    """Problems with one model's name and constructor arguments ([] when it builds)."""
    import torch

    if is_timm_name(cfg.name):
        import timm

        if not timm.is_model(cfg.name[5:]):
            return [(f"{path}.name", f"unknown timm model {cfg.name[5:]!r}")]
        return _build(lambda: _timm(cfg), path, cfg, torch)
    if cfg.name not in MODELS:
        return []  # an unknown registered name is reported by the torch-free validate
    fn = MODELS[cfg.name].load()
    taken = TASK_ARGS.get(task, ())
    probs = [(f"{path}.kwargs.{k}", f"{k} is set by the {task} task, not by model kwargs")
             for k in cfg.kwargs if k in taken]
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        known = [n for n in params if n not in taken]
        probs += [(f"{path}.kwargs.{k}", f"model {cfg.name!r} has no argument {k!r} "
                   f"(its arguments: {', '.join(known) or 'none'})")
                  for k in cfg.kwargs if k not in params and k not in taken]
    check = getattr(fn, "check_options", None)  # a factory's own torch-free value checks
    if check is not None and not probs:
        probs += [(f"{path}.kwargs", f"{cfg.name}: {m}") for m in check(**cfg.kwargs)]
    # Registered models are checked by signature only: building one, even on the meta device,
    # runs its weight init, and torch (2.14) routes meta-device normal_ through torch._refs,
    # whose first call imports torch._dynamo (~5 s idle, over a minute on a loaded machine).
    # Value checks of detector options are torch-free (tasks/detection_options.py).
    return probs


def _timm(cfg: ModelCfg):
    from ..models import build_model

    return build_model(cfg.name, _PROBE_CLASSES, cfg.kwargs)


def _build(make, path: str, cfg: ModelCfg, torch) -> list[tuple[str, str]]:
    """Build on the meta device: shapes only, so even a large model costs milliseconds."""
    try:
        with torch.device("meta"):
            make()
    except UserError as e:
        return [(f"{path}.kwargs", str(e))]
    except TypeError as e:
        # an unexpected or missing keyword: the constructor's own message names it
        return [(f"{path}.kwargs", f"model {cfg.name!r} rejects kwargs {cfg.kwargs}: {e}")]
    except (ValueError, AssertionError, KeyError) as e:
        return [(f"{path}.kwargs", f"model {cfg.name!r} cannot be built with kwargs {cfg.kwargs}: "
                 f"{type(e).__name__}: {e}")]
    return []


def deep_problems(suite: Suite) -> list[tuple[str, str]]:
    """Every model of the suite body, then of each arm that changes one, checked once; a
    problem in the body is reported once, without an arm prefix."""
    seen: set[str] = set()
    probs: list[tuple[str, str]] = []
    sources = [("", suite.cfg)] + [(f"arms.{a}.", suite.arm_settings[a]) for a in suite.arm_names()]
    for prefix, s in sources:
        for path, cfg in _models(s):
            key = json.dumps([s.task, cfg.model_dump(mode="json")], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            probs += model_problems(s.task, cfg, prefix + path)
    return probs


def check_deep(suite: Suite) -> None:
    """Raise SuiteError listing every deep problem (before anything is written)."""
    probs = deep_problems(suite)
    if probs:
        raise SuiteError(suite.source, probs)
