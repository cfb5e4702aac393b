"""GPU-only checks of the fast path (skipped without CUDA): device-resident batches equal the
CPU ones bit for bit (pairing across devices), a bf16 + channels_last + compile step runs
and learns, and the training step makes no host-device synchronisation between checks."""

from __future__ import annotations

import pytest
import torch

from benchmark.distill.switch import SwitchPolicy
from benchmark.suite import RunSettings
from benchmark.tasks.classification import Classification
from benchmark.train.loop import Loop

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SEEDS = {"init": 0, "data_order": 1, "augment": 2}


def _settings(tmp_path, monkeypatch, **train) -> RunSettings:
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    return RunSettings.model_validate(
        {
            "task": "classification",
            "threads": 1,
            "device": "cuda",
            "deterministic": False,
            "data": {
                "dataset": "synthetic",
                "kwargs": {"train": 1200, "test": 200},
                "holdout": 200,
            },
            "student": {"name": "resnet8"},
            "teachers": {"weak": {"model": {"name": "tinycnn"}}},
            "train": {
                "epochs": 2,
                "batch_size": 100,
                "eval": {"every_epochs": 1.0, "batch_size": 200},
                "checkpoint_every_eval": False,
                **train,
            },
            "distill": {"teacher": "weak", "alpha": 0.5, "temperature": 4.0, "switch": "never"},
            "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [50]},
        }
    )


def test_device_batches_equal_cpu_batches(tmp_path, monkeypatch):
    s = _settings(tmp_path, monkeypatch)
    cpu = Classification(s, seeds=SEEDS, device=torch.device("cpu"))
    gpu = Classification(s, seeds=SEEDS, device=torch.device("cuda"))
    for (xc, yc), (xg, yg) in zip(cpu.batches(1, 3), gpu.batches(1, 3)):
        assert xg.is_cuda and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


@pytest.mark.parametrize("compile_", [False, True])
def test_bf16_channels_last_step_learns(tmp_path, monkeypatch, compile_):
    s = _settings(tmp_path, monkeypatch, precision="bf16", channels_last=True, compile=compile_)
    dev = torch.device("cuda")
    task = Classification(s, seeds=SEEDS, device=dev)
    model = task.build_model(s.student, 0)
    teacher = task.build_model(s.teachers["weak"].model, 1).eval().requires_grad_(False)
    loop = Loop(
        task=task,
        model=model,
        train_cfg=s.train,
        run_dir=tmp_path / "run",
        device=dev,
        teacher=teacher,
        switch=SwitchPolicy("never"),
        write_rows=False,
    )
    res = loop.run()
    assert res.status == "complete"
    assert res.final["test"]["accuracy"] > 20  # 10 classes: well above chance after 2 epochs
    assert loop.clock.teacher_flops > 0 and loop.clock.step == 2 * task.steps_per_epoch


def test_no_host_sync_inside_steps(tmp_path, monkeypatch):
    """Between the loop's every-25-steps finiteness checks a step never blocks on the GPU:
    with CUDA's sync debug mode set to error, steps 1-23 run and the first sync raised is
    the check at step 24 (the end of the segment asked for here)."""
    s = _settings(tmp_path, monkeypatch, precision="bf16", epochs=3)
    dev = torch.device("cuda")
    task = Classification(s, seeds=SEEDS, device=dev)
    loop = Loop(
        task=task,
        model=task.build_model(s.student, 0),
        train_cfg=s.train,
        run_dir=tmp_path / "run",
        device=dev,
        write_rows=False,
    )
    loop.step_flops = task.flops(loop.model, None)
    loop.resumed = True  # no initial evaluation: only steps are watched
    loop.stop_step, loop.evals = 24, [24, loop.total]
    loop.train_watch.sync = lambda: None  # the stopwatch's own sync is at segment ends only
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            loop.run()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert loop.clock.step == 24
