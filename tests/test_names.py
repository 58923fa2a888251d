"""One source of truth: the schema, the numpy core and the workflow agree with names.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from linbench import names

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
SUBGRID = SCHEMA["$defs"]["subgrid"]["properties"]


def test_schema_losses_and_regularizers_are_the_names():
    assert SUBGRID["loss"]["items"]["enum"] == list(names.LOSSES)
    assert SUBGRID["regularizer"]["items"]["enum"] == list(names.REGULARIZERS)
    assert list(SUBGRID["strength"]["properties"]) == list(names.REGULARIZERS)


def test_schema_strength_ranges_are_the_names():
    """Each regularizer's strength range in the schema is the one names.py states."""
    for name, reg in names.REGULARIZERS.items():
        schema = SUBGRID["strength"]["properties"][name]
        items = schema.get("items") or SCHEMA["$defs"]["strengths"]["items"]
        low = items.get("minimum", items.get("exclusiveMinimum"))
        assert low == reg.low, name
        assert ("minimum" in items) == reg.low_inclusive, name
        assert items.get("maximum", float("inf")) == reg.high, name


def test_schema_training_defaults_are_the_names():
    train = SCHEMA["properties"]["train"]["properties"]
    for key, value in names.TRAIN_DEFAULTS.items():
        assert train[key]["default"] == value, key


def test_schema_feature_blocks_are_the_names():
    sets = SCHEMA["properties"]["features"]["properties"]["sets"]["additionalProperties"]
    assert sets["items"]["properties"]["block"]["enum"] == list(names.FEATURE_BLOCKS)
    for block, defaults in names.FEATURE_BLOCKS.items():
        properties = SCHEMA["$defs"][f"{block}_block"]["properties"]
        for key, value in defaults.items():
            assert properties[key]["default"] == value, (block, key)


def test_cell_path_spells_every_field_and_numbers_in_shortest_form():
    cell = names.Cell("hog", 500, "svm", "l2", 1e-05, 128, 0.01, 2)
    assert cell.path == (
        "results/runs/features~hog/n~500/loss~svm/batch~128/seed~2/reg~l2/strength~1e-05/lr~0.01"
    )
    assert names.Cell("hog", "all", "svm", "none", 0.0, 32, 100.0, 0).wildcards["strength"] == "0"
    assert set(names.CELL_KEYS) == set(cell.wildcards)
    assert all(f"{{{key}}}" in names.CELL_PATTERN for key in names.CELL_KEYS)


def test_names_imports_nothing_but_the_standard_library():
    code = (
        "import sys; sys.path.insert(0, 'workflow'); import linbench.names; "
        "print(sorted(m for m in ('numpy', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
