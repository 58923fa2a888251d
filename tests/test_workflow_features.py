"""A learned (kmeans + hog) feature set built end to end by the workflow on a tiny archive.

One module-scoped build is shared by the tests, which then plan changes on top of it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_cifar_archive
from workflow_utils import snakemake

from linbench.features import extract, resolve_blocks
from linbench.kmeans import KMeansDictionary, fit_dictionary
from linbench.names import SPLITS

pytestmark = pytest.mark.workflow

KMEANS = {"block": "kmeans", "centroids": 8, "patches": 500, "iterations": 3, "seed": 1}
FEATURES = "results/features/km"
TARGETS = [
    *(f"{FEATURES}/{split}_X.npy" for split in ("train", "val", "test")),
    "results/reports/figures/centroids_km.png",
]


def make_config(archive: str, md5: str, kmeans: dict = KMEANS, **grid) -> dict:
    return {
        "data": {"url": archive, "md5": md5, "val_size": 40},
        "features": {"shards": 2, "sets": {"km": [kmeans, {"block": "hog"}]}},
        "grid": {
            "sweep": {
                "features": ["km"],
                "loss": ["softmax"],
                "regularizer": ["none"],
                "strength": {"none": [0]},
                "batch_size": [16],
                "learning_rate": [0.01],
                "seed": [0],
                **grid,
            },
            "optimizer": None,
            "regimes": None,
        },
        "train": {"epochs": 2},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The km feature set and its centroid figure, built from a tiny local archive."""
    src = tmp_path_factory.mktemp("archive")
    md5 = make_cifar_archive(src / "cifar.tar.gz", n_train_per_class=16, n_test_per_class=6)
    workdir = tmp_path_factory.mktemp("features")
    config = make_config(str(src / "cifar.tar.gz"), md5)
    run = snakemake(workdir, "--cores", "2", *TARGETS, config=config)
    assert run.returncode == 0, run.output[-3000:]
    return workdir, config


def test_the_learned_set_has_kmeans_then_hog_columns(built):
    workdir, _ = built
    info = json.loads((workdir / FEATURES / "info.json").read_text())
    assert [(b["block"], b["start"], b["stop"]) for b in info["blocks"]] == [
        ("kmeans", 0, 32),
        ("hog", 32, 32 + 324),
    ]
    for split, n in (("train", 120), ("val", 40), ("test", 60)):
        X = np.load(workdir / FEATURES / f"{split}_X.npy")
        assert X.shape == (n, 356) and X.dtype == np.float32 and np.isfinite(X).all()
    assert (workdir / "results/reports/figures/centroids_km.png").stat().st_size > 0
    log = (workdir / "logs/features/km/dictionary.log").read_text()
    assert "k-means iteration 3/3" in log and "s left" in log


def test_only_training_images_reach_the_dictionary_and_the_statistics(built):
    workdir, _ = built
    data = workdir / "results/data"
    train = np.load(data / "train_images.npy")
    blocks = resolve_blocks([KMEANS, {"block": "hog"}])
    # The workflow's dictionary is the one fitted on the train split alone (up to the
    # rounding of a job's two BLAS threads against this process's one) ...
    ours = KMeansDictionary.load(workdir / FEATURES / "dictionary.npz")
    expected = fit_dictionary(train, blocks[0])
    for field in ("mean", "whitening", "centroids", "objective"):
        np.testing.assert_allclose(getattr(ours, field), getattr(expected, field), atol=1e-6)
    everything = np.concatenate([train, *(np.load(data / f"{s}_images.npy") for s in SPLITS[1:])])
    assert not np.allclose(fit_dictionary(everything, blocks[0]).mean, ours.mean, rtol=1e-3)
    # ... and the standardisation statistics are the train split's.
    raw_train = extract(train, blocks, dictionary=ours)
    stats = np.load(workdir / FEATURES / "stats.npz")
    np.testing.assert_allclose(stats["mean"], raw_train.mean(axis=0, dtype=np.float64), rtol=1e-6)
    train_X = np.load(workdir / FEATURES / "train_X.npy")
    np.testing.assert_allclose(train_X[:, :32].mean(axis=0), 0, atol=1e-5)
    val_X = np.load(workdir / FEATURES / "val_X.npy")
    assert np.abs(val_X[:, :32].mean(axis=0)).max() > 1e-3  # val is scaled, not re-centred


def test_a_new_grid_reuses_the_dictionary_and_the_features(built):
    workdir, config = built
    changed = make_config(config["data"]["url"], config["data"]["md5"], learning_rate=[0.1])
    run = snakemake(workdir, "--cores", "1", "--dry-run", *TARGETS, config=changed)
    assert run.returncode == 0, run.output[-3000:]
    assert "fit_dictionary" not in run.output and "extract_features" not in run.output
    # A changed kmeans parameter refits the dictionary, and everything after it.
    refit = make_config(config["data"]["url"], config["data"]["md5"], {**KMEANS, "iterations": 4})
    run = snakemake(workdir, "--cores", "1", "--dry-run", *TARGETS, config=refit)
    assert run.returncode == 0, run.output[-3000:]
    assert "fit_dictionary" in run.output and "extract_features" in run.output
    # An encoding option re-extracts the features with the same dictionary.
    mirrored = {**KMEANS, "mirror": True, "power": 0.5}
    reencode = make_config(config["data"]["url"], config["data"]["md5"], mirrored)
    run = snakemake(workdir, "--cores", "1", "--dry-run", *TARGETS, config=reencode)
    assert run.returncode == 0, run.output[-3000:]
    assert "fit_dictionary" not in run.output and "extract_features" in run.output


def test_bad_kmeans_parameters_stop_before_any_job(built, tmp_path):
    _, config = built
    bad = make_config(
        config["data"]["url"], config["data"]["md5"], {**KMEANS, "centroids": 900, "patches": 500}
    )
    run = snakemake(tmp_path, "--cores", "1", "--dry-run", config=bad)
    assert run.returncode != 0
    assert "features.sets.km[0].centroids: 900 centroids need at least" in run.output
    assert "Traceback" not in run.output
