"""The sanity table: ``sanity.csv``, ``sanity.md`` and the gate's verdict."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from ..text import fmt_strength, markdown_table
from .result import CSV_COLUMNS, CheckResult, check_name

WHAT_IS_CHECKED = (
    "*Initial loss*: at the small random initialisation training starts from, the loss "
    "must be close to its value at W = 0 (it does not depend on the labels). *Large "
    "scores*: adding 1000 to every score changes neither loss nor gradient. *Gradient*: "
    "the analytic gradient of the loss, and of loss + penalty for each penalty "
    "regularizer, against a centred finite difference in float64; coordinates at a kink "
    "(a hinge margin or a weight |w| within the step of 0) are counted, not judged. "
    "*Overfits a small slice* and *labels matter*: trained without a regularizer on a few "
    "hundred training rows, the model fits them, beats chance on validation with the real "
    "labels and does not with permuted ones. Per regularizer: it *acts only through its "
    "hook* (penalty, batch transform or projection); a batch transform *keeps the mean* "
    "and its *keep share* is p; a *projection* leaves every column norm ≤ c and the "
    "columns inside the ball untouched."
)


def _csv_value(value: object) -> object:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def to_csv(results: Sequence[CheckResult]) -> str:
    """The results as CSV text, columns :data:`CSV_COLUMNS`, full float precision."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({k: _csv_value(v) for k, v in result.row().items()})
    return buf.getvalue()


def banner(results: Sequence[CheckResult]) -> str:
    """One line: ``PASS: all 26 sanity checks passed`` or ``FAIL: 2 of 26 ...: <which>``."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return f"PASS: all {len(results)} sanity checks passed"
    which = ", ".join(r.name for r in failed)
    return f"FAIL: {len(failed)} of {len(results)} sanity checks failed: {which}"


def to_markdown(results: Sequence[CheckResult]) -> str:
    """``sanity.md``: the PASS/FAIL banner as its first line, then what is checked, the table."""
    lines = [
        f"# {banner(results)}",
        "",
        "## Sanity checks on the real features",
        "",
        WHAT_IS_CHECKED,
        "",
    ]
    headers = ["status", "check", "features", "loss", "regularizer"]
    headers += ["result", "criterion", "details"]
    rows = []
    for r in results:
        reg = fmt_strength(r.regularizer, r.strength) if r.regularizer else ""
        status = r.status if r.passed else f"**{r.status}**"
        rows.append([status, r.check, r.features, r.loss, reg, r.result, r.criterion, r.detail])
    lines.append(markdown_table(headers, rows))
    return "\n".join(lines) + "\n"


def read_statuses(csv_text: str) -> list[tuple[str, str]]:
    """(status, check name) of each row of ``sanity.csv`` text, for the gate rule.

    Raises ValueError when the text is not a sanity table.
    """
    reader = csv.DictReader(io.StringIO(csv_text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"not a sanity table: missing column(s) {', '.join(missing)}")
    return [
        (row["status"], check_name(row["check"], row["features"], row["loss"], row["regularizer"]))
        for row in reader
    ]


def gate_verdict(csv_text: str) -> tuple[bool, str]:
    """(every check passed, one line saying so or naming the failed checks).

    Raises ValueError when the text is not a sanity table or holds no check.
    """
    statuses = read_statuses(csv_text)
    if not statuses:
        raise ValueError("holds no sanity check")
    failed = [name for status, name in statuses if status != "PASS"]
    if failed:
        return False, f"{len(failed)} of {len(statuses)} sanity checks failed: {'; '.join(failed)}"
    return True, f"all {len(statuses)} sanity checks passed"
