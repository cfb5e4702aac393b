"""Layering (DESIGN.md "Layers"): the import-linter contracts in pyproject.toml hold, and
the pieces that sat on the wrong floor (issue 19, problem 7) now import downwards only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from pydantic import BaseModel, ConfigDict, ValidationError


def test_import_linter_contracts_hold():
    pytest.importorskip("importlinter")
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in r.stdout


def test_moved_modules_keep_one_state():
    # the loop, metrics and runner write through one store: read-only mode (DDP ranks > 0)
    # set through the old path is the state the new one sees
    from benchmark import store
    from benchmark.runner import store as old_path

    assert old_path.write_json is store.write_json
    try:
        old_path.set_read_only(True)
        assert store._READ_ONLY is True
    finally:
        store.set_read_only(False)


def test_pydantic_problems_is_public_and_keeps_yaml_paths():
    from benchmark.suite import pydantic_problems

    class Opt(BaseModel):
        model_config = ConfigDict(extra="forbid")
        steps: int

    with pytest.raises(ValidationError) as e:
        Opt.model_validate({"stepz": 3})
    assert pydantic_problems(e.value, "task_options") == [
        ("task_options.steps", "required key is missing"), ("task_options.stepz", "unknown key")]
