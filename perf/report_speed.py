"""Speed of `w2s-bench report` on a large synthetic results tree (not a timed test).

Builds one suite of 1,000 runs (10 arms x 100 seeds; arm 0 is the baseline) x 100
evaluations (each evaluation writes a test and a holdout row: 200,000 metric rows), then runs
the full report (load, crossings in 5 units x 3 thresholds, a 41-point threshold sweep,
10,000-resample paired bootstraps, quality/switch tables, 4 plots, every file written) and
prints the wall time. Target: under 10 s on 2 CPU cores.

    python perf/report_speed.py [--keep DIR]
"""

from __future__ import annotations

import os

# Pin BLAS/OpenMP pools to 2 threads before numpy loads (the target is "2 CPU cores").
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmark import SCHEMA_VERSION  # noqa: E402

ARMS = 10
SEEDS = 100
EVALS = 100
STEPS_PER_EPOCH = 391
THRESHOLDS = [80.0, 90.0, 93.0]


def build(root: Path) -> Path:
    """Write the synthetic suite under root; returns the suite directory."""
    rng = np.random.default_rng(0)
    suite = root / "perf"
    arms = ["baseline"] + [f"arm{i}" for i in range(1, ARMS)]
    (suite / "runs").mkdir(parents=True)
    (suite / "suite.lock.json").write_text(
        json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "suite": "perf",
                "suite_sha256": "0" * 64,
                "created": "2026-01-01T00:00:00Z",
                "resolved": {},
                "targets": {"metric": "accuracy", "direction": "higher", "thresholds": THRESHOLDS},
                "seeds": list(range(SEEDS)),
                "arms": arms,
            }
        )
    )
    tdir = suite / "teachers" / "t0"
    tdir.mkdir(parents=True)
    tdir.joinpath("teacher.json").write_text(
        json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "teacher_id": "t0",
                "name": "weak",
                "model": "r18",
                "metrics": {"holdout": {"accuracy": 70.0}, "test": {"accuracy": 69.5}},
                "cost": {
                    "epochs": 30,
                    "steps": 30 * STEPS_PER_EPOCH,
                    "samples": 1_500_000,
                    "train_wall_s": 300.0,
                    "eval_wall_s": 10.0,
                    "flops": 3e15,
                },
                "source": "trained",
            }
        )
    )
    epochs = np.arange(1, EVALS + 1, dtype=float)
    for a, arm in enumerate(arms):
        speed = 1.0 + 0.25 * a  # arm a learns (1 + a/4)x faster than the baseline
        for seed in range(SEEDS):
            run_id = f"{arm}-{seed:03d}"
            d = suite / "runs" / run_id
            d.mkdir()
            teacher = None if a == 0 else {"id": "t0", "name": "weak", "model": "r18"}
            d.joinpath("spec.json").write_text(
                json.dumps(
                    {
                        "schema_version": SCHEMA_VERSION,
                        "run_id": run_id,
                        "suite": "perf",
                        "arm": arm,
                        "seed": seed,
                        "task": "classification",
                        "teacher": teacher,
                        "budget": {"epochs": float(EVALS), "steps": EVALS * STEPS_PER_EPOCH},
                        "targets": {},
                        "train": {"epochs": EVALS},
                    }
                )
            )
            d.joinpath("manifest.json").write_text(
                json.dumps(
                    {
                        "schema_version": SCHEMA_VERSION,
                        "run_id": run_id,
                        "status": "complete",
                        "git": {"sha": "f" * 40, "dirty": False},
                        "versions": {"python": "3.11", "torch": "2.5.0"},
                        "device": "cpu",
                        "threads": 2,
                        "started": "2026-01-01T00:00:00Z",
                        "ended": None,
                        "resumed": 0,
                        "lost_wall_s": 0.0,
                        "host": "perf",
                    }
                )
            )
            tau = 25.0 / speed * rng.uniform(0.8, 1.2)
            acc = 95.0 * (1 - np.exp(-epochs / tau)) + rng.normal(0, 0.5, EVALS)
            sec = 20.0 * (1.1 if teacher else 1.0)
            flops = 1e13 * (1.3 if teacher else 1.0)
            lines = []
            for e, v in zip(epochs, acc):
                common = (
                    f'"epoch": {e}, "step": {int(e) * STEPS_PER_EPOCH}, '
                    f'"samples": {int(e) * 50000}, "train_wall_s": {e * sec}, '
                    f'"eval_wall_s": {e}, "flops": {e * flops}, "metric": "accuracy", '
                    f'"kd_active": {"true" if teacher and e < 10 else "false"}'
                )
                lines.append(f'{{{common}, "split": "test", "value": {v}}}')
                lines.append(f'{{{common}, "split": "holdout", "value": {v - 0.3}}}')
            d.joinpath("metrics.jsonl").write_text("\n".join(lines) + "\n")
            ev = ""
            if teacher:
                sw = math.ceil(tau * 0.5)
                ev = (
                    json.dumps(
                        {
                            "event": "switch_off",
                            "epoch": float(sw),
                            "step": sw * STEPS_PER_EPOCH,
                            "wall": 0.0,
                        }
                    )
                    + "\n"
                )
            d.joinpath("events.jsonl").write_text(ev)
    return suite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, help="build the tree and report here (kept)")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        suite = build(root)
        t1, c1 = time.perf_counter(), time.process_time()
        from benchmark.analysis.report import write_report

        [md] = write_report([suite], root / "reports", reps=10_000, seed=0)
        t2, c2 = time.perf_counter(), time.process_time()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"built {ARMS} arms x {SEEDS} seeds = {ARMS * SEEDS} runs x {EVALS} evaluations "
        f"in {t1 - t0:.2f} s"
    )
    print(
        f"report (10,000 resamples, {cores} cores): {t2 - t1:.2f} s wall, "
        f"{c2 - c1:.2f} s CPU ({'OK' if t2 - t1 < 10 else 'SLOWER THAN'} target 10 s wall; "
        f"CPU time is the fairer number on a busy machine) -> {md}"
    )


if __name__ == "__main__":
    main()
