"""The benchmark grid: named sub-grids in the config -> cells -> readable result paths.

The study is a set of named sub-grids (``grid.sweep``, ``grid.regimes``, ...), each a
Cartesian product of features x training-set size x loss x regularizer x strength x batch
size x learning rate x seed; a cell is one point, trained once however many sub-grids
hold it. Its folder name spells out every parameter, and numbers are
formatted by :func:`format_value` everywhere, so a path typed by hand from the config
values (``lr~0.01``, ``strength~1e-05``) is the path the workflow uses.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .names import (
    ALL_IMAGES,
    BUNDLE_KEYS,
    CELL_KEYS,
    CELL_PATTERN,
    GROUP_PATTERN,
    MODEL_KEYS,
    MODEL_PATTERN,
    RUNS_DIR,
    Cell,
    format_value,
)

__all__ = [
    "CELL_PATTERN",
    "RUNS_DIR",
    "Bundle",
    "Cell",
    "TrainingRule",
    "check_bundle",
    "expand_grid",
    "format_value",
    "make_bundles",
    "parse_cell_path",
    "training_rules",
]

# Wildcard regexes: a name, or a number as format_value writes it.
NAME_RE = r"[A-Za-z0-9_]+"
NUMBER_RE = r"[0-9][0-9.e+-]*|inf"
INT_RE = r"[0-9]+"


def expand_subgrid(subgrid: Mapping[str, Any]) -> list[Cell]:
    """All cells of one validated sub-grid (a Cartesian product), in a stable order.

    Strengths come from ``strength[regularizer]`` for each listed regularizer, so a
    regularizer's strengths multiply only its own cells. With ``seeds_at_all: k``, cells
    that train on all images take only the first k seeds: there no training subset is
    redrawn, and seeds differ only in SGD's own noise.
    """
    cells = []
    at_all = subgrid.get("seeds_at_all")
    for features, train_size, loss, regularizer in itertools.product(
        subgrid["features"], subgrid["train_size"], subgrid["loss"], subgrid["regularizer"]
    ):
        seeds = subgrid["seed"]
        if train_size == ALL_IMAGES and at_all is not None:
            seeds = seeds[:at_all]
        for strength, batch_size, learning_rate, seed in itertools.product(
            subgrid["strength"][regularizer],
            subgrid["batch_size"],
            subgrid["learning_rate"],
            seeds,
        ):
            cells.append(
                Cell(
                    features=features,
                    train_size=train_size if train_size == ALL_IMAGES else int(train_size),
                    loss=loss,
                    regularizer=regularizer,
                    strength=float(strength),
                    batch_size=batch_size if batch_size == ALL_IMAGES else int(batch_size),
                    learning_rate=float(learning_rate),
                    seed=int(seed),
                )
            )
    return cells


def expand_grid(grid: Mapping[str, Mapping[str, Any] | None]) -> list[Cell]:
    """Every cell of the study: the union of its named sub-grids, each cell once.

    `grid` maps a sub-grid's name to its validated section (None: switched off). A cell
    that two sub-grids share is trained once; duplicates within a list (``0.001`` and
    ``1.0e-3``) collapse too, since cells are keyed by their folder.
    """
    cells: dict[str, Cell] = {}
    for subgrid in grid.values():
        if subgrid is not None:
            for cell in expand_subgrid(subgrid):
                cells.setdefault(cell.path, cell)
    return list(cells.values())


def subgrids_of(grid: Mapping[str, Mapping[str, Any] | None]) -> dict[str, list[str]]:
    """Each cell folder -> the names of the sub-grids that hold it, in config order."""
    out: dict[str, list[str]] = {}
    for name, subgrid in grid.items():
        if subgrid is not None:
            for cell in expand_subgrid(subgrid):
                names = out.setdefault(cell.path, [])
                if name not in names:
                    names.append(name)
    return out


def progress_groups(
    bundles: Sequence[Bundle], grid: Mapping[str, Mapping[str, Any] | None]
) -> set[str]:
    """The bundle folders (:attr:`Bundle.path`) that record progress at ~32 steps: those
    holding a cell of a sub-grid with ``progress: true``."""
    wanted = {name for name, sub in grid.items() if sub is not None and sub.get("progress")}
    names = subgrids_of(grid)
    return {
        bundle.path
        for bundle in bundles
        if any(wanted.intersection(names.get(cell.path, ())) for cell in bundle.cells)
    }


# ----------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class Bundle:
    """Cells trained together in one pass over the data (one job): they share every
    :data:`BUNDLE_KEYS` field and differ only in :data:`MODEL_KEYS`. `part` numbers the
    bundles of one set of shared values, from 1."""

    cells: tuple[Cell, ...]
    part: int

    @property
    def shared(self) -> dict[str, str]:
        """The shared fields, as the strings cell paths use."""
        return {key: self.cells[0].wildcards[key] for key in BUNDLE_KEYS}

    @property
    def group(self) -> str:
        """The folder of its cells under ``results/runs``: ``features~hog/.../seed~0``."""
        return GROUP_PATTERN.format(**self.shared)

    @property
    def models(self) -> tuple[str, ...]:
        """Each cell's folder inside :attr:`group`: ``reg~l2/strength~0.01/lr~0.01``."""
        return tuple(
            MODEL_PATTERN.format(**{k: cell.wildcards[k] for k in MODEL_KEYS})
            for cell in self.cells
        )

    @property
    def path(self) -> str:
        """A name for the bundle alone: ``features~hog/.../seed~0/part~1``."""
        return f"{self.group}/part~{self.part}"


@dataclass(frozen=True)
class TrainingRule:
    """Bundles that train the same models (the same :attr:`Bundle.models`) on different
    data, losses, batch sizes or seeds: one Snakemake rule whose ``{group}`` wildcard picks
    the bundle. A sub-grid is a Cartesian product, so its bundles mostly share their models
    and the study needs a handful of such rules, named after the sub-grids they train."""

    name: str
    models: tuple[str, ...]
    bundles: tuple[Bundle, ...]

    def bundle(self, group: str) -> Bundle:
        """The bundle of this rule whose cells live in folder `group`."""
        for bundle in self.bundles:
            if bundle.group == group:
                return bundle
        raise KeyError(f"rule {self.name} has no bundle in {group}")


def training_rules(
    bundles: Sequence[Bundle], grid: Mapping[str, Mapping[str, Any] | None]
) -> list[TrainingRule]:
    """The bundles in rules, one rule per set of models, in the order bundles come.

    A rule is named ``train_<sub-grids>``: the sub-grids (config order) its cells belong
    to, then ``_part<n>`` if every bundle is the n-th (n > 1) of its group, then ``_2``,
    ``_3``, ... should two rules still share a name. A group's bundles train different
    models, so no two rules can write the same file.
    """
    subgrids = subgrids_of(grid)
    order = {name: i for i, name in enumerate(grid)}
    shapes: dict[tuple[str, ...], list[Bundle]] = {}
    for bundle in bundles:
        shapes.setdefault(bundle.models, []).append(bundle)
    rules: list[TrainingRule] = []
    taken: set[str] = set()
    for models, members in shapes.items():
        names = {n for b in members for cell in b.cells for n in subgrids.get(cell.path, [])}
        base = "_".join(["train", *sorted(names, key=order.__getitem__)])
        parts = {b.part for b in members}
        if len(parts) == 1 and (part := next(iter(parts))) > 1:
            base += f"_part{part}"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        rules.append(TrainingRule(name, models, tuple(members)))
    return rules


def make_bundles(cells: Sequence[Cell], bundle_size: int) -> list[Bundle]:
    """The cells in bundles of at most `bundle_size`, in a stable order.

    Cells that share every :data:`BUNDLE_KEYS` field go together. Within them, a learning
    rate's cells stay together where they fit (a rate's cells are split only when there are
    more of them than `bundle_size`), and rates are packed in the order they first appear:
    appending a learning rate to the config then only adds cells to the last bundle of
    each group, or makes new bundles; it never moves a cell from one bundle to another.
    """
    if not (isinstance(bundle_size, int) and bundle_size >= 1):
        raise ValueError(f"bundle_size must be an integer >= 1, got {bundle_size!r}")
    groups: dict[tuple, dict[float, list[Cell]]] = {}
    for cell in cells:
        shared = tuple(getattr(cell, key) for key in BUNDLE_KEYS)
        groups.setdefault(shared, {}).setdefault(cell.learning_rate, []).append(cell)
    bundles: list[Bundle] = []
    for by_rate in groups.values():
        parts: list[list[Cell]] = [[]]
        for rate_cells in by_rate.values():
            for start in range(0, len(rate_cells), bundle_size):
                piece = rate_cells[start : start + bundle_size]
                if len(parts[-1]) + len(piece) > bundle_size:
                    parts.append([])
                parts[-1].extend(piece)
        bundles += [Bundle(tuple(part), i) for i, part in enumerate(parts, start=1)]
    return bundles


def check_bundle(cells: Sequence[Cell]) -> dict[str, object]:
    """The shared fields of cells meant to train together; ValueError naming the first
    :data:`BUNDLE_KEYS` field on which they disagree (a programming error, never mixed)."""
    if not cells:
        raise ValueError("a bundle needs at least one cell")
    for key in BUNDLE_KEYS:
        values = list(dict.fromkeys(getattr(cell, key) for cell in cells))
        if len(values) > 1:
            raise ValueError(f"the cells of a bundle must share {key!r}, got {values}")
    return {key: getattr(cells[0], key) for key in BUNDLE_KEYS}


def parse_cell_path(path: str) -> Cell:
    """The cell whose folder is `path` (``.../features~hog/loss~svm/.../seed~0``, as
    ``Cell.path`` writes it; anything before the cell's levels is ignored)."""
    pattern = re.escape(CELL_PATTERN)
    for key in CELL_KEYS:
        pattern = pattern.replace(re.escape(f"{{{key}}}"), f"(?P<{key}>[^/]+)")
    match = re.search(f"(?:^|/){pattern}/?$", str(path))
    if not match:
        raise ValueError(f"not a cell folder: {path}")
    types = {field.name: str(field.type) for field in fields(Cell)}
    casts = {"int": int, "float": float, "str": str, "int | str": _count_or_all}
    return Cell(**{k: casts[types[k]](v) for k, v in match.groupdict().items()})


def _count_or_all(text: str) -> int | str:
    return text if text == ALL_IMAGES else int(text)
