"""Labels and Markdown tables shared by the reports and the sanity checks.

Plain Python (no pandas), so the light sanity-check job can use it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from .names import REGULARIZERS, format_value


def fmt_number(value: float) -> str:
    """A grid number as its path spells it: ``0.001``, ``1e-05``, ``10``."""
    return format_value(float(value))


def strength_text(regularizer: str, strength: float) -> str:
    """What the strength means, with its value: ``λ = 0.001``, ``c = 0.5``; ``""`` for none."""
    symbol = REGULARIZERS[regularizer].symbol if regularizer in REGULARIZERS else "strength"
    return f"{symbol} = {fmt_number(strength)}" if symbol else ""


def fmt_strength(regularizer: str, strength: float) -> str:
    """``l2 (λ = 0.001)``, ``max_norm (c = 0.5)``, ``none``."""
    text = strength_text(regularizer, strength)
    return f"{regularizer} ({text})" if text else regularizer


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] = ()
) -> str:
    """A GitHub-flavoured Markdown table, padded so it also reads well in a terminal.

    `right` says which columns are right-aligned (numbers); default left.
    """
    right = list(right) + [False] * (len(headers) - len(right))
    # A "|" inside a cell would end it early.
    cells = [[str(h) for h in headers]] + [
        [str(v).replace("|", "\\|") for v in row] for row in rows
    ]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
