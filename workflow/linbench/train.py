"""Mini-batch stochastic gradient descent for a linear classifier.

:func:`train` fits ``scores = X @ W + b`` with one of the losses of :mod:`linbench.losses`
and one regularizer of :mod:`linbench.regularizers`, and returns a :class:`TrainResult`:
the weights, a per-epoch history and the run's status (:mod:`linbench.outcome`). Everything
that is random
(initialisation, the order of the minibatches, dropout masks) comes from `seed`, so one seed
always gives bit-identical results; wall-clock time is recorded but affects nothing. This is
the readable one-model reference; :mod:`linbench.bundle` trains many models per pass and is
tested to give the same numbers.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from linbench.losses import LOSSES, predict
from linbench.names import SMALL_WEIGHT
from linbench.outcome import run_status
from linbench.regularizers import Regularizer


@dataclass
class TrainResult:
    """The outcome of one :func:`train` run.

    W (D, C) and b (C,) are in the training dtype (that of X_train: float32 for float32
    features). `history` has one dict per epoch run, with keys ``epoch`` (1-based),
    ``train_loss`` (mean minibatch loss including the penalty), ``train_acc``, ``val_acc``
    and ``seconds`` (cumulative wall time, per-epoch evaluation included). A diverged run
    (a loss, weight or bias became inf or nan) stops in epoch `diverged_epoch`, whose row is
    still recorded. `final_loss` and `seconds` are those of the last row; `status` is one of
    ``ok``, ``diverged``, ``collapsed``, ``unstable`` (:func:`linbench.outcome.run_status`).
    """

    W: np.ndarray
    b: np.ndarray
    history: list[dict[str, float]]
    status: str
    diverged: bool
    diverged_epoch: int | None
    epochs_run: int
    final_loss: float
    seconds: float
    best_epoch: int | None = None

    @property
    def returned_row(self) -> dict[str, float]:
        """The history row of the weights returned: the last one, or that of `best_epoch`."""
        if self.best_epoch is None:
            return self.history[-1]
        return next(row for row in self.history if row["epoch"] == self.best_epoch)

    @property
    def train_acc(self) -> float:
        """Training accuracy of the weights returned (after the last epoch run, or in
        `best_epoch` with early stopping)."""
        return self.returned_row["train_acc"]

    @property
    def val_acc(self) -> float:
        """Validation accuracy of the weights returned (see :attr:`train_acc`)."""
        return self.returned_row["val_acc"]


def accuracy(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Share of the samples X (N, D) whose predicted class equals y (N,)."""
    return float(np.mean(predict(W, b, X) == y))


def weight_stats(W: np.ndarray) -> dict[str, float]:
    """Summary numbers of the weights W (D, C) that show what a regularizer did.

    ``w_l1`` = sum |w|; ``w_l2`` = sqrt(sum w^2), the L2 norm; ``w_small_share`` = share of
    weights with |w| < 1e-3 (sparsity); ``w_max_col_norm`` = the largest L2 norm of a class
    column W[:, j] (what max-norm bounds).
    """
    W = np.asarray(W, dtype=np.float64)
    return {
        "w_l1": float(np.abs(W).sum()),
        "w_l2": float(np.sqrt(np.vdot(W, W))),
        "w_small_share": float(np.mean(np.abs(W) < SMALL_WEIGHT)),
        "w_max_col_norm": float(np.sqrt((W * W).sum(axis=0)).max()),
    }


def train(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    loss: str,
    regularizer: Regularizer,
    batch_size: int,
    learning_rate: float,
    epochs: int,
    seed: int,
    init_scale: float = 1e-3,
    margin: float = 1.0,
    momentum: float = 0.0,
    lr_decay: float = 1.0,
    lr_decay_every_images: int = 0,
    num_classes: int | None = None,
    eval_every: int = 1,
    early_stopping: bool = False,
) -> TrainResult:
    """Fit a linear classifier by mini-batch SGD.

    Data: X_train (N, D) and X_val (M, D) float arrays (memory-mapped ``.npy`` files are
    fine: only the minibatches are copied), y_train (N,) and y_val (M,) integer labels in
    ``0 .. num_classes-1`` (default: the largest label + 1). Training runs in the dtype of
    X_train (float32 or float64).

    Each of `epochs` epochs visits the training set once in a fresh random order, in
    minibatches of `batch_size` (the last one may be smaller), and takes one step per
    minibatch: ``W -= learning_rate * dW`` (and b), where dW includes the regularizer's
    penalty. Options, off by default: classical `momentum` (``v = momentum * v - lr * dW;
    W += v``) and step decay (the rate of a step is ``learning_rate * lr_decay ** (images
    seen before the step // lr_decay_every_images)``: counted in images, so that a small
    training set run for many epochs decays as often as the full one). W starts as
    N(0, init_scale^2) noise, b as 0. `margin` is the SVM hinge margin.

    After each epoch the history records the mean minibatch loss and the accuracy on the
    whole training and validation sets; with `eval_every` > 1, after every `eval_every`-th
    epoch and the last one only (a small training set trained for hundreds of short epochs
    would otherwise spend more time evaluating than learning). The one early stop is
    overflow: when a minibatch loss, a weight or the bias is not finite, training stops and
    the run is ``diverged`` (a result, not an exception). A large but finite loss is no
    reason to stop: the run's status is decided once it has finished
    (:mod:`linbench.outcome`).

    `early_stopping` changes no step: it returns the weights of the evaluation with the best
    validation accuracy (the first of equal ones) and records its epoch as ``best_epoch``.

    Raises ValueError, naming the parameter, for invalid parameters or data.
    """
    _check_params(
        loss=loss,
        regularizer=regularizer,
        batch_size=batch_size,
        learning_rate=learning_rate,
        epochs=epochs,
        seed=seed,
        init_scale=init_scale,
        margin=margin,
        momentum=momentum,
        lr_decay=lr_decay,
        lr_decay_every_images=lr_decay_every_images,
        eval_every=eval_every,
        early_stopping=early_stopping,
    )
    X_train, y_train, X_val, y_val, num_classes = _check_data(
        X_train, y_train, X_val, y_val, num_classes
    )
    loss_fn: Callable[..., tuple[float, np.ndarray, np.ndarray]] = LOSSES[loss]
    if loss == "svm":
        loss_fn = partial(loss_fn, margin=margin)

    # Independent streams, so that e.g. dropout masks do not change the initial weights or
    # the minibatch order: runs that differ only in the regularizer start alike.
    init_rng, order_rng, dropout_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    n, dim = X_train.shape
    dtype = X_train.dtype
    W = init_scale * init_rng.standard_normal((dim, num_classes), dtype=dtype)
    b = np.zeros(num_classes, dtype=dtype)
    W_velocity, b_velocity = np.zeros_like(W), np.zeros_like(b)
    images_seen = 0
    history: list[dict[str, float]] = []
    diverged_epoch = None
    best_epoch, best_val_acc, best_W, best_b = None, -1.0, W, b
    start_time = time.perf_counter()

    # A diverging run overflows to inf and nan; we detect that ourselves, so numpy's
    # warnings about it would only be noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            order = order_rng.permutation(n)
            batch_losses = []
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                lr = decayed_rate(learning_rate, lr_decay, lr_decay_every_images, images_seen)
                images_seen += len(batch)
                # Gradient descent (a batch of the whole set) takes it in storage order: the
                # same gradient, without a shuffled copy of X every step.
                X_rows, y_rows = (
                    (X_train, y_train) if batch_size >= n else (X_train[batch], y_train[batch])
                )
                X_batch = regularizer.transform_batch(np.asarray(X_rows), dropout_rng)
                loss_value, dW, db = loss_fn(W, b, X_batch, y_rows)
                penalty, dW_penalty = regularizer.penalty(W)
                loss_value += penalty
                dW += dW_penalty
                batch_losses.append(loss_value)

                # Non-finite weights make the next loss non-finite (inf * 0 is nan, too), so
                # the loss is the one thing to watch inside the epoch.
                if not math.isfinite(loss_value):
                    diverged_epoch = epoch
                    break

                if momentum:
                    _momentum_step(W, dW, W_velocity, lr, momentum)
                    _momentum_step(b, db, b_velocity, lr, momentum)
                else:
                    W -= lr * dW
                    b -= lr * db
                regularizer.project(W)
            # ... and the weights after the epoch's last step.
            if diverged_epoch is None and not (np.isfinite(W).all() and np.isfinite(b).all()):
                diverged_epoch = epoch

            if epoch % eval_every == 0 or epoch == epochs or diverged_epoch is not None:
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": float(np.mean(batch_losses)),
                        "train_acc": accuracy(W, b, X_train, y_train),
                        "val_acc": accuracy(W, b, X_val, y_val),
                        "seconds": time.perf_counter() - start_time,
                    }
                )
                # strictly better only: the first of equal accuracies is kept
                if early_stopping and history[-1]["val_acc"] > best_val_acc:
                    best_epoch, best_val_acc = epoch, history[-1]["val_acc"]
                    best_W, best_b = W.copy(), b.copy()
            if diverged_epoch is not None:
                break

    status = run_status(
        diverged=diverged_epoch is not None,
        val_acc=history[-1]["val_acc"],
        final_loss=history[-1]["train_loss"],
        loss=loss,
        num_classes=num_classes,
        val_images=len(y_val),
        margin=margin,
    )
    return TrainResult(
        W=best_W if early_stopping else W,
        b=best_b if early_stopping else b,
        history=history,
        status=status,
        diverged=diverged_epoch is not None,
        diverged_epoch=diverged_epoch,
        epochs_run=history[-1]["epoch"],
        final_loss=history[-1]["train_loss"],
        seconds=history[-1]["seconds"],
        best_epoch=best_epoch,
    )


def decayed_rate(
    learning_rate: float, lr_decay: float, lr_decay_every_images: int, images_seen: int
) -> float:
    """The step-decayed learning rate of a step taken after `images_seen` images:
    ``learning_rate * lr_decay ** (images_seen // lr_decay_every_images)`` (0: no decay)."""
    if not lr_decay_every_images:
        return learning_rate
    return learning_rate * lr_decay ** (images_seen // lr_decay_every_images)


def _momentum_step(
    param: np.ndarray, grad: np.ndarray, velocity: np.ndarray, lr: float, momentum: float
) -> None:
    """Classical momentum, in place: v = momentum * v - lr * grad; param += v."""
    velocity *= momentum
    velocity -= lr * grad
    param += velocity


# Parameter rules, checked in one place: name -> (what is valid, check).
_PARAM_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "loss": (f"one of {', '.join(LOSSES)}", lambda v: v in LOSSES),
    "regularizer": (
        "a Regularizer (see linbench.regularizers.make_regularizer)",
        lambda v: isinstance(v, Regularizer),
    ),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "learning_rate": ("a finite number > 0", lambda v: _is_number(v) and v > 0),
    "epochs": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "seed": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "init_scale": ("a finite number >= 0", lambda v: _is_number(v) and v >= 0),
    "margin": ("a finite number > 0", lambda v: _is_number(v) and v > 0),
    "momentum": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "lr_decay": ("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1),
    "lr_decay_every_images": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "eval_every": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "early_stopping": ("True or False", lambda v: isinstance(v, bool)),
}


def _check_params(**params: Any) -> None:
    """Raise ValueError naming the first parameter that breaks its rule in _PARAM_RULES."""
    for name, value in params.items():
        rule, is_valid = _PARAM_RULES[name]
        if not is_valid(value):
            raise ValueError(f"train: {name} must be {rule}, got {value!r}")


def _check_data(
    X_train: Any, y_train: Any, X_val: Any, y_val: Any, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Check shapes, dtypes and labels; return the arrays (never copied) and num_classes."""
    # np.asarray views a memmap as a plain ndarray without copying it.
    X_train, X_val = np.asarray(X_train), np.asarray(X_val)
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    for name, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
        if X.ndim != 2 or X.dtype not in (np.float32, np.float64):
            raise ValueError(
                f"train: X_{name} must be a 2-D float32 or float64 array, "
                f"got shape {X.shape} and dtype {X.dtype}"
            )
        if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"train: y_{name} must be integer labels of shape ({X.shape[0]},), "
                f"got shape {y.shape} and dtype {y.dtype}"
            )
        if y.size == 0:
            raise ValueError(f"train: the {name} set is empty")
    if X_val.shape[1] != X_train.shape[1] or X_val.dtype != X_train.dtype:
        raise ValueError(
            f"train: X_val must match X_train in columns and dtype, got {X_val.shape[1]} "
            f"{X_val.dtype} vs {X_train.shape[1]} {X_train.dtype}"
        )
    lowest = min(y_train.min(), y_val.min())
    needed = int(max(y_train.max(), y_val.max())) + 1
    if num_classes is None:
        num_classes = max(needed, 2)
    if not (_is_int(num_classes) and num_classes >= max(needed, 2)) or lowest < 0:
        raise ValueError(
            f"train: labels must lie in 0 .. num_classes-1 with num_classes >= 2, got labels "
            f"{lowest} .. {needed - 1} and num_classes={num_classes!r}"
        )
    return X_train, y_train, X_val, y_val, num_classes


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A finite real number (not bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
