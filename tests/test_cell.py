"""Bundles of grid cells: how they are formed, and the folders one bundle job writes."""

import dataclasses
import json

import numpy as np
import pytest

from linbench.cell import HISTORY_ROWS, HISTORY_TRAIN_IMAGES, run_bundle
from linbench.grid import check_bundle, expand_subgrid, make_bundles, parse_cell_path
from linbench.names import BUNDLE_KEYS, CELL_FILES, CELL_KEYS, MODEL_KEYS, TRAIN_DEFAULTS, Cell
from linbench.subsets import training_epochs

GRID = {  # one sub-grid
    "features": ["hog"],
    "train_size": ["all"],
    "loss": ["svm", "softmax"],
    "regularizer": ["none", "l2", "dropout"],
    "strength": {"none": [0], "l2": [1e-3, 1e-2], "dropout": [0.5]},
    "batch_size": [16, 64],
    "learning_rate": [0.01, 0.1, 1.0],
    "seed": [0, 1],
}


def test_bundle_keys_are_every_cell_field_but_the_per_model_ones():
    assert set(BUNDLE_KEYS) | set(MODEL_KEYS) == set(CELL_KEYS)
    assert not set(BUNDLE_KEYS) & set(MODEL_KEYS)


@pytest.mark.parametrize("size", [1, 3, 4, 5, 12, 100])
def test_bundles_share_their_keys_cover_every_cell_once_and_respect_the_size(size):
    cells = expand_subgrid(GRID)
    bundles = make_bundles(cells, size)
    assert sorted(c.path for b in bundles for c in b.cells) == sorted(c.path for c in cells)
    for bundle in bundles:
        assert 1 <= len(bundle.cells) <= size
        check_bundle(bundle.cells)  # raises if they did not share every bundle key
    # 2 losses x 2 batch sizes x 2 seeds share nothing: at least 8 bundles, exactly 8 if
    # each group (4 models x 3 rates = 12 cells) fits
    assert len(bundles) >= 8 and (len(bundles) == 8) == (size >= 12)
    assert len({b.path for b in bundles}) == len(bundles)
    assert make_bundles(cells, size) == bundles  # deterministic


def test_a_learning_rates_cells_stay_together_where_they_fit():
    bundles = make_bundles(expand_subgrid(GRID), 8)  # 4 models per rate: two rates per bundle
    for bundle in bundles:
        rates = [c.learning_rate for c in bundle.cells]
        assert len(rates) in (4, 8) and all(rates.count(r) == 4 for r in rates)


def test_appending_a_learning_rate_never_moves_a_cell():
    before = make_bundles(expand_subgrid(GRID), 12)
    after = make_bundles(expand_subgrid({**GRID, "learning_rate": [0.01, 0.1, 1.0, 3.0]}), 12)
    new = [b for b in after if b not in before]
    assert set(before) <= set(after)  # every old bundle unchanged: nothing of it reruns
    assert all(c.learning_rate == 3.0 for b in new for c in b.cells) and len(new) == 8


def test_a_bundle_of_mixed_cells_is_refused_naming_the_key():
    cells = expand_subgrid(GRID)
    with pytest.raises(ValueError, match="must share 'batch_size', got \\[16, 64\\]"):
        check_bundle([c for c in cells if c.loss == "svm" and c.seed == 0])
    with pytest.raises(ValueError, match="share 'loss'"):
        run_bundle(cells[:1] + cells[-1:], TRAIN_DEFAULTS, "/nonexistent")


def test_bundle_size_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="bundle_size must be an integer >= 1, got 0"):
        make_bundles(expand_subgrid(GRID), 0)


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 20))
    for split, n in (("train", 300), ("val", 100), ("test", 120)):
        y = np.arange(n) % 10
        np.save(tmp_path / f"{split}_X.npy", (centres[y] + rng.normal(size=(n, 20))).astype("f4"))
        np.save(tmp_path / f"{split}_y.npy", y)
    return tmp_path


def test_one_bundle_writes_every_cells_folder(features, tmp_path):
    bundle = make_bundles(expand_subgrid(GRID), 12)[0]
    settings = {
        **TRAIN_DEFAULTS,
        "epochs": 3,
        "min_images_seen": 0,
        "threads": 1,
        "bundle_size": 12,
    }
    metrics = run_bundle(bundle.cells, settings, features, tmp_path / "out")
    assert len(metrics) == len(bundle.cells) == 12
    for cell, m in zip(bundle.cells, metrics, strict=True):
        folder = tmp_path / "out" / cell.path
        assert sorted(p.name for p in folder.iterdir()) == sorted(CELL_FILES)
        assert json.loads((folder / "metrics.json").read_text()) == m
        # train_size: the images used (n~all in the folder name: the whole split, 300 here)
        keys = [k for k in CELL_KEYS if k != "train_size"]
        assert {k: m[k] for k in keys} == {k: getattr(cell, k) for k in keys}
        assert m["status"] in ("ok", "diverged", "collapsed", "unstable")
        assert m["diverged"] == (m["status"] == "diverged")
        assert (m["train_size"], m["val_images"], m["test_images"]) == (300, 100, 120)
        assert m["history_train_images"] == min(300, HISTORY_TRAIN_IMAGES)
        pred = np.load(folder / "test_predictions.npy")
        assert pred.dtype == np.uint8 and pred.shape == (120,)
        y_test = np.load(features / "test_y.npy")
        assert m["test_acc"] == pytest.approx(np.mean(pred == y_test))
        assert np.array_equal(
            np.bincount(y_test * 10 + pred, minlength=100).reshape(10, 10), m["test_confusion"]
        )
        assert len((folder / "history.csv").read_text().splitlines()) == 1 + m["epochs_run"]
    assert not list((tmp_path / "out").glob("**/.*.tmp*"))


def test_a_small_training_set_gets_its_update_budget_and_a_short_history(features, tmp_path):
    """n~100: 256,000 images seen take 2,560 epochs, of which about HISTORY_ROWS are
    evaluated; the cell trains on a nested subset of 100 images."""
    cells = [
        dataclasses.replace(cell, train_size=100)
        for cell in make_bundles(expand_subgrid(GRID), 12)[0].cells[:2]
    ]
    settings = {**TRAIN_DEFAULTS, "epochs": 3}
    metrics = run_bundle(cells, settings, features, tmp_path / "out", subset_seed=0)
    for cell, m in zip(cells, metrics, strict=True):
        assert m["train_size"] == 100
        assert m["epochs"] == training_epochs(100, 3, TRAIN_DEFAULTS["min_images_seen"]) == 2560
        rows = (tmp_path / "out" / cell.path / "history.csv").read_text().splitlines()[1:]
        assert len(rows) <= HISTORY_ROWS + 1
        if m["status"] != "diverged":
            assert int(rows[-1].split(",")[0]) == m["epochs_run"] == 2560


def test_bundle_size_1_gives_the_numbers_of_a_big_bundle(features, tmp_path):
    cells = make_bundles(expand_subgrid(GRID), 12)[0].cells
    settings = {**TRAIN_DEFAULTS, "epochs": 2, "min_images_seen": 0}
    together = run_bundle(cells, settings, features, tmp_path / "a")
    alone = [run_bundle([cell], settings, features, tmp_path / "b")[0] for cell in cells]
    for a, b in zip(together, alone, strict=True):
        assert a["status"] == b["status"]
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=0.002)


def test_cell_is_the_names_cell():
    assert Cell is __import__("linbench.grid").grid.Cell


def test_a_cell_folder_names_its_cell():
    for cell in expand_subgrid(GRID):
        assert parse_cell_path(cell.path) == cell
        assert parse_cell_path(f"/some/where/{cell.path}/") == cell
    with pytest.raises(ValueError, match="not a cell folder"):
        parse_cell_path("results/runs/features~hog/loss~svm")
