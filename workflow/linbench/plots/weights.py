"""Weights of each regularizer's chosen model: histograms and class column norms.

What each regularizer does to W: L1 drives many weights to zero (the share below
``names.SMALL_WEIGHT`` is printed), L2 shrinks them, max-norm bounds each class column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..errors import LinbenchError
from ..names import SMALL_WEIGHT
from ..report import chosen_cells, read_runs_csv
from ..text import fmt_number, strength_text
from .style import (
    REG_COLORS,
    load_weights,
    note,
    panel_keys,
    panel_name,
    save_figure,
    theme,
    unique,
    weights_by_dir,
)


def plot_weights(
    runs: pd.DataFrame,
    weights_files: Mapping[str, str | os.PathLike[str]],
    path: str | os.PathLike[str],
) -> None:
    """Weight histograms (log count) of each regularizer's chosen model, and its column norms.

    `weights_files` maps a cell's folder (``runs.cell_dir``) to its ``weights.npz``; only the
    chosen cells' files are read. One row per loss; one histogram per regularizer on a
    shared x range, annotated with the share of near-zero weights (L1 sparsity); the last
    panel shows each class's column norm ||W[:, j]||₂ against the max-norm radius.
    """
    picked = chosen_cells(runs, ["features", "loss", "regularizer"])
    rows = panel_keys(runs)
    regs = unique(runs["regularizer"])
    weights: dict[str, np.ndarray] = {}
    for cell_dir in picked["cell_dir"]:
        if cell_dir not in weights_files:
            raise LinbenchError(f"{cell_dir}: weights.npz of a chosen cell is not an input")
        weights[cell_dir] = load_weights(weights_files[cell_dir])
    finite_max = [np.abs(W[np.isfinite(W)]).max() for W in weights.values() if np.isfinite(W).any()]
    lim = max([*finite_max, SMALL_WEIGHT]) * 1.02
    bins = np.linspace(-lim, lim, 61)

    with theme():
        fig = Figure(
            figsize=(1.0 + 2.45 * (len(regs) + 1), 0.8 + 2.7 * len(rows)), layout="constrained"
        )
        axes = fig.subplots(len(rows), len(regs) + 1, squeeze=False)
        for i, (features, loss) in enumerate(rows):
            norms = []
            radius = None
            for j, reg in enumerate(regs):
                ax = axes[i, j]
                if (i, j) != (0, 0):
                    ax.sharex(axes[0, 0])
                    ax.sharey(axes[0, 0])
                hit = picked[
                    (picked["features"] == features)
                    & (picked["loss"] == loss)
                    & (picked["regularizer"] == reg)
                ]
                title = f"{panel_name(features, loss, runs)} · {reg}"
                ax.set_title(title, fontsize=10)
                if hit.empty:
                    note(ax, "no ok setting")
                    continue
                cell = hit.iloc[0]
                W = weights[cell["cell_dir"]]
                w = W[np.isfinite(W)]
                if w.size == 0:
                    note(ax, "no finite weights")
                    continue
                color = REG_COLORS.get(reg, "0.4")
                ax.hist(w, bins=bins, log=True, histtype="stepfilled", color=color, alpha=0.55)
                ax.hist(w, bins=bins, log=True, histtype="step", color=color, linewidth=1.2)
                col_norms = np.linalg.norm(np.where(np.isfinite(W), W, 0.0), axis=0)
                norms += [(reg, n) for n in col_norms]
                if reg == "max_norm":
                    radius = float(cell["strength"])
                strength = strength_text(reg, cell["strength"])
                ax.text(
                    0.03,
                    0.97,
                    (f"{strength}\n" if strength else "")
                    + f"|w| < {SMALL_WEIGHT:g}: {np.mean(np.abs(w) < SMALL_WEIGHT):.0%}\n"
                    + f"$\\|W\\|_F$ = {np.sqrt(np.sum(w**2)):.3g}",
                    transform=ax.transAxes,
                    va="top",
                    ha="left",
                    fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
                )
                ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
                ax.tick_params(labelleft=j == 0)
                ax.set_xlabel("weight value" if i == len(rows) - 1 else "")
                ax.set_ylabel("count (log scale)" if j == 0 else "")
            ax = axes[i, -1]
            if norms:
                frame = pd.DataFrame(norms, columns=["regularizer", "norm"])
                order = unique(frame["regularizer"])
                sns.stripplot(
                    data=frame,
                    x="regularizer",
                    y="norm",
                    hue="regularizer",
                    order=order,
                    palette={r: REG_COLORS.get(r, "0.4") for r in order},
                    jitter=0.2,
                    size=4,
                    legend=False,
                    ax=ax,
                )
                if radius is not None:
                    ax.axhline(
                        radius,
                        color=REG_COLORS["max_norm"],
                        ls="--",
                        lw=1.2,
                        label=f"max-norm radius c = {fmt_number(radius)}",
                    )
                    ax.legend(fontsize=8, loc="best")
                positive = frame["norm"][frame["norm"] > 0]
                if len(positive) and positive.max() / positive.min() > 30:
                    ax.set_yscale("log")
                ax.tick_params(axis="x", rotation=45, labelsize=8)
            else:
                note(ax, "no finite weights")
            ax.set_title(f"{panel_name(features, loss, runs)} · column norms", fontsize=10)
            ax.set_xlabel("")
            ax.set_ylabel("‖W[:, class]‖₂ (one dot per class)", fontsize=9)
        fig.suptitle(
            "Weights of the chosen model per regularizer (bias not shown)",
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


def draw_weights(runs: str, path: str, weights: Sequence[str] = ()) -> None:
    """Rule ``plot_weights``: only the chosen cells' ``weights.npz`` are read (those of
    `weights`, or without them the ones in the cells' folders, ``cell_dir``)."""
    table = read_runs_csv(runs)
    by_dir = weights_by_dir(weights) or {d: f"{d}/weights.npz" for d in table["cell_dir"]}
    plot_weights(table, by_dir, path)
