"""One grid cell: train on memory-mapped features, evaluate, write the cell's outputs.

Imports numpy and the numpy core only, so a cell's process starts fast.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import save_npy, save_npz, write_json, write_text
from .losses import predict
from .regularizers import make_regularizer
from .train import train, weight_stats

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_acc", "seconds")


@dataclass(frozen=True)
class CellSpec:
    """A cell's parameters and the fixed training settings."""

    features: str
    loss: str
    regularizer: str
    strength: float
    batch_size: int
    learning_rate: float
    seed: int
    epochs: int = 20
    init_scale: float = 1e-3
    margin: float = 1.0
    elastic_net_beta: float = 1.0
    momentum: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every: int = 0


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


def run_cell(spec: CellSpec, features_dir: str | Path, out_dir: str | Path) -> dict:
    """Train one cell and write metrics.json, history.csv and weights.npz to `out_dir`.

    A diverged run is a result: it is written like any other, with ``diverged`` set.
    Returns the metrics dictionary.
    """
    features_dir, out_dir = Path(features_dir), Path(out_dir)
    X_train, y_train = load_split(features_dir, "train")
    X_val, y_val = load_split(features_dir, "val")
    X_test, y_test = load_split(features_dir, "test")
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1

    regularizer = make_regularizer(spec.regularizer, spec.strength, beta=spec.elastic_net_beta)
    result = train(
        X_train,
        y_train,
        X_val,
        y_val,
        loss=spec.loss,
        regularizer=regularizer,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        epochs=spec.epochs,
        seed=spec.seed,
        init_scale=spec.init_scale,
        margin=spec.margin,
        momentum=spec.momentum,
        lr_decay=spec.lr_decay,
        lr_decay_every=spec.lr_decay_every,
        num_classes=num_classes,
    )
    with np.errstate(all="ignore"):  # a diverged model may hold inf/nan weights
        test_pred = predict(result.W, result.b, X_test)
        train_acc = result.history[-1]["train_acc"] if result.history else float("nan")
        val_acc = result.history[-1]["val_acc"] if result.history else float("nan")
        test_acc = float(np.mean(test_pred == y_test))
        stats = weight_stats(result.W)

    metrics = {
        "features": spec.features,
        "loss": spec.loss,
        "regularizer": spec.regularizer,
        "strength": spec.strength,
        "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate,
        "seed": spec.seed,
        "epochs": spec.epochs,
        "epochs_run": result.epochs_run,
        "status": result.status,
        "diverged": result.status == "diverged",
        "diverged_epoch": result.diverged_epoch,
        "train_acc": float(train_acc),
        "val_acc": float(val_acc),
        "test_acc": test_acc,
        "final_loss": _finite_or_none(result.final_loss),
        "train_seconds": float(result.seconds),
        "train_size": len(y_train),
        "val_images": len(y_val),
        "test_images": len(y_test),
        **{k: _finite_or_none(v) for k, v in stats.items()},
        "test_confusion": confusion_matrix(y_test, test_pred, num_classes).tolist(),
    }
    log.info(
        "%s/%s/%s: val_acc %.4f test_acc %.4f%s in %.2f s",
        spec.loss,
        spec.regularizer,
        spec.strength,
        metrics["val_acc"],
        test_acc,
        f" (diverged at epoch {result.diverged_epoch})" if result.diverged else "",
        result.seconds,
    )
    # weights and history first, metrics.json last: it is the file the grid asks for.
    save_npy(out_dir / "test_predictions.npy", test_pred.astype(np.uint8))
    save_npz(out_dir / "weights.npz", W=result.W.astype(np.float64), b=result.b.astype(np.float64))
    write_text(out_dir / "history.csv", history_csv(result.history))
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _finite_or_none(value: float) -> float | None:
    """JSON has no inf/nan: a diverged value is written as null."""
    value = float(value)
    return value if np.isfinite(value) else None
