"""Feature extraction: HOG as skimage computes it, hue histogram, pixels, shards, scaling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.color import rgb2gray, rgb2hsv
from skimage.feature import hog

from linbench import features
from linbench.errors import LinbenchError
from linbench.features import Standardizer, extract, resolve_block, resolve_blocks, shard_bounds


def make_images(n: int = 10, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 RGB images: half noise, half blocky (flat areas, exactly horizontal and
    vertical edges: gradients at 0, 90 and 180 degrees and zero gradients)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(n - n // 2, height, width, 3), dtype=np.uint8)
    coarse = rng.integers(0, 256, size=(n // 2, height // 4 + 1, width // 4 + 1, 3))
    blocky = np.kron(coarse, np.ones((1, 4, 4, 1)))[:, :height, :width].astype(np.uint8)
    return np.concatenate([noise, blocky])


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
    assert block == {"block": "hog", **features.BLOCK_DEFAULTS["hog"]}
    assert features.block_dimension(block) == 324
    assert extract(make_images(2), [block]).shape == (2, 324)


def test_grayscale_is_skimage_rgb2gray_bitwise():
    images = make_images(6)
    np.testing.assert_array_equal(features.rgb_to_gray(images), rgb2gray(images))


def test_hog_of_a_flat_image_is_zero():
    flat = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    assert not extract(flat, [{"block": "hog"}]).any()


def test_color_hist_bins_pure_colours():
    red, green, blue = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    images[0, ...] = red
    images[1, ...] = green
    images[2, :2] = red
    images[2, 2:] = blue
    hist = extract(images, [{"block": "color_hist"}])  # 10 bins of hue
    expected = np.zeros((3, 10), dtype=np.float32)
    expected[0, 0] = 1  # hue 0
    expected[1, 3] = 1  # hue 1/3
    expected[2, [0, 6]] = 0.5  # half red, half blue (hue 2/3)
    np.testing.assert_array_equal(hist, expected)


def test_hue_is_skimage_rgb2hsv_hue_bitwise():
    levels = np.arange(0, 256, 5)  # every hue sextant, gray pixels and channel ties
    colours = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    colours = colours.reshape(-1, 1, 1, 3).astype(np.uint8)
    np.testing.assert_array_equal(features.hue(colours), rgb2hsv(colours)[..., 0])


def test_color_hist_is_a_distribution_of_skimage_hue():
    images = make_images(6)
    hist = extract(images, [{"block": "color_hist", "bins": 7}])
    hue = rgb2hsv(images)[..., 0].reshape(6, -1)
    expected = [np.bincount(np.minimum(h * 7, 6).astype(int), minlength=7) / h.size for h in hue]
    np.testing.assert_allclose(hist, expected, rtol=1e-6)
    np.testing.assert_allclose(hist.sum(axis=1), 1, rtol=1e-6)


def test_pixels_are_scaled_raw_pixels():
    images = make_images(3)
    pixels = extract(images, [{"block": "pixels"}])
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels, images.reshape(3, -1).astype(np.float32) / 255)


def test_blocks_are_concatenated_in_order():
    images = make_images(4)
    blocks = resolve_blocks([{"block": "color_hist"}, {"block": "hog"}, {"block": "pixels"}])
    combined = extract(images, blocks)
    slices = features.block_slices(blocks)
    assert slices == [(0, 10), (10, 334), (334, 334 + 3072)]
    for block, (start, stop) in zip(blocks, slices, strict=True):
        np.testing.assert_array_equal(combined[:, start:stop], extract(images, [block]))


def test_shard_bounds_tile_the_split():
    for n, k in [(10, 3), (7, 7), (5, 8), (45000, 4)]:
        bounds = [shard_bounds(n, k, i) for i in range(k)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    assert shard_bounds(10, 3, 1) == (3, 6)
    with pytest.raises(ValueError, match="shard 3"):
        shard_bounds(10, 3, 3)


def test_sharded_extraction_and_gather_equal_unsharded(tmp_path, monkeypatch):
    blocks = [{"block": "hog", "channel_axis": -1}, {"block": "color_hist"}, {"block": "hog"}]
    # Reduction blocks of 7 rows straddle the shard boundaries on purpose.
    monkeypatch.setattr(Standardizer, "BLOCK_VALUES", 7 * (324 + 10 + 324))
    splits = {"train": make_images(37, seed=1), "val": make_images(11, seed=2)}
    path = tmp_path / "train_images.npy"
    np.save(path, splits["train"])
    splits["train"] = np.load(path, mmap_mode="r")  # as the shard jobs read it

    def run(shards: int, chunk_size: int) -> tuple[Standardizer, dict[str, np.ndarray]]:
        parts = {
            split: [
                extract(images[slice(*shard_bounds(len(images), shards, i))], blocks, chunk_size)
                for i in range(shards)
            ]
            for split, images in splits.items()
        }
        stats = Standardizer.fit(parts["train"])
        out = {}
        for split, split_parts in parts.items():
            stats.save_transformed(tmp_path / f"{shards}_{split}.npy", split_parts)
            out[split] = np.load(tmp_path / f"{shards}_{split}.npy")
        return stats, out

    whole_stats, whole = run(shards=1, chunk_size=128)
    sharded_stats, sharded = run(shards=4, chunk_size=3)
    for split in splits:
        assert whole[split].dtype == np.float32
        np.testing.assert_array_equal(sharded[split], whole[split])
    np.testing.assert_array_equal(sharded_stats.mean, whole_stats.mean)
    np.testing.assert_array_equal(sharded_stats.std, whole_stats.std)


def test_standardisation_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(500, 4)).astype(np.float32)
    train[:, 2] = 5.0  # a constant feature
    val = rng.normal(-10.0, 9.0, size=(50, 4)).astype(np.float32)
    stats = Standardizer.fit([train[:200], train[200:]])

    scaled = stats.transform(train)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0)[[0, 1, 3]], 1, rtol=1e-5)
    # The constant feature maps to 0 instead of dividing by zero.
    assert stats.constant.tolist() == [False, False, True, False]
    assert stats.std[2] == 1.0 and not scaled[:, 2].any()
    # Other splits are scaled with the train statistics, never their own.
    np.testing.assert_allclose(
        stats.transform(val), (val - train.mean(axis=0)) / stats.std, rtol=1e-5, atol=1e-5
    )
    assert np.isfinite(stats.transform(val)).all()
    with pytest.raises(ValueError, match="empty train split"):
        Standardizer.fit([train[:0]])


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"block": "hog", "pixels_per_cell": [40, 8]}, r"hog\[1\]\.pixels_per_cell: cells of 40x8"),
        ({"block": "hog", "cells_per_block": [5, 2]}, r"hog\[1\]\.cells_per_block: blocks of 5x2"),
        ({"block": "sift"}, r"hog\[1\]\.block: unknown block 'sift'"),
        ({"block": "hog", "bins": 3}, r"hog\[1\]\.bins: unknown parameter of block 'hog'"),
        ({"block": "hog", "block_norm": "L3"}, r"hog\[1\]\.block_norm: 'L3' is not one of"),
        ({"block": "hog", "orientations": 0}, r"hog\[1\]\.orientations: expected a positive"),
        ({"block": "hog", "channel_axis": 2}, r"hog\[1\]\.channel_axis: expected null"),
        ({"block": "color_hist", "bins": 2.5}, r"hog\[1\]\.bins: expected a positive integer"),
        ("hog", r"hog\[1\]: expected a mapping"),
    ],
)
def test_bad_blocks_name_the_key(block, message):
    with pytest.raises(ValueError, match=message):
        features.resolve_feature_sets({"hog": [{"block": "pixels"}, block]})


def test_blocks_are_checked_against_the_actual_image_size():
    small = make_images(2, height=16, width=16)
    with pytest.raises(ValueError, match=r"cells_per_block: .* 2x2 grid .* 16x16 image"):
        extract(small, [{"block": "hog", "cells_per_block": [3, 3]}])
    with pytest.raises(ValueError, match=r"features\.sets\.x: expected a non-empty list"):
        features.resolve_feature_sets({"x": []})


def test_gather_refuses_shards_of_another_configuration():
    parts = [np.zeros((5, 4), np.float32), np.zeros((5, 3), np.float32)]
    infos = [{"start": 0, "stop": 5}, {"start": 5, "stop": 10}]
    paths = ["shards/train_0.npy", "shards/train_1.npy"]
    features.check_shards(infos, [parts[0], parts[0]], paths, 10, 4)
    with pytest.raises(LinbenchError, match=r"shards/train_1\.npy"):
        features.check_shards(infos, parts, paths, 10, 4)
    with pytest.raises(LinbenchError, match="cover 10 images, the split has 12"):
        features.check_shards(infos, [parts[0], parts[0]], paths, 12, 4)


def test_hog_visualization_is_skimages():
    image = make_images(1)[0]
    _, expected = hog(rgb2gray(image), visualize=True, cells_per_block=(2, 2))
    np.testing.assert_array_equal(features.hog_visualization(image, {"block": "hog"}), expected)


def test_example_indices_pick_the_first_image_of_each_class():
    labels = np.array([2, 0, 2, 1, 0, 3])
    assert features.example_indices(labels, 5) == [1, 3, 0, 5]


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
    np.testing.assert_array_equal(features._orientation_bins(angles, orientations), expected)


def test_unsigned_angle_is_numpy_remainder():
    g = np.array([-1.0, -0.0, 0.0, 1e-300, 1.0, 3.0])
    g_row, g_col = (x.ravel() for x in np.meshgrid(g, g))
    expected = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    np.testing.assert_array_equal(features._unsigned_angle(g_row, g_col), expected)


def test_hypot_table_is_numpy_hypot_on_integer_gradients():
    values = np.arange(-255.0, 256.0)
    g_row, g_col = np.meshgrid(values, values, indexing="ij")
    index = np.abs(g_row).astype(np.intp) * 256 + np.abs(g_col).astype(np.intp)
    np.testing.assert_array_equal(features._hypot_table()[index], np.hypot(g_row, g_col))


def test_images_must_be_uint8_rgb():
    with pytest.raises(ValueError, match=r"train_images\.npy: expected uint8 RGB images"):
        extract(np.zeros((2, 32, 32, 3)), [{"block": "hog"}], name="train_images.npy")
