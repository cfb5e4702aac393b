"""FID through torch-fidelity: ~0 against its own statistics, growing with added noise;
the cifarnet extractor is registered with torch-fidelity; Inception FID never falls back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import UserError
from benchmark.metrics import fid as fidm

torch.set_num_threads(1)


def _images(n=300, size=16, seed=0):
    from benchmark.data.synthetic import generate

    x, y = generate(n, seed, size=32)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    from benchmark.tasks.diffusion import resize_uint8

    return resize_uint8(x, size), torch.as_tensor(y)


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    torch.manual_seed(0)
    net = fidm.CifarNet(10, width=8).eval()  # untrained features still separate noise levels
    return fidm.cifarnet_evaluator(net, key="test", device=torch.device("cpu"), batch_size=100,
                                   kid=True, kid_subset_size=100, kid_subsets=10,
                                   cache_dir=tmp_path_factory.mktemp("fidcache"))


def test_cifarnet_is_registered_with_torch_fidelity(evaluator):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    assert fidm.CIFARNET in FEATURE_EXTRACTORS_REGISTRY
    assert evaluator.extractor.get_name() == "w2s-cifarnet"
    assert evaluator.name == "fid_cifarnet" and evaluator.kid_name == "kid_cifarnet"


def test_fid_of_a_set_against_its_own_statistics_is_zero_and_grows_with_noise(evaluator):
    x, _ = _images()
    evaluator.set_reference("test", x)
    same = evaluator.score(x, "test")
    assert same["fid_cifarnet"] == pytest.approx(0.0, abs=1e-6)
    assert abs(same["kid_cifarnet"]) < 1e-3
    g = torch.Generator().manual_seed(0)
    scores = []
    for sigma in (5, 20, 60):
        noisy = (x.float() + sigma * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)
        scores.append(evaluator.score(noisy, "test")["fid_cifarnet"])
    assert 0 < scores[0] < scores[1] < scores[2], scores


def test_fid_matches_the_frechet_formula_on_features(evaluator):
    """Our path (torch-fidelity statistics) equals a direct numpy/scipy Frechet distance."""
    from scipy import linalg

    x, _ = _images(seed=1)
    evaluator.set_reference("holdout", x)
    y = (x.float() * 0.8).to(torch.uint8)
    f1, f2 = evaluator.features(y).numpy(), evaluator.features(x).numpy()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    want = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert evaluator.score(y, "holdout")["fid_cifarnet"] == pytest.approx(want, rel=1e-4)


def test_reference_statistics_are_cached_on_disk(evaluator):
    x, _ = _images(n=120, seed=2)
    evaluator.set_reference("a", x)
    files = list(evaluator.cache_dir.glob("ref-*.pt"))
    assert files
    before = {f: f.stat().st_mtime_ns for f in files}
    evaluator.set_reference("b", x)  # same pixels: read back, not recomputed
    assert {f: f.stat().st_mtime_ns for f in evaluator.cache_dir.glob("ref-*.pt")} == before
    np.testing.assert_allclose(evaluator.refs["a"]["mu"], evaluator.refs["b"]["mu"])


def test_trained_feature_net_is_cached_and_learns(tmp_path):
    x, y = _images(n=400, size=8)
    cfg = {"width": 8, "epochs": 3, "batch_size": 50, "lr": 0.05, "seed": 0}
    net, info = fidm.cached_cifarnet(x, y, 10, cfg=cfg, cache_dir=tmp_path, device=torch.device("cpu"),
                                     eval_x=x, eval_y=y)
    assert info["test_accuracy"] > 15  # better than chance (10%) on its own training data
    net2, info2 = fidm.cached_cifarnet(x, y, 10, cfg=cfg, cache_dir=tmp_path, device=torch.device("cpu"))
    assert info2["key"] == info["key"] and info2["test_accuracy"] == info["test_accuracy"]
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)


def test_inception_fid_needs_weights_and_never_falls_back(tmp_path, monkeypatch):
    monkeypatch.delenv("W2S_FID_WEIGHTS", raising=False)
    with pytest.raises(UserError, match="not found"):
        fidm.inception_weights(str(tmp_path / "missing.pth"))
    monkeypatch.setenv("W2S_FID_WEIGHTS", str(tmp_path / "also-missing.pth"))
    with pytest.raises(UserError, match="W2S_FID_WEIGHTS"):
        fidm.inception_weights(None)
    # no path, nothing in torch hub's cache, and the download fails: a clear stop
    monkeypatch.delenv("W2S_FID_WEIGHTS")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UserError, match="fid_cifarnet"):
        fidm.inception_weights(None)
