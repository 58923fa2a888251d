"""Learning curves: training loss and validation accuracy per epoch, one line per learning rate.

A run that did not end ``ok`` ends with its status's marker (``X`` diverged, ``v``
collapsed, ``^`` unstable), so "too large a rate" is visible at a glance.
"""

from __future__ import annotations

import os

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..names import SWEEP_SUBGRID
from ..report import choose, read_history_csv, read_runs_csv, settings_table, subgrid_runs
from ..text import fmt_strength
from .style import (
    STATUS_MARKER,
    fmt_log_tick,
    fmt_lr,
    lr_colors,
    note,
    panel_name,
    save_figure,
    status_handles,
    theme,
    unique,
)


def learning_curve_setting(
    runs: pd.DataFrame, regularizer: str | None = None, batch_size: int | None = None
) -> dict[str, object]:
    """The cells the learning-curve figure shows: all learning rates of one setting per loss.

    Defaults (also when the asked value is not in the grid): regularizer ``none`` (else the
    first), the lower median batch size, the smallest strength and seed, the first
    feature set and the largest training-set size.
    """
    regs = unique(runs["regularizer"])
    reg = regularizer if regularizer in regs else ("none" if "none" in regs else regs[0])
    batches = sorted(unique(runs["batch_size"]))
    batch = int(batch_size) if batch_size in batches else batches[(len(batches) - 1) // 2]
    features = runs["features"].iloc[0]
    sub = runs[
        (runs["regularizer"] == reg)
        & (runs["batch_size"] == batch)
        & (runs["features"] == features)
    ]
    setting = {
        "features": features,
        "regularizer": reg,
        "strength": float(sub["strength"].min()),
        "batch_size": batch,
        "seed": int(sub["seed"].min()),
    }
    if "train_size" in runs.columns and sub["train_size"].notna().any():
        setting["train_size"] = int(sub["train_size"].max())
    return setting


def plot_learning_curves(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    path: str | os.PathLike[str],
    regularizer: str | None = None,
    batch_size: int | None = None,
) -> None:
    """Training loss (log scale) and validation accuracy per epoch, one line per learning rate.

    One column per loss, for one setting and seed (see :func:`learning_curve_setting`). The
    best learning rate (mean validation accuracy over seeds, only ``ok`` settings, as in the
    summary) is drawn thicker; a run that did not end ``ok`` ends with its status's marker.
    """
    setting = learning_curve_setting(runs, regularizer, batch_size)
    mask = np.logical_and.reduce([runs[k] == setting[k] for k in setting])
    mask_settings = np.logical_and.reduce([runs[k] == setting[k] for k in setting if k != "seed"])
    cells = runs[mask]
    hkeys = [k for k in setting if k in history.columns]
    hist = history[np.logical_and.reduce([history[k] == setting[k] for k in hkeys])]
    losses = unique(cells["loss"]) or unique(runs["loss"])
    lrs = sorted(unique(cells["learning_rate"]))
    colors = dict(zip(lrs, lr_colors(len(lrs)), strict=True))
    shown: set[str] = set()

    with theme():
        fig = Figure(figsize=(5.2 * len(losses), 7.4), layout="constrained")
        axes = fig.subplots(2, len(losses), squeeze=False, sharex=True)
        for j, loss in enumerate(losses):
            ax_loss, ax_acc = axes[0, j], axes[1, j]
            here = cells[cells["loss"] == loss]
            same = runs[mask_settings & (runs["loss"] == loss)]
            best = choose(settings_table(same))
            best_lr = best["learning_rate"].item() if not best.empty else None
            for lr in lrs:
                cell = here[here["learning_rate"] == lr]
                if cell.empty:
                    continue
                cell = cell.iloc[0]
                h = hist[(hist["loss"] == loss) & (hist["learning_rate"] == lr)].sort_values(
                    "epoch"
                )
                label, width, status = fmt_lr(lr), 1.6, cell["status"]
                if status != "ok":
                    label += f" {status}"
                    shown.add(status)
                elif lr == best_lr:
                    label += " best val. acc."
                    width = 3.0
                finite = h[np.isfinite(h["train_loss"]) & (h["train_loss"] > 0)]
                ax_loss.plot(
                    finite["epoch"], finite["train_loss"], color=colors[lr], lw=width, label=label
                )
                accs = h[np.isfinite(h["val_acc"])]
                ax_acc.plot(accs["epoch"], accs["val_acc"], color=colors[lr], lw=width)
                if status == "ok":
                    continue
                for ax, frame, col in ((ax_loss, finite, "train_loss"), (ax_acc, accs, "val_acc")):
                    if not frame.empty:
                        ax.plot(
                            frame["epoch"].iloc[-1],
                            frame[col].iloc[-1],
                            marker=STATUS_MARKER[status],
                            ms=10,
                            color=colors[lr],
                            mec="black",
                            mew=0.8,
                            ls="none",
                        )
            ax_loss.set_yscale("log")
            # Plain numbers (0.01, 2, 1000) unless huge or tiny, and labelled minor ticks
            # when the range is under a decade or two.
            ax_loss.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(fmt_log_tick))
            ax_loss.yaxis.set_minor_formatter(
                mpl.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
            )
            ax_loss.set_title(panel_name(str(setting["features"]), loss, runs))
            ax_loss.set_ylabel("training loss (log scale)" if j == 0 else "")
            ax_acc.set_ylabel("validation accuracy" if j == 0 else "")
            ax_acc.set_xlabel("epoch")
            ax_acc.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
            if here.empty:
                note(ax_loss, "no cells for this setting")
            else:
                ax_loss.legend(
                    title="learning rate", fontsize=8, title_fontsize=9, loc="best", framealpha=0.85
                )
        handles = status_handles(sorted(shown))
        if handles:
            fig.legend(
                handles=handles, loc="outside lower center", frameon=False, fontsize=9, ncols=3
            )
        reg = fmt_strength(str(setting["regularizer"]), float(setting["strength"]))
        size = f", {setting['train_size']:,} training images" if "train_size" in setting else ""
        fig.suptitle(
            "Learning curves per learning rate\n"
            f"regularizer {reg}, batch size {setting['batch_size']}, seed {setting['seed']}{size}",
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


def draw_learning_curves(
    runs: str,
    history: str,
    path: str,
    regularizer: str | None = None,
    batch_size: int | None = None,
) -> None:
    """Rule ``plot_learning_curves``."""
    plot_learning_curves(
        subgrid_runs(read_runs_csv(runs), SWEEP_SUBGRID),
        read_history_csv(history),
        path,
        regularizer,
        batch_size,
    )
