"""`w2s-bench pack` and the `pack` dataset: one file, pixels identical to the original files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.data.pack import decode_images, read_pack
from benchmark.errors import DataError
from benchmark.registry import DATASETS
from benchmark.suite import DataCfg

CLASSES = ["bird", "cat", "dog"]


def _imagefolder(root: Path, rng: np.random.Generator) -> dict[str, bytes]:
    """root/{train,test}/<class>/*: JPEGs (RGB and one greyscale) and one PNG, 8x8 pixels."""
    from PIL import Image

    files = {}
    for split, per_class in (("train", 6), ("test", 2)):
        for c in CLASSES:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                if i == 0 and c == "cat":
                    p = d / f"{i:03d}.png"
                    Image.fromarray(arr).save(p)
                elif i == 1 and c == "dog":
                    p = d / f"{i:03d}.jpg"
                    Image.fromarray(arr[:, :, 0], mode="L").save(p, quality=75)
                else:
                    p = d / f"{i:03d}.jpg"
                    Image.fromarray(arr).save(p, quality=75)
                files[f"{split}/{c}/{p.name}"] = p.read_bytes()
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # ignored, as by the loader
    return files


@pytest.fixture()
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    files = _imagefolder(tmp_path / "data" / "cifar10", np.random.default_rng(0))
    return tmp_path, files


def _decode_file(b: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB"))


def test_pack_round_trip_bytes_and_pixels(tree):
    tmp, files = tree
    out = tmp / "c.pack"
    r = CliRunner().invoke(
        main, ["pack", "cifar10", "--out", str(out), "--data-root", str(tmp / "data")]
    )
    assert r.exit_code == 0, r.output
    assert "18 train + 6 test images" in r.output
    d = read_pack(out)
    names = bytes(d["names"]).decode().split("\n")
    # every file's bytes stored exactly as they are, in ImageFolder order, train first
    assert names == sorted(files, key=lambda n: (n.split("/")[0] != "train", n))
    for i, n in enumerate(names):
        assert bytes(d["bytes"][d["offsets"][i] : d["offsets"][i + 1]]) == files[n]
        assert d["labels"][i] == CLASSES.index(n.split("/")[1])
        assert d["split"][i] == (0 if n.startswith("train/") else 1)
    assert d["classes"] == CLASSES
    x = decode_images(d["bytes"], d["offsets"])
    assert x.shape == (24, 8, 8, 3) and x.dtype == np.uint8
    for i, n in enumerate(names):
        np.testing.assert_array_equal(x[i], _decode_file(files[n]))


def test_pack_dataset_equals_imagefolder_dataset(tree):
    """Same pixels, labels, splits and normalisation as reading the ImageFolder tree."""
    tmp, _ = tree
    out = tmp / "c.pack"
    assert (
        CliRunner()
        .invoke(main, ["pack", str(tmp / "data" / "cifar10"), "--out", str(out)])
        .exit_code
        == 0
    )
    kw = dict(root=str(tmp / "data"), holdout=3, data_seed=5)
    packed = DATASETS["pack"].load()(DataCfg(dataset="pack", kwargs={"path": str(out)}, **kw))
    again = DATASETS["pack"].load()(
        DataCfg(dataset="pack", kwargs={"path": "../c.pack"}, **kw)
    )  # cached
    direct = DATASETS["cifar10"].load()(DataCfg(dataset="cifar10", **kw))
    for a in (packed, again):
        for split in ("train", "holdout", "test"):
            sa, sd = getattr(a, split), getattr(direct, split)
            assert sa.x.shape == sd.x.shape and sa.x.shape[1:] == (3, 8, 8)
            assert (sa.x == sd.x).all() and (sa.y == sd.y).all()
        assert a.classes == direct.classes == CLASSES
        assert a.mean == direct.mean and a.std == direct.std
    assert (len(packed.train), len(packed.holdout), len(packed.test)) == (15, 3, 6)
    assert packed.info["source"] == "pack"
    assert len(list((tmp / "cache").glob("pack-*.npy"))) == 1


def test_cifar10_reads_a_pack_under_the_data_root(tree):
    """A machine with only <root>/cifar10.w2spack runs `dataset: cifar10` suites unchanged."""
    tmp, _ = tree
    kw = dict(holdout=3, data_seed=1)
    direct = DATASETS["cifar10"].load()(DataCfg(dataset="cifar10", root=str(tmp / "data"), **kw))
    only = tmp / "packonly"
    r = CliRunner().invoke(
        main,
        [
            "pack",
            "cifar10",
            "--out",
            str(only / "cifar10.w2spack"),
            "--data-root",
            str(tmp / "data"),
        ],
    )
    assert r.exit_code == 0, r.output
    via = DATASETS["cifar10"].load()(DataCfg(dataset="cifar10", root=str(only), **kw))
    assert via.info["source"] == "pack"
    for split in ("train", "holdout", "test"):
        assert torch.equal(getattr(via, split).x, getattr(direct, split).x)
        assert torch.equal(getattr(via, split).y, getattr(direct, split).y)
    r = CliRunner().invoke(
        main, ["pack", "cifar10", "--out", str(tmp / "again"), "--data-root", str(only)]
    )
    assert r.exit_code == 2 and "already a pack" in r.output


def test_pack_errors(tree, tmp_path):
    tmp, _ = tree
    r = CliRunner().invoke(
        main, ["pack", "cifar100", "--out", str(tmp / "x.pack"), "--data-root", str(tmp / "data")]
    )
    assert r.exit_code == 2 and "no ImageFolder copy" in r.output
    bad = tmp / "bad.pack"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        read_pack(bad)
    with pytest.raises(DataError, match="not found"):
        DATASETS["pack"].load()(DataCfg(dataset="pack", kwargs={"path": str(tmp / "missing.pack")}))


REAL = Path(os.environ.get("W2S_DATA_ROOT", "/nonexistent")) / "cifar10"


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "train").is_dir(), reason="real CIFAR-10 not under W2S_DATA_ROOT")
def test_real_cifar10_packs_under_60_mib(tmp_path):
    out = tmp_path / "cifar10.pack"
    r = CliRunner().invoke(main, ["pack", "cifar10", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size < 60 * 2**20
    d = read_pack(out)
    assert d["meta"]["n_train"] == 50000 and d["meta"]["n_test"] == 10000
    assert np.bincount(d["labels"]).tolist() == [6000] * 10
