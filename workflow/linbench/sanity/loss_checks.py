"""Checks of a loss and of training with it: initial loss, large scores, labels matter.

**Initial loss.** With small random weights (``W ~ N(0, init_scale^2)``, ``b = 0``, as
:func:`linbench.train.train` starts) every score is close to 0, so the loss must be close to
its value at ``W = 0``: ``(C - 1) * margin`` for the Weston-Watkins SVM and ``ln C`` for
softmax. It catches a loss that is wrong at W = 0 (the hinge counting the true class, a
sum where a mean belongs, a wrong margin or log base) and features so large that the small
initialisation is not small. It cannot see the labels: at W = 0 the loss does not depend
on them, so shifted labels pass it; that is what *labels matter* is for.

**Large scores.** Adding the same constant to every class score changes neither loss nor
gradient (both depend on score differences only). With the constant 1000, exp overflows
even in float64 unless the implementation shifts the scores first (softmax's max shift).

**Labels matter** (CS231n's "overfit a small subset", and the permuted-label control of
Zhang et al. 2017). Trained by :func:`linbench.train.train` without a regularizer on a few
hundred training rows (more features than rows: a linear model can fit them), the model
must reach (near) 100 % training accuracy on them; trained on their real labels it must
beat chance on validation rows by a wide margin, and trained on the same rows with the
labels permuted it must not. Accuracies are computed here, from the returned W and b and
the labels as given, not read from the training history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..losses import LossFn, predict
from ..names import LOSSES
from ..regularizers import NoRegularizer
from .result import CheckResult

INITIAL_LOSS_TOLERANCE = 0.05
"""Relative deviation of the initial loss from its expected value that still passes."""
SCORE_SHIFT = 1000.0
"""Constant added to every score by the large-scores check: exp(1000) overflows float64."""
SHIFT_TOLERANCE = 1e-6
"""Largest relative change of loss or gradient under the score shift that passes."""
OVERFIT_ACCURACY = 0.98
"""Training accuracy on the small slice that counts as (near) 100 %."""
WIDE_MARGIN = 0.05
"""Validation accuracy above chance that counts as "beats chance by a wide margin"."""

TrainFn = Callable[..., Any]
"""A function with the keyword interface of :func:`linbench.train.train` whose result has
attributes ``W`` (D, C) and ``b`` (C,)."""


def expected_initial_loss(loss: str, num_classes: int, margin: float = 1.0) -> float:
    """The loss at ``W = 0, b = 0``: ``(C - 1) * margin`` (svm) or ``ln C`` (softmax)."""
    if loss == "svm":
        return (num_classes - 1) * margin
    if loss == "softmax":
        return math.log(num_classes)
    raise ValueError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")


def check_initial_loss(
    loss_fn: LossFn,
    X: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    expected: float,
    init_scale: float,
    rng: np.random.Generator,
    tolerance: float = INITIAL_LOSS_TOLERANCE,
    features: str = "",
    loss: str = "",
) -> CheckResult:
    """The loss at a fresh initialisation, beside its expected value.

    `loss_fn(W, b, X, y) -> (loss, dW, db)`; X (N, D) and y (N,) are the batch (its dtype
    is kept, as in training). W (D, num_classes) is drawn as N(0, init_scale^2) from
    `rng`, b is 0. Passes when ``|loss - expected| / expected <= tolerance``.
    """
    X = np.asarray(X)
    W = (init_scale * rng.standard_normal((X.shape[1], num_classes))).astype(X.dtype)
    b = np.zeros(num_classes, dtype=X.dtype)
    value = float(loss_fn(W, b, X, np.asarray(y))[0])
    error = abs(value - expected) / abs(expected)
    return CheckResult(
        check="initial loss",
        features=features,
        loss=loss,
        regularizer="",
        strength=math.nan,
        measured=value,
        expected=expected,
        error=error,
        tolerance=tolerance,
        passed=bool(error <= tolerance),  # False for a NaN loss
        result=f"{value:.4f} (expected {expected:.4g}, off by {100 * error:.2f} %)",
        criterion=f"within {100 * tolerance:g} % of the loss at W = 0",
        detail=f"W ~ N(0, {init_scale:g}²), b = 0, {len(X)} training rows; "
        "does not depend on the labels",
    )


def check_large_scores(
    loss_fn: LossFn,
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    shift: float = SCORE_SHIFT,
    tolerance: float = SHIFT_TOLERANCE,
    features: str = "",
    loss: str = "",
) -> CheckResult:
    """Loss and gradient are unchanged, and finite, when every score grows by `shift`.

    `loss_fn(W, b, X, y) -> (loss, dW, db)` is evaluated at (W, b) and at (W, b + shift),
    in float64; W (D, C), b (C,), X (N, D), y (N,). The error is the largest relative
    change of the loss, dW and db (each relative to its size at (W, b)); NaN or inf fail.
    """
    W, b, X = (np.asarray(a, dtype=np.float64) for a in (W, b, X))
    y = np.asarray(y)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        before = loss_fn(W, b, X, y)
        after = loss_fn(W, b + shift, X, y)
        errors = [
            float(np.max(np.abs(np.asarray(a) - np.asarray(o))))
            / max(float(np.max(np.abs(o))), 1e-12)
            for o, a in zip(before, after, strict=True)
        ]
    error = max(errors) if all(math.isfinite(e) for e in errors) else math.inf
    value = float(after[0])
    return CheckResult(
        check="large scores",
        features=features,
        loss=loss,
        regularizer="",
        strength=math.nan,
        measured=value,
        expected=float(before[0]),
        error=error,
        tolerance=tolerance,
        passed=bool(error <= tolerance),
        result=f"loss {value:.6g} with every score + {shift:g} (without: {float(before[0]):.6g})",
        criterion=f"loss and gradient change ≤ {tolerance:g} (relative), finite",
        detail=f"scores + {shift:g} on {len(X)} training rows, float64: exp overflows "
        "unless the scores are shifted first",
    )


def check_labels(
    train_fn: TrainFn,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    loss: str,
    num_classes: int,
    rng: np.random.Generator,
    permutations: int = 5,
    learning_rate: float = 0.1,
    epochs: int = 100,
    init_scale: float = 1e-3,
    margin: float = 1.0,
    overfit_accuracy: float = OVERFIT_ACCURACY,
    wide_margin: float = WIDE_MARGIN,
    features: str = "",
) -> list[CheckResult]:
    """Two rows: *overfits a small slice* and *labels matter* (see the module docstring).

    `train_fn` is called with the keyword arguments of :func:`linbench.train.train`: the
    slice X_train (N, D), y_train (N,) and the validation rows X_val (M, D), y_val (M,),
    no regularizer, full-batch steps (batch size N) at `learning_rate` for `epochs`
    epochs. Once on the real labels, then `permutations` times on permutations of them
    drawn from `rng`.

    *Overfits*: training accuracy on the real labels at least `overfit_accuracy`.
    *Labels matter*: validation accuracy with the real labels at least ``1/C +
    wide_margin``, and the mean over the permuted-label runs below it.
    """
    chance = 1 / num_classes

    def fit(labels: np.ndarray, seed: int) -> tuple[float, float]:
        """(training accuracy on `labels`, validation accuracy) after training on `labels`."""
        result = train_fn(
            X_train=X_train,
            y_train=labels,
            X_val=X_val,
            y_val=y_val,
            loss=loss,
            regularizer=NoRegularizer(),
            batch_size=len(X_train),
            learning_rate=learning_rate,
            epochs=epochs,
            seed=seed,
            init_scale=init_scale,
            margin=margin,
            num_classes=num_classes,
        )
        return (
            float(np.mean(predict(result.W, result.b, X_train) == labels)),
            float(np.mean(predict(result.W, result.b, X_val) == y_val)),
        )

    seed = int(rng.integers(2**31))
    train_acc, val_acc = fit(y_train, seed)
    permuted = [fit(rng.permutation(y_train), seed) for _ in range(permutations)]
    permuted_val = float(np.mean([v for _, v in permuted]))
    permuted_train = float(np.mean([t for t, _ in permuted]))
    setup = (
        f"{len(X_train)} training rows, {len(X_val)} validation rows; no regularizer, "
        f"full-batch steps, lr {learning_rate:g}, {epochs} epochs"
    )
    threshold = chance + wide_margin
    labels_pass = val_acc >= threshold and permuted_val < threshold
    return [
        CheckResult(
            check="overfits a small slice",
            features=features,
            loss=loss,
            regularizer="",
            strength=math.nan,
            measured=train_acc,
            expected=1.0,
            error=1.0 - train_acc,
            tolerance=1.0 - overfit_accuracy,
            passed=bool(train_acc >= overfit_accuracy),
            result=f"training accuracy {train_acc:.3f}",
            criterion=f"≥ {overfit_accuracy:g} on the rows trained on",
            detail=setup,
        ),
        CheckResult(
            check="labels matter",
            features=features,
            loss=loss,
            regularizer="",
            strength=math.nan,
            measured=val_acc,
            expected=chance,
            error=val_acc - chance,
            tolerance=wide_margin,
            passed=bool(labels_pass),
            result=f"validation accuracy {val_acc:.3f} with the real labels, "
            f"{permuted_val:.3f} with permuted ones",
            criterion=f"real ≥ {threshold:.3g} (chance + {wide_margin:g}) > permuted",
            detail=f"{setup}; permuted: mean of {permutations} permutations "
            f"(training accuracy {permuted_train:.3f})",
        ),
    ]
