"""The answer in one picture: each regularizer's gain over none, with its interval.

A forest plot drawn from ``comparisons.csv`` (:func:`linbench.compare.compare_to_baseline`):
one panel per feature set (rows) and loss (columns); in a panel, one group of lines per
training-set size (small at the top), one line per regularizer, at its test gain over
none in points with the 95 % interval over seeds and test images. A filled marker: the
interval excludes 0 (*better* or *worse*); an open one: *indistinguishable*; a black ring
around it: the chosen strength sat at the edge of the range tried (the gain is a bound).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import LinbenchError
from .style import REG_COLORS, save_figure, theme, unique

DECIDED = ("better", "worse")


def _size_label(size: object) -> str:
    return "?" if pd.isna(size) else f"{int(size):,}"


def plot_answer(comparisons: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Draw the forest plot of `comparisons` to `path` (PNG)."""
    table = comparisons[np.isfinite(comparisons["difference"].astype(float))]
    features = unique(comparisons["features"]) if len(comparisons) else []
    losses = unique(comparisons["loss"]) if len(comparisons) else []
    regs = unique(comparisons["regularizer"]) if len(comparisons) else []
    sizes = sorted(unique(comparisons["train_size"].dropna())) if len(comparisons) else []
    rows, cols = max(len(features), 1), max(len(losses), 1)
    per_panel = max(len(sizes), 1) * (len(regs) + 1)
    with theme("whitegrid"):
        fig = Figure(
            figsize=(4.2 * cols + 1.8, max(3.0, 1.0 + 0.13 * per_panel * rows)),
            layout="constrained",
        )
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        if table.empty:
            axes[0, 0].text(0.5, 0.5, "no comparison to draw", ha="center", va="center")
        for i, feat in enumerate(features):
            for j, loss in enumerate(losses):
                ax = axes[i, j]
                here = table[(table["features"] == feat) & (table["loss"] == loss)]
                _panel(ax, here, sizes, regs)
                ax.set_title(f"{feat}, {loss}", fontsize=10)
                if j == 0:
                    ax.set_ylabel("training images")
        ticks = [(len(regs) + 1) * k + (len(regs) - 1) / 2 for k in range(len(sizes))]
        for ax in axes.flat:
            ax.axvline(0, color="0.2", lw=0.8)
            ax.set_yticks(ticks, [_size_label(s) for s in sizes])
            ax.set_ylim(per_panel - 0.5, -1)
        for ax in axes[-1]:
            ax.set_xlabel("test gain over none (points, 95 % interval)")
        handles = [
            Line2D([], [], color=REG_COLORS.get(r, "0.3"), marker="o", lw=1.5, label=r)
            for r in regs
        ]
        handles += [
            Line2D([], [], color="0.3", marker="o", lw=0, label="interval excludes 0"),
            Line2D([], [], color="0.3", marker="o", mfc="white", lw=0, label="indistinguishable"),
            Line2D(
                [], [], color="black", marker="o", mfc="none", ms=11, lw=0, label="strength at edge"
            ),
        ]
        fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
        fig.suptitle("What each regularizer buys: test gain over none", fontweight="bold")
        save_figure(fig, path)


def _panel(ax, here: pd.DataFrame, sizes: list, regs: list) -> None:
    for k, size in enumerate(sizes):
        for r, reg in enumerate(regs):
            hit = here[(here["train_size"] == size) & (here["regularizer"] == reg)]
            if hit.empty:
                continue
            c = hit.iloc[0]
            y = (len(regs) + 1) * k + r
            color = REG_COLORS.get(reg, "0.3")
            gain, low, high = (100 * float(c[key]) for key in ("difference", "low", "high"))
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [y, y], color=color, lw=1.6, solid_capstyle="butt")
            decided = str(c["verdict"]) in DECIDED
            ax.plot(gain, y, "o", color=color, mfc=color if decided else "white", ms=5)
            if isinstance(c.get("strength_edge"), str) and c["strength_edge"]:
                ax.plot(gain, y, "o", mfc="none", mec="black", ms=10, mew=1.0)


def draw_answer(comparisons: str, path: str) -> None:
    """Rule plot_answer: ``comparisons.csv`` -> the forest plot."""
    try:
        table = pd.read_csv(comparisons, keep_default_na=True)
    except (OSError, ValueError) as err:
        raise LinbenchError(f"{comparisons}: cannot read the comparisons ({err})") from None
    missing = [
        c
        for c in ("features", "train_size", "loss", "regularizer", "difference", "low", "high")
        if c not in table.columns
    ]
    if missing:
        raise LinbenchError(f"{comparisons}: missing column(s) {', '.join(missing)}")
    edges = table["strength_edge"] if "strength_edge" in table else pd.Series("", index=table.index)
    table["strength_edge"] = [e if isinstance(e, str) else "" for e in edges]
    plot_answer(table, path)
