"""Where regularization matters: accuracy against training-set size, the regularization
path (accuracy against strength), and the train - validation gap against size.

Each point is the setting chosen on validation accuracy (only ``ok`` settings) at that
size (and strength), with its 95 % interval as a band: Wilson over the validation
images; error bars of one standard deviation over seeds where there are several. A grid
with one training size (or one strength) still gets a figure: its points, and a note in
the panel saying what to add to the config to see a curve.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..compare import edge_of_range
from ..names import ANSWER_SUBGRID, REGULARIZERS
from ..report import choose, read_runs_csv, settings_table, subgrid_runs
from ..stats import Z95
from .accuracy import chance_level
from .style import (
    REG_COLORS,
    lr_colors,
    note,
    placeholder,
    save_figure,
    theme,
    unique,
)

NO_SIZES = (
    "runs.csv has no training-set sizes (column train_size is empty):\n"
    "rerun the cells with a grid that sets a sub-grid's train_size"
)


def _panels(runs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Feature sets (rows of panels) and losses (columns)."""
    return unique(runs["features"]), unique(runs["loss"])


def _sizes(table: pd.DataFrame) -> list[int]:
    return sorted(int(v) for v in unique(table["train_size"].dropna()))


def _size_axis(ax, sizes: list[int]) -> None:
    """Log x axis ticked at the grid's sizes (one size: a decade around it)."""
    ax.set_xscale("log")
    if len(sizes) == 1:
        ax.set_xlim(sizes[0] / 2, sizes[0] * 2)
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.minorticks_off()


def _draw_series(ax, x, y, low, high, std, color, label) -> None:
    """A line with markers, its interval band and (several seeds) ± std error bars."""
    ax.plot(x, y, marker="o", ms=5, color=color, label=label)
    if np.isfinite(low).any():
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
        if len(x) == 1:
            ax.errorbar(x, y, yerr=[y - low, high - y], fmt="none", ecolor=color, capsize=5)
    if np.isfinite(std).any():
        ax.errorbar(x, y, yerr=std, fmt="none", ecolor="0.2", capsize=2, lw=0.8)


def _hint(ax, text: str) -> None:
    """Say on a panel what the config should add for the figure to show more."""
    note(ax, text, hide=False)


def _finish(fig: Figure, title: str, how: str, path: str | os.PathLike[str]) -> None:
    """Title the figure with what it shows and how to read it, and save it."""
    fig.suptitle(f"{title}\n{how}", fontsize=11, fontweight="bold")
    save_figure(fig, path)


def _figure(n_rows: int, n_cols: int, width: float = 4.6, height: float = 3.6):
    fig = Figure(figsize=(1.2 + width * n_cols, 1.4 + height * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


# ------------------------------------------------------------- accuracy vs size


def plot_accuracy_vs_size(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy of each regularizer's chosen setting against training-set size.

    One panel per feature set (rows) and loss (columns); one line per regularizer with its
    95 % Wilson band.
    """
    title = "Validation accuracy against training-set size"
    settings = settings_table(runs)
    if settings["train_size"].isna().all():
        placeholder(path, title, NO_SIZES)
        return
    picked = choose(settings, ["features", "loss", "regularizer", "train_size"])
    features, losses = _panels(runs)
    with theme():
        fig, axes = _figure(len(features), len(losses))
        for i, feat in enumerate(features):
            for j, loss in enumerate(losses):
                ax = axes[i, j]
                here = picked[(picked["features"] == feat) & (picked["loss"] == loss)]
                sizes = _sizes(
                    settings[(settings["features"] == feat) & (settings["loss"] == loss)]
                )
                for reg in unique(runs["regularizer"]):
                    sub = here[here["regularizer"] == reg].sort_values("train_size")
                    if sub.empty:
                        continue
                    _draw_series(
                        ax,
                        sub["train_size"].astype(float).to_numpy(),
                        sub["val_acc_mean"].to_numpy(),
                        sub["val_low"].to_numpy(),
                        sub["val_high"].to_numpy(),
                        sub["val_acc_std"].to_numpy(),
                        REG_COLORS.get(reg, "0.4"),
                        reg,
                    )
                ax.axhline(chance, color="0.3", ls="--", lw=1)
                ax.set_title(f"{loss} on {feat}", fontsize=10)
                ax.set_xlabel("training images")
                ax.set_ylabel("validation accuracy" if j == 0 else "")
                if here.empty:
                    note(ax, "no ok setting")
                    continue
                _size_axis(ax, sizes)
                ax.legend(fontsize=8, loc="lower right", title="regularizer", title_fontsize=8)
                if len(sizes) == 1:
                    _hint(
                        ax,
                        "one training size: list several\nin a sub-grid's train_size for a curve",
                    )
        _finish(
            fig,
            title,
            "(best setting per size, chosen on validation; band: 95 % interval; dashed: chance)",
            path,
        )


# ---------------------------------------------------------- regularization path


def plot_regularization_path(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy against strength, per regularizer, one line per training size.

    Rows of panels: feature set and loss; columns: the regularizers other than ``none``,
    whose best accuracy at the same size is the dashed line of the same colour. At each
    strength the best batch size and learning rate (on validation) is shown.
    """
    title = "Regularization path: validation accuracy against strength"
    # A regularizer with no strength to vary (none, early stopping) has no path.
    regs = [r for r in unique(runs["regularizer"]) if REGULARIZERS[r].low != REGULARIZERS[r].high]
    if not regs:
        placeholder(path, title, "only none in the grid:\nadd regularizers to a sub-grid")
        return
    settings = settings_table(runs)
    size_key = settings["train_size"].fillna(-1)
    settings = settings.assign(size_key=size_key)
    picked = choose(settings, ["features", "loss", "regularizer", "size_key", "strength"])
    base = choose(settings[settings["regularizer"] == "none"], ["features", "loss", "size_key"])
    sizes = sorted(unique(settings["size_key"]))
    colors = dict(zip(sizes, lr_colors(len(sizes)), strict=True))
    rows = unique(zip(runs["features"], runs["loss"], strict=True))
    with theme():
        fig, axes = _figure(len(rows), len(regs), width=3.6, height=3.0)
        for i, (feat, loss) in enumerate(rows):
            for j, reg in enumerate(regs):
                ax = axes[i, j]
                here = picked[
                    (picked["features"] == feat)
                    & (picked["loss"] == loss)
                    & (picked["regularizer"] == reg)
                ]
                ax.set_title(f"{loss} on {feat} · {reg}", fontsize=9)
                if here.empty:
                    note(ax, "no ok setting")
                    continue
                for size in sizes:
                    sub = here[here["size_key"] == size].sort_values("strength")
                    label = "all sizes" if size < 0 else f"{int(size):,} images"
                    if not sub.empty:
                        _draw_series(
                            ax,
                            sub["strength"].to_numpy(),
                            sub["val_acc_mean"].to_numpy(),
                            sub["val_low"].to_numpy(),
                            sub["val_high"].to_numpy(),
                            sub["val_acc_std"].to_numpy(),
                            colors[size],
                            label,
                        )
                        _mark_best(ax, sub, colors[size])
                    b = base[
                        (base["features"] == feat)
                        & (base["loss"] == loss)
                        & (base["size_key"] == size)
                    ]
                    if not b.empty:
                        ax.axhline(b["val_acc_mean"].iloc[0], color=colors[size], ls="--", lw=1)
                strengths = here["strength"].to_numpy()
                if REGULARIZERS[reg].hook != "transform" and (strengths > 0).all():
                    ax.set_xscale("log")
                symbol = REGULARIZERS[reg].symbol or "strength"
                ax.set_xlabel(f"{symbol} ({REGULARIZERS[reg].meaning})", fontsize=7)
                ax.set_ylabel("validation accuracy" if j == 0 else "")
                ax.legend(fontsize=7, loc="best")
                if here["strength"].nunique() == 1:
                    _hint(
                        ax,
                        f"one strength: list several in\na sub-grid's strength.{reg} to see a path",
                    )
        _finish(
            fig,
            title,
            "(dashed: best without regularizer at the same size; band: 95 % interval; "
            "star: best strength, red ring: at the edge of the range tried)",
            path,
        )


def _mark_best(ax, series: pd.DataFrame, color) -> None:
    """A star at the best strength of one size's path; a red ring and ``edge`` when it is the
    smallest or largest strength tried (the optimum may lie outside the range)."""
    best = series.loc[series["val_acc_mean"].idxmax()]
    ax.plot(best["strength"], best["val_acc_mean"], "*", color=color, ms=10, mec="black", mew=0.5)
    if edge_of_range(best["strength"], series["strength"]):
        ax.plot(best["strength"], best["val_acc_mean"], "o", mfc="none", mec="red", ms=14, mew=1.5)
        ax.annotate(
            "edge",
            (best["strength"], best["val_acc_mean"]),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            fontsize=7,
            color="red",
        )


# ------------------------------------------------------------------ gap vs size


def gap_interval(train: float, n_train: float, val: float, n_val: float) -> float:
    """Half-width of the 95 % normal interval of train - validation accuracy (independent
    binomials); NaN when an image count is unknown."""
    if any(pd.isna(v) or v <= 0 for v in (n_train, n_val)):
        return math.nan
    return Z95 * math.sqrt(train * (1 - train) / n_train + val * (1 - val) / n_val)


def plot_gap_vs_size(runs: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Training minus validation accuracy of each regularizer's chosen setting, per size.

    A large gap is overfitting: where it is large, regularization has room to help. One
    panel per feature set and loss; band: 95 % interval of the difference.
    """
    title = "Train - validation accuracy gap against training-set size"
    settings = settings_table(runs)
    if settings["train_size"].isna().all():
        placeholder(path, title, NO_SIZES)
        return
    picked = choose(settings, ["features", "loss", "regularizer", "train_size"]).copy()
    picked["gap"] = picked["train_acc_mean"] - picked["val_acc_mean"]
    half = [
        gap_interval(t, n, v, m)
        for t, n, v, m in zip(
            picked["train_acc_mean"],
            picked["train_size"],
            picked["val_acc_mean"],
            picked["val_images"],
            strict=True,
        )
    ]
    picked["low"] = picked["gap"] - np.asarray(half, dtype=float)
    picked["high"] = picked["gap"] + np.asarray(half, dtype=float)
    features, losses = _panels(runs)
    with theme():
        fig, axes = _figure(len(features), len(losses))
        for i, feat in enumerate(features):
            for j, loss in enumerate(losses):
                ax = axes[i, j]
                here = picked[(picked["features"] == feat) & (picked["loss"] == loss)]
                ax.set_title(f"{loss} on {feat}", fontsize=10)
                if here.empty:
                    note(ax, "no ok setting")
                    continue
                for reg in unique(runs["regularizer"]):
                    sub = here[here["regularizer"] == reg].sort_values("train_size")
                    if not sub.empty:
                        _draw_series(
                            ax,
                            sub["train_size"].astype(float).to_numpy(),
                            sub["gap"].to_numpy(),
                            sub["low"].to_numpy(),
                            sub["high"].to_numpy(),
                            np.full(len(sub), np.nan),
                            REG_COLORS.get(reg, "0.4"),
                            reg,
                        )
                ax.axhline(0, color="0.3", lw=0.8)
                sizes = _sizes(here)
                _size_axis(ax, sizes)
                ax.set_xlabel("training images")
                ax.set_ylabel("train − validation accuracy" if j == 0 else "")
                ax.legend(fontsize=8, loc="upper right", title="regularizer", title_fontsize=8)
                if len(sizes) == 1:
                    _hint(
                        ax,
                        "one training size: list several\nin a sub-grid's train_size for a trend",
                    )
        _finish(
            fig, title, "(best setting per size, chosen on validation; band: 95 % interval)", path
        )


# -------------------------------------------------------------- rule entry points


def answer_runs(runs: str) -> pd.DataFrame:
    """The cells of the sub-grid that answers what each regularizer buys (``runs.csv``)."""
    return subgrid_runs(read_runs_csv(runs), ANSWER_SUBGRID)


def draw_accuracy_vs_size(runs: str, splits: str, path: str) -> None:
    """Rule ``plot_accuracy_vs_size``."""
    plot_accuracy_vs_size(answer_runs(runs), path, chance=chance_level(splits))


def draw_regularization_path(runs: str, splits: str, path: str) -> None:
    """Rule ``plot_regularization_path``."""
    plot_regularization_path(answer_runs(runs), path, chance=chance_level(splits))


def draw_gap_vs_size(runs: str, path: str) -> None:
    """Rule ``plot_gap_vs_size``."""
    plot_gap_vs_size(answer_runs(runs), path)
