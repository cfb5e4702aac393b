"""Diffusion: DDPM epsilon-prediction students (Ho et al. 2020), distilled from a frozen,
weaker diffusion teacher on the same (x_t, t, eps), evaluated by FID of generated samples.

Data reuse the classification loaders (in-memory uint8 NCHW splits; labels only train the
fid_cifarnet feature classifier). Per step the batch is (x_0, t, eps), a pure function of
(seeds, epoch, index): the image order from the `data_order` stream, flips, timesteps and
noise from the `augment` stream. Paired arms therefore see identical (x_t, t, eps) and a
resumed run continues exactly. Evaluation generates `fid.num_samples` images with a fixed
sampling seed (identical noise for every run, arm and teacher) and scores them against the
cached statistics of the test split (thresholds) and of the held-out train split (switch).
Lower is better, so `surpass_teacher` fires when the student's held-out FID <= the teacher's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.cache import cache_dir as default_cache_dir
from ..data.tensors import augment
from ..diffusion.samplers import network_evals, sample
from ..diffusion.schedule import make_schedule
from ..distill.losses import Outputs, build_distillation
from ..errors import DataError, UserError
from ..registry import MODELS
from .base import count_flops
from .base import stream_seed as _seed
from .classification import load_data
from .diffusion_options import parse


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Area-resize uint8 (N, C, H, W) images to size x size (rounded back to uint8)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = [F.interpolate(x[lo:lo + chunk].float(), size=(size, size), mode="area").round_().clamp_(0, 255)
           .to(torch.uint8) for lo in range(0, len(x), chunk)]
    return torch.cat(out) if out else x[:, :, :size, :size]


def to_model_space(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1] (DDPM's data scaling)."""
    return x_uint8.float() / 127.5 - 1


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8, as a saved PNG would quantise it."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Diffusion:
    direction = "lower"

    def __init__(self, settings, *, seeds: dict, device: torch.device):
        self.s = settings
        self.seeds = seeds
        self.device = device
        self.opts = parse(settings.task_options)
        self.metric = settings.targets.metric
        if self.metric not in ("fid", "fid_cifarnet"):
            raise DataError(f"diffusion reports fid or fid_cifarnet, not {self.metric!r}")
        data = load_data(settings)
        if data.streaming:
            raise UserError("the diffusion task needs an in-memory dataset (cifar10, cifar100, synthetic, pack)")
        size = self.opts.image_size or data.train.x.shape[-1]
        self.image_size = size
        self.batch_size = settings.train.batch_size
        train_x = resize_uint8(data.train.x, size)
        n = len(train_x)
        if n < self.batch_size:
            raise DataError(f"train split has {n} images, fewer than batch_size {self.batch_size}")
        self.steps_per_epoch = n // self.batch_size  # full batches only: pairing, exact resume
        self.train_x = train_x.to(device)
        self.split_x = {"test": resize_uint8(data.test.x, size), "holdout": resize_uint8(data.holdout.x, size)}
        sc = self.opts.schedule
        self.schedule = make_schedule(sc.name, sc.T, sc.beta_start, sc.beta_end, sc.cosine_s)
        self.T = sc.T
        self.distill = build_distillation(settings.distill)  # None: no distillation
        self._fid = self._build_fid(data, train_x)
        self._sample_cache: tuple | None = None
        self.info = dict(data.info)
        self.info.update(image_size=size, fid_metric=self.metric, fid_num_samples=self.opts.fid.num_samples,
                         sampler=self.opts.sampler.model_dump(), **self._fid_info)

    # ------------------------------------------------------------------------- FID
    def _build_fid(self, data, train_x):
        from ..metrics import fid as fidm

        f = self.opts.fid
        cdir = default_cache_dir() / "fid" if f.cache_dir is None else Path(f.cache_dir).expanduser()
        cdir.mkdir(parents=True, exist_ok=True)
        kw = dict(batch_size=f.batch_size, kid=f.kid, kid_subset_size=f.kid_subset_size,
                  kid_subsets=f.kid_subsets, cache_dir=cdir)
        if self.metric == "fid":
            ev = fidm.inception_evaluator(f.weights, device=self.device, **kw)
            self._fid_info = {"fid_features": "inception-v3-compat (torch-fidelity)"}
        else:
            cfg = f.feature_net.model_dump()
            net, info = fidm.cached_cifarnet(train_x, data.train.y, data.num_classes, cfg=cfg, cache_dir=cdir,
                                             device=self.device, eval_x=self.split_x["test"], eval_y=data.test.y)
            ev = fidm.cifarnet_evaluator(net, key=info["key"], device=self.device, **kw)
            self._fid_info = {"fid_features": f"w2s-cifarnet {info['key']}",
                              "fid_feature_net_test_accuracy": info.get("test_accuracy")}
        for split, x in self.split_x.items():
            if len(x) >= 2:
                ev.set_reference(split, x)
        return ev

    @torch.no_grad()
    def generate(self, model, n: int | None = None) -> torch.Tensor:
        """`fid.num_samples` uint8 images from the fixed sampling seed (batch b uses its own
        generator seeded by (sampling_seed, b), so the noise is the same for every model)."""
        f, sp = self.opts.fid, self.opts.sampler
        n = f.num_samples if n is None else n
        out = []
        amp = self.s.train.precision == "bf16" and self.device.type == "cuda"
        for b, lo in enumerate(range(0, n, f.batch_size)):
            m = min(f.batch_size, n - lo)
            g = torch.Generator(device=self.device).manual_seed(_seed(f.sampling_seed, b, 0xD1FF))
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False):
                x = sample(model, self.schedule, (m, 3, self.image_size, self.image_size), name=sp.name,
                           steps=sp.steps, eta=sp.eta, generator=g, device=self.device,
                           variance=sp.variance, clip=sp.clip)
            out.append(to_uint8(x.float()))
        return torch.cat(out)

    def _fingerprint(self, model) -> tuple:
        # in-place updates (optimizer, EMA lerp_, load_state_dict) bump tensor version counters
        return (id(model), tuple(p._version for p in model.parameters()),
                tuple(b._version for b in model.buffers()))

    def evaluate(self, model, split: str) -> dict[str, float]:
        if split not in self._fid.refs:
            return {}  # e.g. holdout: 0
        key = self._fingerprint(model)
        if self._sample_cache is None or self._sample_cache[0] != key:
            self._sample_cache = None  # free the previous samples first
            samples = self.generate(model)
            self._sample_cache = (key, self._fid.features(samples))
        return self._fid.score(None, split, feats=self._sample_cache[1])

    # ---------------------------------------------------------------- model & data
    def build_model(self, model_cfg, init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        try:
            fn = MODELS[model_cfg.name].load()
        except KeyError as e:
            raise UserError(str(e)) from None
        try:
            m = fn(image_size=self.image_size, **model_cfg.kwargs)
        except (TypeError, ValueError) as e:
            raise UserError(f"model {model_cfg.name!r}: bad kwargs {model_cfg.kwargs}: {e}") from None
        return m.to(self.device)

    def batches(self, epoch: int, start: int):
        n, b = len(self.train_x), self.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.seeds["data_order"], epoch)))
        aug = self.s.train.augment
        shape = (b, *self.train_x.shape[1:])
        for i in range(start, self.steps_per_epoch):
            idx = order[i * b:(i + 1) * b].to(self.device)
            g = torch.Generator().manual_seed(_seed(self.seeds["augment"], epoch, i))
            x0 = augment(self.train_x[idx], g, aug.crop_padding, aug.hflip)
            t = torch.randint(0, self.T, (b,), generator=g)
            noise = torch.randn(shape, generator=g)
            yield to_model_space(x0), t.to(self.device), noise.to(self.device)

    # ---------------------------------------------------------------------- losses
    def loss(self, model, batch, teacher, weight: float, step: int):
        """DDPM's L_simple = mean (eps_s - eps)^2 (Ho et al. 2020 eq. 14) and, when active,
        the registered distillation term on the predicted noise (the teacher's on the same
        (x_t, t)), weighted by distill.losses.combine."""
        x0, t, noise = batch
        xt = self.schedule.q_sample(x0, t, noise)
        eps_s = model(xt, t)
        mse = (eps_s.float() - noise.float()).pow(2).mean()
        parts = {"mse": mse.detach()}
        dist = self.distill
        if dist is None or not dist.active(teacher, weight):
            return mse, parts
        eps_t = None
        if dist.needs_teacher:
            with torch.no_grad():
                eps_t = teacher(xt, t)
        return dist.apply(mse, parts, Outputs(eps_s, eps_t, noise), weight)

    def flops(self, model, teacher) -> dict[str, float]:
        """Per-step FLOPs measured on a 2-image batch and scaled by the batch size, on a copy
        (grads untouched); eval_per_sample = one forward x the sampler's network evaluations."""
        x = torch.zeros(2, 3, self.image_size, self.image_size, device=self.device)
        t = torch.full((2,), self.T // 2, dtype=torch.long, device=self.device)
        m = copy.deepcopy(model)
        m.train()
        per2 = count_flops(lambda: m(x, t).float().sum().backward())
        out = {"student_step": per2 / 2 * self.batch_size, "teacher_step": 0.0}
        if teacher is not None:
            with torch.no_grad():
                out["teacher_step"] = count_flops(lambda: teacher(x, t)) / 2 * self.batch_size
        with torch.no_grad():
            m.eval()
            sp = self.opts.sampler
            out["eval_per_sample"] = count_flops(lambda: m(x, t)) / 2 * network_evals(sp.name, sp.steps, self.T)
        return out


def build(settings, *, seeds: dict, device: torch.device) -> Diffusion:
    return Diffusion(settings, seeds=seeds, device=device)
