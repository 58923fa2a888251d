"""Figures of a finished grid: seaborn on matplotlib's object API, PNG output.

Each ``plot_*`` function takes the tables of :mod:`linbench.report` (and, where it needs
them, the chosen cells' files), draws one figure and writes it atomically. Figures are
built with :class:`matplotlib.figure.Figure`, not pyplot: no GUI backend, no global
figure state, nothing to close. Styling goes through an rc context, so importing this
module changes no global setting.

Settings are chosen as in the summary (:func:`linbench.report.choose`): by mean
validation accuracy over seeds, never on test accuracy, never a setting with a diverged
seed. Diverged cells carry NaN losses and weight statistics and may hold inf/NaN
weights: every function draws what is finite and marks the rest.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..errors import LinbenchError
from ..io import atomic_path
from ..report import (
    SETTING_KEYS,
    choose,
    chosen_cells,
    read_history_csv,
    read_runs_csv,
    settings_table,
)
from ..text import fmt_number, fmt_strength, strength_text

# One colour per regularizer, the same in every figure (colour-blind safe).
REGULARIZERS = ("none", "l1", "l2", "elastic_net", "max_norm", "dropout")
_PALETTE = sns.color_palette("colorblind", 10)
REG_COLORS = dict(zip(REGULARIZERS, _PALETTE, strict=False))
SPLIT_COLORS = {"validation": _PALETTE[0], "test": _PALETTE[1]}
DIVERGED_COLOR = "0.45"
BEST_COLOR = "crimson"
DPI = 120
# |w| below this counts as zero, as in the cells' w_small_share statistic.
SMALL_WEIGHT = 1e-3


# ------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def _theme(style: str = "whitegrid") -> Iterator[None]:
    """Seaborn's look for the figures drawn inside, without touching global rcParams."""
    rc = {**sns.axes_style(style), **sns.plotting_context("notebook", font_scale=0.9)}
    rc.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold"})
    with mpl.rc_context(rc):
        yield


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write `fig` as PNG atomically (a half-written image never appears at `path`)."""
    with atomic_path(path, suffix=".png") as tmp:
        # Every figure uses constrained layout, so no bbox_inches="tight" (a second draw).
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")


def fmt_lr(value: float) -> str:
    """A learning rate in scientific notation for figures: ``$10^{-4}$``, ``$5\\times10^{-3}$``."""
    value = float(value)
    if value <= 0 or not math.isfinite(value):
        return fmt_number(value)
    exp = math.floor(math.log10(value) + 1e-12)
    mant = float(f"{value / 10**exp:.3g}")
    if mant == 1:
        return f"$10^{{{exp}}}$"
    return f"${mant:g}\\times10^{{{exp}}}$"


def _fmt_log_tick(value: float, _pos: object = None) -> str:
    """A log-axis tick: ``0.01``, ``2``, ``1000``; ``$10^{8}$`` beyond that."""
    return f"{value:g}" if 1e-3 <= value < 1e4 else fmt_lr(value)


def lr_colors(n: int) -> list[tuple[float, float, float]]:
    """`n` colours ordered from small to large learning rate, all dark enough on white."""
    cmap = mpl.colormaps["plasma"]
    return [cmap(x)[:3] for x in np.linspace(0.0, 0.82, max(n, 1))]


def _unique(values: Sequence[object] | pd.Series) -> list:
    return list(dict.fromkeys(values))


def _panel_keys(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(features, loss) pairs in grid order: one row of panels each."""
    return _unique(zip(runs["features"], runs["loss"], strict=True))


def _panel_name(features: str, loss: str, runs: pd.DataFrame) -> str:
    return f"{loss} ({features})" if runs["features"].nunique() > 1 else loss


def _cell_label(row: pd.Series) -> str:
    """``svm + l2 (λ = 0.001), batch 128, lr 10^-2, seed 0`` for titles."""
    return (
        f"{row['loss']} + {fmt_strength(row['regularizer'], row['strength'])}, "
        f"batch {int(row['batch_size'])}, "
        f"lr {fmt_lr(row['learning_rate'])}, seed {int(row['seed'])}"
    )


def _note(ax, text: str) -> None:
    """A centred message in an otherwise empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.35")
    # Hide this panel's axes only: clearing its ticks would clear every panel sharing them.
    ax.set_axis_off()


def placeholder(path: str | os.PathLike[str], title: str, message: str) -> None:
    """A small figure that says why the real one could not be drawn."""
    with _theme():
        fig = Figure(figsize=(6, 2.5), layout="constrained")
        ax = fig.subplots()
        _note(ax, message)
        ax.set_title(title)
        save_figure(fig, path)


def read_classes(splits_json: str | os.PathLike[str]) -> list[str]:
    """Class names from ``results/data/splits.json``."""
    try:
        classes = json.loads(Path(splits_json).read_text())["classes"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise LinbenchError(f"{splits_json}: cannot read the class names ({err!r})") from None
    return [str(c) for c in classes]


def load_weights(path: str | os.PathLike[str]) -> np.ndarray:
    """The weight matrix W (D, C) of a cell's ``weights.npz``."""
    try:
        with np.load(path) as data:
            return np.asarray(data["W"], dtype=float)
    except (OSError, KeyError, ValueError) as err:
        raise LinbenchError(f"{path}: cannot read the weights W ({err})") from None


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
        r, g, bl, _ = cmap(norm(values[a, b]))
        # Dark text on light squares, light on dark (relative luminance, as seaborn does).
        light = 0.2126 * r + 0.7152 * g + 0.0722 * bl > 0.45
        ax.text(
            b + 0.5,
            a + 0.5,
            text,
            ha="center",
            va="center",
            fontsize=fontsize,
            color="0.1" if light else "white",
        )
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _heatmap_panel(
    group: pd.DataFrame, lrs: list[float], batches: list[int], show_strength: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One panel's squares from its settings (one loss and regularizer).

    Returns (values, annotations, diverged), each of shape (len(lrs), len(batches)):
    the best mean validation accuracy per square (NaN where nothing is eligible), its
    text, and True where cells exist but every one of them diverged.
    """
    picked = choose(group, ["learning_rate", "batch_size"])
    best = {(r.learning_rate, r.batch_size): r for r in picked.itertuples()}
    present = set(zip(group["learning_rate"], group["batch_size"], strict=True))
    shape = (len(lrs), len(batches))
    values, annot = np.full(shape, np.nan), np.full(shape, "", dtype=object)
    diverged = np.zeros(shape, dtype=bool)
    for a, lr in enumerate(lrs):
        for b, batch in enumerate(batches):
            r = best.get((lr, batch))
            if r is None:
                diverged[a, b] = (lr, batch) in present
                continue
            values[a, b] = r.val_acc_mean
            annot[a, b] = f"{r.val_acc_mean:.3f}"
            if show_strength:
                annot[a, b] += "\n" + strength_text(r.regularizer, r.strength)
    return values, annot, diverged


def plot_val_heatmaps(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy over learning rate x batch size, one panel per loss x regularizer.

    Where a regularizer has several strengths, each square shows the best strength there
    (by mean validation accuracy, named under the value). Hatched squares: every cell
    there diverged; outlined: the panel's best square. The colour scale starts at `chance`.
    """
    settings = settings_table(runs)
    rows = _panel_keys(runs)
    regs = _unique(runs["regularizer"])
    lrs = sorted(_unique(runs["learning_rate"]))
    batches = sorted(_unique(runs["batch_size"]))
    ok = settings[(settings["diverged"] == 0) & settings["val_acc_mean"].notna()]
    vmax = float(ok["val_acc_mean"].max()) if not ok.empty else chance + 0.1
    norm = mpl.colors.Normalize(chance, max(vmax, chance + 0.05))
    cmap = sns.color_palette("viridis", as_cmap=True)
    several = settings.groupby("regularizer")["strength"].nunique() > 1

    with _theme("white"):
        # Panels stay legible for tiny grids (one batch size, two rates) too.
        panel_w, panel_h = max(0.62 * len(batches), 1.9), max(0.5 * len(lrs), 1.5)
        fig = Figure(
            figsize=(max(1.6 + panel_w * len(regs), 7.5), 1.0 + panel_h * len(rows)),
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
                values, annot, diverged = _heatmap_panel(group, lrs, batches, show)
                _heatmap(ax, values, annot, norm, cmap, fontsize=7 if show else 8)
                for a, b in zip(*np.nonzero(diverged), strict=True):
                    # Hatch colour = edge colour (matplotlib < 3.10 has no hatchcolor).
                    ax.add_patch(
                        Rectangle(
                            (b, a),
                            1,
                            1,
                            facecolor="0.92",
                            edgecolor=DIVERGED_COLOR,
                            hatch="xxx",
                            linewidth=0,
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
                ax.set_title(f"{_panel_name(features, loss, runs)} · {reg}", fontsize=10)
                ax.set_xlabel("batch size" if i == len(rows) - 1 else "")
                ax.set_ylabel("learning rate" if j == 0 else "")
        fig.colorbar(
            mpl.cm.ScalarMappable(norm, cmap),
            ax=axes,
            shrink=0.8,
            pad=0.01,
            label="validation accuracy (mean over seeds)",
        )
        handles = [
            Patch(
                facecolor="0.92", hatch="xxx", edgecolor=DIVERGED_COLOR, label="every cell diverged"
            ),
            Patch(fill=False, edgecolor=BEST_COLOR, linewidth=2, label="best in panel"),
        ]
        fig.legend(handles=handles, loc="outside lower right", frameon=False, fontsize=9)
        fig.suptitle(
            "Validation accuracy by learning rate and batch size"
            + (" (best strength per square)" if several.any() else ""),
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


# ----------------------------------------------------------------- learning curves


def learning_curve_setting(
    runs: pd.DataFrame, regularizer: str | None = None, batch_size: int | None = None
) -> dict[str, object]:
    """The cells the learning-curve figure shows: all learning rates of one setting per loss.

    Defaults (also when the asked value is not in the grid): regularizer ``none`` (else the
    first), the lower median batch size, the smallest strength and seed, the first
    feature set.
    """
    regs = _unique(runs["regularizer"])
    reg = regularizer if regularizer in regs else ("none" if "none" in regs else regs[0])
    batches = sorted(_unique(runs["batch_size"]))
    batch = int(batch_size) if batch_size in batches else batches[(len(batches) - 1) // 2]
    sub = runs[(runs["regularizer"] == reg) & (runs["batch_size"] == batch)]
    return {
        "features": runs["features"].iloc[0],
        "regularizer": reg,
        "strength": float(sub["strength"].min()),
        "batch_size": batch,
        "seed": int(sub["seed"].min()),
    }


def plot_learning_curves(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    path: str | os.PathLike[str],
    regularizer: str | None = None,
    batch_size: int | None = None,
) -> None:
    """Training loss (log scale) and validation accuracy per epoch, one line per learning rate.

    One column per loss, for one setting and seed (see :func:`learning_curve_setting`). The
    best learning rate (mean validation accuracy over seeds, as in the summary) is drawn
    thicker; a diverged run ends with an ``x`` at its last finite loss.
    """
    setting = learning_curve_setting(runs, regularizer, batch_size)
    keys = ("features", "regularizer", "strength", "batch_size", "seed")
    mask = np.logical_and.reduce([runs[k] == setting[k] for k in keys])
    mask_settings = np.logical_and.reduce([runs[k] == setting[k] for k in keys if k != "seed"])
    cells = runs[mask]
    hmask = np.logical_and.reduce([history[k] == setting[k] for k in keys])
    hist = history[hmask]
    losses = _unique(cells["loss"])
    lrs = sorted(_unique(cells["learning_rate"]))
    colors = dict(zip(lrs, lr_colors(len(lrs)), strict=True))

    with _theme():
        fig = Figure(figsize=(5.2 * len(losses), 7.4), layout="constrained")
        axes = fig.subplots(2, len(losses), squeeze=False, sharex=True)
        for j, loss in enumerate(losses):
            ax_loss, ax_acc = axes[0, j], axes[1, j]
            here = cells[cells["loss"] == loss]
            # "Best" as everywhere: mean validation accuracy over seeds, no diverged seed.
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
                label = fmt_lr(lr)
                width = 1.6
                if cell["diverged"]:
                    epoch = cell["diverged_epoch"]
                    label += " diverged" + ("" if pd.isna(epoch) else f" (epoch {int(epoch)})")
                elif lr == best_lr:
                    label += " best val. acc."
                    width = 3.0
                finite = h[np.isfinite(h["train_loss"]) & (h["train_loss"] > 0)]
                ax_loss.plot(
                    finite["epoch"], finite["train_loss"], color=colors[lr], lw=width, label=label
                )
                accs = h[np.isfinite(h["val_acc"])]
                ax_acc.plot(accs["epoch"], accs["val_acc"], color=colors[lr], lw=width)
                if cell["diverged"]:
                    for ax, frame, col in (
                        (ax_loss, finite, "train_loss"),
                        (ax_acc, accs, "val_acc"),
                    ):
                        if not frame.empty:
                            ax.plot(
                                frame["epoch"].iloc[-1],
                                frame[col].iloc[-1],
                                marker="X",
                                ms=10,
                                color=colors[lr],
                                mec="black",
                                mew=0.8,
                                ls="none",
                            )
            ax_loss.set_yscale("log")
            # Plain numbers (0.01, 2, 1000) unless huge or tiny, and labelled minor ticks
            # when the range is under a decade or two.
            ax_loss.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(_fmt_log_tick))
            ax_loss.yaxis.set_minor_formatter(
                mpl.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
            )
            ax_loss.set_title(f"{_panel_name(setting['features'], loss, runs)}")
            ax_loss.set_ylabel("training loss (log scale)" if j == 0 else "")
            ax_acc.set_ylabel("validation accuracy" if j == 0 else "")
            ax_acc.set_xlabel("epoch")
            ax_acc.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
            ax_loss.legend(
                title="learning rate", fontsize=8, title_fontsize=9, loc="best", framealpha=0.85
            )
            if here.empty:
                _note(ax_loss, "no cells for this setting")
        marker = Line2D(
            [],
            [],
            marker="X",
            ms=9,
            color="0.6",
            mec="black",
            ls="none",
            label="run stopped: loss diverged",
        )
        fig.legend(handles=[marker], loc="outside lower center", frameon=False, fontsize=9)
        reg = fmt_strength(str(setting["regularizer"]), float(setting["strength"]))
        fig.suptitle(
            "Learning curves per learning rate\n"
            f"regularizer {reg}, batch size {setting['batch_size']}, seed {setting['seed']}",
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


# ------------------------------------------------------------------ best accuracy


def plot_best_accuracy(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation and test accuracy of the chosen setting per loss and regularizer.

    Bars show the mean over seeds, error bars one sample standard deviation (only when
    there are several seeds). Each tick names the chosen strength, learning rate and
    batch size.
    """
    settings = settings_table(runs)
    picked = choose(settings, ["features", "loss", "regularizer"])
    rows = _panel_keys(runs)
    regs = _unique(runs["regularizer"])
    many_seeds = runs["seed"].nunique() > 1
    chosen = runs.merge(picked[list(SETTING_KEYS)], on=list(SETTING_KEYS))
    top = float(np.nanmax(chosen[["val_acc", "test_acc"]].to_numpy())) if len(chosen) else chance

    with _theme():
        width = max(1.0 + 1.35 * len(regs), 7.5)
        fig = Figure(figsize=(width, 3.6 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, (features, loss) in zip(axes, rows, strict=True):
            sel = chosen[(chosen["features"] == features) & (chosen["loss"] == loss)]
            ticks = []
            for reg in regs:
                r = picked[
                    (picked["features"] == features)
                    & (picked["loss"] == loss)
                    & (picked["regularizer"] == reg)
                ]
                if r.empty:
                    ticks.append(f"{reg}\n(all diverged)")
                    continue
                r = r.iloc[0]
                strength = strength_text(reg, r["strength"])
                strength = f"\n({strength})" if strength else ""
                ticks.append(
                    f"{reg}{strength}\nlr {fmt_lr(r['learning_rate'])}, B {int(r['batch_size'])}"
                )
            long = sel.melt(
                id_vars=["regularizer"],
                value_vars=["val_acc", "test_acc"],
                var_name="split",
                value_name="accuracy",
            )
            long["split"] = long["split"].map({"val_acc": "validation", "test_acc": "test"})
            sns.barplot(
                data=long,
                x="regularizer",
                y="accuracy",
                hue="split",
                order=regs,
                hue_order=["validation", "test"],
                palette=SPLIT_COLORS,
                errorbar="sd" if many_seeds else None,
                capsize=0.15,
                err_kws={"linewidth": 1.2},
                ax=ax,
            )
            for container in ax.containers:
                ax.bar_label(
                    container,
                    fmt="%.4f",
                    label_type="center",
                    rotation=90,
                    color="white",
                    fontsize=8,
                    fontweight="bold",
                )
            ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.2f})")
            ax.set_xticks(range(len(regs)), ticks, fontsize=8)
            ax.set_ylim(0, min(1.0, top + 0.08))
            ax.set_xlabel("regularizer (chosen strength, learning rate, batch size B)")
            ax.set_ylabel("accuracy" + (" (mean ± sd over seeds)" if many_seeds else ""))
            ax.set_title(_panel_name(features, loss, runs))
            ax.legend(title=None, fontsize=8, loc="upper right", ncols=3)
        fig.suptitle(
            "Best setting per loss and regularizer (chosen by validation accuracy)",
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


# ----------------------------------------------------------------------- weights


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
    rows = _panel_keys(runs)
    regs = _unique(runs["regularizer"])
    weights: dict[str, np.ndarray] = {}
    for cell_dir in picked["cell_dir"]:
        if cell_dir not in weights_files:
            raise LinbenchError(f"{cell_dir}: weights.npz of a chosen cell is not an input")
        weights[cell_dir] = load_weights(weights_files[cell_dir])
    finite_max = [np.abs(W[np.isfinite(W)]).max() for W in weights.values() if np.isfinite(W).any()]
    lim = max([*finite_max, SMALL_WEIGHT]) * 1.02
    bins = np.linspace(-lim, lim, 61)

    with _theme():
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
                title = f"{_panel_name(features, loss, runs)} · {reg}"
                ax.set_title(title, fontsize=10)
                if hit.empty:
                    _note(ax, "every run diverged")
                    continue
                cell = hit.iloc[0]
                W = weights[cell["cell_dir"]]
                w = W[np.isfinite(W)]
                if w.size == 0:
                    _note(ax, "no finite weights")
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
                order = _unique(frame["regularizer"])
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
                _note(ax, "no finite weights")
            ax.set_title(f"{_panel_name(features, loss, runs)} · column norms", fontsize=10)
            ax.set_xlabel("")
            ax.set_ylabel("‖W[:, class]‖₂ (one dot per class)", fontsize=9)
        fig.suptitle(
            "Weights of the chosen model per regularizer (bias not shown)",
            fontsize=12,
            fontweight="bold",
        )
        save_figure(fig, path)


# ---------------------------------------------------------------- time vs accuracy


def plot_time_accuracy(
    runs: pd.DataFrame, path: str | os.PathLike[str], chance: float = 0.1
) -> None:
    """Validation accuracy against training time, one point per cell.

    Colour: batch size; marker: loss. Diverged cells are grey crosses; the best cell
    (chosen by validation accuracy) is circled.
    """
    data = runs.copy()
    many_features = data["features"].nunique() > 1
    # The marker legend is titled by this column's name.
    model = "loss (features)" if many_features else "loss"
    data[model] = data["loss"] + (" (" + data["features"] + ")" if many_features else "")
    data["batch size"] = data["batch_size"].astype(str)
    batches = [str(b) for b in sorted(_unique(data["batch_size"]))]
    models = _unique(data[model])
    ok = data[~data["diverged"] & data["val_acc"].notna() & (data["train_seconds"] > 0)]
    div = data[data["diverged"] & data["val_acc"].notna() & (data["train_seconds"] > 0)]
    best = chosen_cells(runs)

    with _theme():
        fig = Figure(figsize=(8.4, 5.2), layout="constrained")
        ax = fig.subplots()
        if not ok.empty:
            sns.scatterplot(
                data=ok,
                x="train_seconds",
                y="val_acc",
                hue="batch size",
                hue_order=batches,
                palette=sns.color_palette("viridis", len(batches)),
                style=model,
                markers=dict(zip(models, "osD^vP", strict=False)),
                s=45,
                alpha=0.85,
                ax=ax,
            )
        if not div.empty:
            ax.scatter(
                div["train_seconds"],
                div["val_acc"],
                marker="x",
                color=DIVERGED_COLOR,
                s=30,
                label="diverged cell",
            )
        if not best.empty:
            b = best.iloc[0]
            ax.scatter(
                [b["train_seconds"]],
                [b["val_acc"]],
                s=260,
                facecolor="none",
                edgecolor="crimson",
                lw=1.8,
                label="best (validation accuracy)",
            )
        ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.2f})")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set_xlabel("training time per cell (seconds, log scale)")
        ax.set_ylabel("validation accuracy")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title("Validation accuracy vs training time (one point per cell)")
        if ok.empty and div.empty:
            _note(ax, "no cell with a finite accuracy")
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
    with _theme("white"):
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
        acc = np.trace(confusion) / max(confusion.sum(), 1)
        ax.set_title(
            "Test confusion matrix of the best model (chosen by validation accuracy)\n"
            f"{_cell_label(cell)}: test accuracy {acc:.4f}",
            fontsize=10,
        )
        save_figure(fig, path)


# -------------------------------------------------------------- rule entry points


def accuracy_figures(
    runs_csv: str | os.PathLike[str],
    metrics_files: Sequence[str | os.PathLike[str]],
    splits_json: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str]],
) -> None:
    """Rule ``plot_accuracy``: heatmaps, best accuracy, time vs accuracy, confusion matrix.

    `outputs` keys: ``heatmaps``, ``best_accuracy``, ``time_accuracy``, ``confusion``.
    """
    runs = read_runs_csv(runs_csv)
    classes = read_classes(splits_json)
    chance = 1.0 / len(classes)
    plot_val_heatmaps(runs, outputs["heatmaps"], chance=chance)
    plot_best_accuracy(runs, outputs["best_accuracy"], chance=chance)
    plot_time_accuracy(runs, outputs["time_accuracy"], chance=chance)
    best = chosen_cells(runs)
    if best.empty:
        # Still a figure (and a report): the message says why there is no matrix.
        placeholder(outputs["confusion"], "Test confusion matrix", "every cell diverged")
        return
    cell = best.iloc[0]
    by_dir = {str(Path(p).parent): p for p in metrics_files}
    if cell["cell_dir"] not in by_dir:
        raise LinbenchError(f"{cell['cell_dir']}: metrics.json of the best cell is not an input")
    plot_confusion(
        load_confusion(by_dir[cell["cell_dir"]], len(classes)), classes, cell, outputs["confusion"]
    )


def training_figures(
    runs_csv: str | os.PathLike[str],
    history_csv: str | os.PathLike[str],
    weights_files: Sequence[str | os.PathLike[str]],
    outputs: Mapping[str, str | os.PathLike[str]],
    regularizer: str | None = None,
    batch_size: int | None = None,
) -> None:
    """Rule ``plot_training``: learning curves and weight distributions.

    `outputs` keys: ``learning_curves``, ``weights``.
    """
    runs = read_runs_csv(runs_csv)
    history = read_history_csv(history_csv)
    plot_learning_curves(runs, history, outputs["learning_curves"], regularizer, batch_size)
    plot_weights(runs, {str(Path(p).parent): p for p in weights_files}, outputs["weights"])
