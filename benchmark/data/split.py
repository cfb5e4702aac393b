"""Stratified subset and held-out selection, fixed by the data seed alone."""

from __future__ import annotations

import numpy as np


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator,
                       pool: np.ndarray | None = None) -> np.ndarray:
    """Pick `n` indices from `pool` (default: all) with class proportions preserved.

    labels: (N,) int. Returns sorted indices, shape (n,). Per class c with share p_c of the
    pool, take floor(n*p_c); the remaining slots go to the largest fractional parts
    (ties broken by class id), so counts differ from exact proportion by < 1.
    """
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    if n > len(pool):
        raise ValueError(f"asked for {n} samples from a pool of {len(pool)}")
    classes, counts = np.unique(labels[pool], return_counts=True)
    exact = n * counts / counts.sum()
    take = np.floor(exact).astype(int)
    rest = n - take.sum()
    order = np.lexsort((classes, -(exact - take)))
    take[order[:rest]] += 1
    picked = []
    for c, k in zip(classes, take):
        members = pool[labels[pool] == c]
        picked.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=int)


def make_splits(train_labels: np.ndarray, test_labels: np.ndarray, *, holdout: int,
                train_subset: int | None, test_subset: int | None, data_seed: int) -> dict[str, np.ndarray]:
    """Indices for train / holdout (both from the train pool, disjoint) and test."""
    rng = np.random.default_rng(np.random.SeedSequence([data_seed, 0xDA7A]))
    all_train = np.arange(len(train_labels))
    hold = stratified_indices(train_labels, holdout, rng) if holdout else np.zeros(0, dtype=int)
    rest = np.setdiff1d(all_train, hold, assume_unique=True)
    train = stratified_indices(train_labels, train_subset, rng, pool=rest) if train_subset else rest
    test = (stratified_indices(test_labels, test_subset, rng) if test_subset
            else np.arange(len(test_labels)))
    return {"train": train, "holdout": hold, "test": test}
