"""What every figure shares: the look, colours, status styles, labels and file helpers.

Figures are built with :class:`matplotlib.figure.Figure`, not pyplot: no GUI backend, no
global figure state, nothing to close. Styling goes through an rc context
(:func:`theme`), so importing a plots module changes no global setting.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from ..errors import LinbenchError
from ..io import atomic_path
from ..names import REGULARIZERS, STATUSES
from ..text import fmt_number, fmt_strength

DPI = 120
_PALETTE = sns.color_palette("colorblind", 10)
REG_COLORS = dict(zip(REGULARIZERS, _PALETTE, strict=False))
"""One colour per regularizer, the same in every figure (colour-blind safe)."""
SPLIT_COLORS = {"validation": _PALETTE[0], "test": _PALETTE[1]}
BEST_COLOR = "crimson"
NOT_OK_COLOR = "0.45"
STATUS_HATCH = {"diverged": "xxx", "collapsed": "---", "unstable": "\\\\\\", "mixed": ".."}
"""Hatch of a heatmap square by what its cells ended as; ``mixed``: statuses disagree."""
MODEL_MARKERS = "osD^vPp*hd<>"
"""Markers of the models (loss, or loss and features) in scatter plots, cycled past 12."""
STATUS_MARKER = {"diverged": "X", "collapsed": "v", "unstable": "^"}
"""Marker at the end of a learning curve (or of a cell's point) per non-ok status."""
STATUS_SHORT = {"ok": "ok", "diverged": "div", "collapsed": "coll", "unstable": "unst"}


@contextlib.contextmanager
def theme(style: str = "whitegrid") -> Iterator[None]:
    """Seaborn's look for the figures drawn inside, without touching global rcParams."""
    rc = {**sns.axes_style(style), **sns.plotting_context("notebook", font_scale=0.9)}
    rc.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold"})
    with mpl.rc_context(rc):
        yield


MAX_WIDTH_PX = 2000
"""The widest figure, in pixels: figures are read on a screen (a wider one gets a lower dpi)."""
PNG_COLOURS = 256
"""Colours of a saved figure: plots, colour maps (256 entries) and text need no more, and a
palette PNG is a third to a quarter of a true-colour one, so the HTML report stays small."""


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write `fig` as a palette PNG sized for a screen, atomically (a half-written image
    never appears at `path`)."""
    buffer = io.BytesIO()
    # Every figure uses constrained layout, so no bbox_inches="tight" (a second draw).
    dpi = min(DPI, MAX_WIDTH_PX / fig.get_figwidth())
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    image = Image.open(buffer).convert("RGB")
    # No dithering: its noise would cost more bytes than the palette saves.
    palette = image.quantize(
        PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    with atomic_path(path, suffix=".png") as tmp:
        palette.save(tmp, format="PNG", optimize=True)


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


def fmt_log_tick(value: float, _pos: object = None) -> str:
    """A log-axis tick: ``0.01``, ``2``, ``1000``; ``$10^{8}$`` beyond that."""
    return f"{value:g}" if 1e-3 <= value < 1e4 else fmt_lr(value)


def lr_colors(n: int) -> list[tuple[float, float, float]]:
    """`n` colours ordered from small to large learning rate, all dark enough on white."""
    cmap = mpl.colormaps["plasma"]
    return [cmap(x)[:3] for x in np.linspace(0.0, 0.82, max(n, 1))]


def unique(values: Sequence[object] | pd.Series) -> list:
    """The distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def panel_keys(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(features, loss) pairs in grid order: one row of panels each."""
    return unique(zip(runs["features"], runs["loss"], strict=True))


def panel_name(features: str, loss: str, runs: pd.DataFrame) -> str:
    """``svm``, or ``svm (hog)`` when the grid has several feature sets."""
    return f"{loss} ({features})" if runs["features"].nunique() > 1 else loss


def cell_label(row: pd.Series) -> str:
    """``svm + l2 (λ = 0.001), batch 128, lr 10^-2, seed 0`` for titles."""
    size = row.get("train_size")
    size = "" if size is None or pd.isna(size) else f", {int(size):,} images"
    return (
        f"{row['loss']} + {fmt_strength(row['regularizer'], row['strength'])}, "
        f"batch {int(row['batch_size'])}, "
        f"lr {fmt_lr(row['learning_rate'])}, seed {int(row['seed'])}{size}"
    )


def note(ax, text: str, hide: bool = True) -> None:
    """A centred message in a panel; `hide` removes its (otherwise empty) axes."""
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.35",
        wrap=True,
        bbox=None if hide else {"facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"},
    )
    if hide:
        # Hide this panel's axes only: clearing its ticks would clear every panel sharing them.
        ax.set_axis_off()


def placeholder(path: str | os.PathLike[str], title: str, message: str) -> None:
    """A small figure that says why the real one could not be drawn (and what to add)."""
    with theme():
        fig = Figure(figsize=(7, 2.5), layout="constrained")
        ax = fig.subplots()
        note(ax, message)
        ax.set_title(title)
        save_figure(fig, path)


def status_handles(statuses: Sequence[str], kind: str = "marker") -> list:
    """Legend entries for the non-ok statuses present: markers or hatched patches."""
    shown = [s for s in STATUSES if s != "ok" and s in statuses]
    if kind == "hatch":
        extra = ["mixed"] if "mixed" in statuses else []
        return [
            Patch(
                facecolor="0.92",
                hatch=STATUS_HATCH[s],
                edgecolor=NOT_OK_COLOR,
                label=f"every cell {s}" if s != "mixed" else "no setting ok on every seed",
            )
            for s in [*shown, *extra]
        ]
    return [
        Line2D(
            [],
            [],
            marker=STATUS_MARKER[s],
            ms=9,
            color="0.6",
            mec="black",
            ls="none",
            label=f"run {s}",
        )
        for s in shown
    ]


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


def weights_by_dir(weights_files: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
    """Cell folder -> its ``weights.npz``."""
    return {str(Path(p).parent): str(p) for p in weights_files}
