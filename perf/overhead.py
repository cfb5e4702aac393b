"""Harness overhead: the training step through `Loop` against a bare PyTorch loop doing the
same work, and the distillation arm's step cost with KD on and off (not a timed test).

Arms, run in one process, alternating in rounds (the starting arm rotates each round, so
drift in machine load hits every arm alike); round 0 is warm-up and is not counted:

  bare       a careful researcher's own ~20-line loop (below): same data on the device as
             uint8, same random crop (pad 4) + flip, normalisation, channels_last, model
             init, SGD (nesterov, weight decay), cosine LR stepped every step,
             precision and torch.compile setting
  harness    `Loop` with the baseline arm's settings (no teacher), the real progress hook
  kd_on      `Loop` with a teacher and KD weight 1 (the w2s arm before its switch)
  kd_off     `Loop` with a teacher whose switch already fired (weight 0: teacher not run)
  teacher    the teacher's forward pass alone on the same batches (no grad, same autocast)

Time is training time only: `Loop`'s train clock (evaluation and the one-off FLOPs count
excluded) and, for the bare loop, the steps themselves; on CUDA both sides synchronise
only at the ends of a round. The clock is wall time on CUDA; on CPU it is this process's
CPU seconds (`--clock cpu`, the default there), because on a shared machine wall time
mostly measures the neighbours: the Loop's stopwatch is pointed at `time.process_time`
for this script only. Use --threads 1 on a busy machine (OpenMP threads spin-wait).
Printed: ms/step per arm (median over rounds), harness/bare
(target <= 1.05), kd_on/harness beside teacher/harness, and kd_off/harness (should be 1).

    python perf/overhead.py --threads 1           # CPU: 4,096 images per arm
    python perf/overhead.py --threads 1 --steps 2 --rounds 8   # 2,048 images (the run reported)
    python perf/overhead.py --device cuda --batch 512 --precision bf16 --steps 20 --rounds 6
    python perf/overhead.py --tiny                # seconds: a dry run of the script itself

Data: `--pack FILE` (a `w2s-bench pack` file), else CIFAR-10 under $W2S_DATA_ROOT, else the
built-in synthetic 32x32 set.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data.paths import find_cifar  # noqa: E402
from benchmark.distill.switch import SwitchPolicy  # noqa: E402
from benchmark.models import build_model  # noqa: E402
from benchmark.suite import RunSettings  # noqa: E402
from benchmark.tasks.classification import Classification, load_data  # noqa: E402
from benchmark.train.loop import Loop, configure_torch  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--student", default="resnet20")
    p.add_argument("--teacher", default="resnet8")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="steps per arm per round")
    p.add_argument("--rounds", type=int, default=8, help="timed rounds (plus one warm-up round)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile both loops' models")
    p.add_argument("--pack", help="a `w2s-bench pack` file with CIFAR-10")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--clock", choices=["wall", "cpu"], help="default: wall on cuda, cpu on cpu")
    p.add_argument(
        "--tiny", action="store_true", help="a seconds-long dry run (small nets, 2 rounds)"
    )
    a = p.parse_args(argv)
    if a.tiny:
        a.student, a.teacher, a.batch, a.steps, a.rounds = "resnet8", "tinycnn", 16, 2, 2
    a.clock = a.clock or ("wall" if a.device.startswith("cuda") else "cpu")
    return a


# --------------------------------------------------------------------------- settings
def settings(a, n_train: int, distill: bool) -> RunSettings:
    if a.pack:
        data = {"dataset": "pack", "kwargs": {"path": str(Path(a.pack).resolve())}}
    elif os.environ.get("W2S_DATA_ROOT") and find_cifar(
        "cifar10", None
    ):  # folder, pack or torchvision
        data = {"dataset": "cifar10"}
    else:
        data = {"dataset": "synthetic", "kwargs": {"train": n_train, "test": 500}}
    data.update(holdout=0, test_subset=100)  # evaluation is not timed: keep it short
    d = {
        "task": "classification",
        "threads": a.threads,
        "device": a.device,
        "deterministic": False,
        "data": data,
        "student": {"name": a.student},
        "train": {
            "epochs": 1.0,
            "batch_size": a.batch,
            "precision": a.precision,
            "channels_last": True,
            "compile": a.compile,
            "optimizer": {
                "name": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 5e-4,
            },
            "schedule": {"name": "cosine", "warmup_epochs": 0.0},
            "augment": {"crop_padding": 4, "hflip": True},
            "eval": {"every_steps": a.steps, "batch_size": 500},
            "checkpoint_every_eval": False,
        },
        "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [50]},
    }
    if distill:
        d["teachers"] = {"weak": {"model": {"name": a.teacher}}}
        d["distill"] = {
            "teacher": "weak",
            "loss": "kd",
            "alpha": 0.5,
            "temperature": 4.0,
            "switch": "never",
        }
    return RunSettings.model_validate(d)


def fit_epochs(s: RunSettings, spe: int, steps: int) -> RunSettings:
    """The same settings with the budget set to exactly `steps` optimizer steps."""
    train = s.train.model_copy(update={"epochs": steps / spe})
    return s.model_copy(update={"train": train})


# ------------------------------------------------------------------------- bare loop
class Bare:
    """A careful researcher's own loop: the same work as the harness step, written plainly.
    Random draws are made on the device with a device generator (no host transfers)."""

    def __init__(self, task: Classification, model, total: int, a):
        self.dev, self.a = task.device, a
        self.x, self.y = task.train.x, task.train.y  # uint8 (N,3,32,32) and labels, on device
        self.mean, self.std = task.mean, task.std  # (1,3,1,1), in 0..255 units
        self.model = torch.compile(model) if a.compile else model
        self.opt = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
        )
        self.gen = torch.Generator(self.dev).manual_seed(0)
        self.spe, self.step, self.perm = len(self.y) // a.batch, 0, None
        self.amp = torch.autocast(
            self.dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"
        )

    def crop_flip(self, x):
        b, pad, ar = len(x), 4, torch.arange(32, device=self.dev)
        d = torch.randint(0, 2 * pad + 1, (2, b), device=self.dev, generator=self.gen)
        p = F.pad(x, (pad,) * 4)
        rows, cols = (d[0][:, None] + ar)[:, None, :, None], (d[1][:, None] + ar)[:, None, None, :]
        x = p[
            torch.arange(b, device=self.dev)[:, None, None, None],
            torch.arange(3, device=self.dev)[:, None, None],
            rows,
            cols,
        ]
        flip = torch.rand(b, device=self.dev, generator=self.gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(3), x)

    def run(self, steps: int) -> None:
        self.model.train()
        b = self.a.batch
        for _ in range(steps):
            i = self.step % self.spe
            if i == 0:
                self.perm = torch.randperm(len(self.y), device=self.dev, generator=self.gen)
            idx = self.perm[i * b : (i + 1) * b]
            x = (self.crop_flip(self.x[idx]).float() - self.mean) / self.std
            with self.amp:
                loss = F.cross_entropy(
                    self.model(x.contiguous(memory_format=torch.channels_last)).float(), self.y[idx]
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            self.step += 1


# ----------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    a = parse(argv)
    now = time.perf_counter
    if a.clock == "cpu":
        import types

        from benchmark.train import clock as clock_mod

        now = time.process_time
        clock_mod.time = types.SimpleNamespace(perf_counter=now)  # the Loop's stopwatches
    dev = torch.device(a.device)
    configure_torch(a.threads, False, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    total = (a.rounds + 1) * a.steps
    n_train = total * a.batch  # synthetic data: one epoch covers every timed step
    base_s = settings(a, n_train, distill=False)
    data = load_data(base_s)
    spe = len(data.train) // a.batch
    base_s = fit_epochs(base_s, spe, total)
    kd_s = fit_epochs(settings(a, n_train, distill=True), spe, total)
    seeds = {"init": 0, "data_order": 1, "augment": 2}
    base_task = Classification(base_s, seeds=seeds, device=dev)
    kd_task = Classification(kd_s, seeds=seeds, device=dev)
    teacher = (
        build_model(a.teacher, base_task.num_classes, {})
        .to(dev)
        .to(memory_format=torch.channels_last)
    )
    teacher.eval().requires_grad_(False)

    from rich.console import Console

    from benchmark.runner.progress import SuiteProgress

    progress = SuiteProgress(Console(file=io.StringIO(), force_terminal=False))
    progress.__enter__()
    tmp = Path(tempfile.mkdtemp(prefix="w2s-overhead-"))

    def loop(task, label, with_teacher, off):
        model = task.build_model(task.s.student, seeds["init"])
        sw = None
        if with_teacher:
            sw = SwitchPolicy("never")
            if off:
                sw.fire(epoch=0.0, step=0)  # weight 0 from the first step: the teacher must not run
        lp = Loop(
            task=task,
            model=model,
            train_cfg=task.s.train,
            run_dir=tmp / label,
            device=dev,
            teacher=teacher if with_teacher else None,
            switch=sw,
            on_step=progress.step_hook(label),
            write_rows=False,
        )
        assert lp.total == total, (lp.total, total)
        return lp

    loops = {
        "harness": loop(base_task, "harness", False, False),
        "kd_on": loop(kd_task, "kd_on", True, False),
        "kd_off": loop(kd_task, "kd_off", True, True),
    }
    bare = Bare(base_task, base_task.build_model(base_s.student, seeds["init"]), total, a)

    # teacher forward alone, on the harness's own batches made before timing
    t_batches = [bx for bx, _ in zip((x for x, _ in base_task.batches(0, 0)), range(a.steps))]

    def teacher_round(steps):
        with (
            torch.no_grad(),
            torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"),
        ):
            for k in range(steps):
                teacher(t_batches[k % len(t_batches)])

    def timed(name, r):
        if name in loops:
            lp = loops[name]
            before = lp.clock.train_wall_s
            lp.stop_step = (r + 1) * a.steps
            res = lp.run()
            if res.status != "complete":
                raise SystemExit(f"{name}: {res.status} {res.reason}")
            return lp.clock.train_wall_s - before
        sync()
        t0 = now()
        bare.run(a.steps) if name == "bare" else teacher_round(a.steps)
        sync()
        return now() - t0

    arms = ["bare", "harness", "kd_on", "kd_off", "teacher"]
    times = {k: [] for k in arms}
    t_start = time.perf_counter()
    for r in range(a.rounds + 1):
        order = arms[r % len(arms) :] + arms[: r % len(arms)]
        for name in order:
            dt = timed(name, r)
            if r > 0:  # round 0: warm-up (allocator, cudnn autotune, compilation)
                times[name].append(dt / a.steps)
        if r > 0:
            print(
                f"round {r}: "
                + "  ".join(f"{k} {1e3 * times[k][-1]:.1f}" for k in arms)
                + "  ms/step",
                flush=True,
            )
    progress.__exit__(None, None, None)
    # the KD-off arm must never have run its teacher; the KD-on arm always did
    assert loops["kd_off"].clock.teacher_flops == 0.0 and loops["kd_on"].clock.teacher_flops > 0

    def ratio(num, den):
        per_round = [n / d for n, d in zip(times[num], times[den])]
        return {
            "median_of_rounds": statistics.median(per_round),
            "of_totals": sum(times[num]) / sum(times[den]),
        }

    out = {
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({a.threads} threads)",
        "data": base_s.data.dataset,
        "student": a.student,
        "teacher": a.teacher,
        "batch": a.batch,
        "precision": a.precision,
        "compile": a.compile,
        "clock": a.clock,
        "timed_steps_per_arm": a.rounds * a.steps,
        "images_per_arm": a.rounds * a.steps * a.batch,
        "ms_per_step": {k: 1e3 * statistics.median(v) for k, v in times.items()},
        "harness_over_bare": ratio("harness", "bare"),
        "kd_on_over_baseline": ratio("kd_on", "harness"),
        "teacher_fwd_over_baseline": ratio("teacher", "harness"),
        "kd_off_over_baseline": ratio("kd_off", "harness"),
        "wall_s": time.perf_counter() - t_start,
    }
    hb = out["harness_over_bare"]["median_of_rounds"]
    print(
        f"\n{out['device']}, {out['data']}, {a.student} (teacher {a.teacher}), batch {a.batch}, "
        f"{a.precision}{', compiled' if a.compile else ''}, {a.clock} clock: "
        f"{out['images_per_arm']} timed images per arm"
    )
    for k, v in out["ms_per_step"].items():
        print(f"  {k:<8} {v:9.2f} ms/step  ({a.batch / v * 1e3:8.0f} img/s)")
    for k in (
        "harness_over_bare",
        "kd_on_over_baseline",
        "teacher_fwd_over_baseline",
        "kd_off_over_baseline",
    ):
        r = out[k]
        print(
            f"  {k:<26} {r['median_of_rounds']:.3f} (median of rounds)  "
            f"{r['of_totals']:.3f} (of totals)"
        )
    print(
        f"  harness/bare target <= 1.05: {'met' if hb <= 1.05 else 'NOT met'}; "
        f"KD on costs +{100 * (out['kd_on_over_baseline']['median_of_rounds'] - 1):.1f}% per step, "
        "the teacher forward alone "
        f"{100 * out['teacher_fwd_over_baseline']['median_of_rounds']:.1f}%"
    )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
