"""Nested, stratified training subsets: the training-set-size axis of the grid.

A study that asks how a regularizer's effect changes with the amount of data must compare
sizes on the same images: the 1,000-image subset must lie inside the 5,000-image one, and
each must hold the classes in the split's proportions. :func:`nested_order` orders the
training split once, from a seed; the subset of size n is its first n images, so every
smaller subset lies inside the larger ones. Each seed of the grid draws its own order
(:func:`subset_seed`): the training draw is a source of variance the intervals cover.
Imports numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import LinbenchError
from .names import ALL_IMAGES


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(labels))`` whose every prefix is stratified.

    Each class is shuffled (from `seed`), and its k-th image of n gets the key (k + 0.5) / n,
    its quantile in the class; sorting all images by key interleaves the classes so that
    any prefix of m images holds each class's share of m to within one image. Ties between
    classes of equal size are broken at random, also from `seed`.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    tiebreak = rng.random(len(labels))
    return np.lexsort((tiebreak, keys))


def subset_seed(data_seed: int, seed: int) -> int:
    """The seed that draws the training subset of a cell with seed `seed` (config
    ``data.seed`` is `data_seed`).

    Each seed of a setting draws its own subset, so the spread over seeds covers which
    training images were drawn as well as SGD's noise (a rerun with other seeds changes
    both); within one seed every size is a prefix of the same order, so the sizes stay
    nested. Seed 0 keeps `data_seed` itself.
    """
    return int(data_seed) + 1_000_003 * int(seed)


def subset_indices(
    labels: np.ndarray, train_size: int | str, seed: int, key: str = "train_size"
) -> np.ndarray:
    """Rows of the training split that a cell with `train_size` trains on, in file order.

    `train_size` is a count or ``"all"`` (every row). In file order, so that reading them
    from a memory-mapped feature file is one forward pass. `key` names the setting in the
    error raised when the split holds fewer images than asked for.
    """
    n = len(labels)
    if train_size == ALL_IMAGES:
        return np.arange(n)
    size = int(train_size)
    if not 0 < size <= n:
        raise LinbenchError(
            f"{key}: {size} training images asked for, but the training split has {n}; "
            f"use a smaller size or '{ALL_IMAGES}'"
        )
    return np.sort(nested_order(labels, seed)[:size])


def training_epochs(train_size: int, epochs: int, min_images_seen: int) -> int:
    """Epochs for a training set of `train_size` images: `epochs`, or more when that many
    epochs would show the model fewer than `min_images_seen` images in all.

    A budget of images seen, not of epochs, is what makes small subsets fair: 20 epochs of
    500 images at batch 128 are only 80 steps, far from converged, and a regularizer would
    then look useless for the wrong reason. It is counted in images, not steps, so that the
    full split keeps its 20 epochs at every batch size (the sweep compares batch sizes at a
    fixed number of epochs).
    """
    return max(epochs, math.ceil(min_images_seen / train_size))
