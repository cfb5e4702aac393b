"""One run across 2 processes with DDP (gloo on CPU, through torchrun): metrics written once
(by rank 0) and the trained weights matching a single-process run with the same global batch
within tolerance."""

import json
import shutil
import subprocess
import warnings

import pytest
import torch
import yaml
from conftest import ROOT, cli_cmd, tiny_suite_dict

from benchmark.models import build_model

pytest.importorskip("torch.distributed")


def _run_dir(results, arm):
    return next((results / "tiny" / "runs").glob(f"{arm}-s0-*"))


def _rows(results, arm):
    return [json.loads(x) for x in (_run_dir(results, arm) / "metrics.jsonl").read_text().splitlines()]


def _update(results, arm):
    """Flattened (final - initial) parameters of a run's student."""
    d = _run_dir(results, arm)
    spec = json.loads((d / "spec.json").read_text())
    torch.manual_seed(spec["seeds"]["init"])
    init = build_model(spec["student"]["name"], 10, spec["student"]["kwargs"]).state_dict()
    final = torch.load(d / "checkpoints" / "last.pt", weights_only=False)["model"]
    keys = [k for k, v in init.items() if v.dtype.is_floating_point and "running" not in k]
    return torch.cat([(final[k].float() - init[k].float()).flatten() for k in keys])


def _rank_report(proc) -> str:
    """What a failed torchrun launch said: every rank's own lines (the rank that failed first
    is often not the one whose error ends stderr), then the tail."""
    lines = (proc.stdout + proc.stderr).splitlines()
    ranks = [x for x in lines if x.startswith(("[rank", "error")) or "Error:" in x]
    return "\n".join(ranks[-60:]) + "\n--- tail ---\n" + proc.stderr[-1500:]


def _launch_ddp(suite, results, env):
    """The 2-process run; one fresh retry if the launch failed, with a warning that carries
    the first attempt's rank output. Gloo on localhost has rare transport failures: stop 32's
    CI saw rank 1 exit while rank 0 built DDP ("Connection closed by peer"), the first such
    failure in this test's CI history; 16 local launches, 12 of them beside a training run,
    all passed. A second failure still fails the test."""
    cmd = cli_cmd("run", suite, "--results-dir", results, "--nproc-per-node", "2")
    multi = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if multi.returncode != 0:
        warnings.warn(f"2-process launch failed once (retrying from scratch):\n{_rank_report(multi)}", stacklevel=2)
        shutil.rmtree(results, ignore_errors=True)
        multi = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert multi.returncode == 0, _rank_report(multi)


@pytest.mark.slow
def test_two_process_gloo_ddp_matches_single_process(tmp_path, cli_env):
    d = tiny_suite_dict(train={"epochs": 2, "eval": {"every_steps": 5, "batch_size": 200}},
                        student={"name": "tinycnn", "kwargs": {"width": 16}})
    d["arms"] = {"baseline": {"distill": None}, "w2s": {}}
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump(d))
    env = {**cli_env, "W2S_DDP_BACKEND": "gloo"}
    single = subprocess.run(cli_cmd("run", suite, "--results-dir", tmp_path / "single"), env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    _launch_ddp(suite, tmp_path / "ddp", env)
    for arm in ("baseline", "w2s"):
        a, b = _rows(tmp_path / "single", arm), _rows(tmp_path / "ddp", arm)
        # rank 0 alone wrote: the same evaluations, once each
        assert [(r["step"], r["split"], r["metric"]) for r in a] == [(r["step"], r["split"], r["metric"]) for r in b]
        assert [r["samples"] for r in a] == [r["samples"] for r in b]
        assert a[0]["value"] == b[0]["value"]  # identical init
        for ra, rb in zip(a, b):
            assert abs(ra["value"] - rb["value"]) <= 10.0, (arm, ra, rb)
        # same global batch, gradients averaged over the two slices: the weight updates agree
        # up to BatchNorm statistics being computed per 25-image slice
        us, ud = _update(tmp_path / "single", arm), _update(tmp_path / "ddp", arm)
        cos = torch.nn.functional.cosine_similarity(us, ud, dim=0).item()
        rel = ((us - ud).norm() / us.norm()).item()
        print(arm, "cosine", round(cos, 4), "relative difference", round(rel, 4))
        assert cos > 0.9 and rel < 0.5, (arm, cos, rel)
