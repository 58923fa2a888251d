"""Accuracy figures: learning rate x batch size heatmaps, the best setting per regularizer,
accuracy against training time, and the confusion matrix of the best model.

Settings are chosen as in the summary (:func:`linbench.report.choose`): by mean
validation accuracy over seeds, never on test accuracy, only settings whose every seed
ended ``ok``. Cells that did not end ``ok`` are drawn distinctly (a hatch or marker per
status, with a legend).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..errors import LinbenchError
from ..names import STATUSES, SWEEP_SUBGRID
from ..report import choose, chosen_cells, read_runs_csv, settings_table, subgrid_runs
from ..stats import wilson_interval
from ..text import strength_text
from .style import (
    BEST_COLOR,
    MODEL_MARKERS,
    NOT_OK_COLOR,
    SPLIT_COLORS,
    STATUS_HATCH,
    STATUS_MARKER,
    STATUS_SHORT,
    cell_label,
    fmt_lr,
    note,
    panel_keys,
    panel_name,
    placeholder,
    read_classes,
    save_figure,
    status_handles,
    theme,
    unique,
)


def chance_level(splits_json: str | os.PathLike[str]) -> float:
    """1 / number of classes, from ``splits.json``."""
    return 1.0 / len(read_classes(splits_json))


# ------------------------------------------------------------------------ heatmaps


def _heatmap(ax, values: np.ndarray, annot: np.ndarray, norm, cmap, fontsize: float = 8) -> None:
    """A matrix as coloured squares (row 0 on top) with text; NaN squares stay empty.

    Like ``sns.heatmap`` but without its tick-label overlap check, which draws the figure
    once per panel (a third of this figure's run time).
    """
    masked = np.ma.masked_invalid(values)
    ax.pcolormesh(masked, cmap=cmap, norm=norm, edgecolors="white", linewidth=0.6)
    ax.set_xlim(0, values.shape[1])
    ax.set_ylim(values.shape[0], 0)
    ax.set_aspect("auto")
    for (a, b), text in np.ndenumerate(annot):
        if not text:
            continue
        color = "0.1"
        if np.isfinite(values[a, b]):
            r, g, bl, _ = cmap(norm(values[a, b]))
            # Dark text on light squares, light on dark (relative luminance, as seaborn does).
            color = "0.1" if 0.2126 * r + 0.7152 * g + 0.0722 * bl > 0.45 else "white"
        ax.text(b + 0.5, a + 0.5, text, ha="center", va="center", fontsize=fontsize, color=color)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def square_status(cells: pd.DataFrame) -> tuple[str, str]:
    """(hatch key, text) of a heatmap square without an eligible setting.

    `cells` are the square's settings (rows of the settings table). Every cell with the
    same status: that status, no text (the legend says it). Statuses disagree (say one
    seed of three diverged): ``mixed``, and the count of each status, ``2 ok 1 div``.
    """
    counts = {s: int(cells[f"n_{s}"].sum()) for s in STATUSES}
    present = [s for s in STATUSES if counts[s]]
    if len(present) == 1:
        return present[0], ""
    return "mixed", "\n".join(f"{counts[s]} {STATUS_SHORT[s]}" for s in present)


def heatmap_panel(
    group: pd.DataFrame, lrs: list[float], batches: list[int], show_strength: bool
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], str]]:
    """One panel's squares from its settings (one loss and regularizer).

    Returns (values, annotations, hatches): the best mean validation accuracy per square
    (NaN where no setting is eligible), its text (value, ± half the 95 % Wilson interval,
    the strength), and for squares with cells but no eligible setting their hatch key
    (:func:`square_status`).
    """
    picked = choose(group, ["learning_rate", "batch_size"])
    best = {(r.learning_rate, r.batch_size): r for r in picked.itertuples()}
    shape = (len(lrs), len(batches))
    values, annot = np.full(shape, np.nan), np.full(shape, "", dtype=object)
    hatches: dict[tuple[int, int], str] = {}
    for a, lr in enumerate(lrs):
        for b, batch in enumerate(batches):
            r = best.get((lr, batch))
            if r is None:
                here = group[(group["learning_rate"] == lr) & (group["batch_size"] == batch)]
                if not here.empty:
                    hatches[(a, b)], annot[a, b] = square_status(here)
                continue
            values[a, b] = r.val_acc_mean
            annot[a, b] = f"{r.val_acc_mean:.3f}"
            if np.isfinite(r.val_high):
                annot[a, b] += f"\n±{(r.val_high - r.val_low) / 2:.3f}"
            if show_strength:
                annot[a, b] += "\n" + strength_text(r.regularizer, r.strength)
    return values, annot, hatches


def heatmap_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The cells the learning rate x batch size heatmaps draw: each feature set's largest
    training size, and the feature sets whose grid spans more than one square there (all
    of them if none does)."""
    if "train_size" in runs and runs["train_size"].notna().any():
        runs = runs[runs["train_size"] == runs.groupby("features")["train_size"].transform("max")]
    squares = runs.drop_duplicates(["features", "learning_rate", "batch_size"])
    wide = squares["features"].value_counts()
    if (wide > 1).any():
        runs = runs[runs["features"].isin(wide[wide > 1].index)]
    return runs


def plot_val_heatmaps(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy over learning rate x batch size, one panel per loss x regularizer.

    Where a regularizer has several strengths, each square shows the best strength there
    (by mean validation accuracy, named under the value). Hatched squares have no setting
    that ended ``ok`` on every seed, hatched by status (``mixed`` with counts where the
    statuses disagree); outlined: the panel's best square. The colour scale starts at
    `chance`. The question is asked on the whole training split: each feature set's largest
    training size is drawn, and only feature sets whose grid spans more than one square
    (a regimes grid at one rate and batch size has nothing to show here), if any do.
    """
    runs = heatmap_runs(runs)
    settings = settings_table(runs)
    rows = panel_keys(runs)
    regs = unique(runs["regularizer"])
    lrs = sorted(unique(runs["learning_rate"]))
    batches = sorted(unique(runs["batch_size"]))
    ok = settings[settings["eligible"]]
    vmax = float(ok["val_acc_mean"].max()) if not ok.empty else chance + 0.1
    norm = mpl.colors.Normalize(chance, max(vmax, chance + 0.05))
    cmap = sns.color_palette("viridis", as_cmap=True)
    several = settings.groupby("regularizer")["strength"].nunique() > 1
    shown: set[str] = set()

    with theme("white"):
        # Panels stay legible for tiny grids (one batch size, two rates) too.
        panel_w, panel_h = max(0.62 * len(batches), 1.9), max(0.62 * len(lrs), 1.6)
        fig = Figure(
            figsize=(max(1.6 + panel_w * len(regs), 7.5), 1.3 + panel_h * len(rows)),
            layout="constrained",
        )
        axes = fig.subplots(len(rows), len(regs), squeeze=False, sharex=True, sharey=True)
        for i, (features, loss) in enumerate(rows):
            for j, reg in enumerate(regs):
                ax = axes[i, j]
                group = settings[
                    (settings["features"] == features)
                    & (settings["loss"] == loss)
                    & (settings["regularizer"] == reg)
                ]
                show = bool(several.get(reg, False))
                values, annot, hatches = heatmap_panel(group, lrs, batches, show)
                _heatmap(ax, values, annot, norm, cmap, fontsize=6.5 if show else 7.5)
                for (a, b), status in hatches.items():
                    shown.add(status)
                    # Hatch colour = edge colour (matplotlib < 3.10 has no hatchcolor).
                    ax.add_patch(
                        Rectangle(
                            (b, a),
                            1,
                            1,
                            facecolor="0.92",
                            edgecolor=NOT_OK_COLOR,
                            hatch=STATUS_HATCH[status],
                            linewidth=0,
                            zorder=0.5,
                        )
                    )
                    ax.add_patch(Rectangle((b, a), 1, 1, fill=False, edgecolor="white", lw=0.6))
                if np.isfinite(values).any():
                    a, b = np.unravel_index(np.nanargmax(values), values.shape)
                    ax.add_patch(
                        Rectangle(
                            (b, a),
                            1,
                            1,
                            fill=False,
                            edgecolor=BEST_COLOR,
                            linewidth=2.2,
                            clip_on=False,
                            zorder=3,
                        )
                    )
                ax.set_xticks(np.arange(len(batches)) + 0.5, batches)
                ax.set_yticks(np.arange(len(lrs)) + 0.5, [fmt_lr(x) for x in lrs])
                ax.set_title(f"{panel_name(features, loss, runs)} · {reg}", fontsize=10)
                ax.set_xlabel("batch size" if i == len(rows) - 1 else "")
                ax.set_ylabel("learning rate" if j == 0 else "")
        fig.colorbar(
            mpl.cm.ScalarMappable(norm, cmap),
            ax=axes,
            shrink=0.8,
            pad=0.01,
            label="validation accuracy (mean over seeds)",
        )
        handles = status_handles(sorted(shown), kind="hatch")
        handles.append(Patch(fill=False, edgecolor=BEST_COLOR, linewidth=2, label="best in panel"))
        fig.legend(handles=handles, loc="outside lower right", frameon=False, fontsize=8, ncols=3)
        fig.suptitle(
            "Validation accuracy by learning rate and batch size (± half its 95 % interval)"
            + ("\nbest strength per square" if several.any() else ""),
            fontsize=11,
            fontweight="bold",
        )
        save_figure(fig, path)


# ------------------------------------------------------------------ best accuracy


def plot_best_accuracy(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation and test accuracy of the chosen setting per loss and regularizer.

    Bars show the mean over seeds, error bars its 95 % Wilson interval over the split's
    images; with several seeds each seed is a dot. Each tick names the chosen strength,
    learning rate and batch size.
    """
    settings = settings_table(runs)
    picked = choose(settings, ["features", "loss", "regularizer"])
    rows = panel_keys(runs)
    regs = unique(runs["regularizer"])
    many_seeds = runs["seed"].nunique() > 1
    top = float(
        np.nanmax(picked[["val_high", "test_high", "val_acc_mean"]].to_numpy(), initial=chance)
    )

    with theme():
        width = max(1.0 + 1.35 * len(regs), 7.5)
        fig = Figure(figsize=(width, 3.6 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, (features, loss) in zip(axes, rows, strict=True):
            ticks = []
            for x, reg in enumerate(regs):
                r = picked[
                    (picked["features"] == features)
                    & (picked["loss"] == loss)
                    & (picked["regularizer"] == reg)
                ]
                if r.empty:
                    ticks.append(f"{reg}\n(no ok setting)")
                    continue
                r = r.iloc[0]
                strength = strength_text(reg, r["strength"])
                strength = f"\n({strength})" if strength else ""
                ticks.append(
                    f"{reg}{strength}\nlr {fmt_lr(r['learning_rate'])}, B {int(r['batch_size'])}"
                )
                for offset, split, name in ((-0.2, "val", "validation"), (0.2, "test", "test")):
                    mean, low, high = r[f"{split}_acc_mean"], r[f"{split}_low"], r[f"{split}_high"]
                    yerr = None
                    if np.isfinite(low):
                        yerr = [[mean - low], [high - mean]]
                    ax.bar(
                        x + offset,
                        mean,
                        width=0.38,
                        color=SPLIT_COLORS[name],
                        yerr=yerr,
                        capsize=4,
                        label=name if x == 0 or not ax.get_legend_handles_labels()[1] else None,
                    )
                    ax.text(
                        x + offset,
                        mean / 2,
                        f"{mean:.4f}",
                        rotation=90,
                        ha="center",
                        va="center",
                        color="white",
                        fontsize=8,
                        fontweight="bold",
                    )
                    if many_seeds:
                        seeds = runs[
                            (runs["features"] == features)
                            & (runs["loss"] == loss)
                            & (runs["regularizer"] == reg)
                            & (runs["strength"] == r["strength"])
                            & (runs["batch_size"] == r["batch_size"])
                            & (runs["learning_rate"] == r["learning_rate"])
                        ]
                        ax.plot(
                            np.full(len(seeds), x + offset),
                            seeds[f"{split}_acc"],
                            "o",
                            ms=3,
                            color="black",
                        )
            ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.2f})")
            ax.set_xticks(range(len(regs)), ticks, fontsize=8)
            ax.set_ylim(0, min(1.0, top + 0.08))
            ax.set_xlabel("regularizer (chosen strength, learning rate, batch size B)")
            ax.set_ylabel("accuracy (95 % interval)")
            ax.set_title(panel_name(features, loss, runs))
            ax.legend(title=None, fontsize=8, loc="upper right", ncols=3)
        fig.suptitle(
            "Best setting per loss and regularizer (chosen by validation accuracy)"
            + ("; dots: seeds" if many_seeds else ""),
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


# ---------------------------------------------------------------- time vs accuracy


def plot_time_accuracy(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy (95 % Wilson interval) against training time, one point per cell.

    Colour: batch size; marker: loss. Cells not ``ok`` are grey, one marker per status;
    the best cell (chosen by validation accuracy) is circled.
    """
    data = runs.copy()
    many_features = data["features"].nunique() > 1
    # The marker legend is titled by this column's name.
    model = "loss (features)" if many_features else "loss"
    data[model] = data["loss"] + (" (" + data["features"] + ")" if many_features else "")
    data["batch size"] = data["batch_size"].astype(str)
    batches = [str(b) for b in sorted(unique(data["batch_size"]))]
    models = unique(data[model])
    drawable = data["val_acc"].notna() & (data["train_seconds"] > 0)
    ok = data[(data["status"] == "ok") & drawable]
    best = chosen_cells(runs)

    with theme():
        fig = Figure(figsize=(8.4, 5.2), layout="constrained")
        ax = fig.subplots()
        if not ok.empty:
            bounds = np.array(
                [
                    wilson_interval(a, np.nan if pd.isna(n) else n)
                    for a, n in zip(ok["val_acc"], ok["val_images"], strict=True)
                ]
            )
            if np.isfinite(bounds).all():
                ax.errorbar(
                    ok["train_seconds"],
                    ok["val_acc"],
                    yerr=[ok["val_acc"] - bounds[:, 0], bounds[:, 1] - ok["val_acc"]],
                    fmt="none",
                    ecolor="0.75",
                    lw=0.8,
                    zorder=1,
                )
            sns.scatterplot(
                data=ok,
                x="train_seconds",
                y="val_acc",
                hue="batch size",
                hue_order=batches,
                palette=sns.color_palette("viridis", len(batches)),
                style=model,
                markers=dict(zip(models, itertools.cycle(MODEL_MARKERS), strict=False)),
                s=45,
                alpha=0.85,
                ax=ax,
            )
        for status in STATUSES[1:]:
            bad = data[(data["status"] == status) & drawable]
            if not bad.empty:
                ax.scatter(
                    bad["train_seconds"],
                    bad["val_acc"],
                    marker=STATUS_MARKER[status],
                    color=NOT_OK_COLOR,
                    s=36,
                    label=f"{status} cell",
                )
        if not best.empty:
            b = best.iloc[0]
            ax.scatter(
                [b["train_seconds"]],
                [b["val_acc"]],
                s=260,
                facecolor="none",
                edgecolor=BEST_COLOR,
                lw=1.8,
                label="best (validation accuracy)",
            )
        ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.2f})")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set_xlabel("training time per cell (seconds, log scale)")
        ax.set_ylabel("validation accuracy (95 % interval)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title("Validation accuracy vs training time (one point per cell)")
        if not drawable.any():
            note(ax, "no cell with a finite accuracy")
        save_figure(fig, path)


# ---------------------------------------------------------------------- confusion


def load_confusion(metrics_json: str | os.PathLike[str], n_classes: int) -> np.ndarray:
    """The ``test_confusion`` matrix (rows = true class) of a cell's ``metrics.json``."""
    try:
        matrix = np.asarray(
            json.loads(Path(metrics_json).read_text())["test_confusion"], dtype=float
        )
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise LinbenchError(f"{metrics_json}: cannot read test_confusion ({err!r})") from None
    if matrix.shape != (n_classes, n_classes):
        raise LinbenchError(
            f"{metrics_json}: test_confusion has shape {matrix.shape}, "
            f"expected ({n_classes}, {n_classes}) for the class names of splits.json"
        )
    return matrix


def plot_confusion(
    confusion: np.ndarray, classes: Sequence[str], cell: pd.Series, path: str | os.PathLike[str]
) -> None:
    """Row-normalised test confusion matrix of one cell: each row sums to 100 %.

    Squares show the percentage of a true class predicted as each class (the diagonal
    is the per-class recall); tick labels give the class names and true-class counts.
    """
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(100 * confusion, totals, out=np.zeros_like(confusion), where=totals > 0)
    n = len(classes)
    with theme("white"):
        fig = Figure(figsize=(1.8 + 0.62 * n, 1.4 + 0.55 * n), layout="constrained")
        ax = fig.subplots()
        sns.heatmap(
            share,
            ax=ax,
            vmin=0,
            vmax=100,
            cmap="Blues",
            annot=True,
            fmt=".0f",
            annot_kws={"fontsize": 8},
            square=True,
            linewidths=0.4,
            linecolor="white",
            cbar_kws={"label": "share of the true class (%)", "shrink": 0.8},
        )
        ax.set_xticks(np.arange(n) + 0.5, classes, rotation=45, ha="right")
        ax.set_yticks(
            np.arange(n) + 0.5,
            [f"{c} ({int(t)})" for c, t in zip(classes, totals[:, 0], strict=True)],
            rotation=0,
        )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class (test images)")
        total = max(confusion.sum(), 1)
        acc = np.trace(confusion) / total
        low, high = wilson_interval(acc, total)
        ax.set_title(
            "Test confusion matrix of the best model (chosen by validation accuracy)\n"
            f"{cell_label(cell)}: test accuracy {acc:.4f} [{low:.3f}, {high:.3f}]",
            fontsize=10,
        )
        save_figure(fig, path)


# -------------------------------------------------------------- rule entry points


def sweep_runs(runs: str) -> pd.DataFrame:
    """The cells of the learning rate x batch size sub-grid only (``runs.csv`` at `runs`):
    a heatmap that mixed in another sub-grid's seeds and strengths would crown them."""
    return subgrid_runs(read_runs_csv(runs), SWEEP_SUBGRID)


def draw_heatmaps(runs: str, splits: str, path: str) -> None:
    """Rule ``plot_val_heatmaps``."""
    plot_val_heatmaps(sweep_runs(runs), path, chance=chance_level(splits))


def draw_best_accuracy(runs: str, splits: str, path: str) -> None:
    """Rule ``plot_best_accuracy``."""
    plot_best_accuracy(sweep_runs(runs), path, chance=chance_level(splits))


def draw_time_accuracy(runs: str, splits: str, path: str) -> None:
    """Rule ``plot_time_accuracy``."""
    plot_time_accuracy(sweep_runs(runs), path, chance=chance_level(splits))


def draw_confusion(runs: str, splits: str, path: str, metrics: Sequence[str] = ()) -> None:
    """Rule ``plot_confusion``: the best cell's matrix (only its ``metrics.json`` is read:
    one of `metrics`, or without them the one in the cell's folder, ``cell_dir``)."""
    table = read_runs_csv(runs)
    classes = read_classes(splits)
    best = chosen_cells(table)
    if best.empty:
        # Still a figure (and a report): the message says why there is no matrix.
        placeholder(path, "Test confusion matrix", "no setting ended ok on every seed")
        return
    cell = best.iloc[0]
    by_dir = {str(Path(p).parent): p for p in metrics} or {
        cell["cell_dir"]: str(Path(cell["cell_dir"]) / "metrics.json")
    }
    if cell["cell_dir"] not in by_dir or not Path(by_dir[cell["cell_dir"]]).exists():
        raise LinbenchError(f"{cell['cell_dir']}: metrics.json of the best cell is missing")
    plot_confusion(load_confusion(by_dir[cell["cell_dir"]], len(classes)), classes, cell, path)
