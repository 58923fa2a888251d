"""Image features: HOG, a hue histogram and raw pixels, computed in batches.

A *feature set* is a list of *blocks* whose features are concatenated in order, e.g.
``[{"block": "hog"}, {"block": "color_hist", "bins": 10}]``. Blocks:

``hog``
    Histogram of oriented gradients, identical to ``skimage.feature.hog`` (up to float
    rounding) with ``orientations`` (9), ``pixels_per_cell`` ([8, 8]), ``cells_per_block``
    ([2, 2]), ``block_norm`` ("L2-Hys") and ``channel_axis`` (None: on the grayscale image
    of ``skimage.color.rgb2gray``; -1: per colour channel, keeping at each pixel the
    channel with the strongest gradient). 324 features for a 32x32 image by default.
``color_hist``
    Histogram of the HSV hue of all pixels in ``bins`` (10) equal bins over [0, 1), as a
    share of the image's pixels (sums to 1). Gray pixels have hue 0, as in
    ``skimage.color.rgb2hsv``, so they count into the first (red) bin.
``pixels``
    The raw pixels scaled to [0, 1], H*W*3 features: the baseline features must beat.

HOG is vectorised over a batch of images instead of calling skimage once per image:
per-image Python overhead is most of skimage's cost on 32x32 images. The extraction of a
split is sharded (:func:`shard_bounds`) so that a workflow runs shards as parallel jobs;
features do not depend on how images are batched or sharded, so the gathered result is
bitwise identical to an unsharded run. :class:`Standardizer` scales features with the
train split's statistics, again independently of sharding.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.format import dtype_to_descr, write_array_header_1_0
from numpy.lib.stride_tricks import sliding_window_view

from .errors import LinbenchError
from .io import atomic_path

CIFAR_IMAGE_SHAPE = (32, 32, 3)
"""(height, width, channels) of the images blocks are validated against by default."""

BLOCK_DEFAULTS: dict[str, dict[str, Any]] = {
    "hog": {
        "orientations": 9,
        "pixels_per_cell": [8, 8],
        "cells_per_block": [2, 2],
        "block_norm": "L2-Hys",
        "channel_axis": None,
    },
    "color_hist": {"bins": 10},
    "pixels": {},
}
"""Every block type with its parameters and their defaults."""

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")

CHUNK_SIZE = 32
"""Images processed at once: enough to amortise numpy's per-call overhead, few enough
that a chunk's float64 temporaries (256 KiB per channel) stay in cache."""

_RGB_TO_GRAY = np.array([0.2125, 0.7154, 0.0721])  # the weights of skimage.color.rgb2gray
_HOG_EPS = 1e-5  # as in skimage.feature._hog._hog_normalize_block


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def keep_freed_memory(limit: int = 16 << 20) -> bool:
    """Let glibc's malloc recycle freed blocks of up to `limit` bytes; True if it could.

    By default glibc maps blocks from 128 KiB up afresh and unmaps them when freed, so
    the temporaries of every chunk are page-faulted in anew: a third of the extraction
    time. This setting is process-wide, so rule scripts call it, not library code. A
    no-op (False) where the C library has no ``mallopt``.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, 4 * limit))


# --------------------------------------------------------------------------- configuration


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return int(value)


def _positive_pair(value: Any, where: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(
            f"{where}: expected a pair of positive integers [rows, cols], got {value!r}"
        )
    return [_positive_int(v, where) for v in value]


def resolve_block(
    block: Mapping[str, Any],
    image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE,
    key: str = "block",
) -> dict[str, Any]:
    """Validate one block and fill its missing parameters with :data:`BLOCK_DEFAULTS`.

    `image_shape` is (height, width, channels); `key` names the block in error messages
    (e.g. ``features.sets.hog[0]``). Returns a new plain dict (lists, not tuples, so it
    serialises to JSON and YAML unchanged); raises ``ValueError`` naming the key at fault.
    """
    if not isinstance(block, Mapping):
        raise ValueError(f"{key}: expected a mapping like {{block: hog}}, got {block!r}")
    kind = block.get("block")
    if kind not in BLOCK_DEFAULTS:
        known = ", ".join(BLOCK_DEFAULTS)
        raise ValueError(f"{key}.block: unknown block {kind!r} (known blocks: {known})")
    defaults = BLOCK_DEFAULTS[kind]
    unknown = sorted(set(block) - {"block", *defaults})
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(
            f"{key}.{unknown[0]}: unknown parameter of block {kind!r} (allowed: {allowed})"
        )
    out = {"block": kind, **defaults, **block}
    height, width = int(image_shape[0]), int(image_shape[1])

    if kind == "hog":
        out["orientations"] = _positive_int(out["orientations"], f"{key}.orientations")
        cell = out["pixels_per_cell"] = _positive_pair(
            out["pixels_per_cell"], f"{key}.pixels_per_cell"
        )
        per_block = out["cells_per_block"] = _positive_pair(
            out["cells_per_block"], f"{key}.cells_per_block"
        )
        if cell[0] > height or cell[1] > width:
            raise ValueError(
                f"{key}.pixels_per_cell: cells of {cell[0]}x{cell[1]} pixels do not fit in "
                f"a {height}x{width} image"
            )
        grid = (height // cell[0], width // cell[1])
        if per_block[0] > grid[0] or per_block[1] > grid[1]:
            raise ValueError(
                f"{key}.cells_per_block: blocks of {per_block[0]}x{per_block[1]} cells do "
                f"not fit in the {grid[0]}x{grid[1]} grid of {cell[0]}x{cell[1]}-pixel cells "
                f"of a {height}x{width} image"
            )
        if out["block_norm"] not in BLOCK_NORMS:
            raise ValueError(
                f"{key}.block_norm: {out['block_norm']!r} is not one of: {', '.join(BLOCK_NORMS)}"
            )
        if out["channel_axis"] not in (None, -1) or isinstance(out["channel_axis"], bool):
            raise ValueError(
                f"{key}.channel_axis: expected null (grayscale) or -1 (per colour channel), "
                f"got {out['channel_axis']!r}"
            )
    elif kind == "color_hist":
        out["bins"] = _positive_int(out["bins"], f"{key}.bins")
    return out


def resolve_blocks(
    blocks: Sequence[Mapping[str, Any]],
    image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE,
    key: str = "blocks",
) -> list[dict[str, Any]]:
    """:func:`resolve_block` for each block of a feature set; `key` names the set."""
    if isinstance(blocks, (str, Mapping)) or not isinstance(blocks, Sequence) or not blocks:
        raise ValueError(f"{key}: expected a non-empty list of blocks, got {blocks!r}")
    return [resolve_block(b, image_shape, f"{key}[{i}]") for i, b in enumerate(blocks)]


def resolve_feature_sets(
    sets: Mapping[str, Sequence[Mapping[str, Any]]],
    image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE,
    key: str = "features.sets",
) -> dict[str, list[dict[str, Any]]]:
    """Validate every feature set of the config section `features.sets`; fill defaults."""
    return {
        name: resolve_blocks(blocks, image_shape, f"{key}.{name}") for name, blocks in sets.items()
    }


def block_dimension(
    block: Mapping[str, Any], image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE
) -> int:
    """Number of features a resolved block yields for images of `image_shape`."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if block["block"] == "hog":
        (c_row, c_col), (b_row, b_col) = block["pixels_per_cell"], block["cells_per_block"]
        n_blocks = (height // c_row - b_row + 1) * (width // c_col - b_col + 1)
        return n_blocks * b_row * b_col * block["orientations"]
    if block["block"] == "color_hist":
        return block["bins"]
    return height * width * int(image_shape[2])


def block_slices(
    blocks: Sequence[Mapping[str, Any]], image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE
) -> list[tuple[int, int]]:
    """[start, stop) columns of each resolved block in the concatenated feature vector."""
    slices, start = [], 0
    for block in blocks:
        stop = start + block_dimension(block, image_shape)
        slices.append((start, stop))
        start = stop
    return slices


# --------------------------------------------------------------------------- blocks


def _check_images(images: np.ndarray, name: str) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected uint8 RGB images of shape (N, H, W, 3), got {images.dtype} "
            f"{images.shape}"
        )


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


def hue(images: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 1) of uint8 RGB images (..., 3): float64 (...).

    Bitwise identical to ``skimage.color.rgb2hsv(images)[..., 0]`` (0 = red, 1/3 = green,
    2/3 = blue, 0 for gray pixels; on ties for the largest channel blue wins, then green),
    at a tenth of its cost: selections replace its boolean indexing.
    """
    scaled = np.multiply(images, 1.0 / 255, dtype=np.float64)  # as skimage's img_as_float
    red, green, blue = scaled[..., 0], scaled[..., 1], scaled[..., 2]
    value = np.maximum(np.maximum(red, green), blue)
    delta = value - np.minimum(np.minimum(red, green), blue)
    gray = delta == 0
    delta[gray] = 1.0  # any non-zero value: gray pixels get hue 0 below
    sextant = np.where(
        blue == value,
        4.0 + (red - green) / delta,
        np.where(green == value, 2.0 + (blue - red) / delta, (green - blue) / delta),
    )
    sextant /= 6.0
    # `% 1.0` on [-1/6, 5/6]: remainder's own final addition, bitwise the same.
    sextant += sextant < 0
    sextant[gray] = 0.0
    return sextant


def color_hist_features(images: np.ndarray, bins: int = 10) -> np.ndarray:
    """Histogram of HSV hue per image: float32 (N, bins), each row summing to 1.

    Bin k covers hue [k / bins, (k + 1) / bins) of :func:`hue` (0 = red, 1/3 = green,
    2/3 = blue; gray pixels have hue 0, as in skimage, so they count into bin 0).
    """
    n = len(images)
    which = (hue(images).reshape(n, -1) * bins).astype(np.intp)
    np.minimum(which, bins - 1, out=which)
    counts = np.bincount((np.arange(n)[:, None] * bins + which).ravel(), minlength=n * bins)
    return (counts.reshape(n, bins) / which.shape[1]).astype(np.float32)


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels scaled to [0, 1]: float32 (N, H*W*3) in (row, col, channel) order."""
    return np.divide(images.reshape(len(images), -1), 255, dtype=np.float32)


def extract(
    images: np.ndarray,
    blocks: Sequence[Mapping[str, Any]],
    chunk_size: int = CHUNK_SIZE,
    name: str = "images",
) -> np.ndarray:
    """Features of uint8 images (N, H, W, 3): float32 (N, D), blocks concatenated in order.

    `blocks` are validated against the image size and completed with defaults
    (:func:`resolve_blocks`). `images` may be a memory map: it is read `chunk_size`
    images at a time, so memory stays proportional to the output. `name` (e.g. the
    file) names the images in errors.
    """
    _check_images(images, name)
    image_shape = images.shape[1:]
    blocks = resolve_blocks(blocks, image_shape)
    slices = block_slices(blocks, image_shape)
    out = np.empty((len(images), slices[-1][1]), dtype=np.float32)
    for start in range(0, len(images), chunk_size):
        stop = min(start + chunk_size, len(images))
        chunk = np.asarray(images[start:stop])
        gray = None
        for block, (first, last) in zip(blocks, slices, strict=True):
            params = {k: v for k, v in block.items() if k != "block"}
            if block["block"] == "hog":
                if block["channel_axis"] is None and gray is None:
                    gray = rgb_to_gray(chunk)
                values = hog_features(chunk, **params, gray=gray)
            elif block["block"] == "color_hist":
                values = color_hist_features(chunk, **params)
            else:
                values = pixel_features(chunk)
            out[start:stop, first:last] = values
    return out


def hog_visualization(image: np.ndarray, block: Mapping[str, Any]) -> np.ndarray:
    """skimage's HOG picture (H, W) of one uint8 RGB image (H, W, 3) for a hog block."""
    from skimage.feature import hog

    params = resolve_block(block, image.shape)
    gray = params.pop("channel_axis") is None
    del params["block"]
    _, picture = hog(
        rgb_to_gray(image) if gray else image,
        **params,
        channel_axis=None if gray else -1,
        visualize=True,
    )
    return picture


# --------------------------------------------------------------------------- shards


def shard_bounds(n: int, shards: int, index: int) -> tuple[int, int]:
    """Rows [start, stop) of shard `index` of `shards` over `n` images.

    Shard i covers [i*n//shards, (i+1)*n//shards): sizes differ by at most one and the
    shards tile [0, n) in order.
    """
    if shards < 1:
        raise ValueError(f"features.shards: expected a positive integer, got {shards}")
    if not 0 <= index < shards:
        raise ValueError(f"shard {index} does not exist: features.shards is {shards}")
    return index * n // shards, (index + 1) * n // shards


def _row_blocks(parts: Sequence[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """Consecutive row blocks of the concatenation of `parts`, `rows` rows each (but the last).

    The blocks depend on the concatenated rows only, not on where the parts split them,
    which makes reductions over them independent of sharding.
    """
    pending: list[np.ndarray] = []
    have = 0
    for part in parts:
        start = 0
        while start < len(part):
            take = min(rows - have, len(part) - start)
            pending.append(part[start : start + take])
            have += take
            start += take
            if have == rows:
                yield np.concatenate(pending) if len(pending) > 1 else np.asarray(pending[0])
                pending, have = [], 0
    if pending:
        yield np.concatenate(pending) if len(pending) > 1 else np.asarray(pending[0])


@dataclass(frozen=True)
class Standardizer:
    """Per-feature standardisation ``(X - mean) / std``, fitted on the train split.

    mean : float64 (D,)
    std : float64 (D,), the divisor: the population standard deviation, or 1 for a
        feature that is constant on the train split (it then maps to 0 everywhere).
    constant : bool (D,), True where the train split's std is 0 or below float32
        resolution of the mean (a feature that only varies by rounding noise).
    """

    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray

    BLOCK_VALUES = 1 << 20  # values per block of rows: 8 MB float64 temporaries

    @classmethod
    def fit(cls, parts: Sequence[np.ndarray]) -> Standardizer:
        """Fit on the rows of `parts` (float32 (n_i, D) arrays, e.g. memory-mapped shards).

        Two passes (mean, then squared deviations) over fixed blocks of rows: numerically
        stable, and bitwise independent of how the rows are split into parts.
        """
        n = sum(len(p) for p in parts)
        if n == 0:
            raise ValueError("cannot fit a standardisation on an empty train split")
        rows = cls._rows(parts[0].shape[1])
        total = sum(b.sum(axis=0, dtype=np.float64) for b in _row_blocks(parts, rows))
        mean = total / n
        squares = sum(np.square(b - mean).sum(axis=0) for b in _row_blocks(parts, rows))
        raw_std = np.sqrt(squares / n)
        constant = raw_std <= np.finfo(np.float32).eps * np.abs(mean)
        return cls(mean=mean, std=np.where(constant, 1.0, raw_std), constant=constant)

    @classmethod
    def _rows(cls, dimension: int) -> int:
        # Depends on the dimension only, so the blocks (and sums) do not depend on shards.
        return max(1, cls.BLOCK_VALUES // max(dimension, 1))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of `features` (n, D)."""
        return ((features - self.mean) / self.std).astype(np.float32)

    def save_transformed(self, path: str | os.PathLike[str], parts: Sequence[np.ndarray]) -> None:
        """Write the standardised concatenation of `parts` to `path` (.npy, float32).

        Streams block by block into a temporary file that is renamed into place when
        complete, so memory stays bounded and no half-written file is ever visible.
        """
        n, dimension = sum(len(p) for p in parts), len(self.mean)
        header = {
            "descr": dtype_to_descr(np.dtype(np.float32)),
            "fortran_order": False,
            "shape": (n, dimension),
        }
        with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
            write_array_header_1_0(fh, header)
            for block in _row_blocks(parts, self._rows(dimension)):
                self.transform(block).tofile(fh)


def check_shards(
    infos: Sequence[Mapping[str, Any]],
    parts: Sequence[np.ndarray],
    paths: Sequence[str],
    n_images: int,
    dimension: int,
) -> None:
    """Check that shard outputs tile [0, `n_images`) in order with `dimension` columns.

    `infos` are the shards' JSON records (with ``start`` and ``stop``), `parts` their
    feature arrays and `paths` the arrays' files, named in the error. Guards the gather
    step against shards left over from another configuration.
    """
    expected_start = 0
    for info, part, path in zip(infos, parts, paths, strict=True):
        start, stop = info["start"], info["stop"]
        if start != expected_start or part.shape != (stop - start, dimension):
            raise LinbenchError(
                f"{path}: holds {part.shape} features of images [{start}, {stop}), expected "
                f"images from {expected_start} with {dimension} features; it comes from "
                "another configuration: rerun extract_features"
            )
        expected_start = stop
    if expected_start != n_images:
        raise LinbenchError(
            f"{paths[-1] if paths else 'shards'}: shards cover {expected_start} images, the "
            f"split has {n_images}: rerun extract_features"
        )


def describe_blocks(
    blocks: Sequence[Mapping[str, Any]], image_shape: Sequence[int] = CIFAR_IMAGE_SHAPE
) -> list[dict[str, Any]]:
    """Each resolved block as {block, start, stop, params}: its columns in the features."""
    return [
        {
            "block": block["block"],
            "start": start,
            "stop": stop,
            "params": {k: v for k, v in block.items() if k != "block"},
        }
        for block, (start, stop) in zip(blocks, block_slices(blocks, image_shape), strict=True)
    ]


def example_indices(labels: np.ndarray, n_classes: int) -> list[int]:
    """Index of the first image of each class present in `labels`, in class order."""
    return [int(np.argmax(labels == c)) for c in range(n_classes) if np.any(labels == c)]


def hog_examples_figure(
    images: np.ndarray,
    titles: Sequence[str],
    block: Mapping[str, Any],
    suptitle: str = "",
) -> Any:
    """A matplotlib figure: the images (N, H, W, 3) on top, their HOG pictures below.

    The caller selects the backend (scripts use Agg) and saves or closes the figure.
    """
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
