"""Every name and default of the study, in one place: pure Python, standard library only.

The schema, ``common.smk``, the numpy core, the reports, the figures and the sanity checks
all read their names from here, so adding a regularizer, a feature block or a column is
one edit here plus the code that implements it (``tests/test_names.py`` checks that the
schema's enumerations and defaults equal these).

What is defined here: the data set (classes, image shape, splits), the losses, the
regularizers and what ``strength`` means for each, the feature blocks and their default
parameters, the training defaults, the run statuses, the columns of the per-epoch history
and of ``runs.csv``, and :class:`Cell`, one point of the grid with its folder.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# ----------------------------------------------------------------------------- data set

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
"""(height, width, channels) of a CIFAR-10 image."""
SPLITS = ("train", "val", "test")
CIFAR_TRAIN_IMAGES = 50_000
"""Images in the five training batches, before the validation split is held out."""

# ----------------------------------------------------------------------------- losses

LOSSES = ("svm", "softmax")
"""``svm``: Weston-Watkins multiclass hinge; ``softmax``: softmax cross-entropy."""


# ----------------------------------------------------------------------------- regularizers


@dataclass(frozen=True)
class RegularizerName:
    """What a regularizer is called and what its one number, ``strength``, means.

    ``symbol`` labels the strength in tables and figures (``λ = 0.001``); ``hook`` says where
    it acts in an SGD step: ``penalty`` (added to the loss), ``transform`` (of the training
    minibatch), ``project`` (of W after each update) or ``none``. The valid strengths are
    ``low < s`` (``low <= s`` when ``low_inclusive``) and ``s <= high``.
    """

    name: str
    symbol: str
    meaning: str
    hook: str
    low: float
    low_inclusive: bool
    high: float = math.inf

    def is_valid(self, strength: float) -> bool:
        """True for a strength inside the valid range."""
        above = strength >= self.low if self.low_inclusive else strength > self.low
        return bool(above and strength <= self.high)

    @property
    def valid_text(self) -> str:
        """The valid range in words, for error messages: ``>= 0``, ``in (0, 1]``."""
        if self.low == self.high:
            return f"{self.low:g}"
        if math.isinf(self.high):
            return f"{'>=' if self.low_inclusive else '>'} {self.low:g}"
        return f"in {'[' if self.low_inclusive else '('}{self.low:g}, {self.high:g}]"


REGULARIZERS: dict[str, RegularizerName] = {
    r.name: r
    for r in (
        RegularizerName("none", "", "must be 0", "none", 0.0, True, 0.0),
        RegularizerName("l1", "λ", "lambda in lambda * sum |W|", "penalty", 0.0, True),
        RegularizerName("l2", "λ", "lambda in lambda * sum W^2", "penalty", 0.0, True),
        RegularizerName(
            "elastic_net",
            "λ",
            "lambda in lambda * (beta * sum W^2 + sum |W|)",
            "penalty",
            0.0,
            True,
        ),
        RegularizerName(
            "max_norm", "c", "radius c: ||W[:, j]||_2 <= c for every class j", "project", 0.0, False
        ),
        RegularizerName(
            "dropout", "p", "keep probability p of each input feature", "transform", 0.0, False, 1.0
        ),
        # No penalty: the weights kept are those of the evaluation with the best validation
        # accuracy (the trainer's `early_stopping` option); its strength is 0 like none's.
        RegularizerName(
            "early_stopping",
            "",
            "must be 0 (stops at the best validation accuracy)",
            "none",
            0.0,
            True,
            0.0,
        ),
    )
}
"""Regularizers by the names used in the config (``grid.regularizer``), in display order."""

STRONGER_WHEN_SMALLER = ("max_norm", "dropout")
"""Regularizers whose strength is stronger when it is smaller (a radius, a keep probability)."""

# ----------------------------------------------------------------------------- sub-grids

ANSWER_SUBGRID = "regimes"
"""The sub-grid that answers what each regularizer buys (its tables, figure and the regimes
figures draw only from it; without it, the first sub-grid of the config)."""
SWEEP_SUBGRID = "sweep"
"""The sub-grid that answers how learning rate and batch size behave (heatmaps, learning
curves; without it, the first sub-grid of the config)."""

# ----------------------------------------------------------------------------- feature blocks

FEATURE_BLOCKS: dict[str, dict[str, Any]] = {
    "hog": {
        "orientations": 9,
        "pixels_per_cell": [8, 8],
        "cells_per_block": [2, 2],
        "block_norm": "L2-Hys",
        "channel_axis": None,
    },
    "color_hist": {"bins": 10},
    "pixels": {},
    "kmeans": {
        "centroids": 1600,
        "patch_size": 6,
        "stride": 1,
        "patches": 400_000,
        "iterations": 10,
        "whitening_epsilon": 0.1,
        "seed": 0,
        "mirror": False,
        "power": 1.0,
    },
}
"""Every feature block with its parameters and their defaults (``features.sets``)."""
LEARNED_BLOCKS = ("kmeans",)
"""Blocks fitted on the training split (rule ``fit_dictionary``) before extraction."""
ENCODING_ONLY = ("mirror", "power")
"""kmeans parameters that change how images are encoded, not the dictionary: changing them
re-extracts the features but never refits the centroids."""
HOG_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
DRAWABLE_BLOCKS = ("pixels", "hog")
"""Blocks whose learned weights can be drawn as a class template picture."""

# ----------------------------------------------------------------------------- training

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "init_scale": 1e-3,
    "margin": 1.0,
    "elastic_net_beta": 1.0,
    "momentum": 0.0,
    "lr_decay": 1.0,
    "lr_decay_every_images": 0,
    "min_images_seen": 128_000,
}
"""The fixed training settings (config ``train``, but ``threads``) and their defaults."""

SMALL_WEIGHT = 1e-3
"""|w| below this counts as "near zero" (what L1 makes many of)."""

# ----------------------------------------------------------------------------- outcomes

STATUSES = ("ok", "diverged", "collapsed", "unstable")
"""What became of a run. ``ok`` is the only status a "best" setting may have; the others,
in the order that decides when several apply, are defined in :mod:`linbench.outcome`."""

# ----------------------------------------------------------------------------- tables

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_acc", "seconds")
"""Columns of a cell's ``history.csv``: one row per epoch."""
PROGRESS_COLUMNS = ("step", "images", "seconds", "objective", "val_acc", "noise_scale")
"""Columns of a cell's ``progress.csv``: one row per progress record (``linbench.bundle``):
steps and images so far, the run's share of the training's wall time, the training objective
(data loss + penalty) on a fixed training subset, validation accuracy, gradient noise scale."""
CELL_FILES = (
    "metrics.json",
    "history.csv",
    "progress.csv",
    "weights.npz",
    "test_predictions.npy",
)
"""What every cell's folder holds (``test_predictions.npy``: uint8 test labels, test order)."""


# ----------------------------------------------------------------------------- grid cells

RUNS_DIR = "results/runs"
ALL_IMAGES = "all"
"""``train_size`` of a cell that trains on the whole training split."""
GROUP_PATTERN = "features~{features}/n~{train_size}/loss~{loss}/batch~{batch_size}/seed~{seed}"
"""The folder of the cells that may train together (they share data, loss, batch size and
seed: :data:`BUNDLE_KEYS`); one training job owns a bundle of them."""
MODEL_PATTERN = "reg~{regularizer}/strength~{strength}/lr~{learning_rate}"
"""A cell's folder inside its group's: what the models of one bundle differ in."""
CELL_PATTERN = f"{GROUP_PATTERN}/{MODEL_PATTERN}"
"""A cell's folder under :data:`RUNS_DIR`, e.g.
``features~hog/n~all/loss~svm/batch~128/seed~0/reg~l2/strength~0.01/lr~0.01``."""


def format_value(value: float | int) -> str:
    """Canonical text of a grid number: ints as ints, floats in shortest general form.

    >>> [format_value(v) for v in (0, 128, 0.001, 1e-05, 0.5, 1.0, 10.0)]
    ['0', '128', '0.001', '1e-05', '0.5', '1', '10']
    """
    if isinstance(value, bool):
        raise TypeError("grid values are numbers, not booleans")
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.10g}"


@dataclass(frozen=True)
class Cell:
    """One grid point: what a user varies. Its folder name spells out every field.

    ``train_size`` is the number of training images (a nested, stratified subset of the
    training split, see :mod:`linbench.subsets`) or :data:`ALL_IMAGES` for the whole split.
    """

    features: str
    train_size: int | str
    loss: str
    regularizer: str
    strength: float
    batch_size: int | str
    learning_rate: float
    seed: int

    @property
    def wildcards(self) -> dict[str, str]:
        """The cell's values as the strings its path uses."""
        return {
            key: value if isinstance(value, str) else format_value(value)
            for key, value in asdict(self).items()
        }

    @property
    def path(self) -> str:
        """The cell's folder, e.g. ``results/runs/features~hog/.../seed~0``."""
        return f"{RUNS_DIR}/{CELL_PATTERN.format(**self.wildcards)}"


CELL_KEYS = tuple(f.name for f in fields(Cell))
"""The fields of a cell, as columns of ``runs.csv``."""
SETTING_KEYS = tuple(k for k in CELL_KEYS if k != "seed")
"""A *setting* is a cell up to its seed: what a user chooses."""
MODEL_KEYS = ("regularizer", "strength", "learning_rate")
"""What the models trained together in one bundle (one pass over the data) may differ in."""
BUNDLE_KEYS = tuple(k for k in CELL_KEYS if k not in MODEL_KEYS)
"""What every cell of a bundle shares: the data, loss, batch size, seed (minibatch order)."""
