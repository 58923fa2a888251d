"""The fast HOG reproduces skimage.feature.hog: same bins, same order, same picture."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.feature import hog
from test_features import make_images

from linbench import hog as fast_hog
from linbench.features import block_dimension, extract, resolve_block
from linbench.names import FEATURE_BLOCKS

HOG_CASES = [
    {},
    {"orientations": 7, "pixels_per_cell": [5, 6], "cells_per_block": [3, 2], "block_norm": "L1"},
    {"orientations": 12, "pixels_per_cell": [4, 4], "block_norm": "L1-sqrt"},
    {"orientations": 4, "pixels_per_cell": [16, 8], "cells_per_block": [1, 3], "block_norm": "L2"},
]


def skimage_hog(images: np.ndarray, channel_axis: int | None = None, **params) -> np.ndarray:
    """The reference: skimage's hog, image by image."""
    if channel_axis is None:
        return np.stack([hog(rgb2gray(image), **params) for image in images])
    return np.stack([hog(image, channel_axis=channel_axis, **params) for image in images])


HOG_CASES = [
    {},
    {"orientations": 7, "pixels_per_cell": [5, 6], "cells_per_block": [3, 2], "block_norm": "L1"},
    {"orientations": 12, "pixels_per_cell": [4, 4], "block_norm": "L1-sqrt"},
    {"orientations": 4, "pixels_per_cell": [16, 8], "cells_per_block": [1, 3], "block_norm": "L2"},
]


@pytest.mark.parametrize("channel_axis", [None, -1])
@pytest.mark.parametrize("params", HOG_CASES)
def test_hog_equals_skimage(params, channel_axis):
    images = make_images(8, height=32, width=30)
    ours = extract(images, [{"block": "hog", "channel_axis": channel_axis, **params}])
    defaults = {"orientations": 9, "pixels_per_cell": [8, 8], "cells_per_block": [2, 2]}
    reference = skimage_hog(images, channel_axis, **{**defaults, **params})
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape
    # Same bins and order; only float rounding differs (float32 output, float64 sums).
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_default_hog_is_324_dimensional_on_cifar_images():
    block = resolve_block({"block": "hog"})
    assert block == {"block": "hog", **FEATURE_BLOCKS["hog"]}
    assert block_dimension(block) == 324
    assert extract(make_images(2), [block]).shape == (2, 324)


def test_grayscale_is_skimage_rgb2gray_bitwise():
    images = make_images(6)
    np.testing.assert_array_equal(fast_hog.rgb_to_gray(images), rgb2gray(images))


def test_hog_of_a_flat_image_is_zero():
    flat = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    assert not extract(flat, [{"block": "hog"}]).any()


def test_hog_visualization_is_skimages():
    image = make_images(1)[0]
    _, expected = hog(rgb2gray(image), visualize=True, cells_per_block=(2, 2))
    np.testing.assert_array_equal(
        fast_hog.hog_visualization(image, resolve_block({"block": "hog"})), expected
    )


@pytest.mark.parametrize("orientations", [1, 7, 9, 11, 13, 24])
def test_orientation_bins_follow_skimages_float32_edges(orientations):
    # skimage's Cython loop: bin i holds angles in [float32(w) * i, float32(w) * (i + 1))
    # with w = 180 / orientations in float32; angles beyond the last edge count nowhere.
    width = np.float32(180.0 / orientations)
    edges = (width * np.arange(orientations + 1, dtype=np.float32)).astype(np.float64)
    exact = np.arange(orientations + 1) * (180.0 / orientations)
    probes = np.concatenate([edges, exact, np.nextafter(edges, -1), np.nextafter(edges, 1)])
    angles = np.clip(np.concatenate([probes, np.linspace(0, 180, 1001)]), 0, 180)
    expected = np.full(angles.shape, orientations)
    for i in range(orientations):
        expected[(edges[i] <= angles) & (angles < edges[i + 1])] = i
    np.testing.assert_array_equal(fast_hog._orientation_bins(angles, orientations), expected)


def test_unsigned_angle_is_numpy_remainder():
    g = np.array([-1.0, -0.0, 0.0, 1e-300, 1.0, 3.0])
    g_row, g_col = (x.ravel() for x in np.meshgrid(g, g))
    expected = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    np.testing.assert_array_equal(fast_hog._unsigned_angle(g_row, g_col), expected)


def test_hypot_table_is_numpy_hypot_on_integer_gradients():
    values = np.arange(-255.0, 256.0)
    g_row, g_col = np.meshgrid(values, values, indexing="ij")
    index = np.abs(g_row).astype(np.intp) * 256 + np.abs(g_col).astype(np.intp)
    np.testing.assert_array_equal(fast_hog._hypot_table()[index], np.hypot(g_row, g_col))
