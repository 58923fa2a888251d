"""Grid cells: train a bundle of them in one pass, write each cell's folder.

Imports numpy and the numpy core only (plus :mod:`linbench.grid`, pure Python), so a job
starts fast. A cell's folder (``Cell.path``) holds ``metrics.json``, ``history.csv``,
``weights.npz`` and ``test_predictions.npy``, however many cells its job trained.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .bundle import Model, bundle_predictions, progress_schedule, train_bundle
from .grid import Cell, check_bundle
from .io import save_npy, save_npz, write_json, write_text
from .names import ALL_IMAGES, HISTORY_COLUMNS, PROGRESS_COLUMNS, TRAIN_DEFAULTS
from .regularizers import make_regularizer
from .subsets import subset_indices, training_epochs
from .subsets import subset_seed as draw_seed
from .train import TrainResult, weight_stats

log = logging.getLogger(__name__)

HISTORY_ROWS = 40
"""At most about this many epochs of a run are evaluated and written to ``history.csv``."""

EVAL_EVERY_IMAGES = 15_000
"""A run is evaluated (history row, early stopping's candidates) after an epoch only once it
has trained on at least this many images since the last evaluation (and after the last
epoch): the full split every epoch, 5,000 images every 3 epochs. An evaluation scores
HISTORY_VAL_IMAGES validation and HISTORY_TRAIN_IMAGES training images for every model,
which costs about a third of training on as many images: a few per cent of the training
(``benchmarks/bench_limit.py`` measures it). The accuracies of the weights a run returns
are measured once, at the end, on the whole validation and training sets."""

HISTORY_TRAIN_IMAGES = 1000
"""The per-epoch training accuracy in ``history.csv`` is measured on this many training
images (a fixed stratified subset); the final ``train_acc`` of ``metrics.json`` on all."""

HISTORY_VAL_IMAGES = 1000
"""The per-epoch validation accuracy in ``history.csv`` (and early stopping's choice) is
measured on this many validation images (a fixed stratified subset); ``val_acc`` of
``metrics.json``, which chooses settings, on all of them."""

MIN_EVALUATIONS = 10
"""...but every run is evaluated at least about this many times: early stopping chooses among
the evaluations, and a handful of them (a 500-image run of 128,000 images) would make it a
straw man."""


PROGRESS_TRAIN_IMAGES = 5000
"""The training objective of the progress records (``progress.csv``) is measured on this many
training images (a fixed stratified subset), their gradient noise scale too."""


def evaluation_interval(train_size: int, epochs: int) -> int:
    """Epochs between two evaluations of a run of `epochs` epochs on `train_size` images
    (see :data:`EVAL_EVERY_IMAGES`, :data:`MIN_EVALUATIONS` and :data:`HISTORY_ROWS`)."""
    sparse = min(math.ceil(EVAL_EVERY_IMAGES / train_size), max(1, epochs // MIN_EVALUATIONS))
    return max(math.ceil(epochs / HISTORY_ROWS), sparse)


def load_split(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (memory-mapped, not copied) and labels of one split."""
    X = np.load(features_dir / f"{split}_X.npy", mmap_mode="r")
    y = np.load(features_dir / f"{split}_y.npy")
    return X, y


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def history_csv(history: list[dict], columns: Sequence[str] = HISTORY_COLUMNS) -> str:
    """The per-epoch history (or the progress records) as CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in columns})
    return buf.getvalue()


def run_bundle(
    cells: Sequence[Cell],
    settings: Mapping[str, object],
    features_dir: str | Path,
    root: str | Path = ".",
    subset_seed: int = 0,
    progress: bool = False,
) -> list[dict]:
    """Train `cells` together and write every cell's folder under `root`.

    The cells must share every ``BUNDLE_KEYS`` field (ValueError naming the first that
    differs); `settings` are the fixed training settings (``TRAIN_DEFAULTS`` keys, config
    ``train``). The cells train on their ``train_size`` images of the training split (a
    nested stratified subset drawn from `subset_seed`, config ``data.seed``, and the cells'
    seed: each seed draws its own; metrics.json records the seed it was drawn with), for
    ``epochs`` or more epochs (at least ``min_images_seen`` images, :func:`training_epochs`).
    ``batch_size`` :data:`ALL_IMAGES` is gradient descent: one step per epoch on them all.
    Every run writes progress records (``progress.csv``: :data:`PROGRESS_COLUMNS`) at its
    start and end; with `progress`, at about 32 log-spaced steps in between. A diverged run
    is a result, written like any other. Returns the metrics.
    """
    shared = check_bundle(cells)
    settings = {**TRAIN_DEFAULTS, **{k: v for k, v in settings.items() if k in TRAIN_DEFAULTS}}
    features_dir, root = Path(features_dir), Path(root)
    X_train, y_train = load_split(features_dir, "train")
    X_val, y_val = load_split(features_dir, "val")
    X_test, y_test = load_split(features_dir, "test")
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    drawn_with = None
    if shared["train_size"] != ALL_IMAGES:
        drawn_with = draw_seed(subset_seed, shared["seed"])
        rows = subset_indices(
            y_train, shared["train_size"], drawn_with, key=f"n~{shared['train_size']}"
        )
        X_train, y_train = np.asarray(X_train[rows]), y_train[rows]
    epochs = training_epochs(len(y_train), settings["epochs"], settings["min_images_seen"])
    batch = len(y_train) if shared["batch_size"] == ALL_IMAGES else shared["batch_size"]
    total_steps = epochs * math.ceil(len(y_train) / batch)

    models = [
        Model(
            make_regularizer(cell.regularizer, cell.strength, beta=settings["elastic_net_beta"]),
            cell.learning_rate,
            momentum=settings["momentum"],
            lr_decay=settings["lr_decay"],
            lr_decay_every_images=settings["lr_decay_every_images"],
            early_stopping=cell.regularizer == "early_stopping",
        )
        for cell in cells
    ]
    start = time.perf_counter()
    bundle = train_bundle(
        X_train,
        y_train,
        X_val,
        y_val,
        models,
        loss=shared["loss"],
        batch_size=batch,
        epochs=epochs,
        seed=shared["seed"],
        init_scale=settings["init_scale"],
        margin=settings["margin"],
        num_classes=num_classes,
        history_train_images=HISTORY_TRAIN_IMAGES,
        history_val_images=HISTORY_VAL_IMAGES,
        eval_every=evaluation_interval(len(y_train), epochs),
        progress_steps=progress_schedule(total_steps) if progress else [0, total_steps],
        progress_train_images=PROGRESS_TRAIN_IMAGES,
    )
    log.info(
        "trained %d models on %d images for %d epochs in %.2f s",
        len(cells),
        len(y_train),
        epochs,
        time.perf_counter() - start,
    )
    counts = {"train_size": len(y_train), "val_images": len(y_val), "test_images": len(y_test)}
    counts["subset_seed"] = drawn_with
    test_predictions = bundle_predictions(bundle.models, X_test)
    return [
        write_cell(
            root / cell.path,
            cell,
            result,
            train_acc,
            val_acc,
            test_pred,
            y_test,
            num_classes,
            progress=records,
            epochs=epochs,
            batch_images=batch,
            steps=total_steps,
            history_train_images=bundle.history_train_images,
            history_val_images=bundle.history_val_images,
            progress_train_images=bundle.progress_train_images,
            gradient_noise_scale=noise,
            **counts,
        )
        for cell, result, train_acc, val_acc, test_pred, records, noise in zip(
            cells,
            bundle.models,
            bundle.train_acc,
            bundle.val_acc,
            test_predictions,
            bundle.progress,
            bundle.gradient_noise_scale,
            strict=True,
        )
    ]


def write_cell(
    out_dir: Path,
    cell: Cell,
    result: TrainResult,
    train_acc: float,
    val_acc: float,
    test_pred: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    progress: list[dict] | None = None,
    **extra: object,
) -> dict:
    """Write one trained model's folder, with its predictions on the test split
    (`test_pred`, :func:`linbench.bundle.bundle_predictions`); return its metrics.

    `progress`: the run's progress records (``progress.csv``; empty if None). The last
    record's objective is ``final_objective`` in the metrics."""
    progress = progress or []
    if progress:
        objectives = [row["objective"] for row in progress]
        finite = [f for f in objectives if math.isfinite(f)]
        extra["initial_objective"] = objectives[0]
        extra["final_objective"] = objectives[-1] if not result.diverged else math.nan
        extra["best_objective"] = min(finite) if finite else math.nan
    with np.errstate(all="ignore"):  # a diverged model may hold inf/nan weights
        stats = weight_stats(result.W)
    metrics = {
        **{key: getattr(cell, key) for key in cell.wildcards},
        "epochs": extra.pop("epochs"),
        "epochs_run": result.epochs_run,
        "status": result.status,
        "diverged": result.status == "diverged",
        "diverged_epoch": result.diverged_epoch,
        "best_epoch": result.best_epoch,  # early stopping: the epoch of the weights kept
        "train_acc": float(train_acc),
        "val_acc": float(val_acc),
        "test_acc": float(np.mean(test_pred == y_test)),
        "final_loss": _finite_or_none(result.final_loss),
        "train_seconds": float(result.seconds),
        **{k: _finite_or_none(v) if isinstance(v, float) else v for k, v in extra.items()},
        **{k: _finite_or_none(v) for k, v in stats.items()},
        "test_confusion": confusion_matrix(y_test, test_pred, num_classes).tolist(),
    }
    log.info(
        "%s: %s, val_acc %.4f test_acc %.4f",
        cell.path,
        result.status,
        metrics["val_acc"],
        metrics["test_acc"],
    )
    # metrics.json last: it is the file the grid asks for.
    save_npy(out_dir / "test_predictions.npy", test_pred.astype(np.uint8))
    save_npz(out_dir / "weights.npz", W=result.W.astype(np.float64), b=result.b.astype(np.float64))
    write_text(out_dir / "history.csv", history_csv(result.history))
    write_text(out_dir / "progress.csv", history_csv(progress, PROGRESS_COLUMNS))
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _finite_or_none(value: float) -> float | None:
    """JSON has no inf/nan: a diverged value is written as null."""
    value = float(value)
    return value if np.isfinite(value) else None
