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
from collections.abc import Mapping
from typing import Any

from .names import ALL_IMAGES, CELL_PATTERN, RUNS_DIR, Cell, format_value

__all__ = ["CELL_PATTERN", "RUNS_DIR", "Cell", "expand_grid", "format_value"]

# Wildcard regexes: a name, or a number as format_value writes it.
NAME_RE = r"[A-Za-z0-9_]+"
NUMBER_RE = r"[0-9][0-9.e+-]*|inf"
INT_RE = r"[0-9]+"


def expand_subgrid(subgrid: Mapping[str, Any]) -> list[Cell]:
    """All cells of one validated sub-grid (a Cartesian product), in a stable order.

    Strengths come from ``strength[regularizer]`` for each listed regularizer, so a
    regularizer's strengths multiply only its own cells.
    """
    cells = []
    for features, train_size, loss, regularizer in itertools.product(
        subgrid["features"], subgrid["train_size"], subgrid["loss"], subgrid["regularizer"]
    ):
        for strength, batch_size, learning_rate, seed in itertools.product(
            subgrid["strength"][regularizer],
            subgrid["batch_size"],
            subgrid["learning_rate"],
            subgrid["seed"],
        ):
            cells.append(
                Cell(
                    features=features,
                    train_size=train_size if train_size == ALL_IMAGES else int(train_size),
                    loss=loss,
                    regularizer=regularizer,
                    strength=float(strength),
                    batch_size=int(batch_size),
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
