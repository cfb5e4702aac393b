"""What differs per task. Each module exposes `build(settings, *, seeds, device, role)`
returning an object with the `TaskRuntime` interface of tasks/base.py; the one training
loop (train/loop.py) drives all of them."""

from __future__ import annotations

import importlib

TASK_MODULES = {
    "classification": "benchmark.tasks.classification",
    "detection": "benchmark.tasks.detection",
    "diffusion": "benchmark.tasks.diffusion",
}


def get_task(name: str):
    return importlib.import_module(TASK_MODULES[name])
