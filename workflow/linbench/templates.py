"""Learned templates: what each class's weight column W[:, c] looks for, as a picture.

A linear classifier scores class c with ``x @ W[:, c] + b[c]``: the column is a *template*
matched against the features. Drawn in the space the features come from, it shows what
the model learned (CS231n's "car template": a red front, a dark road):

``pixels`` blocks
    W[:, c] reshaped to the image (H, W, 3) in the order :func:`linbench.features.
    pixel_features` produces (row, column, channel), min-max scaled to 0-255 per template.
``hog`` blocks
    the positive weights per cell and orientation bin (:func:`hog_cell_weights`) drawn as
    skimage draws a HOG (:func:`hog_glyphs`): in each cell, one line per bin through the
    cell centre, perpendicular to the bin's gradient direction (along the edge), brighter
    for larger weights. Per-colour-channel HOG (``channel_axis: -1``) keeps the strongest
    channel's gradient at each pixel, so its features have the same layout.

:func:`plot_templates` draws one figure per feature set and loss: one row per
regularizer (the cell with the best validation accuracy, never test accuracy), one
column per class, so sparse L1 templates sit above smooth L2 ones. Other blocks
(``color_hist``) have no picture and are left out.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .errors import LinbenchError
from .names import DRAWABLE_BLOCKS
from .plots.style import load_weights, read_classes, save_figure, weights_by_dir
from .report import chosen_cells, read_runs_csv
from .text import fmt_number, fmt_strength

HOG_TILE_CELL = 16
"""Pixels per HOG cell in a template tile (skimage draws cells at their image size, 8)."""
TILE_INCHES = 1.05


# ---------------------------------------------------------------------------- blocks


def drawable_blocks(blocks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The blocks of a feature set's ``info.json`` that have a template picture.

    Each block is ``{block, start, stop, params}`` (see ``features.describe_blocks``);
    pixels blocks come first, then HOG blocks, each in feature order.
    """
    return [
        dict(block) for kind in DRAWABLE_BLOCKS for block in blocks if block.get("block") == kind
    ]


def pixel_template(w: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """One class's pixel weights (H*W*3,) as an (H, W, 3) uint8 image, min-max scaled.

    The features are (row, column, channel) ordered, as ``pixel_features`` ravels an HWC
    image. A constant template becomes mid-gray.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    image = np.asarray(w, dtype=np.float64).reshape(height, width, 3)
    low, high = image.min(), image.max()
    if high <= low:
        return np.full(image.shape, 128, dtype=np.uint8)
    return np.round(255 * (image - low) / (high - low)).astype(np.uint8)


def hog_cell_weights(
    w: np.ndarray, params: Mapping[str, Any], image_shape: Sequence[int]
) -> np.ndarray:
    """Positive HOG weights per cell and orientation: (n_cells_row, n_cells_col, orientations).

    `w` holds one class's weights of a HOG block, in skimage's feature order: blocks of
    ``cells_per_block`` cells, overlapping with a stride of one cell, raveled as
    (n_blocks_row, n_blocks_col, b_row, b_col, orientations). A cell appears in up to
    b_row * b_col blocks (once per block holding it); its value for a bin is the mean of
    the positive weights of those entries, so corner cells (one block) and inner cells
    (four blocks, by default) are on the same scale. Negative weights (evidence against
    the class) are dropped, as in the classic template pictures.
    """
    orientations = int(params["orientations"])
    c_row, c_col = params["pixels_per_cell"]
    b_row, b_col = params["cells_per_block"]
    n_cells_row, n_cells_col = int(image_shape[0]) // c_row, int(image_shape[1]) // c_col
    n_blocks_row, n_blocks_col = n_cells_row - b_row + 1, n_cells_col - b_col + 1
    shape = (n_blocks_row, n_blocks_col, b_row, b_col, orientations)
    w = np.asarray(w, dtype=np.float64)
    if w.size != math.prod(shape):
        raise ValueError(
            f"a HOG block with these parameters has {math.prod(shape)} features, got {w.size}"
        )
    entries = np.maximum(w, 0).reshape(shape)
    total = np.zeros((n_cells_row, n_cells_col, orientations))
    count = np.zeros((n_cells_row, n_cells_col, 1))
    for i in range(b_row):
        for j in range(b_col):
            # Entry (i, j) of block (r, c) is cell (r + i, c + j).
            total[i : i + n_blocks_row, j : j + n_blocks_col] += entries[:, :, i, j]
            count[i : i + n_blocks_row, j : j + n_blocks_col] += 1
    return total / count


def hog_glyphs(
    cell_weights: np.ndarray,
    cell_size: Sequence[int] = (8, 8),
    *,
    antialias: bool = False,
    combine: str = "sum",
) -> np.ndarray:
    """Draw per-cell orientation weights (R, C, O) as skimage draws a HOG: (R*h, C*w) float.

    Geometry as ``skimage.feature.hog(visualize=True)``: in each cell of `cell_size`
    (h, w) pixels, bin o (gradient angle around ``(o + 0.5) * 180 / O`` degrees) is a line
    of half-length ``min(h, w) // 2 - 1`` through the cell centre, perpendicular to the
    gradient, i.e. along the edge; its pixels get the bin's weight. The defaults
    (``combine="sum"``: weights of lines crossing a pixel add up; no antialiasing)
    reproduce skimage's picture for a histogram. For display, ``combine="max"`` keeps the
    strongest line at each pixel (the centre does not outshine the lines) and
    `antialias` smooths lines drawn on larger cells.
    """
    from skimage import draw  # here: only figures need it

    cell_weights = np.asarray(cell_weights, dtype=np.float64)
    n_rows, n_cols, orientations = cell_weights.shape
    c_row, c_col = int(cell_size[0]), int(cell_size[1])
    radius = min(c_row, c_col) // 2 - 1
    midpoints = np.pi * (np.arange(orientations) + 0.5) / orientations
    dr, dc = radius * np.sin(midpoints), radius * np.cos(midpoints)
    image = np.zeros((n_rows * c_row, n_cols * c_col))
    for r in range(n_rows):
        for c in range(n_cols):
            centre = (r * c_row + c_row // 2, c * c_col + c_col // 2)
            for o in range(orientations):
                ends = (
                    int(centre[0] - dc[o]),
                    int(centre[1] + dr[o]),
                    int(centre[0] + dc[o]),
                    int(centre[1] - dr[o]),
                )
                if antialias:
                    rr, cc, value = draw.line_aa(*ends)
                    keep = (rr < image.shape[0]) & (cc < image.shape[1]) & (rr >= 0) & (cc >= 0)
                    rr, cc, value = rr[keep], cc[keep], value[keep] * cell_weights[r, c, o]
                else:
                    rr, cc = draw.line(*ends)
                    value = cell_weights[r, c, o]
                if combine == "sum":
                    image[rr, cc] += value
                elif combine == "max":
                    image[rr, cc] = np.maximum(image[rr, cc], value)
                else:
                    raise ValueError(f"combine must be 'sum' or 'max', got {combine!r}")
    return image


def hog_template(
    w: np.ndarray, params: Mapping[str, Any], image_shape: Sequence[int]
) -> np.ndarray:
    """One class's HOG weights as a glyph picture in [0, 1], scaled to its own maximum.

    Cells are drawn :data:`HOG_TILE_CELL` pixels wide (the cell's aspect ratio kept),
    antialiased, with the strongest line at each pixel. All-zero when no weight is > 0.
    """
    c_row, c_col = params["pixels_per_cell"]
    scale = max(1, round(HOG_TILE_CELL / min(c_row, c_col)))
    picture = hog_glyphs(
        hog_cell_weights(w, params, image_shape),
        (c_row * scale, c_col * scale),
        antialias=True,
        combine="max",
    )
    top = picture.max()
    return picture / top if top > 0 else picture


def block_tiles(W: np.ndarray, block: Mapping[str, Any], image_shape: Sequence[int]) -> list:
    """One picture per class (column of W (D, C)) for a drawable block of ``info.json``."""
    part = np.nan_to_num(np.asarray(W, dtype=np.float64)[block["start"] : block["stop"]])
    if block["block"] == "pixels":
        return [pixel_template(part[:, c], image_shape) for c in range(part.shape[1])]
    return [hog_template(part[:, c], block["params"], image_shape) for c in range(part.shape[1])]


# ---------------------------------------------------------------------------- figure


@dataclass
class TemplateRow:
    """One row of a template figure: a block's templates of one regularizer's chosen cell.

    `tiles` is None when no setting of the regularizer can be chosen (none ended ``ok``
    on every seed);
    `cell` is then None too.
    """

    block: str
    regularizer: str
    label: str
    tiles: list[np.ndarray] | None
    cell: pd.Series | None = field(default=None, repr=False)


@dataclass
class TemplateLayout:
    """What a template figure shows: `rows` x `classes` tiles (one axes each)."""

    rows: list[TemplateRow]
    classes: list[str]
    omitted: list[str] = field(default_factory=list)
    """Blocks of the feature set without a picture (e.g. ``color_hist``)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of tiles."""
        return len(self.rows), len(self.classes)


def _row_label(block: str, regularizer: str, cell: pd.Series | None, several: bool) -> str:
    head = f"{block} · " if several else ""
    if cell is None:
        return f"{head}{regularizer}\nno ok setting"
    return (
        f"{head}{fmt_strength(regularizer, cell['strength'])}\n"
        f"lr {fmt_number(cell['learning_rate'])}, batch {int(cell['batch_size'])}\n"
        f"val acc {cell['val_acc']:.3f}"
    )


def template_layout(
    runs: pd.DataFrame,
    weights_files: Mapping[str, str | os.PathLike[str]],
    info: Mapping[str, Any],
    classes: Sequence[str],
    features: str,
    loss: str,
) -> TemplateLayout:
    """The rows of the template figure of one feature set and loss.

    `runs` is the runs table (``runs.csv``); per regularizer (grid order) the cell with
    the best validation accuracy is chosen as everywhere in the report
    (:func:`linbench.report.chosen_cells`: mean over seeds, every seed ``ok``, then the
    best seed) and its weights are read from `weights_files` (cell folder -> weights.npz).
    `info` is the feature set's ``info.json``. One group of rows per drawable block.
    """
    cells = runs[(runs["features"] == features) & (runs["loss"] == loss)]
    if cells.empty:
        raise LinbenchError(f"runs.csv has no cell with features {features!r} and loss {loss!r}")
    blocks = drawable_blocks(info["blocks"])
    if not blocks:
        raise LinbenchError(f"feature set {features!r} has no pixels or hog block to draw")
    image_shape = info["image_shape"]
    picked = chosen_cells(cells, ["regularizer"]).set_index("regularizer", drop=False)
    weights: dict[str, np.ndarray] = {}
    for cell_dir in picked["cell_dir"]:
        if cell_dir not in weights_files:
            raise LinbenchError(f"{cell_dir}: weights.npz of a chosen cell is not an input")
        W = load_weights(weights_files[cell_dir])
        if W.shape != (info["dimension"], len(classes)):
            raise LinbenchError(
                f"{weights_files[cell_dir]}: W has shape {W.shape}, expected "
                f"({info['dimension']}, {len(classes)}) from info.json and splits.json"
            )
        weights[cell_dir] = W
    rows = []
    for block in blocks:
        for reg in dict.fromkeys(cells["regularizer"]):
            cell = picked.loc[reg] if reg in picked.index else None
            tiles = None
            if cell is not None:
                tiles = block_tiles(weights[cell["cell_dir"]], block, image_shape)
            label = _row_label(block["block"], reg, cell, len(blocks) > 1)
            rows.append(TemplateRow(block["block"], reg, label, tiles, cell))
    omitted = [b["block"] for b in info["blocks"] if b["block"] not in DRAWABLE_BLOCKS]
    return TemplateLayout(rows, list(classes), omitted)


def templates_figure(layout: TemplateLayout, title: str) -> Figure:
    """The tiles of `layout` on a grid: rows labelled on the left, class names on top.

    Exactly ``rows * classes`` axes, one per tile (a row without an ``ok`` setting says so).
    """
    n_rows, n_cols = layout.shape
    kinds = dict.fromkeys(row.block for row in layout.rows)
    notes = {
        "pixels": "pixels: W[:, class] as an image, min-max scaled per tile",
        "hog": "HOG: positive weights per cell and orientation, drawn as HOG glyphs "
        "(lines along edges), scaled per tile",
    }
    rc = {"font.size": 9, "axes.titleweight": "bold", "figure.dpi": 120}
    with mpl.rc_context(rc):
        fig = Figure(
            figsize=(1.9 + TILE_INCHES * n_cols, 1.0 + TILE_INCHES * 1.05 * n_rows),
            layout="constrained",
            facecolor="white",
        )
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for i, row in enumerate(layout.rows):
            for j in range(n_cols):
                ax = axes[i, j]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if i == 0:
                    ax.set_title(layout.classes[j], fontsize=9)
                if row.tiles is None:
                    if j == 0:
                        ax.text(0.5, 0.5, "no ok setting", ha="center", va="center", color="0.4")
                    continue
                tile = row.tiles[j]
                if tile.ndim == 3:
                    ax.imshow(tile, interpolation="nearest")
                else:
                    # Smooth scaling: glyph lines are 1-2 pixels wide at the tile's size.
                    ax.imshow(tile, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
            axes[i, 0].set_ylabel(
                row.label, rotation=0, ha="right", va="center", fontsize=8, labelpad=6
            )
        lines = [title, "; ".join(notes[k] for k in kinds)]
        if layout.omitted:
            lines[-1] += f" ({', '.join(layout.omitted)} weights not drawn)"
        fig.suptitle("\n".join(lines), fontsize=10)
    return fig


def plot_templates(
    runs_csv: str | os.PathLike[str],
    weights_files: Sequence[str | os.PathLike[str]],
    info_json: str | os.PathLike[str],
    splits_json: str | os.PathLike[str],
    features: str,
    loss: str,
    path: str | os.PathLike[str],
) -> TemplateLayout:
    """Rule ``plot_templates``: the template figure of one feature set and loss, as PNG.

    Only the chosen cells' ``weights.npz`` of `weights_files` are read. Returns the layout
    drawn (rows x classes tiles).
    """
    runs = read_runs_csv(runs_csv)
    try:
        info = json.loads(Path(info_json).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LinbenchError(f"{info_json}: cannot read the feature set's info ({err})") from None
    missing = [k for k in ("blocks", "image_shape", "dimension") if k not in info]
    if missing:
        raise LinbenchError(f"{info_json}: missing key(s) {', '.join(missing)}; rerun gather")
    classes = read_classes(splits_json)
    layout = template_layout(runs, weights_by_dir(weights_files), info, classes, features, loss)
    title = (
        f"Learned templates: {loss} on {features} features "
        "(per regularizer, the cell with the best validation accuracy)"
    )
    save_figure(templates_figure(layout, title), path)
    return layout
