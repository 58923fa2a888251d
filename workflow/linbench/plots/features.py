"""Figures of the features themselves: HOG pictures of example images, learned centroids.

Each function returns a matplotlib figure; the caller selects the backend (rule scripts
use Agg), saves it atomically and closes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..hog import hog_visualization


def hog_examples_figure(
    images: np.ndarray,
    titles: Sequence[str],
    block: Mapping[str, Any],
    suptitle: str = "",
) -> Figure:
    """The images (N, H, W, 3) on top, their HOG pictures for resolved `block` below."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.4), squeeze=False, layout="constrained")
    for col, (image, title) in enumerate(zip(images, titles, strict=True)):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(image, interpolation="nearest")
        top.set_title(title, fontsize=9)
        bottom.imshow(hog_visualization(image, block), cmap="gray", interpolation="nearest")
        for ax in (top, bottom):
            ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def patch_mosaic(patches: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """Tile colour patches (K, p, p, 3) into one RGB picture, each stretched to [0, 1].

    Each patch gets its own contrast stretch (its minimum black, its maximum white), as
    learned filters are usually shown; a flat patch is mid-gray. Rows of `columns`
    patches, `gap` white pixels between them.
    """
    k, p = len(patches), patches.shape[1]
    low = patches.min(axis=(1, 2, 3), keepdims=True)
    span = patches.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = np.where(span > 0, (patches - low) / np.where(span > 0, span, 1), 0.5)
    rows = math.ceil(k / columns)
    step = p + gap
    mosaic = np.ones((rows * step - gap, columns * step - gap, 3))
    for i, patch in enumerate(scaled):
        r, c = divmod(i, columns)
        mosaic[r * step : r * step + p, c * step : c * step + p] = patch
    return mosaic


def centroids_figure(
    patches: np.ndarray,
    objective: np.ndarray,
    suptitle: str = "",
    max_shown: int = 400,
) -> Figure:
    """Learned centroids as colour patches (left) and the k-means objective (right).

    `patches` (K, p, p, 3) are the centroids mapped back from the whitened space to
    patch space, ordered as they should be shown (the most used first); at most
    `max_shown` are drawn. `objective` (iterations,) is the mean squared distance of the
    training patches to their centroid at each iteration.
    """
    import matplotlib.pyplot as plt

    shown = patches[:max_shown]
    columns = math.ceil(math.sqrt(len(shown)))
    fig = plt.figure(figsize=(9.5, 5.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.6, 1])
    ax = left.subplots()
    ax.imshow(patch_mosaic(shown, columns), interpolation="nearest")
    ax.set_axis_off()
    what = (
        f"all {len(patches)}" if len(shown) == len(patches) else f"{len(shown)} of {len(patches)}"
    )
    ax.set_title(f"Centroids ({what}, most used first), un-whitened", fontsize=9)
    ax = right.subplots()
    iterations = np.arange(1, len(objective) + 1)
    ax.plot(iterations, objective, marker="o", markersize=3)
    ax.set_xlabel("k-means iteration")
    ax.set_ylabel("mean squared distance to centroid")
    ax.set_title("k-means objective (whitened patches)", fontsize=9)
    ax.grid(alpha=0.3)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
