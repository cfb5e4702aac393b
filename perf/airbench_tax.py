"""Issue 20, gate 2 ("no harness tax"): seconds per training epoch of airbench94's recipe
through `w2s-bench run` (the harness's one loop) and through the standalone plain-PyTorch
script perf/airbench_bare.py, on the same machine, in one invocation (not a timed test).

Both run as subprocesses on the same CIFAR-10 training subset size, threads, batch and recipe
(the gate suite's: suites/cifar10-airbench-gate.yaml), alternating harness / bare `--repeats`
times so drift of a shared machine hits both. Per-epoch train seconds exclude evaluation in
both (the harness's train clock; the bare script's per-epoch timer). The first epoch carries
warm-up in both, so the ratio is taken over the later epochs (median of per-epoch seconds;
lookahead runs in the 4th epoch in both). Target: harness / bare <= 1.10 on CPU. Both also
print their final accuracy on 500 stratified test images (no TTA; each draws its own 500 and
its own data order, so they agree in distribution only): a coarse check of the same recipe.

    W2S_DATA_ROOT=../shared/datasets python perf/airbench_tax.py [--json perf/airbench_tax.json]

Run it on an otherwise idle machine: it prints the load average before and after, and the
CPU seconds of each run (about threads x wall seconds when nothing else competes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "suites" / "cifar10-airbench-gate.yaml"


def harness_suite(train_subset: int, epochs: int, threads: int) -> dict:
    """The gate suite's recipe on a subset: evaluation every epoch (cheap: no TTA, 500 test
    images) so the train clock can be read per epoch; no held-out split (the bare script has none)."""
    d = yaml.safe_load(GATE.read_text())
    d["name"] = "airbench-tax"
    d["seeds"] = [0]
    d["threads"] = threads
    d["data"].update(train_subset=train_subset, test_subset=500, holdout=0)
    d["train"]["epochs"] = epochs
    d["train"]["eval"] = {"every_epochs": 1.0, "batch_size": 500}
    d["task_options"]["eval"] = {"tta_test": 0, "tta_holdout": 0}
    d["targets"]["thresholds"] = [50]
    return d


def run_harness(suite: dict, work: Path, env: dict) -> dict:
    path = work / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    res = work / "results"
    t0, c0 = time.perf_counter(), os.times()
    subprocess.run([sys.executable, "-m", "benchmark.cli", "run", str(path), "--results-dir", str(res)],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall, c1 = time.perf_counter() - t0, os.times()
    (run,) = (res / "airbench-tax" / "runs").iterdir()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    cum = sorted({r["step"]: r["train_wall_s"] for r in rows if r["split"] == "test"}.items())
    per_epoch = [b[1] - a[1] for a, b in zip(cum, cum[1:])]
    final = [r["value"] for r in rows if r["split"] == "test"][-1]
    return {"per_epoch_s": per_epoch, "wall_s": wall, "final_test_acc": final,
            "cpu_s": (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)}


def run_bare(data: Path, train_subset: int, epochs: int, threads: int, work: Path, env: dict) -> dict:
    out = work / "bare.json"
    t0, c0 = time.perf_counter(), os.times()
    subprocess.run([sys.executable, str(ROOT / "perf" / "airbench_bare.py"), "--data-root", str(data),
                    "--train-subset", str(train_subset), "--test-subset", "500", "--epochs", str(epochs),
                    "--threads", str(threads), "--no-epoch-eval", "--tta-level", "0", "--json", str(out)],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall, c1 = time.perf_counter() - t0, os.times()
    rec = json.loads(out.read_text())
    return {"per_epoch_s": [e["train_s"] for e in rec["epochs"]], "wall_s": wall, "final_test_acc": rec["tta_acc"],
            "cpu_s": (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=Path(os.environ.get("W2S_DATA_ROOT", "data")),
                   help="folder holding cifar10/{train,test} (default: $W2S_DATA_ROOT)")
    p.add_argument("--train-subset", type=int, default=6144, help="training images (6 steps of 1024)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    data = a.data_root / "cifar10"
    if not (data / "train").is_dir():
        p.error(f"no CIFAR-10 ImageFolder copy at {data}/train (set --data-root or W2S_DATA_ROOT)")
    env = dict(os.environ, W2S_DATA_ROOT=str(a.data_root), OMP_NUM_THREADS=str(a.threads),
               PYTHONPATH=str(ROOT), COLUMNS="120")
    load0 = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"harness": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            w = Path(tmp) / f"h{i}"
            w.mkdir()
            runs["harness"].append(run_harness(harness_suite(a.train_subset, a.epochs, a.threads), w, env))
            w = Path(tmp) / f"b{i}"
            w.mkdir()
            runs["bare"].append(run_bare(data, a.train_subset, a.epochs, a.threads, w, env))
            for k in ("harness", "bare"):
                r = runs[k][-1]
                print(f"repeat {i} {k:7s}: per-epoch train s {[round(x, 2) for x in r['per_epoch_s']]}, "
                      f"process wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, "
                      f"final test accuracy {r['final_test_acc']:.2f}% (500 test images, no TTA)", flush=True)
    steady = {k: statistics.median([s for r in v for s in r["per_epoch_s"][1:]]) for k, v in runs.items()}
    ratio = steady["harness"] / steady["bare"]
    load1 = os.getloadavg()[0]
    print(f"median seconds per epoch after the first: harness {steady['harness']:.2f}, bare {steady['bare']:.2f}"
          f" -> ratio {ratio:.3f} (target <= 1.10); load average {load0:.1f} before, {load1:.1f} after")
    out = {"script": "perf/airbench_tax.py", "args": {k: str(v) for k, v in vars(a).items()},
           "runs": runs, "steady_s_per_epoch": steady, "ratio": ratio,
           "loadavg_before": load0, "loadavg_after": load1, "cpu_count": os.cpu_count()}
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
