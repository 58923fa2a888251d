"""Figures of a finished grid: seaborn on matplotlib's object API, PNG output.

One module per what the figures show; each figure has one ``draw_*`` entry point that a
Snakemake rule calls through :func:`draw` (one figure per rule, so editing one figure
redraws only it):

- :mod:`.answer`: the answer in one picture (each regularizer's gain over none);
- :mod:`.style`: what every figure shares (theme, colours, status hatches and markers,
  labels, saving, reading class names and weights);
- :mod:`.accuracy`: learning rate x batch size heatmaps, best setting per regularizer,
  accuracy against training time, the confusion matrix of the best model;
- :mod:`.training`: learning curves;
- :mod:`.weights`: weight histograms and class column norms;
- :mod:`.regimes`: accuracy against training-set size, the regularization path, and the
  train - validation gap against size;
- :mod:`.optimizer`: batch size and learning rate: steps against images to each target,
  F - F* against work and time, the best rate against the batch size.

Every accuracy drawn comes with its 95 % interval; only settings whose every seed ended
``ok`` are chosen; runs with another status are drawn distinctly, with a legend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .accuracy import draw_best_accuracy, draw_confusion, draw_heatmaps, draw_time_accuracy
from .answer import draw_answer
from .optimizer import draw_best_rate, draw_steps_vs_images, draw_suboptimality
from .regimes import draw_accuracy_vs_size, draw_gap_vs_size, draw_regularization_path
from .training import draw_learning_curves
from .weights import draw_weights

FIGURES: dict[str, Callable[..., None]] = {
    "answer": draw_answer,
    "val_heatmaps": draw_heatmaps,
    "best_accuracy": draw_best_accuracy,
    "time_vs_accuracy": draw_time_accuracy,
    "confusion_matrix": draw_confusion,
    "learning_curves": draw_learning_curves,
    "weights": draw_weights,
    "accuracy_vs_size": draw_accuracy_vs_size,
    "regularization_path": draw_regularization_path,
    "gap_vs_size": draw_gap_vs_size,
    "steps_vs_images": draw_steps_vs_images,
    "suboptimality": draw_suboptimality,
    "best_rate": draw_best_rate,
}
"""Figure name (its file is ``figures/<name>.png``) -> the function that draws it."""


def draw(
    figure: str,
    path: str | os.PathLike[str],
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
) -> None:
    """Draw `figure` to `path`: its function gets `inputs` and `params` as keywords."""
    if figure not in FIGURES:
        raise KeyError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")
    FIGURES[figure](**inputs, **(params or {}), path=str(path))
