"""The streamed ImageFolder path (`imagefolder` / `imagenet` datasets, suites/imagenet*.yaml):
its options model, per-sample augmentation generators, evaluation in the task, and a whole
`w2s-bench run` on real JPEGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import imagefolder as IF
from benchmark.data.imagefolder_options import ImageFolderOptions, parse, problems
from benchmark.data.make_imagefolder import write_procedural
from benchmark.data.tensors import ClassificationData, Split
from benchmark.errors import DataError
from benchmark.suite import RunSettings
from benchmark.tasks import classification as C

SEEDS = {"init": 0, "data_order": 1, "augment": 2}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """A data root holding `shapes/{train,val}/<class>/*.jpg`: 3 classes, 8 train and 4 val
    real JPEGs each, short side 70-110 px (mixed sizes and aspect ratios)."""
    root = tmp_path_factory.mktemp("data")
    write_procedural(root / "shapes", classes=3, per_class={"train": 8, "val": 4}, short=(70, 110))
    return root


def _settings(root, precision="fp32", workers=0, **data) -> RunSettings:
    return RunSettings.model_validate({
        "task": "classification", "threads": 1, "device": "cpu",
        "data": {"dataset": "imagefolder", "root": str(root), "holdout": 3,
                 "kwargs": {"path": "shapes", "image_size": 64, "workers": workers}, **data},
        "student": {"name": "resnet8", "kwargs": {"width": 8}},
        "train": {"epochs": 1, "batch_size": 7, "precision": precision, "channels_last": False,
                  "eval": {"every_epochs": 1, "batch_size": 5}},
        "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [50]},
    })


# ------------------------------------------------------------------------ options
def test_options_defaults_are_declared():
    o = parse({}, "imagenet")
    assert (o.path, o.image_size, o.workers, o.prefetch_factor) == ("imagenet", 224, 8, 4)
    assert o.crop_scale == (0.08, 1.0) and o.crop_ratio == (0.75, 4 / 3) and o.eval_crop_pct == 0.875
    assert ImageFolderOptions.model_fields["workers"].default == 8


def test_options_problems_name_every_mistake():
    probs = dict(problems({"path": "x", "image_sise": 64, "workers": -1, "crop_scale": [0.5, 0.2]}))
    assert "image_sise" in probs["data.kwargs.image_sise"] and "image_size" in probs["data.kwargs.image_sise"]
    assert "data.kwargs.workers" in probs
    assert problems({"crop_scale": [0.5, 0.2], "path": "x"}) == [
        ("data.kwargs", "crop_scale needs 0 < low <= high <= 1, got [0.5, 0.2]")]
    assert problems({}) == [("data.kwargs.path", "imagefolder needs data.kwargs.path (a folder under the "
                                                 "data root with train/ and val/)")]
    assert problems({}, "imagenet") == []


def test_unknown_kwarg_is_a_data_error_at_load(jpegs):
    s = _settings(jpegs)
    cfg = s.data.model_copy(update={"kwargs": {"path": "shapes", "image_sise": 64}})
    with pytest.raises(DataError, match="no option 'image_sise'"):
        IF.load(cfg)


# --------------------------------------------------------------- per-sample augmentation
def test_crop_box_hand_computed():
    g = torch.Generator().manual_seed(0)
    # area fraction 1 and ratio 1 on a 10x10 image: the whole image, the only position
    assert IF.crop_box(10, 10, (1.0, 1.0), (1.0, 1.0), g) == (0, 0, 10, 10)
    # ratio 2 needs w = round(sqrt(100 * 2)) = 14 > 10 on every try: the fallback is the
    # widest centred box of ratio 2: w = 10, h = round(10 / 2) = 5, top = (10 - 5) // 2 = 2
    assert IF.crop_box(10, 10, (1.0, 1.0), (2.0, 2.0), g) == (2, 0, 5, 10)
    # a 4 x 10 (w x h) image, ratio 1: w = h = round(sqrt(40)) = 6 > 4 never fits; the image's
    # ratio 0.4 is clamped to 1: w = 4, h = round(4 / 1) = 4, top = (10 - 4) // 2 = 3
    assert IF.crop_box(4, 10, (1.0, 1.0), (1.0, 1.0), g) == (3, 0, 4, 4)


def test_transforms_equal_torchvision_reference_ops(jpegs):
    """The fast channels_last resize gives torchvision's pixels: eval = Resize(short side
    floor(64 / 0.875) = 73) + CenterCrop(64); train = resized_crop of the drawn box + flip."""
    from torchvision.transforms.v2 import functional as TF

    opts = parse({"path": "shapes", "image_size": 64})
    for path in sorted((jpegs / "shapes" / "val").rglob("*.jpg"))[:6]:
        img = IF.decode(str(path))
        ref = TF.center_crop(TF.resize(img, [73], antialias=True), [64, 64])
        assert torch.equal(IF.eval_transform(img, opts), ref.permute(1, 2, 0))
        g, g_ref = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        top, left, h, w = IF.crop_box(img.shape[2], img.shape[1], opts.crop_scale, opts.crop_ratio, g_ref)
        ref = TF.resized_crop(img, top, left, h, w, [64, 64], antialias=True)
        if bool(torch.rand(1, generator=g_ref) < 0.5):
            ref = ref.flip(-1)
        out = IF.train_transform(img, opts, g)
        assert torch.equal(out, ref.permute(1, 2, 0)) and out.is_contiguous()


def test_sample_seed_is_pure_and_decorrelated():
    assert IF.sample_seed(5, 3) == IF.sample_seed(5, 3)
    assert len({IF.sample_seed(5, i) for i in range(100)} | {IF.sample_seed(6, 0)}) == 101
    assert 0 <= IF.sample_seed(2**63 + 7, 1) < 2**63


def test_augmentation_is_per_sample_and_leaves_global_rng(jpegs):
    data = IF.load(_settings(jpegs).data)
    ds = IF._Files({"train": data.train}, data.options)
    before = torch.random.get_rng_state()
    a = [ds[("train", i, 11)][0] for i in range(len(data.train))]
    b = [ds[("train", i, 11)][0] for i in reversed(range(len(data.train)))][::-1]
    other = [ds[("train", i, 12)][0] for i in range(len(data.train))]
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG was never touched
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # same (seed, image) -> same crop, any order
    assert sum(not torch.equal(x, y) for x, y in zip(a, other)) >= len(a) - 1  # another epoch differs
    assert {tuple(x.shape) for x in a} == {(64, 64, 3)} and a[0].dtype == torch.uint8  # HWC


def test_batches_do_not_depend_on_workers_or_resume(jpegs):
    tasks = [C.Classification(_settings(jpegs, workers=w), seeds=SEEDS, device=torch.device("cpu"))
             for w in (0, 1)]
    assert tasks[0].steps_per_epoch == 3  # 21 train images (24 - 3 held out) // 7
    full = [list(t.batches(2, 0)) for t in tasks]
    resumed = list(tasks[0].batches(2, 1))
    assert len(full[0]) == 3
    for (x0, y0), (x1, y1) in zip(*full):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    for (x0, y0), (xr, yr) in zip(full[0][1:], resumed):
        assert torch.equal(x0, xr) and torch.equal(y0, yr)
    assert not torch.equal(full[0][0][0], next(iter(tasks[0].batches(3, 0)))[0])


def test_corrupt_jpeg_in_a_worker_is_a_clean_data_error(tmp_path):
    write_procedural(tmp_path / "shapes", classes=2, per_class={"train": 4, "val": 2}, short=(70, 80))
    bad = tmp_path / "shapes" / "train" / "disk" / "00001.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg" * 8)
    s = _settings(tmp_path, workers=1, holdout=0)
    s = s.model_copy(update={"train": s.train.model_copy(update={"batch_size": 8})})
    task = C.Classification(s, seeds=SEEDS, device=torch.device("cpu"))
    with pytest.raises(DataError) as e:
        list(task.batches(0, 0))
    assert str(e.value).startswith(f"cannot decode image {bad}") and "Traceback" not in str(e.value)


# ------------------------------------------------------------------- evaluation
class _Spy(torch.nn.Module):
    """A fixed model that records the autocast state of every forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
        self.seen = []

    def forward(self, x):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return self.net(x)


def test_streamed_evaluation_equals_the_in_memory_path(jpegs, monkeypatch):
    s = _settings(jpegs, precision="bf16", workers=1)
    streamed = C.Classification(s, seeds=SEEDS, device=torch.device("cpu"))
    data = streamed.data
    # the same eval pixels as an in-memory dataset: the task's cached path on them
    ds = IF._Files({"test": data.test, "holdout": data.holdout}, data.options)

    def split(name):
        items = [ds[(name, i, None)] for i in range(len(data.split(name)))]  # (S, S, 3) each
        x = torch.stack([x for x, _ in items]).permute(0, 3, 1, 2).contiguous()
        return Split(x, torch.tensor([y for _, y in items]))

    mem = ClassificationData(train=split("test"), holdout=split("holdout"), test=split("test"),
                             num_classes=3, classes=data.classes, mean=data.mean, std=data.std)
    monkeypatch.setattr(C, "load_data", lambda settings: mem)
    cached = C.Classification(s, seeds=SEEDS, device=torch.device("cpu"))
    model = _Spy().eval()
    for sp in ("test", "holdout"):
        a = streamed.evaluate(model, sp)
        n_stream = len(model.seen)
        b = cached.evaluate(model, sp)
        assert a == b and set(a) == {"accuracy"}
        # 12 test images in batches of 5 -> 3 forwards; 3 held-out -> 1
        assert n_stream == {"test": 3, "holdout": 1}[sp]
        assert model.seen and all(state == (True, torch.bfloat16) for state in model.seen)
        model.seen.clear()
    # accuracy is correct / n, by hand from the logits
    x = mem.test.x
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = torch.cat([model(streamed.normalize(x[i:i + 5])) for i in range(0, 12, 5)]).argmax(1)
    assert streamed.evaluate(model, "test")["accuracy"] == 100.0 * int((pred == mem.test.y).sum()) / 12


# ------------------------------------------------------------------- end to end
def test_run_end_to_end_on_real_jpegs(jpegs, run_cli, write_suite, tmp_path):
    suite = {
        "name": "if-e2e", "task": "classification", "seeds": [0], "threads": 1, "device": "cpu",
        "deterministic": True,
        "data": {"dataset": "imagefolder", "holdout": 3,
                 "kwargs": {"path": "shapes", "image_size": 64, "workers": 1}},
        "student": {"name": "timm:resnet10t"},
        "teachers": {"weak": {"model": {"name": "tinycnn", "kwargs": {"width": 8}}}},
        "train": {"epochs": 1, "batch_size": 7, "optimizer": {"name": "sgd", "lr": 0.05},
                  "augment": {"crop_padding": 0, "hflip": True}, "label_smoothing": 0.1,
                  "eval": {"every_epochs": 0.5, "batch_size": 8}},
        "distill": {"teacher": "weak", "alpha": 0.5, "temperature": 2.0, "switch": "surpass_teacher"},
        "targets": {"metric": "accuracy", "direction": "higher", "thresholds": [40]},
        "arms": {"baseline": {"distill": None}, "w2s": {}},
    }
    r = run_cli("run", write_suite(suite), "--data-root", jpegs, "--results-dir", tmp_path / "res")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = sorted((tmp_path / "res" / "if-e2e" / "runs").iterdir())
    assert [p.name.split("-")[0] for p in runs] == ["baseline", "w2s"]
    for run in runs:
        assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        test = [row for row in rows if row["split"] == "test" and row["metric"] == "accuracy"]
        # evaluated at epoch 0, mid-way and at the end of the one epoch
        assert len(test) >= 2 and test[-1]["epoch"] == 1.0
        # 12 test images: every accuracy is a multiple of 100/12
        assert all(abs(row["value"] * 12 / 100 - round(row["value"] * 12 / 100)) < 1e-9 for row in test)
        assert np.isfinite([row["value"] for row in rows]).all()


# ------------------------------------------------------- the smoke suite and its data
def test_make_imagefolder_is_deterministic_and_imagenet_shaped(tmp_path, capsys):
    from benchmark.data.make_imagefolder import image_size, main

    rng = np.random.default_rng(0)
    for _ in range(200):
        w, h = image_size(rng)
        assert 160 <= min(w, h) <= 375 and max(w, h) <= 500 and max(w, h) / min(w, h) <= 1.6 + 1e-9
    for out in ("a", "b"):
        assert main(["--out", str(tmp_path / out), "--classes", "2", "--train", "2", "--val", "1"]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert [str(p) for p in files] == ["train/disk/00000.jpg", "train/disk/00001.jpg", "train/square/00000.jpg",
                                       "train/square/00001.jpg", "val/disk/00000.jpg", "val/square/00000.jpg"]
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in files)
    assert main(["--out", str(tmp_path / "a")]) == 2  # never merges into an existing folder
    assert "not empty" in capsys.readouterr().err


def test_imagenet_smoke_suite_validates_with_its_options():
    from benchmark.suite import load_suite

    suite = load_suite(str(ROOT / "suites" / "imagenet-smoke.yaml"), check_paths=False)
    for s in suite.arm_settings.values():
        assert s.data.dataset == "imagefolder" and problems(s.data.kwargs) == []
        assert s.student.name.startswith("timm:") and s.train.label_smoothing > 0
        assert parse(s.data.kwargs).image_size == 64


def test_perf_loader_dry_run(cli_env):
    """perf/loader.py --tiny: both pipelines on 64 generated JPEGs, the ratio printed."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "perf" / "loader.py"), "--tiny"], env=cli_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratio harness/timm: wall" in r.stdout and "per core" in r.stdout
    assert [line.split()[0] for line in r.stdout.splitlines() if line.startswith(("harness ", "timm "))] == \
        ["harness", "timm"]


def test_validate_rejects_an_unknown_imagefolder_option_before_the_lock():
    # the streamed datasets declare their data.kwargs in the registry, so a typo is a
    # validation problem with its YAML path, not a load error after suite.lock.json is written
    import yaml

    from benchmark.suite import validate_dict

    raw = yaml.safe_load(open("suites/imagenet-smoke.yaml"))
    raw["data"]["kwargs"]["image_szie"] = 64
    raw["data"]["root"] = "/nonexistent"
    from benchmark.errors import SuiteError

    with pytest.raises(SuiteError, match=r"data\.kwargs\.image_szie"):
        validate_dict(raw)
