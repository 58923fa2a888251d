"""Bundles of grid cells: how they are formed, and the folders one bundle job writes."""

import dataclasses
import json

import numpy as np
import pytest

from linbench import cell as cell_module
from linbench.cell import (
    EVAL_EVERY_IMAGES,
    HISTORY_ROWS,
    HISTORY_TRAIN_IMAGES,
    HISTORY_VAL_IMAGES,
    MIN_EVALUATIONS,
    evaluation_interval,
    run_bundle,
)
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
        # 300 images, 3 epochs: evaluated after every epoch (MIN_EVALUATIONS)
        assert len((folder / "history.csv").read_text().splitlines()) == 1 + 3
        assert m["best_epoch"] is None  # no early stopping
    assert not list((tmp_path / "out").glob("**/.*.tmp*"))


def test_a_small_training_set_gets_its_update_budget_and_a_short_history(features, tmp_path):
    """n~100: 128,000 images seen take 1,280 epochs, of which about HISTORY_ROWS are
    evaluated; the cell trains on a nested subset of 100 images."""
    cells = [
        dataclasses.replace(cell, train_size=100)
        for cell in make_bundles(expand_subgrid(GRID), 12)[0].cells[:2]
    ]
    settings = {**TRAIN_DEFAULTS, "epochs": 3}
    metrics = run_bundle(cells, settings, features, tmp_path / "out", subset_seed=0)
    for cell, m in zip(cells, metrics, strict=True):
        assert m["train_size"] == 100
        assert m["epochs"] == training_epochs(100, 3, TRAIN_DEFAULTS["min_images_seen"]) == 1280
        rows = (tmp_path / "out" / cell.path / "history.csv").read_text().splitlines()[1:]
        assert len(rows) <= HISTORY_ROWS + 1
        if m["status"] != "diverged":
            assert int(rows[-1].split(",")[0]) == m["epochs_run"] == 1280


@pytest.mark.parametrize(
    ("train_size", "epochs", "interval"),
    [
        (45000, 20, 1),
        (10000, 26, 2),
        (2000, 128, 8),
        (500, 512, 30),
        (500, 256, 25),
        (45000, 400, 10),
    ],
)
def test_evaluation_interval(train_size, epochs, interval):
    """The full split every epoch; small sets once per EVAL_EVERY_IMAGES images but at least
    about MIN_EVALUATIONS times (early stopping's candidates); never more than about
    HISTORY_ROWS evaluations."""
    assert evaluation_interval(train_size, epochs) == interval


@pytest.mark.parametrize("train_size", [100, 500, 2000, 10000, 45000])
def test_evaluation_scores_few_images_for_the_images_trained(train_size):
    """What keeps the evaluation near 5 % of the training (benchmarks/bench_limit.py): the
    images the evaluations score (the validation and training history subsets each time; the
    whole validation and training sets once, at the end) over the images trained stays below
    a quarter (scoring an image costs a quarter to a third of training on one), while every run
    gets at least about MIN_EVALUATIONS evaluations for early stopping to choose from."""
    epochs = training_epochs(train_size, 20, TRAIN_DEFAULTS["min_images_seen"])
    interval = evaluation_interval(train_size, epochs)
    evaluations = len([e for e in range(1, epochs + 1) if e % interval == 0 or e == epochs])
    per_evaluation = HISTORY_VAL_IMAGES + min(train_size, HISTORY_TRAIN_IMAGES)
    scored = evaluations * per_evaluation + 5000 + train_size
    assert scored / (epochs * train_size) < 0.25
    assert evaluations >= min(MIN_EVALUATIONS, epochs)
    assert interval * train_size >= min(EVAL_EVERY_IMAGES, epochs * train_size / HISTORY_ROWS) or (
        evaluations <= MIN_EVALUATIONS + 1
    )


def test_bundle_size_1_gives_the_numbers_of_a_big_bundle(features, tmp_path):
    cells = make_bundles(expand_subgrid(GRID), 12)[0].cells
    settings = {**TRAIN_DEFAULTS, "epochs": 2, "min_images_seen": 0}
    together = run_bundle(cells, settings, features, tmp_path / "a")
    alone = [run_bundle([cell], settings, features, tmp_path / "b")[0] for cell in cells]
    for a, b in zip(together, alone, strict=True):
        assert a["status"] == b["status"]
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=0.002)


def test_an_early_stopping_cell_keeps_its_best_validation_epoch(features, tmp_path, monkeypatch):
    """regularizer early_stopping: no penalty, the weights of the best validation epoch,
    whose epoch metrics.json records; the test accuracy is that of those weights."""
    monkeypatch.setattr(cell_module, "EVAL_EVERY_IMAGES", 1)  # every epoch evaluated
    grid = {**GRID, "loss": ["svm"], "batch_size": [16], "learning_rate": [1.0], "seed": [0]}
    grid = {**grid, "regularizer": ["none", "early_stopping"]}
    grid["strength"] = {"none": [0], "early_stopping": [0]}
    cells = expand_subgrid(grid)
    settings = {**TRAIN_DEFAULTS, "epochs": 6, "min_images_seen": 0}
    plain, stopped = run_bundle(cells, settings, features, tmp_path / "out")
    assert plain["best_epoch"] is None and 1 <= stopped["best_epoch"] <= 6
    history = (tmp_path / "out" / cells[1].path / "history.csv").read_text().splitlines()[1:]
    val = [float(row.split(",")[3]) for row in history]
    assert stopped["best_epoch"] == 1 + val.index(max(val)) < 6  # the first of the best
    assert stopped["val_acc"] == pytest.approx(max(val))
    assert stopped["epochs_run"] == plain["epochs_run"] == 6  # the run itself is whole
    weights = np.load(tmp_path / "out" / cells[1].path / "weights.npz")
    X_test, y_test = np.load(features / "test_X.npy"), np.load(features / "test_y.npy")
    pred = np.argmax(X_test @ weights["W"] + weights["b"], axis=1)
    assert stopped["test_acc"] == pytest.approx(np.mean(pred == y_test))


def test_cell_is_the_names_cell():
    assert Cell is __import__("linbench.grid").grid.Cell


def test_a_cell_folder_names_its_cell():
    for cell in expand_subgrid(GRID):
        assert parse_cell_path(cell.path) == cell
        assert parse_cell_path(f"/some/where/{cell.path}/") == cell
    with pytest.raises(ValueError, match="not a cell folder"):
        parse_cell_path("results/runs/features~hog/loss~svm")


def test_each_seed_draws_its_own_nested_training_subset(features, tmp_path, monkeypatch):
    """Seeds 0 and 1 of a 100-image cell train on different stratified subsets; within a seed
    the 50-image subset lies inside the 100-image one; metrics.json says how each was drawn."""
    import linbench.cell as cell_module

    seen: dict[tuple[int, int], set[int]] = {}
    real = cell_module.subset_indices

    def spy(labels, train_size, seed, key="train_size"):
        rows = real(labels, train_size, seed, key)
        seen[(int(train_size), seed)] = set(rows.tolist())
        return rows

    monkeypatch.setattr(cell_module, "subset_indices", spy)
    first = make_bundles(expand_subgrid(GRID), 12)[0].cells[:1]
    settings = {**TRAIN_DEFAULTS, "epochs": 1, "min_images_seen": 0}
    drawn = {}
    for seed in (0, 1):
        for size in (50, 100):
            cell = dataclasses.replace(first[0], train_size=size, seed=seed)
            (m,) = run_bundle([cell], settings, features, tmp_path / "out", subset_seed=7)
            drawn[(size, seed)] = m["subset_seed"]
    assert drawn[(50, 0)] == drawn[(100, 0)] == 7  # seed 0 keeps data.seed
    assert drawn[(50, 1)] == drawn[(100, 1)] != 7
    small0, large0 = seen[(50, 7)], seen[(100, 7)]
    large1 = seen[(100, drawn[(100, 1)])]
    assert small0 <= large0 and seen[(50, drawn[(50, 1)])] <= large1
    assert large0 != large1
    (m,) = run_bundle(first, settings, features, tmp_path / "all")
    assert m["subset_seed"] is None  # all images: nothing drawn
