"""Feature sets: the block registry, image-size checks, batched extraction and sharding.

A *feature set* is a list of *blocks* whose features are concatenated in order, e.g.
``[{"block": "hog"}, {"block": "color_hist", "bins": 10}]``. The blocks and their default
parameters are :data:`linbench.names.FEATURE_BLOCKS`; each is computed in its own module:

``hog`` (:mod:`linbench.hog`)
    Histogram of oriented gradients, identical to ``skimage.feature.hog`` (up to float
    rounding); 324 features for a 32x32 image by default.
``color_hist`` (:mod:`linbench.color`)
    Histogram of the HSV hue of all pixels in ``bins`` equal bins, as a share of the pixels.
``pixels`` (:mod:`linbench.color`)
    The raw pixels scaled to [0, 1], H*W*3 features: the baseline features must beat.
``kmeans`` (:mod:`linbench.kmeans`)
    Coates, Lee & Ng (2011): distances of every patch to centroids learned by k-means on
    whitened training patches, triangle-encoded and sum-pooled over the four image
    quadrants: 4 * ``centroids`` features. Needs a fitted dictionary.

The config schema checks each parameter's type and range; :func:`resolve_block` adds
what a schema cannot express (a HOG cell or a patch larger than the image, more
centroids than training patches) and fills the defaults. The extraction of a split is
sharded (:func:`shard_bounds`) so that shards run as parallel jobs; features do not depend
on how images are batched or sharded, so the gathered result is bitwise identical to an
unsharded run.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .color import color_hist_features, pixel_features
from .errors import LinbenchError
from .hog import hog_features, rgb_to_gray
from .names import ENCODING_ONLY, FEATURE_BLOCKS, IMAGE_SHAPE

if TYPE_CHECKING:
    from .kmeans import KMeansDictionary

log = logging.getLogger(__name__)

CHUNK_SIZE = 32
"""Images processed at once: enough to amortise numpy's per-call overhead, few enough
that a chunk's float64 temporaries (256 KiB per channel) stay in cache."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def keep_freed_memory(limit: int = 16 << 20) -> bool:
    """Let glibc's malloc recycle freed blocks of up to `limit` bytes; True if it could.

    By default glibc maps blocks from 128 KiB up afresh and unmaps them when freed, so
    the temporaries of every chunk are page-faulted in anew. Measured on one HOG shard
    of 11,250 CIFAR images, extracted once per fresh process as a shard job does: 0.20 to
    0.25 s CPU with this setting against 0.50 to 0.64 s without, 2.5x
    (``python benchmarks/bench_features.py --mallopt``). The setting is process-wide, so
    rule scripts call it, not library code. A no-op (False) where the C library has no
    ``mallopt``.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, 4 * limit))


# --------------------------------------------------------------------------- configuration


def resolve_block(
    block: Mapping[str, Any],
    image_shape: Sequence[int] = IMAGE_SHAPE,
    key: str = "block",
) -> dict[str, Any]:
    """One block with its missing parameters filled from :data:`FEATURE_BLOCKS`.

    Types and ranges of the parameters are the schema's to check (the workflow validates
    the config before it gets here); this adds the checks that need the image size
    `image_shape` (height, width, channels) or several parameters at once. `key` names
    the block in error messages (e.g. ``features.sets.hog[0]``). Returns a new plain dict
    (lists, not tuples, so it serialises to JSON and YAML unchanged).

    Raises:
        LinbenchError: naming the key at fault.
    """
    if not isinstance(block, Mapping):
        raise LinbenchError(f"{key}: expected a mapping like {{block: hog}}, got {block!r}")
    kind = block.get("block")
    if kind not in FEATURE_BLOCKS:
        known = ", ".join(FEATURE_BLOCKS)
        raise LinbenchError(f"{key}.block: unknown block {kind!r} (known blocks: {known})")
    defaults = FEATURE_BLOCKS[kind]
    unknown = sorted(set(block) - {"block", *defaults})
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise LinbenchError(
            f"{key}.{unknown[0]}: unknown parameter of block {kind!r} (allowed: {allowed})"
        )
    out = {"block": kind, **defaults, **block}
    height, width = int(image_shape[0]), int(image_shape[1])

    if kind == "hog":
        cell, per_block = out["pixels_per_cell"], out["cells_per_block"]
        if cell[0] > height or cell[1] > width:
            raise LinbenchError(
                f"{key}.pixels_per_cell: cells of {cell[0]}x{cell[1]} pixels do not fit in "
                f"a {height}x{width} image"
            )
        grid = (height // cell[0], width // cell[1])
        if per_block[0] > grid[0] or per_block[1] > grid[1]:
            raise LinbenchError(
                f"{key}.cells_per_block: blocks of {per_block[0]}x{per_block[1]} cells do "
                f"not fit in the {grid[0]}x{grid[1]} grid of {cell[0]}x{cell[1]}-pixel cells "
                f"of a {height}x{width} image"
            )
    elif kind == "kmeans":
        if out["patch_size"] > min(height, width):
            raise LinbenchError(
                f"{key}.patch_size: patches of {out['patch_size']}x{out['patch_size']} pixels "
                f"do not fit in a {height}x{width} image"
            )
        if out["centroids"] > out["patches"]:
            raise LinbenchError(
                f"{key}.centroids: {out['centroids']} centroids need at least as many "
                f"training patches, but {key}.patches is {out['patches']}"
            )
    return out


def resolve_blocks(
    blocks: Sequence[Mapping[str, Any]],
    image_shape: Sequence[int] = IMAGE_SHAPE,
    key: str = "blocks",
) -> list[dict[str, Any]]:
    """:func:`resolve_block` for each block of a feature set; `key` names the set.

    A set holds at most one ``kmeans`` block: its one dictionary is the set's.
    """
    if isinstance(blocks, (str, Mapping)) or not isinstance(blocks, Sequence) or not blocks:
        raise LinbenchError(f"{key}: expected a non-empty list of blocks, got {blocks!r}")
    resolved = [resolve_block(b, image_shape, f"{key}[{i}]") for i, b in enumerate(blocks)]
    learned = [i for i, b in enumerate(resolved) if b["block"] == "kmeans"]
    if len(learned) > 1:
        raise LinbenchError(
            f"{key}[{learned[1]}].block: a feature set holds at most one kmeans block "
            f"(it has one already at {key}[{learned[0]}]); define another set instead"
        )
    return resolved


def resolve_feature_sets(
    sets: Mapping[str, Sequence[Mapping[str, Any]]],
    image_shape: Sequence[int] = IMAGE_SHAPE,
    key: str = "features.sets",
) -> dict[str, list[dict[str, Any]]]:
    """Every feature set of the config section `features.sets`, checked and completed."""
    return {
        name: resolve_blocks(blocks, image_shape, f"{key}.{name}") for name, blocks in sets.items()
    }


def learned_block(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The set's ``kmeans`` block (resolved), or None: a set without a dictionary."""
    return next((dict(b) for b in blocks if b["block"] == "kmeans"), None)


def dictionary_params(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """What the set's dictionary depends on: its ``kmeans`` block without the options that
    only change how images are encoded (:data:`linbench.names.ENCODING_ONLY`), or None."""
    block = learned_block(blocks)
    if block is None:
        return None
    return {key: value for key, value in block.items() if key not in ENCODING_ONLY}


def block_dimension(block: Mapping[str, Any], image_shape: Sequence[int] = IMAGE_SHAPE) -> int:
    """Number of features a resolved block yields for images of `image_shape`."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if block["block"] == "hog":
        (c_row, c_col), (b_row, b_col) = block["pixels_per_cell"], block["cells_per_block"]
        n_blocks = (height // c_row - b_row + 1) * (width // c_col - b_col + 1)
        return n_blocks * b_row * b_col * block["orientations"]
    if block["block"] == "color_hist":
        return block["bins"]
    if block["block"] == "kmeans":
        return 4 * block["centroids"]
    return height * width * int(image_shape[2])


def block_slices(
    blocks: Sequence[Mapping[str, Any]], image_shape: Sequence[int] = IMAGE_SHAPE
) -> list[tuple[int, int]]:
    """[start, stop) columns of each resolved block in the concatenated feature vector."""
    slices, start = [], 0
    for block in blocks:
        stop = start + block_dimension(block, image_shape)
        slices.append((start, stop))
        start = stop
    return slices


def describe_blocks(
    blocks: Sequence[Mapping[str, Any]], image_shape: Sequence[int] = IMAGE_SHAPE
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


# --------------------------------------------------------------------------- extraction


def check_images(images: np.ndarray, name: str) -> None:
    """Refuse anything but uint8 RGB images (N, H, W, 3); `name` (the file) is in the error."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise LinbenchError(
            f"{name}: expected uint8 RGB images of shape (N, H, W, 3), got {images.dtype} "
            f"{images.shape}"
        )


class Progress:
    """Logs images done, rate and time left at most every `every` seconds (and at the end)."""

    def __init__(self, total: int, what: str = "images", every: float = 30.0) -> None:
        self.total, self.what, self.every = total, what, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%d/%d %s done (%.1f %%), %.1f %s/s, %.0f s left",
            done,
            self.total,
            self.what,
            100 * done / max(self.total, 1),
            rate,
            self.what,
            left,
        )


def extract(
    images: np.ndarray,
    blocks: Sequence[Mapping[str, Any]],
    chunk_size: int = CHUNK_SIZE,
    name: str = "images",
    dictionary: KMeansDictionary | None = None,
    progress_every: float = 30.0,
) -> np.ndarray:
    """Features of uint8 images (N, H, W, 3): float32 (N, D), blocks concatenated in order.

    `blocks` are checked against the image size and completed with defaults
    (:func:`resolve_blocks`). `images` may be a memory map: it is read `chunk_size`
    images at a time, so memory stays proportional to the output. `name` (e.g. the
    file) names the images in errors. A set with a ``kmeans`` block needs its fitted
    `dictionary` (:func:`linbench.kmeans.fit_dictionary`). Progress is logged every
    `progress_every` seconds.
    """
    check_images(images, name)
    image_shape = images.shape[1:]
    blocks = resolve_blocks(blocks, image_shape)
    if learned_block(blocks) is not None and dictionary is None:
        raise ValueError("a feature set with a kmeans block needs its fitted dictionary")
    slices = block_slices(blocks, image_shape)
    out = np.empty((len(images), slices[-1][1]), dtype=np.float32)
    progress = Progress(len(images), every=progress_every)
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
            elif block["block"] == "kmeans":
                values = dictionary.encode(chunk, mirror=block["mirror"], power=block["power"])
            else:
                values = pixel_features(chunk)
            out[start:stop, first:last] = values
        progress.update(stop)
    return out


def example_indices(labels: np.ndarray, n_classes: int) -> list[int]:
    """Index of the first image of each class present in `labels`, in class order."""
    return [int(np.argmax(labels == c)) for c in range(n_classes) if np.any(labels == c)]


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
