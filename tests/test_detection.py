"""Detection task units: COCOeval through our own evaluation path, synthetic boxes, both KD
losses against hand-computed values, split disjointness, torch-free option checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data.coco import choose_ids, coco_ap, read_split, to_coco_dets
from benchmark.data.synthetic_detection import generate
from benchmark.distill.detection import logit_kd_loss, pkd_loss
from benchmark.suite import RunSettings, validate_dict

torch.set_num_threads(1)

DATA_ROOT = Path(
    os.environ.get("W2S_DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
COCO128 = DATA_ROOT / "coco128"
needs_coco128 = pytest.mark.skipif(
    not (COCO128 / "annotations" / "instances.json").is_file(),
    reason=f"coco128 not found at {COCO128}",
)


def _coco128():
    import json

    return json.loads((COCO128 / "annotations" / "instances.json").read_text())


# ------------------------------------------------------------------ COCO evaluation
@needs_coco128
def test_ground_truth_as_detections_gives_ap_100_on_coco128():
    """Letterboxed targets of every image, mapped back through to_coco_dets and scored by
    coco_ap (the path Detection.evaluate uses): AP = AP50 = AP75 = 100 percent."""
    coco = _coco128()
    ids = sorted(im["id"] for im in coco["images"])
    sp = read_split(coco, COCO128 / "images", ids, image_size=64)
    assert sp.images.shape == (128, 3, 64, 64) and sp.images.dtype == torch.uint8
    gray = ids.index(86)  # 000000000086.jpg is greyscale: decoded to 3 equal channels
    assert torch.equal(sp.images[gray, 0], sp.images[gray, 1])
    assert sum(len(b) == 0 for b in sp.boxes) == 2  # images 250 and 508 have no objects, kept
    cats = sorted(c["id"] for c in coco["categories"])
    outs = [
        {"boxes": b, "scores": torch.ones(len(b)), "labels": lab}
        for b, lab in zip(sp.boxes, sp.labels)
    ]
    dets = to_coco_dets(outs, sp.image_ids, sp.scales, cats)
    assert len(dets) == 929
    ap = coco_ap(sp.gt, dets)
    assert ap == pytest.approx({"AP": 100.0, "AP50": 100.0, "AP75": 100.0}, abs=1e-6)


def test_coco_ap_no_detections_and_a_shifted_box():
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 3,
                "bbox": [10, 10, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 3, "name": "c"}],
    }
    assert coco_ap(gt, []) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    # shifted by 10 px: IoU = 30*40 / (2*1600 - 1200) = 0.6 -> matched at IoU .50/.55/.60 only
    dets = [{"image_id": 1, "category_id": 3, "bbox": [20, 10, 40, 40], "score": 0.9}]
    ap = coco_ap(gt, dets)
    assert ap["AP50"] == pytest.approx(100.0) and ap["AP75"] == pytest.approx(0.0)
    assert ap["AP"] == pytest.approx(30.0, abs=1e-6)  # 3 of the 10 IoU thresholds


# ------------------------------------------------------------------------ synthetic
def test_synthetic_boxes_match_drawn_shapes():
    x, boxes, labels, masks = generate(
        40, seed=3, size=64, max_objects=3, noise=0.0, return_masks=True
    )
    assert x.shape == (40, 64, 64, 3) and x.dtype == np.uint8
    n_obj = 0
    for img, b, lab, m in zip(x, boxes, labels, masks):
        assert len(b) == len(lab) == len(m)
        occupied = np.zeros((64, 64), dtype=int)
        for (x0, y0, x1, y1), k, mk in zip(b.astype(int), lab, m):
            ys, xs = np.nonzero(mk)
            # the box is the mask's exact pixel extent
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert 0 <= k < 5
            occupied += mk
            # noise-free: the shape is drawn in one colour, so every mask pixel is equal
            px = img[mk]
            assert (px == px[0]).all()
            n_obj += 1
        assert occupied.max() <= 1  # shapes never overlap, so no box hides another's pixels
    assert n_obj > 40  # 0..3 objects per image, ~10% empty


def test_synthetic_split_is_deterministic_and_disjoint():
    from benchmark.data.synthetic_detection import load

    s = _settings()
    a, b = load(s.data, 64), load(s.data, 64)
    assert torch.equal(a.train.images, b.train.images)
    tr, ho, te = set(a.train.image_ids), set(a.holdout.image_ids), set(a.test.image_ids)
    assert not (tr & ho) and not (tr & te) and not (ho & te)
    assert all(len(bx) > 0 for bx in a.holdout.boxes)  # the switch split has objects


@needs_coco128
def test_coco128_splits_disjoint_by_image_id():
    coco = _coco128()
    ids = choose_ids(
        coco, holdout=16, train_subset=None, test_subset=32, data_seed=0, carve_test=True
    )
    tr, ho, te = map(set, (ids["train"], ids["holdout"], ids["test"]))
    assert len(te) == 32 and len(ho) == 16 and len(tr) == 128 - 48
    assert not (tr & ho) and not (tr & te) and not (ho & te)
    with_obj = {a["image_id"] for a in coco["annotations"]}
    assert ho <= with_obj
    again = choose_ids(
        coco, holdout=16, train_subset=None, test_subset=32, data_seed=0, carve_test=True
    )
    assert again == ids
    other = choose_ids(
        coco, holdout=16, train_subset=None, test_subset=32, data_seed=1, carve_test=True
    )
    assert other["test"] != ids["test"]


# ------------------------------------------------------------------------- KD losses
def test_pkd_equals_one_minus_pearson_by_hand():
    g = torch.Generator().manual_seed(0)
    s = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 2, 2, generator=g)]
    t = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 2, 2, generator=g)]
    expect = 0.0
    for a, b in zip(s, t):
        per_channel = []
        for c in range(3):
            x, y = a[:, c].flatten().double().numpy(), b[:, c].flatten().double().numpy()
            per_channel.append(1 - np.corrcoef(x, y)[0, 1])
        expect += float(np.mean(per_channel))
    assert float(pkd_loss(s, t, eps=0.0)) == pytest.approx(expect, rel=1e-5)
    assert float(pkd_loss(s, s, eps=0.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(pkd_loss(s, [-x for x in s], eps=0.0)) == pytest.approx(
        4.0, rel=1e-5
    )  # r = -1: 2 per level


def test_pkd_invariant_to_per_channel_affine_rescaling():
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(2, 4, 8, 8, generator=g)]
    t = [torch.randn(2, 4, 8, 8, generator=g)]
    scale = torch.tensor([0.01, 3.0, 100.0, 7.0]).view(1, 4, 1, 1)
    shift = torch.tensor([5.0, -2.0, 40.0, 0.0]).view(1, 4, 1, 1)
    base = pkd_loss(s, t, eps=0.0)
    assert float(pkd_loss([s[0] * scale + shift], t, eps=0.0)) == pytest.approx(
        float(base), rel=1e-4
    )
    assert float(pkd_loss(s, [t[0] * scale - shift], eps=0.0)) == pytest.approx(
        float(base), rel=1e-4
    )


def test_logit_kd_by_hand():
    zs = torch.tensor([[[0.0, 2.0], [-1.0, 1.0]]])  # (N=1, A=2, K=2)
    zt = torch.tensor([[[1.0, -2.0], [0.5, 1.0]]])
    T = 2.0

    def sig(z):
        return 1 / (1 + math.exp(-z))

    total = 0.0
    for a in range(2):
        for k in range(2):
            p, q = sig(zt[0, a, k].item() / T), sig(zs[0, a, k].item() / T)
            total += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    expect = total / 2 * T**2  # sum over classes, mean over the 2 anchors, times T^2
    assert float(logit_kd_loss(zs, zt, temperature=T)) == pytest.approx(expect, rel=1e-5)
    assert float(logit_kd_loss(zt, zt, temperature=T)) == pytest.approx(0.0, abs=1e-6)
    # the gradient is the BCE one: (sigmoid(zs/T) - sigmoid(zt/T)) * T / n_anchors
    zs2 = zs.clone().requires_grad_(True)
    logit_kd_loss(zs2, zt, temperature=T).backward()
    grad = (torch.sigmoid(zs / T) - torch.sigmoid(zt / T)) * T / 2
    assert torch.allclose(zs2.grad, grad, atol=1e-6)


# ----------------------------------------------------------------- task & options
def _settings(**over) -> RunSettings:
    d = dict(
        task="detection",
        threads=1,
        data=dict(dataset="synthetic_detection", holdout=16, kwargs=dict(train=64, test=24)),
        student=dict(name="fcos_resnet18_fpn", kwargs=dict(fpn_channels=32, head_convs=1)),
        train=dict(
            epochs=1, batch_size=8, eval=dict(every_epochs=1, batch_size=16), channels_last=False
        ),
        targets=dict(metric="AP", direction="higher", thresholds=[1.0]),
        task_options=dict(image_size=64),
    )
    d.update(over)
    return RunSettings.model_validate(d)


def _suite(**over) -> dict:
    d = dict(
        name="det",
        task="detection",
        threads=1,
        seeds=[0],
        data=dict(dataset="synthetic_detection", holdout=16, kwargs=dict(train=64, test=24)),
        student=dict(name="fcos_resnet18_fpn", kwargs=dict(fpn_channels=32)),
        teachers=dict(
            weak=dict(model=dict(name="fcos_mobilenet_v3_fpn", kwargs=dict(fpn_channels=32)))
        ),
        train=dict(epochs=1, batch_size=8),
        distill=dict(teacher="weak", loss="pkd", beta=1.0),
        targets=dict(metric="AP", direction="higher", thresholds=[1.0]),
        task_options=dict(image_size=64),
        arms=dict(baseline=dict(distill=None), w2s={}),
    )
    d.update(over)
    return d


def test_options_check_reports_every_problem():
    from benchmark.errors import SuiteError

    validate_dict(_suite())  # the valid one passes
    bad = _suite(
        task_options=dict(image_size=70, colour="red"),
        student=dict(name="retinanet_resnet18_fpn", kwargs=dict(fpn_channels=32, head_convs=2)),
        distill=dict(teacher="weak", loss="det_logit_kd"),
        targets=dict(metric="accuracy", direction="higher", thresholds=[1.0]),
    )
    with pytest.raises(SuiteError) as e:
        validate_dict(bad)
    msgs = "\n".join(f"{p}: {m}" for p, m in e.value.problems)
    for needle in (
        "task_options.colour",
        "task_options.image_size",
        "targets.metric",
        "student.kwargs.head_convs",
        "det_logit_kd needs two dense detectors of the same family",
    ):
        assert needle in msgs, msgs
    with pytest.raises(SuiteError) as e:
        validate_dict(_suite(teachers=dict(weak=dict(model=dict(name="fasterrcnn_resnet18_fpn")))))
    assert "different FPN layouts" in str(e.value) and "same fpn_channels" in str(e.value)


def test_batches_are_a_pure_function_of_seed_epoch_index_and_teacher_is_skipped_at_weight_0():
    from benchmark.tasks.detection import build

    s = _settings(
        train=dict(
            epochs=1,
            batch_size=8,
            eval=dict(every_epochs=1, batch_size=16),
            channels_last=False,
            augment=dict(hflip=True),
        ),
        teachers=dict(
            weak=dict(
                model=dict(name="fcos_mobilenet_v3_fpn", kwargs=dict(fpn_channels=32, head_convs=1))
            )
        ),
        distill=dict(teacher="weak", loss="pkd", beta=1.0),
    )
    seeds = dict(data_order=11, augment=12, init=13)
    task = build(s, seeds=seeds, device=torch.device("cpu"))
    full = list(task.batches(1, 0))
    part = list(task.batches(1, 3))
    assert len(full) == task.steps_per_epoch == 48 // 8 and len(part) == len(full) - 3
    for (xa, ta), (xb, tb) in zip(full[3:], part):
        assert all(torch.equal(a, b) for a, b in zip(xa, xb))
        assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(ta, tb))
    # flipped boxes stay the flipped image's boxes: same widths, inside the image
    for _, tg in full:
        for t in tg:
            assert (t["boxes"][:, 2] > t["boxes"][:, 0]).all() and (t["boxes"] <= 64).all()

    student = task.build_model(s.student, seeds["init"])
    assert torch.equal(
        next(student.parameters()), next(task.build_model(s.student, seeds["init"]).parameters())
    )

    class Boom(torch.nn.Module):
        def train_forward(self, *a, **k):
            raise AssertionError("teacher ran with KD weight 0")

    student.train()
    loss, parts = task.loss(student, full[0], None, 0.0, 0)
    assert "kd" not in parts and torch.isfinite(loss)
    teacher = task.build_model(s.teachers["weak"].model, 0).eval()
    loss, parts = task.loss(student, full[0], teacher, 1.0, 0)
    assert parts["kd"] > 0 and float(loss.detach()) == pytest.approx(
        float(parts["det"] + parts["kd"]), rel=1e-5
    )
    with pytest.raises(AssertionError):
        task.loss(student, full[0], Boom(), 1.0, 0)
    student.eval()
    res = task.evaluate(student, "holdout")
    assert set(res) == {"AP", "AP50", "AP75"} and all(0 <= v <= 100 for v in res.values())


@needs_coco128
def test_streamed_split_decodes_the_same_pixels(monkeypatch):
    """A split too large for memory (full COCO) is decoded per batch: same pixels and boxes."""
    import benchmark.data.coco as coco_mod

    coco = _coco128()
    ids = sorted(im["id"] for im in coco["images"])[:6]
    held = read_split(coco, COCO128 / "images", ids, image_size=64)
    monkeypatch.setattr(coco_mod, "IN_MEMORY_BYTES", 0)
    streamed = read_split(coco, COCO128 / "images", ids, image_size=64)
    assert streamed.images is None
    assert torch.equal(streamed.uint8([4, 0, 2]), held.images[[4, 0, 2]])
    assert all(torch.allclose(a, b) for a, b in zip(streamed.boxes, held.boxes))
    assert streamed.scales == pytest.approx(held.scales)


def test_coco_ap_annotation_id_zero_is_renumbered_with_a_warning():
    # pycocotools stores matches as ids in arrays initialised to 0, so a box with id 0 never
    # counts as matched: before the fix these perfect predictions scored AP 25.2, not 100.
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "annotations": [
            {"id": 0, "image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [55, 55, 40, 40], "area": 1600, "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "c"}],
    }
    dets = [{"image_id": 1, "category_id": 3, "bbox": a["bbox"], "score": 0.9} for a in gt["annotations"]]
    with pytest.warns(UserWarning, match="id 0 or duplicate ids"):
        ap = coco_ap(gt, dets)
    assert ap == pytest.approx({"AP": 100.0, "AP50": 100.0, "AP75": 100.0}, abs=1e-6)
    assert [a["id"] for a in gt["annotations"]] == [0, 1]  # the caller's dict is not modified


def test_renumber_annotation_ids_fills_missing_without_collisions():
    from benchmark.data.coco import renumber_annotation_ids

    anns = [{"id": 2}, {}, {"id": 1}, {}]
    assert renumber_annotation_ids(anns) is True
    assert [a["id"] for a in anns] == [2, 3, 1, 4]
    ok = [{"id": 5}, {"id": 7}]
    assert renumber_annotation_ids(ok) is False and [a["id"] for a in ok] == [5, 7]
