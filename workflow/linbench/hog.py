"""Histogram of oriented gradients for a batch of images, as ``skimage.feature.hog``.

:func:`hog_features` reproduces ``skimage.feature.hog`` (same bins, same order, equal up
to float rounding; ``tests/test_hog.py`` pins the equivalence, down to skimage's float32
bin edges and its choice of channel), vectorised over a batch instead of called image by
image: per-image Python overhead is most of skimage's cost on 32x32 images (about 20 us
per image here against skimage's 157, see ``benchmarks/bench_features.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_RGB_TO_GRAY = np.array([0.2125, 0.7154, 0.0721])  # the weights of skimage.color.rgb2gray
_HOG_EPS = 1e-5  # as in skimage.feature._hog._hog_normalize_block


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """Luminance of uint8 RGB images (..., 3) as float64 in [0, 1], shape (...).

    Bitwise identical to ``skimage.color.rgb2gray`` (same scaling, weights and matrix
    product), without importing ``skimage.color``, which loads SciPy and would cost
    each extraction job 0.3 s of start-up.
    """
    return np.multiply(images, 1.0 / 255, dtype=np.float64) @ _RGB_TO_GRAY


def _gradients(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences along rows and columns of (..., H, W), zero on the border."""
    g_row = np.zeros_like(channel)
    g_col = np.zeros_like(channel)
    np.subtract(channel[..., 2:, :], channel[..., :-2, :], out=g_row[..., 1:-1, :])
    np.subtract(channel[..., :, 2:], channel[..., :, :-2], out=g_col[..., :, 1:-1])
    return g_row, g_col


@functools.cache
def _hypot_table() -> np.ndarray:
    """np.hypot(a, b) for integers 0 <= a, b <= 255, flat at index a * 256 + b."""
    values = np.arange(256.0)
    return np.hypot(values[:, None], values[None, :]).ravel()


def _strongest_channel_gradients(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gradients of uint8 (N, H, W, C) images; at each pixel, those of the
    channel with the largest magnitude (the first on ties), exactly as skimage picks them.

    Magnitudes must be np.hypot's, like skimage's: it is not always correctly rounded, so
    equal true magnitudes can compare unequal, and only the same values pick the same
    channel. Gradients of uint8 channels are integers in [-255, 255], so a table of
    np.hypot's values gives them bitwise at a third of the cost of calling it.
    """
    channels = np.moveaxis(images, -1, 0).astype(np.float64, order="C")  # (C, N, H, W)
    g_rows, g_cols = _gradients(channels)
    index = np.abs(g_rows).astype(np.intp)
    index *= 256
    index += np.abs(g_cols).astype(np.intp)
    magnitudes = _hypot_table().take(index)
    g_row, g_col, best = g_rows[0], g_cols[0], magnitudes[0]
    for g_r, g_c, magnitude in zip(g_rows[1:], g_cols[1:], magnitudes[1:], strict=True):
        stronger = magnitude > best  # strictly: the first channel wins a tie, as argmax
        g_row = np.where(stronger, g_r, g_row)
        g_col = np.where(stronger, g_c, g_col)
        best = np.maximum(best, magnitude)
    return g_row, g_col


def _unsigned_angle(g_row: np.ndarray, g_col: np.ndarray) -> np.ndarray:
    """``rad2deg(arctan2(g_row, g_col)) % 180``, bitwise as skimage computes it."""
    angle = np.arctan2(g_row, g_col)
    np.rad2deg(angle, out=angle)
    # `% 180` on [-180, 180] at a third of np.remainder's cost, bitwise the same: for
    # these angles remainder ends with the same single addition (adding 0.0 is exact).
    # 180 (from +pi) becomes 0; a negative angle that rounds to 180 after the addition
    # stays 180, as with remainder.
    angle -= 180.0 * (angle >= 180)
    angle += 180.0 * (angle < 0)
    return angle


def _orientation_bins(angle: np.ndarray, orientations: int) -> np.ndarray:
    """Orientation bin of each unsigned angle, exactly as skimage's Cython histogram.

    skimage counts an angle into bin i if ``edge[i] <= angle < edge[i + 1]``, with float32
    edges ``float32(180 / orientations) * i``. Angles at or above the last edge (which
    float32 may round below 180) fall in no bin; they get index `orientations` here.
    """
    width = np.float32(180.0 / orientations)
    edges = np.empty(orientations + 2)
    edges[:-1] = width * np.arange(orientations + 1, dtype=np.float32)
    edges[-1] = np.inf
    # A first guess from the exact bin width is off by at most one near an edge;
    # comparing against the float32 edges then settles it.
    bins = (angle * (orientations / 180.0)).astype(np.intp)
    np.clip(bins, 0, orientations - 1, out=bins)
    bins -= angle < edges[bins]
    bins += angle >= edges[bins + 1]
    return bins


def _normalize_hog_blocks(blocks: np.ndarray, method: str) -> np.ndarray:
    """skimage's block normalisation over the last axis of (..., cells*orientations)."""

    def total(x: np.ndarray) -> np.ndarray:
        # Summing a contiguous last axis keeps the order of additions independent of
        # how many images are in the batch, so features do not depend on sharding.
        return x.sum(axis=-1, keepdims=True)

    if method == "L1":
        return blocks / (total(np.abs(blocks)) + _HOG_EPS)
    if method == "L1-sqrt":
        return np.sqrt(blocks / (total(np.abs(blocks)) + _HOG_EPS))
    out = blocks / np.sqrt(total(blocks**2) + _HOG_EPS**2)
    if method == "L2-Hys":
        np.minimum(out, 0.2, out=out)
        out /= np.sqrt(total(out**2) + _HOG_EPS**2)
    return out


def hog_features(
    images: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: Sequence[int] = (8, 8),
    cells_per_block: Sequence[int] = (2, 2),
    block_norm: str = "L2-Hys",
    channel_axis: int | None = None,
    *,
    gray: np.ndarray | None = None,
) -> np.ndarray:
    """HOG of each image of a batch, as ``skimage.feature.hog`` computes it.

    `images` is uint8 (N, H, W, 3). With ``channel_axis=None`` HOG runs on
    ``rgb2gray(image)`` (pass `gray`, (N, H, W), to reuse a conversion), with -1 on the
    raw RGB values, like ``hog(image, channel_axis=-1)``. Returns float32
    (N, n_blocks_row * n_blocks_col * cells_per_block[0] * cells_per_block[1] *
    orientations), in skimage's feature order. The one deliberate difference: cell
    histograms are summed in float64 (skimage: float32), a relative difference < 1e-6.
    """
    n, height, width = images.shape[:3]
    c_row, c_col = pixels_per_cell
    b_row, b_col = cells_per_block
    n_cells_row, n_cells_col = height // c_row, width // c_col
    if channel_axis is None:
        g_row, g_col = _gradients(rgb_to_gray(images) if gray is None else gray)
    else:
        g_row, g_col = _strongest_channel_gradients(images)
    # Pixels beyond the last full cell belong to no cell, as in skimage.
    g_row = g_row[:, : n_cells_row * c_row, : n_cells_col * c_col]
    g_col = g_col[:, : n_cells_row * c_row, : n_cells_col * c_col]
    magnitude = np.sqrt(g_row * g_row + g_col * g_col)
    bins = _orientation_bins(_unsigned_angle(g_row, g_col), orientations)

    # One bincount builds every cell histogram of the batch; slot `orientations` of each
    # cell collects the gradients that fall in no bin and is dropped.
    n_slots = orientations + 1
    rows = np.arange(n_cells_row * c_row) // c_row
    cols = np.arange(n_cells_col * c_col) // c_col
    cell = rows[:, None] * n_cells_col + cols[None, :]
    first_cell = np.arange(n)[:, None, None] * (n_cells_row * n_cells_col)
    index = (first_cell + cell) * n_slots + bins
    hist = np.bincount(
        index.ravel(), weights=magnitude.ravel(), minlength=n * n_cells_row * n_cells_col * n_slots
    )
    hist = hist.reshape(n, n_cells_row, n_cells_col, n_slots)[..., :orientations]
    hist /= c_row * c_col

    # Overlapping blocks of cells, laid out (image, block row, block col, cell row,
    # cell col, orientation) like skimage's output before ravel().
    windows = sliding_window_view(hist, (b_row, b_col), axis=(1, 2))
    windows = np.moveaxis(windows, 3, -1)
    n_blocks = windows.shape[1] * windows.shape[2]
    blocks = np.ascontiguousarray(windows).reshape(n, n_blocks, b_row * b_col * orientations)
    return _normalize_hog_blocks(blocks, block_norm).reshape(n, -1).astype(np.float32)


def hog_visualization(image: np.ndarray, block: Mapping[str, Any]) -> np.ndarray:
    """skimage's HOG picture (H, W) of one uint8 RGB image (H, W, 3).

    `block` is a resolved ``hog`` block (every parameter given, see
    :func:`linbench.features.resolve_block`).
    """
    from skimage.feature import hog  # only the figure needs skimage itself

    params = {k: v for k, v in block.items() if k not in ("block", "channel_axis")}
    gray = block["channel_axis"] is None
    _, picture = hog(
        rgb_to_gray(image) if gray else image,
        **params,
        channel_axis=None if gray else -1,
        visualize=True,
    )
    return picture
