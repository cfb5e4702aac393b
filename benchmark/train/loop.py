"""The one training loop, for every task (DESIGN.md convention 3).

The task supplies batches, the loss, evaluation and FLOPs; this loop owns optimisation,
the LR schedule, AMP, EMA, the KD weight and switch, clocks, metrics rows, events and
checkpoints. Hook points: `on_step(loop)` (progress, cheap) and `on_eval(loop, rows)`.

Exact resume: a checkpoint holds model, optimizer, scheduler, scaler, EMA, every RNG
state, the switch state, the clocks and how many metrics/events lines were valid; batches
are a pure function of (seeds, epoch, index), so the position inside an epoch is the step.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..distill.switch import SwitchPolicy, SwitchState
from ..store import append_jsonl, atomic_write_bytes, count_lines, truncate_jsonl
from . import ddp
from .clock import Clock, Stopwatch

CKPT_VERSION = 1


# ------------------------------------------------------------------------ schedule
def lr_factor(step: int, total: int, steps_per_epoch: int, sched, triangle=None) -> float:
    """Multiplier of the base LR at `step` (0-based): linear warm-up from 0, then the schedule.
    `triangle` (start, peak, end), when given, replaces `sched`: `start` at step 0, linear to 1
    at int(peak * total), linear to `end` at `total` (airbench94's schedule)."""
    if triangle is not None:
        start, peak, end = triangle
        return float(np.interp(step, [0, int(peak * total), total], [start, 1.0, end]))
    warm = int(round(sched.warmup_epochs * steps_per_epoch))
    if step < warm:
        return (step + 1) / warm
    if sched.name == "constant":
        return 1.0
    progress = (step - warm) / max(1, total - warm)
    lo = sched.min_lr_ratio
    if sched.name == "cosine":
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if sched.name == "linear":
        return lo + (1 - lo) * max(0.0, 1 - progress)
    if sched.name == "step":
        epoch = step / steps_per_epoch
        return sched.gamma ** sum(epoch >= m for m in sched.milestones)
    raise ValueError(sched.name)


def eval_steps(total: int, steps_per_epoch: int, ev) -> list[int]:
    """Steps after which to evaluate: 0 (the initial model), every N epochs/steps, and the end."""
    every = ev.every_steps or max(1, int(round(ev.every_epochs * steps_per_epoch)))
    out = sorted(set([0] + list(range(every, total + 1, every)) + [total]))
    return out


def decoupled_sgd(lr_per_1024: float, wd_per_1024: float, momentum: float, batch_size: int) -> tuple[float, float]:
    """(lr for a batch-MEAN loss, weight decay per step) from airbench's decoupled values.

    airbench sums its loss over the batch and uses lr_per_1024 / kilostep, kilostep = 1024 (1 +
    1/(1 - m)) (a constant per-example gradient summed over 1024 examples moves a weight
    kilostep/1024 times one plain step under momentum m); the harness's losses are means, so
    the batch is folded into the lr (the same update). Decay per step: wd_per_1024 * B / kilostep.
    """
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    return lr_per_1024 / kilostep * batch_size, wd_per_1024 * batch_size / kilostep


NORM_TYPES = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def param_groups(model: torch.nn.Module, lr: float, weight_decay: float, lr_scale: dict | None = None,
                 decoupled_wd: float | None = None) -> list[dict]:
    """Trainable parameters in groups of equal lr: `lr_scale` {"norm_bias": f} gives the biases
    of norm layers f x lr. With `decoupled_wd` (decay per step), each group's weight_decay is
    decoupled_wd / its lr, so every group decays by the same amount (PyTorch multiplies by lr)."""
    scale = dict(lr_scale or {})
    special: dict[int, float] = {}
    if "norm_bias" in scale:
        for m in model.modules():
            if isinstance(m, NORM_TYPES) and getattr(m, "bias", None) is not None:
                special[id(m.bias)] = scale["norm_bias"]
    by_factor: dict[float, list] = {}
    for p in model.parameters():
        if p.requires_grad:
            by_factor.setdefault(special.get(id(p), 1.0), []).append(p)
    groups = []
    for f, ps in sorted(by_factor.items()):
        g_lr = lr * f
        wd = decoupled_wd / g_lr if decoupled_wd is not None else weight_decay
        groups.append({"params": ps, "lr": g_lr, "weight_decay": wd})
    return groups


def build_optimizer(model: torch.nn.Module, cfg, recipe=None, batch_size: int | None = None) -> torch.optim.Optimizer:
    """The suite's optimizer; `recipe` (classification task_options.recipe) may make SGD's
    hyperparameters decoupled and scale norm-bias lrs (param_groups)."""
    if recipe is not None and (recipe.decoupled or recipe.lr_scale):
        if cfg.name != "sgd":
            raise ValueError("recipe.decoupled / lr_scale are defined for sgd")
        lr, wd = cfg.lr, cfg.weight_decay
        decoupled_wd = None
        if recipe.decoupled:
            lr, decoupled_wd = decoupled_sgd(cfg.lr, cfg.weight_decay, cfg.momentum, batch_size)
        return torch.optim.SGD(param_groups(model, lr, wd, recipe.lr_scale, decoupled_wd), lr=lr,
                               momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


# ------------------------------------------------------------------------- state
def rng_state() -> dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class EMA:
    """Exponential moving average of parameters and buffers (evaluation uses it)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(p, 1 - self.decay)
            else:
                e.copy_(p)


class Lookahead:
    """Lookahead with an EMA slow copy (airbench94): `update(model, decay)` moves the slow copy
    of every float state-dict tensor (weights and BN statistics) toward the model's and copies
    it back into the model; decay 1.0 just resets the model to the slow copy."""

    def __init__(self, model: torch.nn.Module):
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.slow[k].lerp_(v, 1 - decay)
                v.copy_(self.slow[k])

    @staticmethod
    def decay_at(step: int, total: int, opt) -> float:
        """decay^every * (step/total)^power: small early (the EMA follows), 0.95^5 at the end."""
        return opt.decay ** opt.every_steps * (step / total) ** opt.power


@dataclass
class LoopResult:
    status: str  # complete | diverged
    clock: Clock
    final: dict = field(default_factory=dict)  # {split: {metric: value}} at the last evaluation
    switch_step: int | None = None
    reason: str = ""


class Loop:
    """One run of training. Build it, then call `run()`; `run_dir` receives the contract files."""

    def __init__(self, *, task, model: torch.nn.Module, train_cfg, run_dir: Path, device: torch.device,
                 teacher: torch.nn.Module | None = None, switch: SwitchPolicy | None = None,
                 thresholds: list[float] = (), stop_step: int | None = None,
                 on_step: Callable | None = None, on_eval: Callable | None = None,
                 write_rows: bool = True):
        self.task = task
        self.model = model
        self.cfg = train_cfg
        self.dir = Path(run_dir)
        self.device = device
        self.teacher = teacher
        self.switch = switch
        self.thresholds = list(thresholds)
        self.on_step = on_step
        self.on_eval = on_eval
        self.write_rows = write_rows
        self.spe = task.steps_per_epoch
        self.total = max(1, int(round(train_cfg.epochs * self.spe)))
        self.stop_step = min(stop_step, self.total) if stop_step else self.total
        self.evals = [s for s in eval_steps(self.total, self.spe, train_cfg.eval) if s <= self.stop_step]
        if self.stop_step not in self.evals:
            self.evals.append(self.stop_step)
        # a task may carry recipe options the loop applies (classification task_options.recipe)
        self.recipe = getattr(task, "recipe", None)
        r = self.recipe
        self.opt = build_optimizer(model, train_cfg.optimizer, r, task.batch_size)
        tri = (r.schedule.start, r.schedule.peak, r.schedule.end) if r is not None and r.schedule else None
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, self.total, self.spe, train_cfg.schedule, tri))
        self.lookahead: Lookahead | None = None
        self.frozen = self._freeze_params(model, r.freeze_after if r is not None else {})
        amp = train_cfg.precision != "fp32" and device.type in ("cuda", "cpu")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train_cfg.precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=self.amp_dtype)) if amp else nullcontext
        self.scaler = torch.amp.GradScaler(device.type, enabled=train_cfg.precision == "fp16")
        self.ema = EMA(model, train_cfg.ema) if train_cfg.ema else None
        # train.compile: steps run torch.compile'd views sharing the modules' parameters;
        # checkpoints, EMA, FLOPs counting and evaluation use the plain modules.
        if train_cfg.compile and torch.are_deterministic_algorithms_enabled():
            # configure_torch skipped inductor's own flag; set it before compiling
            torch.use_deterministic_algorithms(True, warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
        self.step_model = torch.compile(model) if train_cfg.compile else model
        self.step_teacher = torch.compile(teacher) if train_cfg.compile and teacher is not None else teacher
        # DDP (torchrun): each rank trains on its slice of every global batch; gradients are
        # averaged, so the update matches one process with the suite's batch size
        self.rank, self.world = ddp.world() if ddp.active() else (0, 1)
        if self.world > 1:
            self.step_model = torch.nn.parallel.DistributedDataParallel(
                self.step_model, device_ids=[device.index] if device.type == "cuda" else None)
            if task.batch_size % self.world:
                raise ValueError(f"batch_size {task.batch_size} is not divisible by {self.world} processes")
            # per-rank randomness (dropout etc.) after the shared init: derived, not shared
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,))) + 7919 * self.rank)
        self.clock = Clock()
        self.crossed: set[float] = set()
        self.direction = task.direction
        self.metric = task.metric
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        self.train_watch, self.eval_watch = Stopwatch(sync), Stopwatch(sync)
        self.step_flops: dict[str, float] = {}
        self.last: dict = {}
        self.kd_active = False
        self.resumed = False

    @staticmethod
    def _freeze_params(model: torch.nn.Module, freeze_after: dict) -> list[tuple[torch.nn.Parameter, float]]:
        """(parameter, epochs it trains) for recipe.freeze_after; unknown names are an error."""
        named = dict(model.named_parameters())
        unknown = [k for k in freeze_after if k not in named]
        if unknown:
            from ..errors import UserError

            raise UserError(f"task_options.recipe.freeze_after: the model has no parameter {unknown[0]!r} "
                            f"(its parameters: {', '.join(list(named)[:12])}{', ...' if len(named) > 12 else ''})")
        return [(named[k], float(e)) for k, e in freeze_after.items()]

    def _lookahead_step(self) -> None:
        """After an optimizer step (`step` counts it): every `every_steps` steps taken in epoch
        `start_epoch` or later (the epoch of the step just taken is (step - 1) // spe)."""
        la, step = self.recipe.lookahead, self.clock.step
        if (step - 1) // self.spe < la.start_epoch or step % la.every_steps:
            return
        if self.lookahead is None:
            self.lookahead = Lookahead(self.model)
        else:
            self.lookahead.update(self.model, Lookahead.decay_at(step, self.total, la))

    # ---------------------------------------------------------------- paths
    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def ckpt_path(self) -> Path:
        return self.dir / "checkpoints" / "last.pt"

    def wall_now(self) -> tuple[float, float]:
        """(train, eval) wall seconds so far, counting an interval still being timed; a
        heartbeat of these lets a resumed run report the time a crash threw away."""
        tw, ew = self.clock.train_wall_s, self.clock.eval_wall_s
        now = time.perf_counter()
        if self.train_watch._t0 is not None:
            tw += now - self.train_watch._t0
        if self.eval_watch._t0 is not None:
            ew += now - self.eval_watch._t0
        return tw, ew

    def epoch(self, step: int | None = None) -> float:
        return (self.clock.step if step is None else step) / self.spe

    def event(self, name: str, **kw) -> None:
        if self.write_rows:
            append_jsonl(self.events_path, [{"event": name, "epoch": round(self.epoch(), 6), "step": self.clock.step,
                                             "wall": time.time(), **kw}])

    # ----------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        return {
            "version": CKPT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema else None,
            "lookahead": self.lookahead.slow if self.lookahead else None,
            "rng": rng_state(),
            "clock": self.clock.state_dict(),
            "switch": vars(self.switch.state) if self.switch else None,
            "crossed": sorted(self.crossed),
            "metrics_lines": count_lines(self.metrics_path),
            "events_lines": count_lines(self.events_path),
            "last": self.last,
            "total": self.total,
        }

    def save(self) -> None:
        import io

        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        atomic_write_bytes(self.ckpt_path, buf.getvalue())

    def load(self, path: Path) -> int:
        """Restore from a checkpoint; returns how many torn/extra JSONL lines were dropped."""
        st = torch.load(path, map_location=self.device, weights_only=False)
        if st.get("version") != CKPT_VERSION or st.get("total") != self.total:
            raise RuntimeError(f"checkpoint {path} does not match this run (version/total steps)")
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        if self.ema and st["ema"] is not None:
            self.ema.model.load_state_dict(st["ema"])
        if st.get("lookahead") is not None:
            self.lookahead = Lookahead(self.model)
            self.lookahead.slow = st["lookahead"]
        set_rng_state(st["rng"])
        self.clock = Clock.from_state(st["clock"])
        if self.switch and st["switch"] is not None:
            self.switch.state = SwitchState(**st["switch"])
        self.crossed = set(st["crossed"])
        self.last = st["last"]
        dropped = truncate_jsonl(self.metrics_path, st["metrics_lines"])
        dropped += truncate_jsonl(self.events_path, st["events_lines"])
        self.resumed = True
        return dropped

    # ------------------------------------------------------------------ run
    def kd_weight(self) -> float:
        """Weight of the distillation term for the next step (0 without a switch policy)."""
        return self.switch.weight(self.epoch()) if self.switch else 0.0

    def run(self) -> LoopResult:
        if not self.step_flops:
            self.step_flops = self.task.flops(self.model, self.teacher)
        if self.clock.step == 0 and not self.resumed:
            self.evaluate()  # the initial model: curves start at epoch 0
        check_every = 25  # steps between non-finite checks (a host sync; not every step)
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        while self.clock.step < self.stop_step:
            ep, start = divmod(self.clock.step, self.spe)
            next_eval = next(s for s in self.evals if s > self.clock.step)
            self.model.train()
            for p, epochs in self.frozen:  # recipe.freeze_after: trains for its first epochs only
                p.requires_grad_(ep < epochs)
            self.train_watch.start()
            for batch in self.task.batches(ep, start):
                if self.world > 1:
                    batch = ddp.shard(batch, self.rank, self.world)
                w = self.kd_weight()
                use_teacher = self.teacher is not None and w > 0
                self.kd_active = w > 0
                with self.autocast():
                    loss, _ = self.task.loss(self.step_model, batch, self.step_teacher if use_teacher else None,
                                             w, self.clock.step)
                bad |= ~torch.isfinite(loss.detach())
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.cfg.grad_clip:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                self.sched.step()
                if self.ema:
                    self.ema.update(self.model)
                c = self.clock
                c.step += 1
                if self.recipe is not None and self.recipe.lookahead is not None:
                    self._lookahead_step()
                c.samples += self.task.batch_size
                c.flops += self.step_flops["student_step"]
                if use_teacher:
                    c.flops += self.step_flops["teacher_step"]
                    c.teacher_flops += self.step_flops["teacher_step"]
                if c.step % check_every == 0 or c.step == next_eval:
                    if self.world > 1:
                        bad = ddp.any_true(bad)
                    if bool(bad):
                        c.train_wall_s += self.train_watch.stop()
                        self.event("divergence", loss=float(loss.detach()))
                        return LoopResult("diverged", c, self.last, self._switch_step(),
                                          f"non-finite loss by step {c.step}")
                if self.on_step:
                    self.on_step(self)
                if c.step == next_eval:
                    break
            if self.lookahead is not None and self.clock.step == self.total:
                # the last step: the weights become the slow (EMA) copy, as published (only at
                # the end of training, not at every epoch's end)
                self.lookahead.update(self.model, 1.0)
            self.clock.train_wall_s += self.train_watch.stop()
            if self.clock.step == next_eval:
                self.evaluate()
        return LoopResult("complete", self.clock, self.last, self._switch_step())

    def _switch_step(self) -> int | None:
        return self.switch.state.off_step if self.switch else None

    # ------------------------------------------------------------- evaluate
    def evaluate(self) -> None:
        model = self.ema.model if self.ema else self.model
        model.eval()
        self.eval_watch.start()
        # tasks may evaluate cheaper between evaluations than at the end (e.g. a test subset)
        self.task.eval_final = self.clock.step >= self.total
        results = {split: self.task.evaluate(model, split) for split in ("test", "holdout")}
        self.clock.eval_wall_s += self.eval_watch.stop()
        c = self.clock
        rows = []
        for split, vals in results.items():
            for metric, value in vals.items():
                rows.append({"epoch": round(self.epoch(), 6), "step": c.step, "samples": c.samples,
                             "train_wall_s": round(c.train_wall_s, 4), "eval_wall_s": round(c.eval_wall_s, 4),
                             "flops": c.flops, "split": split, "metric": metric, "value": float(value),
                             "kd_active": bool(self.kd_active)})
        self.last = results
        if self.write_rows:
            append_jsonl(self.metrics_path, rows)
        test_v = results.get("test", {}).get(self.metric)
        if test_v is not None:
            for t in self.thresholds:
                hit = test_v >= t if self.direction == "higher" else test_v <= t
                if hit and t not in self.crossed:
                    self.crossed.add(t)
                    self.event("threshold_crossed", threshold=t, value=test_v)
        if self.switch is not None and c.step > 0:
            hold_v = results.get("holdout", {}).get(self.metric)
            reason = self.switch.should_switch(epoch=self.epoch(), step=c.step, student_holdout=hold_v)
            if reason:
                self.switch.fire(epoch=self.epoch(), step=c.step)
                self.event("switch_off", reason=reason, student_holdout=hold_v,
                           teacher_holdout=self.switch.teacher_holdout)
            was_on = self.kd_weight() > 0
            self.switch.after_eval()
            if was_on and self.kd_weight() == 0 and self.switch.state.off_step is not None \
                    and not self.switch.state.zero_logged:
                self.switch.state.zero_logged = True
                if self.switch.ramp_epochs or self.switch.ramp_evals:
                    self.event("kd_zero")
        if self.on_eval:
            self.on_eval(self, rows)
        if self.write_rows and self.cfg.checkpoint_every_eval:
            self.save()


def configure_torch(threads: int, deterministic: bool, device: torch.device) -> None:
    """Fix the CPU thread count (results depend on it) and deterministic algorithms."""
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic:
        # torch.use_deterministic_algorithms also imports torch._inductor.config (~3 s of CPU
        # per process) only to set a torch.compile flag; set the flag directly when inductor
        # is not loaded yet (Loop sets it before torch.compile)
        import sys

        if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch._C._set_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = device.type == "cuda"
