"""Shared test fixtures: a tiny synthetic suite and a way to run the real CLI in a subprocess.

Everything here is generic: tests that need a suite copy `tiny_suite_dict()`, change what
they need, write it with `write_suite`, and run `w2s-bench` through `run_cli`/`cli_cmd`
with `cli_env` (one CPU thread, a per-session data cache, no inherited result paths).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# ~600 synthetic images, a tiny CNN teacher and a narrow ResNet-8 student: a whole suite
# (teacher + 2 runs) trains in a few seconds on one CPU thread.
TINY_SUITE = {
    "name": "tiny",
    "task": "classification",
    "seeds": [0],
    "threads": 1,
    "device": "cpu",
    "deterministic": True,
    "data": {"dataset": "synthetic", "kwargs": {"train": 600, "test": 200}, "holdout": 100},
    "student": {"name": "resnet8", "kwargs": {"width": 8}},
    "teachers": {"weak": {"model": {"name": "tinycnn", "kwargs": {"width": 8}}, "train": {"epochs": 1}}},
    "train": {
        "epochs": 2,
        "batch_size": 50,
        "optimizer": {"name": "sgd", "lr": 0.05},
        "schedule": {"name": "cosine", "warmup_epochs": 0.2},
        "eval": {"every_steps": 4, "batch_size": 200},
        "channels_last": False,
    },
    "distill": {"teacher": "weak", "alpha": 0.5, "temperature": 2.0, "switch": "surpass_teacher"},
    "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [20, 30]},
    "arms": {"baseline": {"distill": None}, "w2s": {}},
}


# Where the shared test datasets live on the project's machines (../shared/datasets beside the
# checkout); a fresh clone has no such folder, and tests that need real data skip or use a
# stand-in (write_coco_standin) instead. DATA_HINT tells a user how to get the real data.
SHARED_DATA = ROOT.parent / "shared" / "datasets"
DATA_HINT = ("set W2S_DATA_ROOT to a folder holding it (on the project's machines: "
             "../shared/datasets beside the checkout; its README gives sources and checksums)")


def data_root() -> Path:
    """$W2S_DATA_ROOT, else ../shared/datasets beside the checkout (may not exist)."""
    return Path(os.environ.get("W2S_DATA_ROOT") or SHARED_DATA)


def write_coco_standin(folder: Path, n_images: int = 6, size: int = 64) -> Path:
    """A tiny COCO-format detection dataset in `folder` ({images/, annotations/instances.json},
    the coco_json layout): `n_images` drawn JPEGs, each with one or two filled rectangles
    whose boxes are the annotations (bbox = [x, y, w, h] in pixels, area = w * h, the COCO
    convention), 2 categories. Enough for validate/plan tests, not for training.
    Deterministic: the shapes come from a fixed-seed generator. Returns `folder`."""
    import json

    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(1, n_images + 1):
        im = Image.new("RGB", (size, size), (int(rng.integers(0, 80)),) * 3)
        draw = ImageDraw.Draw(im)
        for _ in range(1 + i % 2):
            w, h = (int(v) for v in rng.integers(size // 6, size // 2, size=2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            cat = int(rng.integers(1, 3))
            draw.rectangle([x, y, x + w - 1, y + h - 1], fill=(200, 40, 40) if cat == 1 else (40, 40, 200))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        name = f"{i:012d}.jpg"
        im.save(folder / "images" / name, quality=90)
        images.append({"id": i, "file_name": name, "width": size, "height": size})
    cats = [{"id": 1, "name": "red box", "supercategory": "shape"},
            {"id": 2, "name": "blue box", "supercategory": "shape"}]
    (folder / "annotations" / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return folder


def _merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def tiny_suite_dict(**overrides) -> dict:
    """A fresh copy of TINY_SUITE with top-level keys deep-merged from `overrides`
    (except `arms`, which replaces: the arms given are the suite's arms)."""
    arms = overrides.pop("arms", None)
    d = _merge(copy.deepcopy(TINY_SUITE), overrides)
    if arms is not None:
        d["arms"] = copy.deepcopy(arms)
    return d


def cli_cmd(*args: str) -> list[str]:
    """argv running this checkout's CLI with the test interpreter."""
    return [sys.executable, "-m", "benchmark.cli", *map(str, args)]


@pytest.fixture(scope="session")
def w2s_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("w2s-cache")


@pytest.fixture
def cli_env(w2s_cache) -> dict:
    env = dict(os.environ)
    for k in ("W2S_DATA_ROOT", "W2S_RESULTS"):
        env.pop(k, None)
    env.update(W2S_CACHE=str(w2s_cache), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", COLUMNS="200", PYTHONPATH=str(ROOT))
    return env


@pytest.fixture
def write_suite(tmp_path):
    def write(d: dict, name: str = "suite.yaml") -> Path:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        return p

    return write


@pytest.fixture
def run_cli(cli_env, tmp_path):
    """Run `w2s-bench ARGS...` to completion; returns the CompletedProcess (text)."""

    def run(*args, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(cli_cmd(*args), env={**cli_env, **(env or {})}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def inproc_env(monkeypatch, w2s_cache):
    """For tests that call the runner in this process: same cache, one torch thread."""
    monkeypatch.setenv("W2S_CACHE", str(w2s_cache))
    monkeypatch.delenv("W2S_DATA_ROOT", raising=False)
    import torch

    torch.set_num_threads(1)
