"""Stratified subsets, disjoint held-out split, synthetic data, augmentation."""

import numpy as np
import torch

from benchmark.data.split import make_splits, stratified_indices
from benchmark.data.synthetic import generate
from benchmark.data.tensors import augment


def test_stratified_indices_keep_class_shares_exactly():
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    idx = stratified_indices(labels, 100, np.random.default_rng(0))
    assert len(idx) == 100 and len(set(idx)) == 100
    assert np.bincount(labels[idx]).tolist() == [10, 20, 30, 40]


def test_splits_are_disjoint_and_fixed_by_data_seed_only():
    train_y = np.arange(5000) % 10
    test_y = np.arange(1000) % 10
    a = make_splits(train_y, test_y, holdout=500, train_subset=2000, test_subset=300, data_seed=3)
    b = make_splits(train_y, test_y, holdout=500, train_subset=2000, test_subset=300, data_seed=3)
    c = make_splits(train_y, test_y, holdout=500, train_subset=2000, test_subset=300, data_seed=4)
    assert not set(a["train"]) & set(a["holdout"])
    assert len(a["train"]) == 2000 and len(a["holdout"]) == 500 and len(a["test"]) == 300
    assert np.bincount(train_y[a["holdout"]]).tolist() == [50] * 10
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])


def test_synthetic_is_deterministic_balanced_and_uint8():
    x1, y1 = generate(200, seed=5)
    x2, y2 = generate(200, seed=5)
    assert x1.dtype == np.uint8 and x1.shape == (200, 32, 32, 3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.bincount(y1).tolist() == [20] * 10
    # classes differ on average: per-class mean images are not all the same
    assert x1.std() > 20


def test_augment_crop_and_flip_are_seeded_and_shape_preserving():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    a = augment(x, torch.Generator().manual_seed(1), 2, True)
    b = augment(x, torch.Generator().manual_seed(1), 2, True)
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    # no padding, no flip: identity
    assert torch.equal(augment(x, torch.Generator().manual_seed(1), 0, False), x)
