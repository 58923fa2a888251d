"""The kmeans block on tiny synthetic images: each step of the recipe against a slow loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from test_features import check_sets, make_images

from linbench import kmeans
from linbench.errors import LinbenchError
from linbench.features import block_slices, extract, resolve_block, resolve_blocks

ROOT = Path(__file__).resolve().parents[1]
TINY = {"centroids": 6, "patch_size": 3, "stride": 2, "patches": 400, "iterations": 5, "seed": 3}


def tiny_dictionary(images: np.ndarray, **params) -> kmeans.KMeansDictionary:
    block = resolve_block({"block": "kmeans", **TINY, **params}, images.shape[1:])
    return kmeans.fit_dictionary(images, block)


def slow_features(dictionary: kmeans.KMeansDictionary, image: np.ndarray) -> np.ndarray:
    """Triangle features, position by position, in float64: (rows, cols, K)."""
    p, s = dictionary.patch_size, dictionary.stride
    rows = (image.shape[0] - p) // s + 1
    cols = (image.shape[1] - p) // s + 1
    out = np.empty((rows, cols, len(dictionary.centroids)))
    for r in range(rows):
        for c in range(cols):
            patch = image[r * s : r * s + p, c * s : c * s + p].astype(np.float64).ravel()
            patch = (patch - patch.mean()) / np.sqrt(patch.var() + kmeans.CONTRAST_EPSILON)
            white = (patch - dictionary.mean) @ dictionary.whitening
            z = np.linalg.norm(white - dictionary.centroids.astype(np.float64), axis=1)
            out[r, c] = np.maximum(0.0, z.mean() - z)
    return out


def slow_pool(features: np.ndarray) -> np.ndarray:
    """Sum over the four quadrants, position by position: (4 * K,)."""
    rows, cols, k = features.shape
    pooled = np.zeros((4, k))
    for r in range(rows):
        for c in range(cols):
            quadrant = 2 * (r >= (rows + 1) // 2) + (c >= (cols + 1) // 2)
            pooled[quadrant] += features[r, c]
    return pooled.ravel()


def test_whitened_patches_have_identity_covariance():
    rng = np.random.default_rng(0)
    images = make_images(40, height=12, width=12)
    patches = kmeans.normalize_patches(kmeans.sample_patches(images, 5000, 3, rng))
    mean, whitening, unwhitening = kmeans.fit_whitening(patches, epsilon=1e-9)
    white = kmeans.whiten(patches, mean, whitening).astype(np.float64)
    covariance = np.cov(white, rowvar=False, bias=True)
    # Normalised patches have zero mean, so the constant direction has no variance: the
    # whitened covariance is the identity on every other direction.
    d = patches.shape[1]
    expected = np.eye(d) - np.full((d, d), 1.0 / d)
    np.testing.assert_allclose(covariance, expected, atol=2e-3)
    np.testing.assert_allclose(whitening @ unwhitening, np.eye(d), atol=1e-8)


def test_normalised_patches_have_zero_mean_and_bounded_contrast():
    rng = np.random.default_rng(1)
    patches = rng.uniform(0, 255, size=(50, 27)).astype(np.float32)
    patches[0] = 7.0  # a flat patch stays finite: zero
    normal = kmeans.normalize_patches(patches.copy())
    np.testing.assert_allclose(normal.mean(axis=1), 0, atol=1e-5)
    assert not normal[0].any()
    expected = (patches[1] - patches[1].mean()) / np.sqrt(patches[1].var() + 10)
    np.testing.assert_allclose(normal[1], expected, rtol=1e-5)


def test_kmeans_objective_never_increases_and_empty_clusters_move():
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 5, size=(8, 4))
    data = (centres[rng.integers(0, 8, 600)] + rng.normal(0, 1, (600, 4))).astype(np.float32)
    data[:20] = data[0]  # duplicates: some centres start on one point and one stays empty
    empties = []
    centroids, objective, counts = kmeans.kmeans(
        data, 12, 15, np.random.default_rng(5), lambda i, obj, empty: empties.append(empty)
    )
    assert np.all(np.diff(objective) <= 1e-6 * objective[:-1]), objective
    assert objective[-1] < objective[0]
    assert counts.sum() == len(data) and centroids.dtype == np.float32
    # Lloyd's fixed point: each centroid is the mean of its rows.
    labels, _ = kmeans.assign(data, centroids)
    exact = ((data[:, None, :].astype(float) - centroids[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(labels, exact)


def test_empty_clusters_are_moved_to_a_data_point():
    data = np.zeros((10, 2), dtype=np.float32)
    data[5:] = 1.0
    empties = []
    centroids, _, counts = kmeans.kmeans(
        data, 3, 2, np.random.default_rng(0), lambda i, obj, empty: empties.append(empty)
    )
    assert empties[0] >= 1  # 3 centres start on 2 distinct points: one at least gets no rows
    assert all((centroids == row).all(axis=1).any() for row in centroids)  # all on data
    assert counts.sum() == 10


def test_triangle_encoding_equals_a_slow_loop_per_position():
    images = make_images(4, height=4, width=4, seed=7)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8), stride=1)
    # 3x3 patches of a 4x4 image: 2x2 positions, one per quadrant, so pooling is the
    # identity and the features are the triangle encoding itself.
    fast = dictionary.encode(images).reshape(4, 4, -1)
    for image, features in zip(images, fast, strict=True):
        expected = slow_features(dictionary, image).reshape(4, -1)
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("size", "stride"), [(11, 1), (12, 2), (9, 3)])
def test_pooling_equals_a_slow_loop_over_quadrants(size, stride):
    images = make_images(3, height=size, width=size, seed=size)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8), stride=stride)
    fast = dictionary.encode(images)
    for image, features in zip(images, fast, strict=True):
        expected = slow_pool(slow_features(dictionary, image))
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-3)


def test_mirror_gives_an_image_and_its_mirror_the_same_features():
    images = make_images(3, height=11, width=11, seed=5)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8), stride=1)
    mirrored = images[:, :, ::-1]
    features = dictionary.encode(images, mirror=True)
    # The sum of the image's and the mirror's pooled triangles, in either order.
    np.testing.assert_array_equal(features, dictionary.encode(mirrored, mirror=True))
    np.testing.assert_allclose(
        features, dictionary.encode(images) + dictionary.encode(mirrored), rtol=1e-6
    )
    # Without it, a mirror is a different image (the test above can fail).
    assert not np.allclose(dictionary.encode(images), dictionary.encode(mirrored))


def test_power_raises_the_pooled_sums():
    images = make_images(3, height=11, width=11, seed=6)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8), stride=1)
    plain = dictionary.encode(images)
    np.testing.assert_allclose(dictionary.encode(images, power=0.5), np.sqrt(plain), rtol=1e-6)
    np.testing.assert_array_equal(dictionary.encode(images, power=1.0), plain)


def test_encoding_options_reach_extraction_but_not_the_dictionary():
    from linbench.features import dictionary_params

    images = make_images(3, height=8, width=8)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8))
    blocks = resolve_blocks([{"block": "kmeans", **TINY, "mirror": True, "power": 0.5}], (8, 8, 3))
    np.testing.assert_array_equal(
        extract(images, blocks, dictionary=dictionary),
        dictionary.encode(images, mirror=True, power=0.5),
    )
    plain = resolve_blocks([{"block": "kmeans", **TINY}], (8, 8, 3))
    assert dictionary_params(blocks) == dictionary_params(plain)
    assert "mirror" not in dictionary_params(blocks) and "seed" in dictionary_params(blocks)


def test_pooling_matrix_splits_odd_sides_with_the_larger_half_first():
    pooling = kmeans.pooling_matrix(3, 5)
    assert pooling.shape == (4, 15)
    np.testing.assert_array_equal(pooling.sum(axis=0), 1)  # every position in one quadrant
    np.testing.assert_array_equal(pooling.sum(axis=1), [2 * 3, 2 * 2, 1 * 3, 1 * 2])


def test_one_seed_gives_bit_identical_dictionaries_and_features(tmp_path):
    train = make_images(20, height=8, width=8)
    first, second = tiny_dictionary(train), tiny_dictionary(train)
    for field in ("mean", "whitening", "centroids", "objective", "counts"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert not np.array_equal(first.centroids, tiny_dictionary(train, seed=4).centroids)
    images = make_images(5, height=8, width=8, seed=9)
    features = first.encode(images)
    np.testing.assert_array_equal(features, second.encode(images))
    # Each image alone gives the same bits: features do not depend on batches or shards.
    np.testing.assert_array_equal(features[2:3], first.encode(images[2:3]))
    first.save(tmp_path / "dictionary.npz")
    loaded = kmeans.KMeansDictionary.load(tmp_path / "dictionary.npz")
    np.testing.assert_array_equal(loaded.encode(images), features)
    assert (loaded.patch_size, loaded.stride) == (3, 2)


def test_kmeans_composes_with_other_blocks():
    images = make_images(3, height=8, width=8)
    dictionary = tiny_dictionary(make_images(20, height=8, width=8))
    blocks = resolve_blocks([{"block": "kmeans", **TINY}, {"block": "color_hist"}], (8, 8, 3))
    assert block_slices(blocks, (8, 8, 3)) == [(0, 24), (24, 34)]
    combined = extract(images, blocks, chunk_size=2, dictionary=dictionary)
    np.testing.assert_array_equal(combined[:, :24], dictionary.encode(images))
    np.testing.assert_array_equal(combined[:, 24:], extract(images, [{"block": "color_hist"}]))
    with pytest.raises(ValueError, match="needs its fitted dictionary"):
        extract(images, blocks)


def test_centroid_patches_undo_the_whitening():
    dictionary = tiny_dictionary(make_images(20, height=8, width=8))
    patches = dictionary.centroid_patches().reshape(len(dictionary.centroids), -1)
    np.testing.assert_allclose(
        (patches - dictionary.mean) @ dictionary.whitening, dictionary.centroids, atol=1e-4
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"centroids": 500, "patches": 100}, r"km\[0\]\.centroids: 500 centroids need at least"),
        ({"patch_size": 40}, r"km\[0\]\.patch_size: patches of 40x40 pixels do not fit"),
        ({"stride": 0}, r"km\[0\]\.stride: 0 is less than the minimum of 1"),
        ({"whitening_epsilon": -0.1}, r"km\[0\]\.whitening_epsilon: -0\.1 is less than or equal"),
        ({"centroids": 0}, r"km\[0\]\.centroids: 0 is less than the minimum of 1"),
        ({"seed": -1}, r"km\[0\]\.seed: -1 is less than the minimum of 0"),
        ({"power": 0}, r"km\[0\]\.power: 0 is less than or equal to the minimum of 0"),
        ({"power": 2}, r"km\[0\]\.power: 2 is greater than the maximum of 1"),
        ({"mirror": "yes"}, r"km\[0\]\.mirror: 'yes' is not of type 'boolean'"),
        ({"colour": True}, r"km\[0\]\.colour: unknown key"),
    ],
)
def test_bad_kmeans_parameters_name_the_key(params, message):
    with pytest.raises(LinbenchError, match=message):
        check_sets({"km": [{"block": "kmeans", **params}]})


def test_a_set_holds_one_kmeans_block():
    with pytest.raises(LinbenchError, match=r"km\[2\]\.block: a feature set holds at most one"):
        check_sets({"km": [{"block": "kmeans"}, {"block": "hog"}, {"block": "kmeans"}]})
    sets = check_sets({"km": [{"block": "kmeans", "centroids": 400}, {"block": "hog"}]})
    assert sets["km"][0]["centroids"] == 400 and sets["km"][0]["patch_size"] == 6


def test_the_learned_overlay_is_a_valid_config():
    from test_config import DEFAULT, SCHEMA, deep_merge

    from linbench.config import validate_config
    from linbench.features import resolve_feature_sets

    overlay = yaml.safe_load((ROOT / "config/learned.yaml").read_text())
    config = validate_config(deep_merge(DEFAULT, overlay), SCHEMA)
    sets = resolve_feature_sets(config["features"]["sets"])
    assert [b["block"] for b in sets["kmeans_hog"]] == ["kmeans", "hog"]
    assert sets["kmeans"][0]["centroids"] == 1600
    assert set(config["grid"]["learned"]["features"]) <= set(sets)
