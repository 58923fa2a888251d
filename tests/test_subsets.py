"""Training-set sizes: nested, stratified, seeded subsets of the training split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from linbench.errors import LinbenchError
from linbench.subsets import nested_order, subset_indices


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    # Unequal classes, in no particular order, like a real split.
    return rng.permutation(np.repeat(np.arange(10), np.arange(10) * 10 + 100))


def test_smaller_subsets_lie_inside_larger_ones(labels):
    sizes = [50, 200, 1000, len(labels)]
    subsets = [set(subset_indices(labels, n, seed=3)) for n in sizes]
    for small, large in itertools.pairwise(subsets):
        assert small < large
    assert [len(s) for s in subsets] == sizes


def test_every_prefix_is_stratified(labels):
    order = nested_order(labels, seed=1)
    shares = np.bincount(labels) / len(labels)
    for m in (10, 37, 100, 555, 1000):
        counts = np.bincount(labels[order[:m]], minlength=10)
        assert np.all(np.abs(counts - m * shares) <= 1.0 + 1e-9), (m, counts)


def test_seeded_and_in_file_order(labels):
    a = subset_indices(labels, 300, seed=5)
    assert np.array_equal(a, subset_indices(labels, 300, seed=5))
    assert not np.array_equal(a, subset_indices(labels, 300, seed=6))
    assert np.all(np.diff(a) > 0)
    assert np.array_equal(subset_indices(labels, "all", seed=5), np.arange(len(labels)))


@pytest.mark.parametrize("size", [0, -3, 10_000])
def test_impossible_sizes_name_the_key(labels, size):
    with pytest.raises(LinbenchError, match=r"grid\.regimes\.train_size: .* training split has"):
        subset_indices(labels, size, seed=0, key="grid.regimes.train_size")
