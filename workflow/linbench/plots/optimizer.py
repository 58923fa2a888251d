"""Batch size against learning rate (issue 20): steps against images to each target with the
fitted McCandlish curve, suboptimality F - F* against work and time, and the best rate
against the batch size.

The numbers come from :mod:`linbench.optimizer`; each figure function takes the progress
table, the targets (relative excess over F*) and the PNG path. One panel column per loss
(per problem for the suboptimality curves); a problem with too little data gets a note
in its panel, a table that cannot be analysed a placeholder figure saying why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import optimizer as opt
from ..text import fmt_strength
from .style import REG_COLORS, fmt_log_tick, lr_colors, note, placeholder, save_figure, theme

FEATURE_MARKERS = "osD^vP"
NOT_REACHED = "no batch size reached this target\nat a rate every seed reached it with"


def _analyse(
    progress: pd.DataFrame, targets: Iterable[float], path, title: str, *, fits: bool = True
):
    """(reached, best, table, targets), or None after drawing a placeholder saying why;
    without `fits` (a figure that draws no fit), table is None: the bootstrap is skipped."""
    try:
        targets = opt.check_targets(targets)
        reached = opt.time_to_targets(progress, targets)
        best = opt.best_rates(reached)
        table = opt.critical_table(progress, targets, reached=reached) if fits else None
    except ValueError as error:
        placeholder(path, title, f"cannot analyse the progress table:\n{error}")
        return None
    return reached, best, table, sorted(targets, reverse=True)  # rows: loosest first


class _Grid(NamedTuple):
    best: pd.DataFrame
    table: pd.DataFrame
    targets: list[float]
    losses: list[str]
    features: list[str]
    fig: Figure
    axes: np.ndarray


def _target_grid(
    progress: pd.DataFrame, targets: Iterable[float], path, title: str
) -> _Grid | None:
    """What a figure of one panel per target (rows) and loss (columns) needs, or None after
    a placeholder saying why. Call inside ``theme()``."""
    analysed = _analyse(progress, targets, path, title)
    if analysed is None:
        return None
    _, best, table, targets = analysed
    losses = list(dict.fromkeys(progress["loss"]))
    features = list(dict.fromkeys(progress["features"]))
    fig, axes = _figure(len(targets), len(losses))
    return _Grid(best, table, targets, losses, features, fig, axes)


def _problems(frame: pd.DataFrame) -> list[tuple]:
    """The problems of one loss, in table order."""
    keys = ["features", "train_size", "regularizer", "strength"]
    return list(dict.fromkeys(frame[keys].itertuples(index=False, name=None)))


def _style(problem: tuple, features: list[str]) -> dict:
    feats, _, reg, strength = problem
    return {
        "color": REG_COLORS.get(reg, "0.3"),
        "marker": FEATURE_MARKERS[features.index(feats) % len(FEATURE_MARKERS)],
        "label": f"{fmt_strength(reg, strength)}" + (f" ({feats})" if len(features) > 1 else ""),
    }


def _select(frame: pd.DataFrame, loss: str, problem: tuple, target=None) -> pd.DataFrame:
    feats, size, reg, strength = problem
    keep = (
        (frame["loss"] == loss)
        & (frame["features"] == feats)
        & (frame["train_size"] == size)
        & (frame["regularizer"] == reg)
        & (frame["strength"] == strength)
    )
    if target is not None:
        keep &= frame["target"] == target
    return frame[keep]


def _log_axes(ax) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(fmt_log_tick)
    ax.yaxis.set_major_formatter(fmt_log_tick)


def _figure(n_rows: int, n_cols: int, width: float = 4.6, height: float = 3.6):
    # at least 8 inches wide, so that one panel still has room for the two-line title
    size = (max(8.0, 1.2 + width * n_cols), 1.4 + height * n_rows)
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _finish(fig: Figure, title: str, how: str, path) -> None:
    fig.suptitle(f"{title}\n{how}", fontsize=11, fontweight="bold")
    save_figure(fig, path)


def _panels(progress: pd.DataFrame, grid: _Grid):
    """The panels of a target grid (a target per row, a loss per column), each titled, with
    what it draws: yields (ax, column, series, problems), where series holds (k, points,
    table row or None, style) for the problems (the k-th of `problems`) whose best runs
    reached the target. A panel where none did is marked and not yielded."""
    for i, target in enumerate(grid.targets):
        for j, loss in enumerate(grid.losses):
            ax = grid.axes[i, j]
            ax.set_title(f"{loss}, {opt.target_text(target)}", fontsize=10)
            problems = _problems(progress[progress["loss"] == loss])
            series = []
            for k, problem in enumerate(problems):
                points = _select(grid.best, loss, problem, target).sort_values("batch_size")
                if points.empty:
                    continue
                row = _select(grid.table, loss, problem, target)
                style = _style(problem, grid.features)
                series.append((k, points, row.iloc[0] if len(row) else None, style))
            if not series:
                note(ax, NOT_REACHED)
                continue
            yield ax, j, series, len(problems)


# ----------------------------------------------------------------------------- steps vs images


def plot_steps_vs_images(
    progress: pd.DataFrame, targets: Iterable[float], path: str | os.PathLike[str]
) -> None:
    """Steps S against images E to each target (rows) per loss (columns), log-log: one point
    per batch size at its best rate (mean over seeds, bars: one standard deviation), the
    fitted S/S_min - 1 = (E/E_min - 1)^-1 dashed, B_crit (where E = 2 E_min, S = 2 S_min)
    starred."""
    title = "Steps against images to reach each target"
    with theme():
        grid = _target_grid(progress, targets, path, title)
        if grid is None:
            return
        for ax, j, series, _ in _panels(progress, grid):
            for k, points, row, style in series:
                ax.errorbar(
                    points["images"],
                    points["steps"],
                    xerr=points["images_std"],
                    yerr=points["steps_std"],
                    fmt=style["marker"],
                    color=style["color"],
                    label=style["label"],
                    capsize=2,
                    ms=6,
                )
                for _, p in points.iterrows():
                    ax.annotate(
                        opt.batch_text(p["batch_size"], bool(p["full_batch"])).split(" ")[0],
                        (p["images"], p["steps"]),
                        xytext=(4, 4 - 12 * (k % 2)),  # problems alternate above/below
                        textcoords="offset points",
                        fontsize=7,
                        color="0.3",
                    )
                if row is not None:
                    _draw_fit(ax, row, points, style["color"])
            _log_axes(ax)
            ax.set_xlabel("images processed E")
            ax.set_ylabel("steps S" if j == 0 else "")
            ax.legend(fontsize=7, loc="upper right")
        _finish(
            grid.fig,
            title,
            "(best rate per batch size, mean over seeds, bars: one sd over seeds;\n"
            "dashed: the fitted S/S_min - 1 = (E/E_min - 1)^-1; star: B_crit)",
            path,
        )


def _draw_fit(ax, row: pd.Series, points: pd.DataFrame, color) -> None:
    s_min, b_crit = float(row["S_min"]), float(row["B_crit"])
    if not (math.isfinite(s_min) and 0 < b_crit < math.inf and s_min > 0):
        return
    lo, hi = float(points["batch_size"].min()), float(points["batch_size"].max())
    sizes = np.geomspace(min(lo, b_crit) / 2, max(hi, b_crit) * 2, 200)
    steps = s_min * (1 + b_crit / sizes)
    ax.plot(sizes * steps, steps, ls="--", lw=1, color=color)
    ax.plot(
        [2 * s_min * b_crit],
        [2 * s_min],
        marker="*",
        ms=13,
        color=color,
        mec="black",
        ls="none",
        label=f"B_crit ≈ {opt.about(b_crit)}",
    )


# ----------------------------------------------------------------------------- suboptimality


def plot_suboptimality(
    progress: pd.DataFrame, targets: Iterable[float], path: str | os.PathLike[str]
) -> None:
    """F - F* against images processed (top row) and wall time (bottom row), log-log, one
    column per problem: one line per batch size at its best rate for the deepest target it
    reached (the median seed's run), full-batch gradient descent included; the targets as
    horizontal lines."""
    title = "Suboptimality F - F* against work and time"
    analysed = _analyse(progress, targets, path, title, fits=False)
    if analysed is None:
        return
    reached, best, _, targets = analysed
    columns = [
        (loss, problem)
        for loss in dict.fromkeys(progress["loss"])
        for problem in _problems(progress[progress["loss"] == loss])
    ]
    stars = opt.optimum(progress)
    with theme():
        fig, axes = _figure(2, len(columns), width=4.2, height=3.2)
        for j, (loss, problem) in enumerate(columns):
            f_star = float(_select(stars, loss, problem)["F_star"].iloc[0])
            here = _select(best, loss, problem)
            sizes = sorted(_select(reached, loss, problem)["batch_size"].unique())
            colors = dict(zip(sizes, lr_colors(len(sizes)), strict=True))
            feats, _, reg, strength = problem
            name = f"{loss}, {fmt_strength(reg, strength)}"
            if progress["features"].nunique() > 1:
                name += f" ({feats})"
            for i, (measure, label) in enumerate(
                (("images", "images processed"), ("seconds", "wall time (s)"))
            ):
                ax = axes[i, j]
                ax.set_title(name, fontsize=10)
                if not math.isfinite(f_star):
                    note(ax, "no finite objective: every run diverged")
                    continue
                for size in sizes:
                    record, rate, full, fallback = _median_run(
                        progress, reached, here, loss, problem, size
                    )
                    gap = record["objective"].to_numpy(float) - f_star
                    x = record[measure].to_numpy(float)
                    keep = (gap > 0) & (x > 0) & np.isfinite(gap)
                    if measure == "seconds":  # the start took no time: from the first step
                        keep &= record["step"].to_numpy() > 0
                    ax.plot(
                        x[keep],
                        gap[keep],
                        color=colors[size],
                        lw=1.4,
                        label=f"{opt.batch_text(size, full)}, lr {rate:.2g}"
                        + (" *" if fallback else ""),
                    )
                for t in targets:
                    ax.axhline(t * f_star, color="0.4", ls=":", lw=1)
                    ax.annotate(
                        f"{100 * t:.3g} %",
                        (1, t * f_star),
                        xycoords=("axes fraction", "data"),
                        xytext=(-2, 2),
                        textcoords="offset points",
                        ha="right",
                        fontsize=7,
                        color="0.35",
                    )
                _log_axes(ax)
                ax.set_xlabel(label)
                ax.set_ylabel("F - F*" if j == 0 else "")
                if i == 0:
                    ax.legend(fontsize=7, loc="lower left", title="batch", title_fontsize=7)
        _finish(
            fig,
            title,
            "(each batch size at its best rate for the deepest target it reached, median seed;\n"
            "*: reached no target, the rate with the lowest F; dotted: the targets, "
            "F = (1 + t) F*)",
            path,
        )


def _median_run(progress, reached, best, loss, problem, size):
    """(records, rate, full_batch, fallback) of the median seed at `size`'s best rate for
    the deepest target it has one for. A batch size with no best rate (``fallback`` true)
    shows the rate whose seeds reached the lowest objective (median over seeds), runs that
    never diverged first, so that the figure still shows how far it got."""
    mine = best[best["batch_size"] == size].sort_values("target")
    records = _select(progress, loss, problem)
    records = records[records["batch_size"] == size]
    if len(mine):
        chosen = mine.iloc[0]
        rate, full = float(chosen["learning_rate"]), bool(chosen["full_batch"])
        runs = _select(reached, loss, problem, chosen["target"])
        runs = runs[(runs["batch_size"] == size) & (runs["learning_rate"] == rate)]
        order = runs.sort_values(["steps", "seed"])["seed"]
    else:
        lowest = records.groupby(["learning_rate", "seed"])["objective"].min().fillna(np.inf)
        diverged = records.groupby(["learning_rate", "seed"])["status"].first() == "diverged"
        per_rate = pd.DataFrame({"low": lowest, "bad": diverged}).groupby(level=0)
        ranked = pd.DataFrame(
            {"bad": per_rate["bad"].any(), "low": per_rate["low"].median()}
        ).sort_values(["bad", "low"])
        rate, full = float(ranked.index[0]), bool(records["full_batch"].iloc[0])
        order = lowest.loc[rate].sort_values().index.to_series()
    seed = order.iloc[(len(order) - 1) // 2]
    run = records[(records["learning_rate"] == rate) & (records["seed"] == seed)]
    return run.sort_values("step"), rate, full, len(mine) == 0


# ----------------------------------------------------------------------------- best rate


def plot_best_rate(
    progress: pd.DataFrame, targets: Iterable[float], path: str | os.PathLike[str]
) -> None:
    """The best learning rate against the batch size, log-log, per loss (columns) and
    target (rows): the fitted log-log slope (solid) and reference slopes 1 (dashed) and
    0.5 (dotted) through the fit's middle point; a ringed point sat at the edge of the
    rates tried."""
    title = "Best learning rate against batch size"
    with theme():
        grid = _target_grid(progress, targets, path, title)
        if grid is None:
            return
        for ax, j, series, problems in _panels(progress, grid):
            referenced = False
            for k, points, row, style in series:
                # best rates sit on the rate grid and often coincide between problems:
                # nudge each problem's points sideways (a few per cent of a batch size)
                nudge = 1.08 ** (k - (problems - 1) / 2)
                label = style["label"]
                if row is not None and math.isfinite(float(row["slope"])):
                    label += f": slope {float(row['slope']):.2f}"
                ax.plot(
                    points["batch_size"] * nudge,
                    points["learning_rate"],
                    marker=style["marker"],
                    color=style["color"],
                    ls="none",
                    ms=7,
                    label=label,
                )
                edge = points[points["rate_edge"] != ""]
                ax.plot(
                    edge["batch_size"] * nudge,
                    edge["learning_rate"],
                    marker="o",
                    mfc="none",
                    mec="black",
                    ms=13,
                    ls="none",
                )
                if row is not None:
                    referenced |= _draw_slopes(ax, row, points, style["color"], not referenced)
            _log_axes(ax)
            ax.set_xlabel("batch size (full batch: the training set)")
            ax.set_ylabel("best learning rate" if j == 0 else "")
            handles, _ = ax.get_legend_handles_labels()
            handles += [
                Line2D([], [], color="0.4", ls="--", label="slope 1 (linear)"),
                Line2D([], [], color="0.4", ls=":", label="slope 0.5 (square root)"),
                Line2D(
                    [], [], marker="o", mfc="none", mec="black", ls="none", label="rate at edge"
                ),
            ]
            ax.legend(handles=handles, fontsize=7, loc="upper left")
        _finish(
            grid.fig,
            title,
            "(fewest steps to the target, every seed reaching it; solid: fitted log-log slope)",
            path,
        )


def _draw_slopes(ax, row: pd.Series, points: pd.DataFrame, color, references: bool) -> bool:
    """The fitted line, and (once per panel) slopes 1 and 0.5 through its middle point."""
    slope, intercept = float(row["slope"]), float(row["slope_intercept"])
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        return False
    sizes = np.geomspace(points["batch_size"].min(), points["batch_size"].max(), 50)
    ax.plot(sizes, 10**intercept * sizes**slope, color=color, lw=1.2)
    if references:
        middle = math.exp(np.log(points["batch_size"].astype(float)).mean())
        at = 10**intercept * middle**slope
        for power, ls in ((1.0, "--"), (0.5, ":")):
            ax.plot(sizes, at * (sizes / middle) ** power, color="0.4", ls=ls, lw=1)
    return True


# ----------------------------------------------------------------------------- rule entry points


def _draw(plot, title: str, progress: str, targets, path: str, subgrid: str | None) -> None:
    """Read ``progress.csv`` (a LinbenchError names it if unreadable), keep `subgrid`'s cells
    and draw; a sub-grid without records gets a placeholder saying so."""
    table = opt.subgrid_progress(opt.read_progress(progress), subgrid)
    if table.empty:
        placeholder(path, title, f"{progress} has no progress records of sub-grid {subgrid!r}")
        return
    plot(table, targets, path)


def draw_steps_vs_images(
    progress: str, targets: Iterable[float], path: str, subgrid: str | None = None
) -> None:
    """Rule plot_steps_vs_images: ``progress.csv`` -> :func:`plot_steps_vs_images`."""
    _draw(plot_steps_vs_images, "Steps against images", progress, targets, path, subgrid)


def draw_suboptimality(
    progress: str, targets: Iterable[float], path: str, subgrid: str | None = None
) -> None:
    """Rule plot_suboptimality: ``progress.csv`` -> :func:`plot_suboptimality`."""
    _draw(plot_suboptimality, "Suboptimality", progress, targets, path, subgrid)


def draw_best_rate(
    progress: str, targets: Iterable[float], path: str, subgrid: str | None = None
) -> None:
    """Rule plot_best_rate: ``progress.csv`` -> :func:`plot_best_rate`."""
    _draw(plot_best_rate, "Best learning rate", progress, targets, path, subgrid)
