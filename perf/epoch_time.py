"""Seconds per epoch of full CIFAR-10 through the harness's own `Loop` (not a timed test).

Trains --model (default resnet18_cifar: ResNet-18 with the 3x3 CIFAR stem) for --epochs
epochs on the 50,000 CIFAR-10 training images (no held-out split; batch 512 drops the last
partial batch, so an epoch is 97 steps = 49,664 images), data as uint8 on the device,
augmented there, bf16 autocast, channels_last, optionally torch.compile. Time is the loop's
train clock per epoch (evaluation excluded; on CUDA it synchronises at the epoch ends).
Epoch 1 includes warm-up (cuDNN autotuning, compilation); the steady state is the fastest
later epoch. Target on one H100: under 3 s per epoch.

    W2S_DATA_ROOT=... python perf/epoch_time.py [--compile] [--json OUT.json]
    python perf/epoch_time.py --tiny          # seconds on CPU: a dry run of the script
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.suite import RunSettings  # noqa: E402
from benchmark.tasks.classification import Classification  # noqa: E402
from benchmark.train.loop import Loop, configure_torch  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="resnet18_cifar")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--json")
    p.add_argument("--tiny", action="store_true", help="resnet8 on 1,024 images, CPU-sized")
    a = p.parse_args(argv)
    data = {"dataset": "cifar10", "holdout": 0, "test_subset": 1000}
    if a.tiny:
        a.model, a.batch, a.epochs, a.threads = "resnet8", 64, 2, 1
        if a.device == "cpu":
            a.precision = "fp32"  # bf16 convolutions are slow on most CPUs
        data.update(train_subset=1024, test_subset=200)
    dev = torch.device(a.device)
    s = RunSettings.model_validate(
        {
            "task": "classification",
            "threads": a.threads,
            "device": a.device,
            "deterministic": False,
            "data": data,
            "student": {"name": a.model},
            "train": {
                "epochs": a.epochs,
                "batch_size": a.batch,
                "precision": a.precision,
                "channels_last": True,
                "compile": a.compile,
                "optimizer": {"name": "sgd", "lr": 0.4, "nesterov": True},
                "schedule": {"name": "cosine", "warmup_epochs": 1.0},
                "eval": {"every_epochs": 1.0, "batch_size": 1000},
                "checkpoint_every_eval": False,
            },
            "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [50]},
        }
    )
    configure_torch(a.threads, False, dev)
    t0 = time.perf_counter()
    task = Classification(s, seeds={"init": 0, "data_order": 1, "augment": 2}, device=dev)
    load_s = time.perf_counter() - t0
    model = task.build_model(s.student, 0)
    walls, accs = [], []

    def on_eval(loop, rows):
        walls.append(loop.clock.train_wall_s)
        accs.append(next(r["value"] for r in rows if r["split"] == "test"))

    loop = Loop(
        task=task,
        model=model,
        train_cfg=s.train,
        run_dir=Path(tempfile.mkdtemp()),
        device=dev,
        on_eval=on_eval,
        write_rows=False,
    )
    res = loop.run()
    per_epoch = [b - a_ for a_, b in zip(walls[:-1], walls[1:])]  # walls[0]: the initial evaluation
    imgs = task.steps_per_epoch * a.batch
    steady = min(per_epoch[1:]) if len(per_epoch) > 1 else per_epoch[0]
    out = {
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({a.threads} threads)",
        "model": a.model,
        "batch": a.batch,
        "precision": a.precision,
        "compile": a.compile,
        "images_per_epoch": imgs,
        "data_load_s": load_s,
        "epoch_s": per_epoch,
        "steady_epoch_s": steady,
        "steady_img_per_s": imgs / steady,
        "test_accuracy": accs,
        "status": res.status,
    }
    print(
        f"{out['device']}: {a.model}, batch {a.batch}, {a.precision}, channels_last"
        f"{', compiled' if a.compile else ''}; data ready in {load_s:.1f} s"
    )
    for i, (t, acc) in enumerate(zip(per_epoch, accs[1:]), 1):
        print(
            f"  epoch {i}: {t:7.2f} s  {imgs / t:9.0f} img/s  test acc {acc:.2f}%"
            + ("  (warm-up)" if i == 1 and len(per_epoch) > 1 else "")
        )
    print(
        f"  steady state: {steady:.2f} s/epoch, {imgs / steady:.0f} img/s "
        f"(target on an H100: < 3 s/epoch: {'met' if steady < 3 else 'NOT met'})"
    )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
