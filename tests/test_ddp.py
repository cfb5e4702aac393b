"""One run across 2 processes with DDP (gloo on CPU, through torchrun): metrics written once
(by rank 0) and the trained weights matching a single-process run with the same global batch
within tolerance."""

import json
import subprocess

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
    multi = subprocess.run(cli_cmd("run", suite, "--results-dir", tmp_path / "ddp", "--nproc-per-node", "2"),
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
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
