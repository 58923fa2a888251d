"""Validate the merged Snakemake config against the schema, with one clear message.

jsonschema reports errors as deep paths into the document; users think in config keys
(``grid.learning_rate[0]``), so every message names the key in that form.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import LinbenchError
from .names import ALL_IMAGES, ANSWER_SUBGRID, CELL_KEYS, CIFAR_TRAIN_IMAGES

# Values can reach us as strings where the schema wants numbers: `--config` parses
# nested values with YAML's BaseLoader (all strings), and YAML 1.1 reads `1e-4` (no dot)
# as a string. Such strings are converted where, and only where, the schema asks for a
# number or null; anything else is left for the validator to report.
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.I)
_NULLS = {"null", "~", "none", ""}


def _convert(value: str, types: list[str]) -> tuple[bool, Any]:
    text = value.strip()
    if "integer" in types and _INT_RE.match(text):
        return True, int(text)
    if "number" in types and _FLOAT_RE.match(text):
        number = float(text)
        return True, int(number) if _INT_RE.match(text) else number
    if "null" in types and text.lower() in _NULLS:
        return True, None
    return False, value


def _coerce_strings(config: dict[str, Any], validator: jsonschema.protocols.Validator) -> None:
    """Replace, in place, strings that the schema wants as numbers or null.

    A value the schema allows in several forms (``anyOf``: a count or ``all``) reports its
    type errors inside the ``anyOf`` error; they are looked at there too.
    """
    for _ in range(1000):  # each pass fixes every coercible error it sees
        fixed = False
        for error in validator.iter_errors(config):
            if not isinstance(error.instance, str) or not error.absolute_path:
                continue
            if error.validator in ("anyOf", "oneOf"):
                wanted = [e.validator_value for e in error.context if e.validator == "type"]
            elif error.validator == "type":
                wanted = [error.validator_value]
            else:
                continue
            types = [t for v in wanted for t in ([v] if isinstance(v, str) else v)]
            ok, value = _convert(error.instance, types)
            if ok:
                *parents, last = error.absolute_path
                node = config
                for part in parents:
                    node = node[part]
                node[last] = value
                fixed = True
        if not fixed:
            return


def key_path(parts: Iterable[Any]) -> str:
    """Render a jsonschema path as a config key: ``grid.strength.l2[0]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<config>"


def _describe(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {}))) or "none"
        where = key_path([*path, extra[0]]) if extra else key_path(path)
        return f"{where}: unknown key (known keys here: {known})"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{key_path([*path, missing])}: required key is missing"
    if error.validator == "enum":
        allowed = ", ".join("null" if v is None else str(v) for v in error.validator_value)
        return f"{key_path(path)}: {error.instance!r} is not one of: {allowed}"
    if error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        return f"{key_path(path)}: {error.instance!r} is not {error.schema['description']}"
    if error.validator == "pattern" and path and path[-1] == "md5":
        return f"{key_path(path)}: {error.instance!r} is not an MD5 checksum (32 hex digits)"
    return f"{key_path(path)}: {error.message}"


def _fill_defaults(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert schema defaults for missing keys of objects (recursively, through ``$ref``s
    and into the values of open mappings such as the named sub-grids)."""
    if not isinstance(instance, dict):
        return
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


# Keys that older versions of linbench read, and what replaced them.
REMOVED_KEYS = {
    ("train", "divergence_factor"): (
        "removed: a run no longer stops when its loss grows; it stops only when a number "
        "overflows, and every run gets a status (ok, diverged, collapsed, unstable) decided "
        "from the whole run (see config/README.md, 'Run outcomes'); delete the key"
    ),
    ("train", "lr_decay_every"): (
        "replaced by train.lr_decay_every_images: step decay counts training images seen, "
        "not epochs (k epochs of the full split of N images: k * N, e.g. 8 x 45000 = 360000)"
    ),
}


def _check_removed_keys(config: dict[str, Any]) -> None:
    """One line for a key that an older version read, saying what replaced it."""
    for (section, key), message in REMOVED_KEYS.items():
        if isinstance(config.get(section), dict) and key in config[section]:
            raise LinbenchError(f"invalid config: {section}.{key}: {message}")
    grid = config.get("grid")
    if isinstance(grid, dict):
        axes = [key for key in grid if key in (*CELL_KEYS, "strength")]
        if axes:
            names = ", ".join(k for k in grid if k not in axes) or "sweep"
            first = next(k for k in grid if k not in axes) if len(axes) < len(grid) else "sweep"
            raise LinbenchError(
                f"invalid config: grid.{axes[0]}: the grid is a set of named sub-grids "
                f"({names}), each with its own {axes[0]}; narrow one with "
                f"--config 'grid={{{first}: {{{axes[0]}: [...]}}}}'"
            )


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Return the config with numbers coerced and defaults filled, or raise.

    Raises:
        LinbenchError: naming the first offending key, e.g.
            ``grid.batch_size[0]: 0 is less than the minimum of 1``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = copy.deepcopy(config)
    _check_removed_keys(config)
    validator = jsonschema.Draft202012Validator(schema)
    _coerce_strings(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        # `if/then` branches report on the whole block and on the key; the deepest error
        # names the key the user has to change.
        best = max(errors, key=lambda e: len(e.absolute_path))
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise LinbenchError(f"invalid config: {_describe(best)}{more}")
    _fill_defaults(config, schema, schema)
    _check_consistency(config)
    return config


def training_images(data: dict[str, Any]) -> int:
    """Images in the training split that ``data`` asks for (CIFAR-10 has 50,000 to split)."""
    if data.get("train_subset") is not None:
        return int(data["train_subset"])
    return CIFAR_TRAIN_IMAGES - int(data["val_size"])


def _check_consistency(config: dict[str, Any]) -> None:
    """Cross-key rules a schema cannot express."""
    data = config["data"]
    if data.get("train_subset") is not None and data["train_subset"] + data["val_size"] > 50000:
        raise LinbenchError(
            "invalid config: data.train_subset: train_subset + val_size exceeds the "
            "50,000 CIFAR-10 training images"
        )
    grids = {name: sub for name, sub in config["grid"].items() if sub is not None}
    if not grids:
        raise LinbenchError(
            "invalid config: grid: every sub-grid is switched off (null); keep at least one"
        )
    # A grid written whole may have no sub-grid that records progress: then there is
    # nothing to analyse and the section is left out. Otherwise the name must be right.
    wanted = config["optimizer"]["subgrid"]
    recording = [n for n, sub in config["grid"].items() if sub and sub.get("progress")]
    if wanted is not None and wanted not in config["grid"] and recording:
        raise LinbenchError(
            f"invalid config: optimizer.subgrid: {wanted!r} is not a sub-grid of grid "
            f"(sub-grids: {', '.join(config['grid'])}; recording progress: "
            f"{', '.join(recording)}); name one, or null for no analysis"
        )
    available = training_images(data)
    for name, grid in grids.items():
        for reg in grid["regularizer"]:
            if reg not in grid["strength"]:
                raise LinbenchError(
                    f"invalid config: grid.{name}.strength.{reg}: required key is missing "
                    f"(grid.{name}.regularizer lists {reg!r}; give its strengths, "
                    f"e.g. {reg}: [0.001])"
                )
        for features in grid["features"]:
            if features not in config["features"]["sets"]:
                known = ", ".join(config["features"]["sets"])
                raise LinbenchError(
                    f"invalid config: grid.{name}.features: {features!r} is not a feature set "
                    f"defined under features.sets (defined: {known})"
                )
        if name == ANSWER_SUBGRID:
            at_all = grid.get("seeds_at_all")
            for key, count in (("seed", len(grid["seed"])), ("seeds_at_all", at_all)):
                if count is not None and count < 2:
                    raise LinbenchError(
                        f"invalid config: grid.{name}.{key}: the {name} sub-grid's intervals "
                        f"span the seeds (each seed draws its own training subset), so it "
                        f"needs at least 2 seeds, got {count}"
                    )
        for i, size in enumerate(grid["train_size"]):
            if size != ALL_IMAGES and size == available:
                raise LinbenchError(
                    f"invalid config: grid.{name}.train_size[{i}]: {size} is the whole training "
                    f"split; write '{ALL_IMAGES}' (one size, one set of cells)"
                )
            if size != ALL_IMAGES and size > available:
                raise LinbenchError(
                    f"invalid config: grid.{name}.train_size[{i}]: {size} is larger than the "
                    f"{available} images of the training split (50,000 - data.val_size, or "
                    f"data.train_subset); use a smaller size or '{ALL_IMAGES}'"
                )
