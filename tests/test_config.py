"""Config validation: every bad value stops the run with one message naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from linbench.config import validate_config
from linbench.errors import LinbenchError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def check(**overrides):
    config = copy.deepcopy(DEFAULT)
    for dotted, value in overrides.items():
        *parents, last = dotted.split("__")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return validate_config(config, SCHEMA)


def test_default_config_is_valid_and_gets_defaults():
    config = check(train={"epochs": 3})
    assert config["train"]["margin"] == 1.0 and config["train"]["epochs"] == 3


def test_quick_config_is_valid():
    quick = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    config = validate_config(deep_merge(DEFAULT, quick), SCHEMA)
    sweep = config["grid"]["sweep"]
    assert sweep["strength"]["l1"] == [1e-3]
    assert sweep["strength"]["max_norm"] == DEFAULT["grid"]["sweep"]["strength"]["max_norm"]


def deep_merge(base: dict, overlay: dict) -> dict:
    """Snakemake's rule: mappings merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def test_yaml_1_1_exponents_are_numbers():
    config = check(grid__sweep__learning_rate=["1e-4", 0.1])
    assert config["grid"]["sweep"]["learning_rate"] == [1e-4, 0.1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"grid__sweep__learning_rate": [-0.1]},
            r"grid\.sweep\.learning_rate\[0\]: -0\.1 is less than or equal",
        ),
        (
            {"grid__sweep__batch_size": [0]},
            r"grid\.sweep\.batch_size\[0\]: 0 is not images per step \(at least 1\), or 'all'",
        ),
        ({"grid__sweep__regularizer": ["l3"]}, r"grid\.sweep\.regularizer\[0\]: 'l3' is not one"),
        (
            {"grid__regimes__loss": ["hinge"]},
            r"grid\.regimes\.loss\[0\]: 'hinge' is not one of: svm, softmax",
        ),
        (
            {"grid__regimes__train_size": [0]},
            r"grid\.regimes\.train_size\[0\]: 0 is not a number of training images",
        ),
        (
            {"grid__regimes__train_size": [-5]},
            r"grid\.regimes\.train_size\[0\]: -5 is not a number of training images",
        ),
        (
            {"grid__regimes__train_size": [500, 46000]},
            r"grid\.regimes\.train_size\[1\]: 46000 is larger than the 45000 images",
        ),
        ({"grid__regimes__features": ["sift"]}, r"grid\.regimes\.features: 'sift' is not a"),
        (
            {"grid": {"sweep": None, "optimizer": None, "regimes": None}},
            r"grid: every sub-grid is switched off",
        ),
        (
            {"grid__regularizer": ["l2"]},
            r"grid\.regularizer: the grid is a set of named sub-grids "
            r"\(sweep, optimizer, regimes\)",
        ),
        ({"grid__regimes__seed": [0]}, r"grid\.regimes\.seed: .*at least 2 seeds, got 1"),
        (
            {"grid__regimes__seeds_at_all": 1},
            r"grid\.regimes\.seeds_at_all: .*at least 2 seeds, got 1",
        ),
        (
            {"grid__regimes__learning_rate": []},
            r"grid\.regimes\.learning_rate: \[\] should be non-empty",
        ),
        (
            {"grid__regimes__learning_rate": [0.01, 0]},
            r"grid\.regimes\.learning_rate\[1\]: 0 is less",
        ),
        ({"grid__regimes__strength__l3": [0.1]}, r"grid\.regimes\.strength\.l3: unknown key"),
        (
            {"grid__regimes__train_size": [500, 45000]},
            r"grid\.regimes\.train_size\[1\]: 45000 is the whole training split; write 'all'",
        ),
        (
            {"grid__regimes__strength__early_stopping": [1]},
            r"grid\.regimes\.strength\.early_stopping\[0\]",
        ),
        ({"train__divergence_factor": 1000}, r"train\.divergence_factor: removed: .*status"),
        (
            {"train__lr_decay_every": 8},
            r"train\.lr_decay_every: replaced by train\.lr_decay_every_images: .* 360000",
        ),
        ({"data__md5": "abc"}, r"data\.md5: 'abc' is not an MD5 checksum"),
        ({"data__colour": 1}, r"data\.colour: unknown key"),
        ({"epochz": 3}, r"epochz: unknown key"),
        (
            {"grid__sweep__strength": {"l2": [1e-3]}},
            r"grid\.sweep\.strength\.none: required key is missing",
        ),
        ({"grid__sweep__features": ["sift"]}, r"grid\.sweep\.features: 'sift' is not a feature"),
        ({"grid__sweep__strength__dropout": [1.5]}, r"grid\.sweep\.strength\.dropout\[0\]"),
        ({"grid__sweep__strength__none": [0.1]}, r"grid\.sweep\.strength\.none\[0\]"),
        ({"train__epochs": 0}, r"train\.epochs: 0 is less than the minimum of 1"),
        ({"grid__optimizer__batch_size": [32, 0]}, r"grid\.optimizer\.batch_size\[1\]: 0 is not"),
        ({"grid__optimizer__batch_size": ["half"]}, r"grid\.optimizer\.batch_size\[0\]"),
        ({"grid__optimizer__learning_rate": [-0.1]}, r"grid\.optimizer\.learning_rate\[0\]"),
        ({"optimizer__targets": [0.1, 1.0]}, r"optimizer\.targets\[1\]: 1\.0 is greater"),
        ({"optimizer__targets": [0]}, r"optimizer\.targets\[0\]: 0 is less"),
        ({"optimizer__subgrid": "opt"}, r"optimizer\.subgrid: 'opt' is not a sub-grid"),
        (
            {"features__sets": {"hog": [{"block": "hog", "orientations": 0}]}},
            r"features\.sets\.hog\[0\]\.orientations",
        ),
        ({"features__sets": {"hog": [{"block": "sift"}]}}, r"features\.sets\.hog\[0\]\.block"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(LinbenchError, match=message):
        check(**overrides)


def test_command_line_strings_become_numbers_only_where_numbers_are_expected():
    # `--config 'grid={batch_size: [64]}'` delivers nested values as strings.
    config = check(
        grid__sweep__batch_size=["64", "128"],
        grid__sweep__learning_rate=["0.1", "1"],
        grid__regimes__train_size=["500", "all"],
        data__train_subset="null",
        data__md5="12345678901234567890123456789012",
    )
    assert config["grid"]["sweep"]["batch_size"] == [64, 128]
    mixed = check(grid__optimizer__batch_size=["32", "all"])  # gradient descent beside SGD
    assert mixed["grid"]["optimizer"]["batch_size"] == [32, "all"]
    assert config["grid"]["sweep"]["learning_rate"] == [0.1, 1]
    assert config["grid"]["regimes"]["train_size"] == [500, "all"]
    assert config["data"]["train_subset"] is None
    assert config["data"]["md5"] == "12345678901234567890123456789012"
    with pytest.raises(
        LinbenchError, match=r"grid\.sweep\.batch_size\[0\]: '6x4' is not images per step"
    ):
        check(grid__sweep__batch_size=["6x4"])


def test_a_subgrid_can_be_switched_off_and_gets_its_defaults():
    regimes = {k: v for k, v in DEFAULT["grid"]["regimes"].items() if k != "train_size"}
    config = check(grid={"sweep": None, "regimes": regimes})
    assert config["grid"]["sweep"] is None
    assert config["grid"]["regimes"]["train_size"] == ["all"]


def test_train_size_is_checked_against_the_subset():
    with pytest.raises(LinbenchError, match=r"larger than the 1000 images"):
        check(data__train_subset=1000)
