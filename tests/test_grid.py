"""The study's cells: named sub-grids, each a Cartesian product, shared cells trained once."""

from __future__ import annotations

import pytest

from linbench.grid import (
    Bundle,
    expand_grid,
    expand_subgrid,
    make_bundles,
    subgrids_of,
    training_rules,
)

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
    assert all("/n~all/" in p and "/batch~128/seed~0/" in p for p in both)
    assert all(p.endswith("/lr~0.01") for p in both)


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


# ----------------------------------------------------------------------- training rules


def test_bundles_that_train_the_same_models_share_a_rule_named_after_their_subgrids():
    grid = {"sweep": SWEEP, "regimes": REGIMES}
    bundles = make_bundles(expand_grid(grid), 48)
    rules = training_rules(bundles, grid)
    by_name = {rule.name: rule for rule in rules}
    # Every sweep group trains the same 6 models (one of them, n all, batch 128, seed 0,
    # also for the regimes); the regimes-only groups (size 500 or seed 1) train 3.
    assert list(by_name) == ["train_sweep_regimes", "train_regimes"]
    assert sorted(b.path for r in rules for b in r.bundles) == sorted(b.path for b in bundles)
    for rule in rules:
        assert all(b.models == rule.models for b in rule.bundles)
        assert rule.bundle(rule.bundles[-1].group) is rule.bundles[-1]
    assert len(by_name["train_sweep_regimes"].bundles) == 4  # 2 losses x 2 batch sizes
    assert by_name["train_regimes"].models == (
        "reg~none/strength~0/lr~0.01",
        "reg~l2/strength~0.001/lr~0.01",
        "reg~l2/strength~0.01/lr~0.01",
    )
    # No two rules write one file: a group's bundles train different models.
    outputs = [(b.group, m) for r in rules for b in r.bundles for m in r.models]
    assert len(outputs) == len(set(outputs)) == len(expand_grid(grid))


def test_later_parts_and_clashing_names_get_a_suffix():
    grid = {"sweep": SWEEP}
    bundles = make_bundles(expand_grid(grid), 4)  # 6 cells per group: 3 per rate, a part per rate
    names = [rule.name for rule in training_rules(bundles, grid)]
    assert names == ["train_sweep", "train_sweep_part2"]
    # Groups that differ in their models get their own rule, even from one sub-grid.
    uneven = [*bundles[:1], Bundle(bundles[0].cells[:2], 1)]
    assert [r.name for r in training_rules(uneven, grid)] == ["train_sweep", "train_sweep_2"]


def test_a_bundle_the_rule_does_not_hold_is_named():
    grid = {"sweep": SWEEP}
    rule = training_rules(make_bundles(expand_grid(grid), 48), grid)[0]
    with pytest.raises(KeyError, match="train_sweep has no bundle in features~nope"):
        rule.bundle("features~nope")
