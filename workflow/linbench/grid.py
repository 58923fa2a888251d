"""The benchmark grid: config lists -> cells -> readable result paths.

A cell is one point of features x loss x regularizer x strength x batch size x
learning rate x seed. Its folder name spells out every parameter, and numbers are
formatted by :func:`format_value` everywhere, so a path typed by hand from the config
values (``lr~0.01``, ``strength~1e-05``) is the path the workflow uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from .names import CELL_PATTERN, RUNS_DIR, Cell, format_value

__all__ = ["CELL_PATTERN", "RUNS_DIR", "Cell", "expand_grid", "format_value"]

# Wildcard regexes: a name, or a number as format_value writes it.
NAME_RE = r"[A-Za-z0-9_]+"
NUMBER_RE = r"[0-9][0-9.e+-]*|inf"
INT_RE = r"[0-9]+"


def expand_grid(grid: Mapping[str, object]) -> list[Cell]:
    """All cells of a validated ``grid`` config section, in a stable order.

    Strengths come from ``grid.strength[reg]`` for each listed regularizer, so a
    regularizer's strengths multiply only its own cells. Duplicates (``0.001`` and
    ``1.0e-3`` in one list) collapse to one cell.
    """
    cells: dict[str, Cell] = {}
    strengths: Mapping[str, Sequence[float]] = grid["strength"]  # type: ignore[assignment]
    for features, loss, reg in itertools.product(
        grid["features"],
        grid["loss"],
        grid["regularizer"],  # type: ignore[arg-type]
    ):
        for strength, batch, lr, seed in itertools.product(
            strengths[reg],
            grid["batch_size"],
            grid["learning_rate"],
            grid["seed"],  # type: ignore[arg-type]
        ):
            cell = Cell(features, loss, reg, float(strength), int(batch), float(lr), int(seed))
            cells.setdefault(cell.path, cell)
    return list(cells.values())
