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
