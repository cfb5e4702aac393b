"""Bad input and faults, one test each: the user gets a clear message and exit status 2,
never a traceback, and nothing already on disk is corrupted.

`validate` errors run the real CLI in a subprocess (cheap: no torch import); faults that
need training run the CLI in-process through click's CliRunner (torch imported once).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess

import pytest
import yaml
from click.testing import CliRunner
from conftest import cli_cmd, tiny_suite_dict

from benchmark import SCHEMA_VERSION
from benchmark.cli import main
from benchmark.store import read_json, read_jsonl


def _sub(args, env, cwd):
    r = subprocess.run(cli_cmd(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    return r


@pytest.fixture
def cli(inproc_env):
    """Invoke the CLI in this process; restores the SIGTERM handler `run` installs."""
    old = signal.getsignal(signal.SIGTERM)
    runner = CliRunner()

    def invoke(*args):
        res = runner.invoke(main, [str(a) for a in args], catch_exceptions=True)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise AssertionError(f"uncaught {type(res.exception).__name__}: {res.exception}\n{res.output}")
        assert "Traceback" not in res.output
        return res

    yield invoke
    signal.signal(signal.SIGTERM, old)


# ------------------------------------------------------------------ suite problems
def test_malformed_yaml(tmp_path, cli_env):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ntrain:\n  epochs: [1, 2\n")
    for cmd in ("validate", "run", "plan"):
        r = _sub([cmd, p], cli_env, tmp_path)
        assert r.returncode == 2, (cmd, r.stderr)
        assert "malformed YAML" in r.stderr and "line" in r.stderr


def test_unknown_keys_and_wrong_types_all_reported(tmp_path, cli_env, write_suite):
    d = tiny_suite_dict(train={"epochz": 3, "batch_size": "big"}, seeds="zero")
    d["data"]["colour"] = True
    r = _sub(["validate", write_suite(d)], cli_env, tmp_path)
    assert r.returncode == 2
    err = r.stderr
    assert "train.epochz: unknown key" in err
    assert "data.colour: unknown key" in err
    assert "train.batch_size" in err and "seeds" in err  # wrong types, same report


def test_yaml_is_never_executed(tmp_path, cli_env):
    p = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    p.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    r = _sub(["validate", p], cli_env, tmp_path)
    assert r.returncode == 2 and "malformed YAML" in r.stderr
    assert not marker.exists()


def _cifar_suite(data: dict, **overrides) -> dict:
    """The tiny suite on `dataset: cifar10`, which takes no data.kwargs (the synthetic ones go)."""
    d = tiny_suite_dict(data={"dataset": "cifar10", **data}, **overrides)
    d["data"]["kwargs"] = {}
    return d


def test_missing_or_unreadable_data_root(tmp_path, cli_env, write_suite):
    missing = tmp_path / "no-such-root"
    r = _sub(["validate", write_suite(_cifar_suite({"root": str(missing)}))],
             cli_env, tmp_path)
    assert r.returncode == 2 and str(missing) in r.stderr and "data.root" in r.stderr
    # a data root that is a file, not a folder (running as root, chmod cannot make one unreadable)
    f = tmp_path / "afile"
    f.write_text("x")
    r = _sub(["run", write_suite(_cifar_suite({"root": str(f)}), "f.yaml"),
              "--results-dir", tmp_path / "r"], cli_env, tmp_path)
    assert r.returncode == 2 and str(f) in r.stderr
    assert not (tmp_path / "r" / "tiny" / "runs").exists()  # nothing ran


def test_older_results_schema_is_refused(tmp_path, cli_env, write_suite):
    sdir = tmp_path / "r" / "tiny"
    sdir.mkdir(parents=True)
    (sdir / "suite.lock.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION - 1, "suite": "tiny"}))
    r = _sub(["run", write_suite(tiny_suite_dict()), "--results-dir", tmp_path / "r"], cli_env, tmp_path)
    assert r.returncode == 2
    assert f"schema version {SCHEMA_VERSION - 1}" in r.stderr and "--results-dir" in r.stderr
    assert json.loads((sdir / "suite.lock.json").read_text())["schema_version"] == SCHEMA_VERSION - 1


def test_cli_usage_errors_exit_2(tmp_path, cli_env, write_suite):
    s = write_suite(tiny_suite_dict())
    assert _sub(["run", s, "--arm", "nope", "--results-dir", tmp_path / "r"], cli_env, tmp_path).returncode == 2
    assert _sub(["run", s, "--seed", "7", "--results-dir", tmp_path / "r"], cli_env, tmp_path).returncode == 2
    assert _sub(["validate", tmp_path / "missing.yaml"], cli_env, tmp_path).returncode == 2
    assert _sub(["status", tmp_path / "nothing"], cli_env, tmp_path).returncode == 2


# ------------------------------------------------------------------ faults at run time
def _imagefolder(root, bad_name="bad.png"):
    """<root>/cifar10/{train,test}/<class>/*.png: 2 classes of 32x32 PNGs, one corrupt."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for c in ("cat", "dog"):
            d = root / "cifar10" / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    bad = root / "cifar10" / "train" / "dog" / bad_name
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return bad


def test_corrupted_image_names_the_file(tmp_path, cli, write_suite):
    bad = _imagefolder(tmp_path / "data")
    d = _cifar_suite({"root": str(tmp_path / "data"), "holdout": 4}, train={"batch_size": 4})
    res = cli("run", write_suite(d), "--results-dir", tmp_path / "r")
    assert res.exit_code == 2
    assert "cannot decode image" in res.output and str(bad) in res.output


def test_teacher_checkpoint_of_wrong_architecture(tmp_path, cli, write_suite):
    import torch

    from benchmark.models import build_model

    ck = tmp_path / "teacher.pt"
    torch.save(build_model("resnet8", 10, {"width": 8}).state_dict(), ck)
    d = tiny_suite_dict(teachers={"weak": {"checkpoint": str(ck)}})
    res = cli("run", write_suite(d), "--results-dir", tmp_path / "r")
    assert res.exit_code == 2
    assert "does not fit model 'tinycnn'" in res.output and str(ck) in res.output
    tdir = next((tmp_path / "r" / "tiny" / "teachers").iterdir())
    assert read_json(tdir / "manifest.json")["status"] == "failed"
    assert not (tdir / "teacher.pt").exists() and not (tdir / "lock").exists()


def test_disk_full_fails_cleanly_and_resumes(tmp_path, cli, write_suite, monkeypatch):
    """ENOSPC from fsync (where a full disk usually surfaces) on the Nth durable write: the
    run stops with a clear message; the checkpoint, manifest and metrics stay readable; after
    'freeing space' the rerun resumes and matches an uninterrupted run."""
    import torch

    suite = write_suite(tiny_suite_dict(arms={"baseline": {"distill": None}}))
    assert cli("run", suite, "--results-dir", tmp_path / "ref").exit_code == 0
    real = os.fsync
    calls = {"n": 0}

    def full(fd):
        # the disk fills up a few writes after the run's second checkpoint
        if calls["n"] or len(list((tmp_path / "r").glob("tiny/runs/*/checkpoints/last.pt"))):
            calls["n"] += 1
        if calls["n"] > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", full)
    res = cli("run", suite, "--results-dir", tmp_path / "r")
    monkeypatch.setattr(os, "fsync", real)
    assert res.exit_code == 2, res.output
    assert "No space left on device" in res.output and "resume" in res.output
    rdir = next((tmp_path / "r" / "tiny" / "runs").iterdir())
    read_json(rdir / "manifest.json")  # still valid JSON
    assert not list(rdir.rglob(".*.tmp*")), "temporary files left behind"
    st = torch.load(rdir / "checkpoints" / "last.pt", weights_only=False)
    assert 0 < st["clock"]["step"] < 20
    assert cli("run", suite, "--results-dir", tmp_path / "r").exit_code == 0
    assert read_json(rdir / "manifest.json")["resumed"] == 1

    def rows(d):
        return [{k: v for k, v in r.items() if "wall" not in k} for r in read_jsonl(d / "metrics.jsonl")[0]]

    assert rows(rdir) == rows(tmp_path / "ref" / "tiny" / "runs" / rdir.name)


def test_nan_loss_marks_diverged_suite_goes_on_report_censors(tmp_path, cli, write_suite):
    d = tiny_suite_dict(arms={"baseline": {"distill": None},
                              "boom": {"distill": None, "train": {"optimizer": {"lr": 1.0e6}}}})
    d["train"]["epochs"] = 1
    res = cli("run", write_suite(d), "--results-dir", tmp_path / "r")
    assert res.exit_code == 0, res.output  # a diverged run is an outcome, not an error
    runs = {p.name.split("-")[0]: p for p in (tmp_path / "r" / "tiny" / "runs").iterdir()}
    assert read_json(runs["boom"] / "manifest.json")["status"] == "diverged"
    assert read_json(runs["baseline"] / "manifest.json")["status"] == "complete"
    ev = [e["event"] for e in read_jsonl(runs["boom"] / "events.jsonl")[0]]
    assert "divergence" in ev
    res = cli("report", tmp_path / "r", "--out", tmp_path / "rep", "--reps", "200")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "tiny" / "report.md").read_text()
    assert "diverged" in md and "censored" in md


def test_suite_yaml_safe_load_only(tmp_path):
    """The loader is yaml.safe_load: a complete, valid suite whose description is built by a
    python tag is refused for the tag alone. Under unsafe loading the same file would build
    the object and load as a valid suite, so this fails if safe loading is ever replaced."""
    from benchmark.errors import SuiteError
    from benchmark.suite import load_suite, validate_dict

    text = yaml.safe_dump(tiny_suite_dict(), sort_keys=False)
    text += "description: !!python/object/apply:builtins.str [built by the YAML loader]\n"
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(SuiteError) as e:
        load_suite(p, check_paths=False)
    [(where, msg)] = e.value.problems
    assert where.startswith(f"line {len(text.splitlines())}")
    assert "python/object/apply" in msg and "tags that build Python objects are refused" in msg
    # what unsafe loading would have done: run the tag and hand over a valid suite
    built = yaml.unsafe_load(text)
    assert built["description"] == "built by the YAML loader"
    assert validate_dict(built, str(p), check_paths=False).cfg.description == "built by the YAML loader"
