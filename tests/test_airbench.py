"""airbench94 network (benchmark/models/airbench.py) and the pure pieces of the bare recipe
script (perf/airbench_bare.py): exact answers on tiny inputs."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import UserError
from benchmark.models import build_model
from benchmark.models.airbench import airbench94, init_whitening, patch_moment
from benchmark.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]


def _bare():
    path = ROOT / "perf" / "airbench_bare.py"
    spec = importlib.util.spec_from_file_location("airbench_bare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------- network
def test_registered_and_built_through_the_registry():
    assert "airbench94" in MODELS
    m = build_model("airbench94", 10, {"widths": [8, 16, 16]})
    assert [g.conv2.out_channels for g in m.groups] == [8, 16, 16]


def test_parameter_count_of_the_published_net():
    m = airbench94()
    # by hand: whitening 24*3*2*2 + 24 bias; group (cin -> w): 9*cin*w + 9*w*w + 2 BNs x
    # (weight + bias) = 4w; head 256*10, no bias
    def group(cin, w):
        return 9 * cin * w + 9 * w * w + 4 * w

    expected = (24 * 12 + 24) + group(24, 64) + group(64, 256) + group(256, 256) + 256 * 10
    total = sum(p.numel() for p in m.parameters())
    frozen = sum(p.numel() for p in m.parameters() if not p.requires_grad)
    print(f"airbench94 parameters: {total:,} ({frozen:,} frozen)")
    assert total == expected == 1_972_792  # ~1.97M, as quoted for airbench94
    assert frozen == 24 * 12 + 2 * (64 + 256 + 256)  # whitening weights + BN scales


def test_output_shapes_and_logit_scale():
    torch.manual_seed(0)
    m = airbench94().eval()
    x = torch.randn(2, 3, 32, 32)
    init_whitening(m, x)
    with torch.no_grad():
        out, feats = m(x), m.features(x)
    assert out.shape == (2, 10)
    # 32 -> whitening (k=2, no pad) 31 -> pools 15, 7, 3 -> maxpool 3 -> 1x1x256
    assert feats.shape == (2, 256)
    assert torch.allclose(out, m.head(feats) / 9, rtol=0, atol=1e-6)
    small = airbench94(num_classes=7, widths=(8, 16, 12), logit_scale=0.5).eval()
    small.init_from_data(x)
    with torch.no_grad():
        out, feats = small(x), small.features(x)
    assert out.shape == (2, 7)
    assert torch.allclose(out, small.head(feats) * 0.5, rtol=0, atol=1e-6)


def test_forward_refuses_an_unwhitened_net_until_init_or_checkpoint():
    x = torch.randn(2, 3, 32, 32)
    m = airbench94(widths=(8, 8, 8)).eval()
    assert m.state_dict()["whitened"].item() is False
    with pytest.raises(UserError, match="whitening layer is not initialised"):
        m(x)
    init_whitening(m, x)
    assert m.state_dict()["whitened"].item() is True
    with torch.no_grad():
        y = m(x)
    # a fresh net that loads the checkpoint is initialised too (and computes the same)
    n = airbench94(widths=(8, 8, 8)).eval()
    n.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(n(x), y)
    import copy

    with torch.no_grad():
        assert torch.equal(copy.deepcopy(m)(x), y)  # the harness's EMA and FLOPs copies


def test_batchnorm_and_frozen_weights():
    m = airbench94(bn_momentum=0.3, bn_eps=1e-5)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert len(bns) == 6
    for bn in bns:
        assert (bn.momentum, bn.eps) == (0.3, 1e-5)
        assert not bn.weight.requires_grad and bool((bn.weight == 1).all())
        assert bn.bias.requires_grad
    d = airbench94()
    assert all((b.momentum, b.eps) == (0.4, 1e-12) for b in d.modules()
               if isinstance(b, torch.nn.BatchNorm2d))
    assert not d.whiten.weight.requires_grad and d.whiten.bias.requires_grad
    assert d.head.bias is None


def test_dirac_init_passes_the_first_in_channels_through():
    torch.manual_seed(0)
    m = airbench94(widths=(32, 48, 48))
    x = torch.randn(3, 24, 9, 9)
    conv = m.groups[0].conv1  # 24 -> 32
    with torch.no_grad():
        y = conv(x)
        assert torch.allclose(y[:, :24], x, rtol=0, atol=1e-5)
        # the other filters keep the default (random) init: not a copy of anything
        assert conv.weight[24:].abs().sum() > 0
        z = torch.randn(2, 48, 5, 5)
        assert torch.allclose(m.groups[2].conv2(z), z, rtol=0, atol=1e-5)  # 48 -> 48: identity


@pytest.mark.parametrize("kwargs, words", [
    ({"widths": [64, 256]}, "widths must be a list of 3"),
    ({"widths": [64, 0, 8]}, "widths must be a list of 3"),
    ({"logit_scale": 0}, "logit_scale"),
    ({"bn_momentum": 1.5}, "bn_momentum"),
    ({"depth": 3}, "bad kwargs"),
])
def test_bad_options_are_user_errors(kwargs, words):
    with pytest.raises(UserError, match=words):
        build_model("airbench94", 10, kwargs)


# ----------------------------------------------------------------------- whitening
def test_patch_moment_by_hand():
    # one 1-channel 2x3 image: two 2x2 patches p1 = (1, 2, 4, 5), p2 = (2, 3, 5, 6)
    x = torch.tensor([[[[1.0, 2, 3], [4, 5, 6]]]])
    m, n = patch_moment(x, 2)
    expected = torch.tensor([[2.5, 4.0, 7.0, 8.5],
                             [4.0, 6.5, 11.5, 14.0],
                             [7.0, 11.5, 20.5, 25.0],
                             [8.5, 14.0, 25.0, 30.5]], dtype=torch.float64)
    assert n == 2
    assert torch.equal(m, expected)


def test_patch_moment_flattens_like_a_conv_weight():
    # a 2-channel image: patch coordinates run (channel, row, col), the conv weight layout,
    # so p . w.flatten() equals the conv output at that position
    torch.manual_seed(1)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    w = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    m, n = patch_moment(x, 2)
    y = F.conv2d(x, w).flatten()
    assert n == 4
    assert torch.allclose(w.flatten() @ m @ w.flatten(), (y ** 2).mean(), rtol=1e-12, atol=0)


def _correlated_images(n=64, size=12, seed=0):
    """Zero-mean images with strong cross-channel and neighbouring-pixel correlation, like
    normalised natural images."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, size + 1, size + 1, generator=g)
    z = z[:, :, 1:, 1:] + 0.8 * z[:, :, :-1, 1:] + 0.6 * z[:, :, 1:, :-1]  # spatial smoothing
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.4, 0.0], [0.8, 0.3, 0.3]])  # channel mixing
    return torch.einsum("dc,nchw->ndhw", mix, z)


def test_whitening_layer_whitens_patches():
    torch.manual_seed(0)
    m = airbench94(widths=(8, 8, 8))
    x = _correlated_images()
    lam = init_whitening(m, x)
    assert not m.whiten.weight.requires_grad
    assert bool((lam[:-1] >= lam[1:]).all())  # descending
    with torch.no_grad():
        out = F.conv2d(x, m.whiten.weight)  # before the bias
    pos = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    moment = pos.T @ pos / len(pos)
    # exact answer: V^T Sigma V / (lam + eps) = diag(lam / (lam + eps)); tolerance 1e-4 for
    # the float32 conv over 7,744 patches (relative rounding ~1e-7 per term, values O(1))
    exact = torch.diag((lam / (lam + 5e-4)).double())
    assert torch.allclose(moment, exact, rtol=0, atol=1e-4)
    # ~identity: the eps shrinks channel i by eps / (lam_i + eps) <= 5e-4 / lam_min; the
    # smallest eigenvalue of these images is ~0.04, so every entry is within ~0.013 (+ the
    # 1e-4 rounding allowance above) of the identity
    shrink = float((5e-4 / (lam + 5e-4)).max())
    assert 0 < shrink < 0.015
    assert torch.allclose(moment, torch.eye(12, dtype=torch.float64), rtol=0, atol=shrink + 1e-4)
    # the off-diagonal part is exactly zero up to rounding: the channels are decorrelated
    assert float((moment - torch.diag(torch.diag(moment))).abs().max()) < 1e-4
    # channels 12..23 are the negatives of 0..11
    assert torch.equal(m.whiten.weight[12:], -m.whiten.weight[:12])


def test_whitening_is_deterministic_in_sign():
    x = _correlated_images(n=16)
    a, b = airbench94(widths=(8, 8, 8)), airbench94(widths=(8, 8, 8))
    init_whitening(a, x)
    init_whitening(b, x.clone())
    assert torch.equal(a.whiten.weight, b.whiten.weight)
    c = airbench94(widths=(8, 8, 8))
    c.init_from_data(x)  # the model-init hook is the same initialisation
    assert torch.equal(c.whiten.weight, a.whiten.weight)
    w = a.whiten.weight[:12].reshape(12, -1)
    assert bool((w.gather(1, w.abs().argmax(1, keepdim=True)) > 0).all())


def test_whitening_rejects_bad_images():
    m = airbench94(widths=(8, 8, 8))
    with pytest.raises(UserError, match="float"):
        init_whitening(m, torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(UserError, match=r"\(N, 3, H, W\)"):
        init_whitening(m, torch.zeros(4, 1, 8, 8))


# ---------------------------------------------------------------- bare recipe script
def test_decoupled_hyperparameters():
    bare = _bare()
    lr, wd = bare.decoupled_sgd(11.5, 0.0153, 0.85, 1024)
    kilostep = 1024 * (1 + 1 / 0.15)  # = 7851.1 for momentum 0.85
    assert math.isclose(lr, 11.5 / kilostep, rel_tol=1e-12)
    assert math.isclose(wd, 0.0153 / (1 + 1 / 0.15), rel_tol=1e-12)
    # a group's weight_decay is wd / its lr: lr * weight_decay = wd, BN biases included
    m = airbench94(widths=(8, 8, 8))
    groups = bare.param_groups(m, lr, wd, 64.0)
    assert math.isclose(groups[0]["lr"], 64 * lr) and math.isclose(groups[1]["lr"], lr)
    for g in groups:
        assert math.isclose(g["lr"] * g["weight_decay"], wd, rel_tol=1e-12)
    assert len(groups[0]["params"]) == 6  # the 6 BN biases (their weights are frozen)
    n_trainable = sum(1 for p in m.parameters() if p.requires_grad)
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == n_trainable


def test_triangular_schedule_and_lookahead_decay():
    bare = _bare()
    # total 100: peak at int(23) -> 0.2 at 0, 1 at 23, 0.07 at 100, linear between
    assert bare.triangular(0, 100) == pytest.approx(0.2)
    assert bare.triangular(23, 100) == pytest.approx(1.0)
    assert bare.triangular(100, 100) == pytest.approx(0.07)
    assert bare.triangular(10, 100) == pytest.approx(0.2 + 0.8 * 10 / 23)
    assert bare.triangular(50, 100) == pytest.approx(1 - 0.93 * 27 / 77)
    assert bare.lookahead_decay(100, 100) == pytest.approx(0.95 ** 5)
    assert bare.lookahead_decay(50, 100) == pytest.approx(0.95 ** 5 / 8)


def test_lookahead_moves_weights_and_bn_statistics_to_the_ema():
    bare = _bare()
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    la = bare.Lookahead(net)  # slow copy: weight 1, running_mean 0
    with torch.no_grad():
        net[0].weight.fill_(3.0)
        net[1].running_mean.fill_(2.0)
    net[1].num_batches_tracked += 7
    la.update(net, 0.75)  # slow = 0.75 * slow + 0.25 * fast, copied back into the net
    assert float(net[0].weight.detach()) == pytest.approx(0.75 * 1 + 0.25 * 3)
    assert float(net[1].running_mean) == pytest.approx(0.25 * 2)
    assert int(net[1].num_batches_tracked) == 7  # integer buffers are not averaged
    with torch.no_grad():
        net[0].weight.fill_(10.0)
    la.update(net, 1.0)  # the epoch-end reset: the net becomes the slow copy
    assert float(net[0].weight.detach()) == pytest.approx(1.5)


def test_stratified_subset():
    import numpy as np

    bare = _bare()
    labels = np.array([0] * 5 + [1] * 5 + [2] * 5)
    idx = bare.stratified(labels, 7, np.random.default_rng(0))
    assert len(idx) == 7 and len(set(idx.tolist())) == 7
    assert np.bincount(labels[idx]).tolist() == [3, 2, 2]  # the remainder goes to class 0


def test_augmentation_and_tta_pieces():
    bare = _bare()
    assert bare.reflect_index(4, 2).tolist() == [2, 1, 0, 1, 2, 3, 2, 1]
    x = torch.arange(2 * 1 * 4 * 4).view(2, 1, 4, 4)
    r = bare.reflect_index(4, 2)
    padded = x[:, :, r][:, :, :, r]
    assert torch.equal(padded.float(), F.pad(x.float(), (2,) * 4, mode="reflect"))
    crops = bare.crop_batch(padded, torch.tensor([[2, 2], [0, 4]]), 4)
    assert torch.equal(crops[0], x[0])  # offset (2, 2) = no translation
    assert torch.equal(crops[1], padded[1, :, 0:4, 4:8])

    class Probe(torch.nn.Module):  # logits = the image's top-left pixel, to trace the views
        def forward(self, z):
            return z[:, :, 0, 0]

    img = torch.arange(16.0).view(1, 1, 4, 4)
    # views' top-left pixels: image 0, mirror 3; shifted up-left (reflect) 5, its mirror 6;
    # shifted down-right 5, its mirror 6 -> 1/2 (0+3)/2 + 1/4 (5+6)/2 + 1/4 (5+6)/2
    assert float(bare.logits_tta(Probe(), img, 2)) == pytest.approx(0.75 + 2.75)
    assert float(bare.logits_tta(Probe(), img, 1)) == pytest.approx(1.5)
    assert float(bare.logits_tta(Probe(), img, 0)) == 0.0


def test_bare_script_end_to_end_on_a_tiny_folder(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, per in (("train", 12), ("test", 4)):
        for c in ("a", "b"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(per):
                arr = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(arr).save(d / f"{i}.png")
    out = _bare().main(["--data-root", str(tmp_path), "--epochs", "5", "--batch-size", "8",
                        "--widths", "4", "4", "4", "--threads", "1", "--whiten-images", "8",
                        "--json", str(tmp_path / "out.json")])
    counts = (out["n_train"], out["n_test"], out["steps_per_epoch"], out["total_steps"])
    assert counts == (24, 8, 3, 15)
    assert [e["step"] for e in out["epochs"]] == [3, 6, 9, 12, 15]
    assert 0 <= out["tta_acc"] <= 100 and (tmp_path / "out.json").is_file()


def test_validate_deep_reports_bad_airbench_kwargs():
    # `w2s-bench validate --deep` checks each registered model's signature and the factory's
    # own value checks (check_options): both reach the user with the YAML path
    from benchmark.runner.deep_check import model_problems
    from benchmark.suite import ModelCfg

    def problems(kwargs):
        return model_problems("classification", ModelCfg(name="airbench94", kwargs=kwargs),
                              "student")

    assert problems({"widths": [32, 64, 64]}) == []
    bad = problems({"widths": [64, 256]})
    assert bad == [("student.kwargs", "airbench94: widths must be a list of 3 positive integers, "
                                      "got [64, 256]")]
    unknown = problems({"width": 3})
    assert unknown[0][0] == "student.kwargs.width"
