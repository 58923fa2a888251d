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

from .bundle import Model, predictions, train_bundle
from .grid import Cell, check_bundle
from .io import save_npy, save_npz, write_json, write_text
from .names import ALL_IMAGES, HISTORY_COLUMNS, TRAIN_DEFAULTS
from .regularizers import make_regularizer
from .subsets import subset_indices, training_epochs
from .train import TrainResult, weight_stats

log = logging.getLogger(__name__)

HISTORY_ROWS = 40
"""At most about this many epochs of a run are evaluated and written to ``history.csv``."""

EVAL_EVERY_IMAGES = 45_000
"""A run is evaluated (history row, early stopping's candidates) after an epoch only once it
has trained on at least this many images since the last evaluation (and after the last
epoch): the full split every epoch, 10,000 images every 5 epochs, 500 images every 90. An
evaluation scores the validation set and HISTORY_TRAIN_IMAGES training images for every
model, which costs a quarter to a third of training on as many images: at this rate the
evaluations cost 2.4-4.4 % of a regimes bundle's training, twice as often would pass 5 % at
most sizes (``benchmarks/bench_limit.py``). Early stopping chooses among these evaluations:
lower this to give it more candidates on small training sets, at that cost."""

HISTORY_TRAIN_IMAGES = 1000
"""The per-epoch training accuracy in ``history.csv`` is measured on this many training
images (a fixed stratified subset); the final ``train_acc`` of ``metrics.json`` on all."""


def evaluation_interval(train_size: int, epochs: int) -> int:
    """Epochs between two evaluations of a run of `epochs` epochs on `train_size` images
    (see :data:`EVAL_EVERY_IMAGES` and :data:`HISTORY_ROWS`)."""
    return max(math.ceil(epochs / HISTORY_ROWS), math.ceil(EVAL_EVERY_IMAGES / train_size))


def load_split(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (memory-mapped, not copied) and labels of one split."""
    X = np.load(features_dir / f"{split}_X.npy", mmap_mode="r")
    y = np.load(features_dir / f"{split}_y.npy")
    return X, y


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def history_csv(history: list[dict]) -> str:
    """The per-epoch history as CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in HISTORY_COLUMNS})
    return buf.getvalue()


def run_bundle(
    cells: Sequence[Cell],
    settings: Mapping[str, object],
    features_dir: str | Path,
    root: str | Path = ".",
    subset_seed: int = 0,
) -> list[dict]:
    """Train `cells` together and write every cell's folder under `root`.

    The cells must share every ``BUNDLE_KEYS`` field (ValueError naming the first that
    differs); `settings` are the fixed training settings (``TRAIN_DEFAULTS`` keys, config
    ``train``). The cells train on their ``train_size`` images of the training split (a
    nested stratified subset drawn with `subset_seed`, config ``data.seed``), for
    ``epochs`` or more epochs (at least ``min_images_seen`` images, :func:`training_epochs`).
    A diverged run is a result, written like any other. Returns the metrics.
    """
    shared = check_bundle(cells)
    settings = {**TRAIN_DEFAULTS, **{k: v for k, v in settings.items() if k in TRAIN_DEFAULTS}}
    features_dir, root = Path(features_dir), Path(root)
    X_train, y_train = load_split(features_dir, "train")
    X_val, y_val = load_split(features_dir, "val")
    X_test, y_test = load_split(features_dir, "test")
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    if shared["train_size"] != ALL_IMAGES:
        rows = subset_indices(
            y_train, shared["train_size"], subset_seed, key=f"n~{shared['train_size']}"
        )
        X_train, y_train = np.asarray(X_train[rows]), y_train[rows]
    epochs = training_epochs(len(y_train), settings["epochs"], settings["min_images_seen"])

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
        batch_size=shared["batch_size"],
        epochs=epochs,
        seed=shared["seed"],
        init_scale=settings["init_scale"],
        margin=settings["margin"],
        num_classes=num_classes,
        history_train_images=HISTORY_TRAIN_IMAGES,
        eval_every=evaluation_interval(len(y_train), epochs),
    )
    log.info(
        "trained %d models on %d images for %d epochs in %.2f s",
        len(cells),
        len(y_train),
        epochs,
        time.perf_counter() - start,
    )
    counts = {"train_size": len(y_train), "val_images": len(y_val), "test_images": len(y_test)}
    return [
        write_cell(
            root / cell.path,
            cell,
            result,
            train_acc,
            X_test,
            y_test,
            num_classes,
            epochs=epochs,
            history_train_images=bundle.history_train_images,
            **counts,
        )
        for cell, result, train_acc in zip(cells, bundle.models, bundle.train_acc, strict=True)
    ]


def write_cell(
    out_dir: Path,
    cell: Cell,
    result: TrainResult,
    train_acc: float,
    X_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    **extra: object,
) -> dict:
    """Evaluate one trained model on the test split and write its folder; return metrics."""
    test_pred = predictions(result, X_test)
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
        "val_acc": float(result.val_acc),
        "test_acc": float(np.mean(test_pred == y_test)),
        "final_loss": _finite_or_none(result.final_loss),
        "train_seconds": float(result.seconds),
        **extra,
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
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _finite_or_none(value: float) -> float | None:
    """JSON has no inf/nan: a diverged value is written as null."""
    value = float(value)
    return value if np.isfinite(value) else None
