"""Learned features: k-means on whitened patches, triangle encoding, quadrant pooling.

The recipe of Coates, Lee & Ng, "An analysis of single-layer networks in unsupervised
feature learning" (AISTATS 2011), which takes a linear classifier on CIFAR-10 to 77.9 %
with 1,600 centroids:

1. Random ``patch_size`` x ``patch_size`` colour patches of the **training** images, each
   a vector of d = p*p*3 pixel values (0..255) in (row, column, channel) order.
2. Brightness and contrast normalisation of each patch: subtract its mean, divide by
   ``sqrt(variance + 10)`` (the 10, on the 0..255 scale, keeps flat patches from
   blowing up noise; the paper's value).
3. ZCA whitening: ``x -> (x - m) W`` with ``W = V diag(1 / sqrt(e + epsilon)) V^T`` from
   the eigen-decomposition ``V diag(e) V^T`` of the patches' covariance.
4. k-means (Lloyd's algorithm) on the whitened patches: ``centroids`` centres started at
   distinct random patches; a centre left without patches moves to a random patch.
5. Encoding of an image: every patch at ``stride`` is normalised and whitened, z_k is
   its distance to centroid k and ``f_k = max(0, mean(z) - z_k)`` (the "triangle"
   encoding: nonzero for the centroids closer than average);
6. pooling: f summed over the positions of each image quadrant, 4 * ``centroids``
   features per image (then standardised with the train split's statistics, as every
   feature set is).

:meth:`KMeansDictionary.encode` is the hot loop (60,000 images, 1,600 centroids, stride
1: ~15 TFLOP). It works one image at a time, fusing distances, triangle encoding and
pooling so that only a (positions, K) float32 block (4.7 MB) is alive, and puts the
distances and the pooling into matrix products that BLAS runs near peak.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .io import save_npz

log = logging.getLogger(__name__)

CONTRAST_EPSILON = 10.0
"""Added to each patch's variance (pixel values 0..255) before dividing by its root."""

ASSIGN_ROWS = 8192
"""Patches assigned to centroids at once while fitting: a (rows, K) float32 block."""


# --------------------------------------------------------------------------- patches


def image_patches(images: np.ndarray, patch_size: int, stride: int = 1) -> np.ndarray:
    """Every patch of uint8 images (n, H, W, 3) at `stride`, as float32 pixel values.

    Returns (n, R, C, d) with R = (H - p) // stride + 1 (C likewise) and d = p * p * 3 in
    (row, column, channel) order: patch [i, r, c] starts at pixel (r * stride, c * stride).
    """
    windows = sliding_window_view(images, (patch_size, patch_size), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (n, R, C, 3, p, p)
    n, rows, cols = windows.shape[:3]
    patches = np.empty((n, rows, cols, patch_size, patch_size, 3), dtype=np.float32)
    np.copyto(patches, windows.transpose(0, 1, 2, 4, 5, 3))
    return patches.reshape(n, rows, cols, -1)


def normalize_patches(patches: np.ndarray) -> np.ndarray:
    """Brightness and contrast normalisation of each row of float32 (m, d), in place.

    ``(x - mean(x)) / sqrt(var(x) + CONTRAST_EPSILON)`` per patch. Returns `patches`.
    """
    patches -= patches.mean(axis=1, keepdims=True)
    scale = np.square(patches).mean(axis=1, keepdims=True)
    scale += CONTRAST_EPSILON
    np.sqrt(scale, out=scale)
    patches /= scale
    return patches


def sample_patches(
    images: np.ndarray, count: int, patch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """`count` patches of uint8 images (N, H, W, 3) at random images and positions.

    Images are read in index order (a memory map is read once, sequentially). Returns
    float32 (count, p * p * 3) raw pixel values, in the order drawn.
    """
    n, height, width = images.shape[:3]
    which = rng.integers(0, n, size=count)
    rows = rng.integers(0, height - patch_size + 1, size=count)
    cols = rng.integers(0, width - patch_size + 1, size=count)
    out = np.empty((count, patch_size * patch_size * 3), dtype=np.float32)
    order = np.argsort(which, kind="stable")
    offsets = np.arange(patch_size)
    for start in range(0, count, 65536):
        picks = order[start : start + 65536]
        first, last = which[picks[0]], which[picks[-1]] + 1
        block = np.asarray(images[first:last])  # consecutive images: a sequential read
        r = rows[picks, None, None] + offsets[None, :, None]
        c = cols[picks, None, None] + offsets[None, None, :]
        out[picks] = block[which[picks, None, None] - first, r, c].reshape(len(picks), -1)
    return out


# --------------------------------------------------------------------------- whitening


def fit_whitening(patches: np.ndarray, epsilon: float) -> tuple[np.ndarray, ...]:
    """ZCA whitening of normalised patches (m, d): (mean (d,), W (d, d), W^-1 (d, d)).

    ``(x - mean) @ W`` has (near) identity covariance when `epsilon` is small against the
    eigenvalues; `epsilon` > 0 damps the directions of little variance (noise). The
    covariance is accumulated in float64; W is symmetric.
    """
    mean = patches.mean(axis=0, dtype=np.float64)
    covariance = np.zeros((patches.shape[1],) * 2)
    for start in range(0, len(patches), 65536):
        centred = patches[start : start + 65536].astype(np.float64) - mean
        covariance += centred.T @ centred
    covariance /= len(patches)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding can make the smallest negative
    whitening = (vectors / np.sqrt(eigenvalues + epsilon)) @ vectors.T
    unwhitening = (vectors * np.sqrt(eigenvalues + epsilon)) @ vectors.T
    return mean, whitening, unwhitening


def whiten(patches: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """``(patches - mean) @ whitening`` in float32: (m, d)."""
    return (patches - mean.astype(np.float32)) @ whitening.astype(np.float32)


# --------------------------------------------------------------------------- k-means


def assign(data: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row of float32 `data` (m, d) among `centroids` (k, d).

    Returns (labels int64 (m,), squared distances float64 (m,)), computed in blocks of
    :data:`ASSIGN_ROWS` rows as ``|x|^2 - 2 max_k (x.c_k - |c_k|^2 / 2)``.
    """
    half_norms = 0.5 * np.einsum("kd,kd->k", centroids, centroids)
    labels = np.empty(len(data), dtype=np.int64)
    distances = np.empty(len(data))
    for start in range(0, len(data), ASSIGN_ROWS):
        block = data[start : start + ASSIGN_ROWS]
        scores = block @ centroids.T
        scores -= half_norms
        best = scores.argmax(axis=1)
        labels[start : start + len(block)] = best
        closest = np.take_along_axis(scores, best[:, None], axis=1)[:, 0].astype(np.float64)
        norms = np.einsum("md,md->m", block, block, dtype=np.float64)
        distances[start : start + len(block)] = np.maximum(norms - 2 * closest, 0.0)
    return labels, distances


def cluster_sums(data: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums (k, d) float64 and counts (k,) of the rows of `data` by `labels`."""
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, data.shape[1]))
    order = np.argsort(labels, kind="stable")
    for start in range(0, len(order), 65536):
        picks = order[start : start + 65536]
        sorted_labels = labels[picks]
        firsts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        sums[sorted_labels[firsts]] += np.add.reduceat(
            data[picks].astype(np.float64), firsts, axis=0
        )
    return sums, counts


def kmeans(
    data: np.ndarray,
    k: int,
    iterations: int,
    rng: np.random.Generator,
    on_iteration: Callable[[int, float, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lloyd's k-means of float32 rows `data` (m, d) into `k` clusters.

    Starts at `k` distinct random rows. Each iteration assigns every row to its nearest
    centre, records the objective (mean squared distance to the assigned centre) and
    moves each centre to the mean of its rows; a centre that lost all its rows moves to
    a random row instead. Neither step can raise the objective, so it never increases
    (up to float32 rounding of the distances). `on_iteration(i, objective, empty)` is
    called after each iteration.

    Returns centroids float32 (k, d), objective float64 (iterations,) and the rows per
    centre at the last assignment, int64 (k,).
    """
    if k > len(data):
        raise ValueError(f"k-means: {k} centroids need at least as many rows, got {len(data)}")
    centroids = data[np.sort(rng.choice(len(data), size=k, replace=False))].copy()
    objective = np.empty(iterations)
    counts = np.zeros(k, dtype=np.int64)
    for i in range(iterations):
        labels, distances = assign(data, centroids)
        objective[i] = distances.mean()
        sums, counts = cluster_sums(data, labels, k)
        empty = counts == 0
        centroids = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if empty.any():
            centroids[empty] = data[rng.choice(len(data), size=int(empty.sum()), replace=False)]
        if on_iteration is not None:
            on_iteration(i, float(objective[i]), int(empty.sum()))
    return centroids, objective, counts


# --------------------------------------------------------------------------- dictionary


def pooling_matrix(rows: int, cols: int) -> np.ndarray:
    """float32 (4, rows * cols): 1 where a position lies in quadrant q, else 0.

    Quadrants, in this order: top-left, top-right, bottom-left, bottom-right; the top
    half takes rows [0, ceil(rows / 2)), the left half columns [0, ceil(cols / 2)).
    """
    top = np.arange(rows) < (rows + 1) // 2
    left = np.arange(cols) < (cols + 1) // 2
    quadrants = [
        np.outer(vertical, horizontal) for vertical in (top, ~top) for horizontal in (left, ~left)
    ]
    return np.stack(quadrants).reshape(4, -1).astype(np.float32)


@dataclass(frozen=True)
class KMeansDictionary:
    """What a kmeans block learned on the training split, and how it encodes images.

    patch_size, stride : the block's geometry.
    mean : float64 (d,), mean of the normalised training patches.
    whitening, unwhitening : float64 (d, d), ZCA matrix W and its inverse.
    centroids : float32 (K, d), in the whitened space.
    objective : float64 (iterations,), k-means objective at each iteration.
    counts : int64 (K,), training patches per centroid at the last iteration.
    """

    patch_size: int
    stride: int
    mean: np.ndarray
    whitening: np.ndarray
    unwhitening: np.ndarray
    centroids: np.ndarray
    objective: np.ndarray
    counts: np.ndarray

    @property
    def dimension(self) -> int:
        """Features per image: 4 quadrants x K centroids."""
        return 4 * len(self.centroids)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every field to an ``.npz`` file, atomically."""
        save_npz(
            path,
            patch_size=np.int64(self.patch_size),
            stride=np.int64(self.stride),
            mean=self.mean,
            whitening=self.whitening,
            unwhitening=self.unwhitening,
            centroids=self.centroids,
            objective=self.objective,
            counts=self.counts,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KMeansDictionary:
        """Read a dictionary written by :meth:`save`."""
        with np.load(path) as npz:
            fields = {key: npz[key] for key in npz.files}
        fields["patch_size"], fields["stride"] = int(fields["patch_size"]), int(fields["stride"])
        return cls(**fields)

    def centroid_patches(self) -> np.ndarray:
        """The centroids mapped back to (normalised) patch space: float64 (K, p, p, 3)."""
        patches = self.centroids.astype(np.float64) @ self.unwhitening + self.mean
        return patches.reshape(len(self.centroids), self.patch_size, self.patch_size, 3)

    def encode(self, images: np.ndarray, mirror: bool = False, power: float = 1.0) -> np.ndarray:
        """Pooled triangle features of uint8 images (n, H, W, 3): float32 (n, 4 * K).

        Column q * K + k is the sum over the positions of quadrant q (see
        :func:`pooling_matrix`) of ``max(0, mean_j z_j - z_k)``, z_k the distance of the
        whitened patch to centroid k. Each image is computed alone (its own matrix
        products, of fixed shapes), so its features do not depend on the batch.

        `mirror` adds the features of the left-right mirror image, so an image and its
        mirror get the same features: a linear classifier then scores an image by the sum
        of its scores for the image and the mirror, with the classes' left-right symmetry
        built in rather than learned from data (twice the encoding work, no more training
        rows). `power` < 1 raises the pooled sums to that power (0.5: square root), which
        damps their heavy tail before standardisation.
        """
        features = self._pooled_triangles(images)
        if mirror:
            features += self._pooled_triangles(images[:, :, ::-1])
        if power != 1.0:
            np.power(features, power, out=features)
        return features

    def _pooled_triangles(self, images: np.ndarray) -> np.ndarray:
        """:meth:`encode` without its options: the paper's recipe."""
        patches = image_patches(images, self.patch_size, self.stride)
        n, rows, cols, d = patches.shape
        positions = rows * cols
        k = len(self.centroids)
        normalize_patches(patches.reshape(-1, d))
        mean = self.mean.astype(np.float32)
        whitening = self.whitening.astype(np.float32)
        # Squared distances in one product: [x, |x|^2, 1] @ [-2 C^T; 1; |c|^2].
        centroids_t = self.centroids.T.astype(np.float32)
        extended = np.empty((d + 2, k), dtype=np.float32)
        extended[:d] = -2 * centroids_t
        extended[d] = 1.0
        extended[d + 1] = np.einsum("dk,dk->k", centroids_t, centroids_t)
        pooling = pooling_matrix(rows, cols)
        averaging = np.full(k, 1.0 / k, dtype=np.float32)

        augmented = np.empty((positions, d + 2), dtype=np.float32)
        augmented[:, d + 1] = 1.0
        distances = np.empty((positions, k), dtype=np.float32)
        out = np.empty((n, 4, k), dtype=np.float32)
        for i in range(n):
            centred = patches[i].reshape(positions, d) - mean
            whitened = np.matmul(centred, whitening, out=augmented[:, :d])
            augmented[:, d] = np.einsum("pd,pd->p", whitened, whitened)
            np.matmul(augmented, extended, out=distances)
            # Rounding can make a tiny |x - c|^2 negative; abs maps it to a tiny positive
            # value as well as max(., 0) would, at a tenth of its cost.
            np.abs(distances, out=distances)
            np.sqrt(distances, out=distances)
            average = (distances @ averaging)[:, None]
            # f = max(0, mean(z) - z) = mean(z) - min(z, mean(z)): two cheap passes, exact
            # zeros where z >= mean(z).
            np.minimum(distances, average, out=distances)
            np.subtract(average, distances, out=distances)
            np.matmul(pooling, distances, out=out[i])
        return out.reshape(n, 4 * k)


def fit_dictionary(
    images: np.ndarray,
    block: dict[str, Any],
    progress_every: float = 30.0,
) -> KMeansDictionary:
    """Fit a resolved ``kmeans`` block on uint8 training images (N, H, W, 3).

    Only the images given are ever read: pass the training split alone. Deterministic
    for a given ``seed`` of the block. Logs each k-means iteration (objective, time
    left) at most every `progress_every` seconds, and the last one.
    """
    rng = np.random.default_rng(block["seed"])
    start = time.perf_counter()
    patches = sample_patches(images, block["patches"], block["patch_size"], rng)
    normalize_patches(patches)
    mean, whitening, unwhitening = fit_whitening(patches, block["whitening_epsilon"])
    whitened = whiten(patches, mean, whitening)
    del patches
    log.info(
        "%d patches of %dx%d pixels sampled, normalised and whitened in %.1f s",
        len(whitened),
        block["patch_size"],
        block["patch_size"],
        time.perf_counter() - start,
    )
    iterations, last = block["iterations"], [time.perf_counter()]
    kmeans_start = time.perf_counter()

    def report(i: int, objective: float, empty: int) -> None:
        now = time.perf_counter()
        if now - last[0] < progress_every and i + 1 < iterations:
            return
        last[0] = now
        per_iteration = (now - kmeans_start) / (i + 1)
        log.info(
            "k-means iteration %d/%d: objective %.5f, %d empty centroid(s) moved; "
            "%.1f s per iteration, %.0f s left",
            i + 1,
            iterations,
            objective,
            empty,
            per_iteration,
            per_iteration * (iterations - i - 1),
        )

    centroids, objective, counts = kmeans(whitened, block["centroids"], iterations, rng, report)
    return KMeansDictionary(
        patch_size=block["patch_size"],
        stride=block["stride"],
        mean=mean,
        whitening=whitening,
        unwhitening=unwhitening,
        centroids=centroids,
        objective=objective,
        counts=counts,
    )
