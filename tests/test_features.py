"""Feature sets: hue histogram, pixels, block checks, extraction, shards, standardisation."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage.color import rgb2hsv

from linbench import color, features
from linbench.config import validate_config
from linbench.errors import LinbenchError
from linbench.features import extract, resolve_blocks, shard_bounds
from linbench.standardize import Standardizer

ROOT = Path(__file__).resolve().parents[1]


def make_images(n: int = 10, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 RGB images: half noise, half blocky (flat areas, exactly horizontal and
    vertical edges: gradients at 0, 90 and 180 degrees and zero gradients)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(n - n // 2, height, width, 3), dtype=np.uint8)
    coarse = rng.integers(0, 256, size=(n // 2, height // 4 + 1, width // 4 + 1, 3))
    blocky = np.kron(coarse, np.ones((1, 4, 4, 1)))[:, :height, :width].astype(np.uint8)
    return np.concatenate([noise, blocky])


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
    np.testing.assert_array_equal(color.hue(colours), rgb2hsv(colours)[..., 0])


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


def check_sets(sets: dict) -> dict:
    """Validate the default config with `sets` as features.sets, as the workflow does."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config = copy.deepcopy(config)
    config["features"]["sets"] = sets
    for grid in config["grid"].values():
        grid["features"] = list(sets)[:1]
    config = validate_config(config, ROOT / "workflow/schemas/config.schema.yaml")
    return features.resolve_feature_sets(config["features"]["sets"])


@pytest.mark.parametrize(
    ("block", "message"),
    [
        # What the schema checks ...
        ({"block": "sift"}, r"hog\[1\]\.block: 'sift' is not one of"),
        ({"block": "hog", "bins": 3}, r"hog\[1\]\.bins: unknown key"),
        ({"block": "hog", "block_norm": "L3"}, r"hog\[1\]\.block_norm: 'L3' is not one of"),
        ({"block": "hog", "orientations": 0}, r"hog\[1\]\.orientations: 0 is less than"),
        ({"block": "hog", "channel_axis": 2}, r"hog\[1\]\.channel_axis: 2 is not one of"),
        ({"block": "color_hist", "bins": 2.5}, r"hog\[1\]\.bins: 2\.5 is not of type 'integer'"),
        ("hog", r"hog\[1\]: 'hog' is not of type 'object'"),
        # ... and what needs the image size.
        ({"block": "hog", "pixels_per_cell": [40, 8]}, r"hog\[1\]\.pixels_per_cell: cells of 40x8"),
        ({"block": "hog", "cells_per_block": [5, 2]}, r"hog\[1\]\.cells_per_block: blocks of 5x2"),
    ],
)
def test_bad_blocks_name_the_key(block, message):
    with pytest.raises(LinbenchError, match=message):
        check_sets({"hog": [{"block": "pixels"}, block]})


def test_library_calls_name_the_key_of_unknown_blocks_and_parameters():
    with pytest.raises(LinbenchError, match=r"hog\[1\]\.block: unknown block 'sift'"):
        features.resolve_feature_sets({"hog": [{"block": "pixels"}, {"block": "sift"}]})
    with pytest.raises(LinbenchError, match=r"hog\[0\]\.bins: unknown parameter of block 'hog'"):
        features.resolve_feature_sets({"hog": [{"block": "hog", "bins": 3}]})
    with pytest.raises(LinbenchError, match=r"hog\[0\]: expected a mapping"):
        features.resolve_feature_sets({"hog": ["hog"]})


def test_blocks_are_checked_against_the_actual_image_size():
    small = make_images(2, height=16, width=16)
    with pytest.raises(LinbenchError, match=r"cells_per_block: .* 2x2 grid .* 16x16 image"):
        extract(small, [{"block": "hog", "cells_per_block": [3, 3]}])
    with pytest.raises(LinbenchError, match=r"features\.sets\.x: expected a non-empty list"):
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


def test_example_indices_pick_the_first_image_of_each_class():
    labels = np.array([2, 0, 2, 1, 0, 3])
    assert features.example_indices(labels, 5) == [1, 3, 0, 5]


def test_images_must_be_uint8_rgb():
    with pytest.raises(LinbenchError, match=r"train_images\.npy: expected uint8 RGB images"):
        extract(np.zeros((2, 32, 32, 3)), [{"block": "hog"}], name="train_images.npy")
