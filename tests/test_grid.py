"""The study's cells: named sub-grids, each a Cartesian product, shared cells trained once."""

from __future__ import annotations

from linbench.grid import expand_grid, expand_subgrid, subgrids_of

SWEEP = {
    "features": ["hog"],
    "train_size": ["all"],
    "loss": ["svm", "softmax"],
    "regularizer": ["none", "l2"],
    "strength": {"none": [0], "l2": [1e-3, 1e-2]},
    "batch_size": [32, 128],
    "learning_rate": [0.01, 0.1],
    "seed": [0],
}
REGIMES = {
    **SWEEP,
    "train_size": [500, "all"],
    "batch_size": [128],
    "learning_rate": [0.01],
    "seed": [0, 1],
}


def test_a_subgrid_is_a_product_with_strengths_per_regularizer():
    cells = expand_subgrid(SWEEP)
    # 2 losses x (1 + 2 strengths) x 2 batch sizes x 2 rates
    assert len(cells) == 2 * 3 * 2 * 2
    assert {c.strength for c in cells if c.regularizer == "none"} == {0.0}


def test_cells_two_subgrids_share_are_trained_once():
    cells = expand_grid({"sweep": SWEEP, "regimes": REGIMES})
    paths = [c.path for c in cells]
    assert len(paths) == len(set(paths))
    regimes_only = 2 * 3 * 2 * 2 - 2 * 3  # seeds 0-1 x sizes, minus the shared all/seed 0
    assert len(cells) == len(expand_subgrid(SWEEP)) + regimes_only
    shared = subgrids_of({"sweep": SWEEP, "regimes": REGIMES})
    both = [p for p, names in shared.items() if names == ["sweep", "regimes"]]
    assert len(both) == 2 * 3  # n~all, batch 128, lr 0.01, seed 0: in both
    assert all("/n~all/" in p and "/batch~128/lr~0.01/seed~0" in p for p in both)


def test_a_switched_off_subgrid_has_no_cells():
    assert expand_grid({"sweep": SWEEP, "regimes": None}) == expand_subgrid(SWEEP)


def test_duplicate_values_collapse():
    grid = {**SWEEP, "learning_rate": [0.001, 1.0e-3]}
    assert len(expand_grid({"sweep": grid})) == len(expand_subgrid(SWEEP)) // 2


def test_seeds_at_all_keeps_the_first_seeds_for_the_whole_split_only():
    from linbench.grid import expand_subgrid

    subgrid = {
        "features": ["hog"],
        "train_size": [500, "all"],
        "loss": ["svm"],
        "regularizer": ["none"],
        "strength": {"none": [0]},
        "batch_size": [128],
        "learning_rate": [0.01],
        "seed": [0, 1, 2, 3, 4],
        "seeds_at_all": 2,
    }
    cells = expand_subgrid(subgrid)
    assert [c.seed for c in cells if c.train_size == 500] == [0, 1, 2, 3, 4]
    assert [c.seed for c in cells if c.train_size == "all"] == [0, 1]
    assert len(expand_subgrid({**subgrid, "seeds_at_all": None})) == 10
