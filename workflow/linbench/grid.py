"""The benchmark grid: config lists -> cells -> readable result paths.

A cell is one point of features x loss x regularizer x strength x batch size x
learning rate x seed. Its folder name spells out every parameter, and numbers are
formatted by :func:`format_value` everywhere, so a path typed by hand from the config
values (``lr~0.01``, ``strength~1e-05``) is the path the workflow uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

RUNS_DIR = "results/runs"
CELL_PATTERN = (
    "features~{features}/loss~{loss}/reg~{reg}/strength~{strength}/"
    "batch~{batch}/lr~{lr}/seed~{seed}"
)
# Wildcard regexes: a name, or a number as format_value writes it.
NAME_RE = r"[A-Za-z0-9_]+"
NUMBER_RE = r"[0-9][0-9.e+-]*|inf"
INT_RE = r"[0-9]+"


def format_value(value: float | int) -> str:
    """Canonical text of a grid number: ints as ints, floats in shortest general form.

    >>> [format_value(v) for v in (0, 128, 0.001, 1e-05, 0.5, 1.0, 10.0)]
    ['0', '128', '0.001', '1e-05', '0.5', '1', '10']
    """
    if isinstance(value, bool):
        raise TypeError("grid values are numbers, not booleans")
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.10g}"


@dataclass(frozen=True)
class Cell:
    """One grid point."""

    features: str
    loss: str
    reg: str
    strength: float
    batch: int
    lr: float
    seed: int

    @property
    def wildcards(self) -> dict[str, str]:
        """The cell's values as the strings its path uses."""
        return {
            "features": self.features,
            "loss": self.loss,
            "reg": self.reg,
            "strength": format_value(self.strength),
            "batch": str(self.batch),
            "lr": format_value(self.lr),
            "seed": str(self.seed),
        }

    @property
    def path(self) -> str:
        """The cell's folder, e.g. ``results/runs/features~hog/.../seed~0``."""
        return f"{RUNS_DIR}/{CELL_PATTERN.format(**self.wildcards)}"


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


def iter_paths(cells: Sequence[Cell], filename: str) -> Iterator[str]:
    """``<cell folder>/<filename>`` for every cell."""
    for cell in cells:
        yield f"{cell.path}/{filename}"
