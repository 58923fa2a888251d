"""One row of the sanity table: :class:`CheckResult`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

CSV_COLUMNS = (
    "status",
    "check",
    "features",
    "loss",
    "regularizer",
    "strength",
    "measured",
    "expected",
    "error",
    "tolerance",
    "result",
    "criterion",
    "coordinates",
    "at_kink",
    "max_error_at_kink",
    "detail",
)
"""Columns of ``sanity.csv``, one row per check."""


@dataclass(frozen=True)
class CheckResult:
    """One row of the sanity table: one check, what it measured and whether that passed.

    ``check`` names what is checked (``"initial loss"``, ``"gradient"``, ``"labels matter"``,
    ...). ``error`` is the number judged against ``tolerance`` (what it is depends on the
    check; ``criterion`` says it in words), ``measured`` and ``expected`` the quantity the
    check is about (NaN where there is none), ``result`` the outcome in words.
    ``coordinates``, ``at_kink`` and ``max_error_at_kink`` describe a gradient check's
    sample (None, None and NaN for the other checks). ``loss`` is ``""`` for a check of a
    regularizer alone, ``regularizer`` ``""`` for a check of a loss alone.
    """

    check: str
    features: str
    loss: str
    regularizer: str
    strength: float
    measured: float
    expected: float
    error: float
    tolerance: float
    passed: bool
    result: str
    criterion: str
    detail: str
    coordinates: int | None = None
    at_kink: int | None = None
    max_error_at_kink: float = math.nan

    @property
    def status(self) -> str:
        """``PASS`` or ``FAIL``."""
        return "PASS" if self.passed else "FAIL"

    @property
    def name(self) -> str:
        """The check and what it ran on: ``gradient hog/svm/l2``."""
        return check_name(self.check, self.features, self.loss, self.regularizer)

    def row(self) -> dict[str, object]:
        """The result as a dict with the keys :data:`CSV_COLUMNS`."""
        values = asdict(self)
        values["status"] = self.status
        return {key: values[key] for key in CSV_COLUMNS}


def check_name(check: str, features: str, loss: str, regularizer: str) -> str:
    """``<check> <features>/<loss>/<regularizer>``, empty parts left out."""
    return f"{check} {'/'.join(p for p in (features, loss, regularizer) if p)}"
