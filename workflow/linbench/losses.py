"""Multiclass linear classifier losses: Weston-Watkins hinge (SVM) and softmax cross-entropy.

A linear classifier scores every class with ``scores = X @ W + b``. Both losses take

====  ========  ======================================================
W     (D, C)    weights, one column per class
b     (C,)      biases
X     (N, D)    a minibatch, one sample per row
y     (N,)      integer labels in ``0 .. C-1``
====  ========  ======================================================

and return ``(loss, dW, db)``: the loss averaged over the N samples (a Python float) and
its gradients, shaped like W and b. Everything is vectorised (no Python loop over samples
or classes) and computed in the dtype of ``X @ W`` (float32 in training, for speed; float64
in the gradient tests). Regularization is not part of the data loss; see
:mod:`linbench.regularizers`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LossFn = Callable[..., tuple[float, np.ndarray, np.ndarray]]


def scores(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class scores ``X @ W + b``, shape (N, C)."""
    s = X @ W
    s += b  # in place: one (N, C) array, not two
    return s


def predict(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Predicted labels, shape (N,): the class with the highest score."""
    return np.argmax(scores(W, b, X), axis=1)


def svm_loss(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, margin: float = 1.0
) -> tuple[float, np.ndarray, np.ndarray]:
    """Multiclass SVM (Weston-Watkins) hinge loss and its gradient.

    L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin), averaged over the N samples.
    At W = 0, b = 0 every wrong class violates the margin, so the loss is (C - 1) * margin.

    Shapes: W (D, C), b (C,), X (N, D), y (N,) ints; returns (loss, dW (D, C), db (C,)).
    The hinge is not differentiable where a margin is exactly 0; we use the subgradient 0
    there (a margin that is just met costs nothing).
    """
    n = X.shape[0]
    rows = np.arange(n)
    s = scores(W, b, X)
    # margins[i, j] = s_j - s_{y_i} + margin, clipped at 0; the true class never counts.
    margins = s - s[rows, y][:, None] + margin
    margins[rows, y] = 0
    np.maximum(margins, 0, out=margins)
    loss = float(margins.sum()) / n

    # dL_i/ds_j = 1 for each violating wrong class j; dL_i/ds_{y_i} = -(number of violations).
    ds = (margins > 0).astype(s.dtype)
    ds[rows, y] = -ds.sum(axis=1)
    ds /= n
    return loss, X.T @ ds, ds.sum(axis=0)


def softmax_loss(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy loss and its gradient.

    L_i = -log p_{y_i} with p_j = exp(s_j) / sum_k exp(s_k), averaged over the N samples.
    At W = 0, b = 0 every class has p = 1/C, so the loss is ln C (2.303 for C = 10).

    Shapes: W (D, C), b (C,), X (N, D), y (N,) ints; returns (loss, dW (D, C), db (C,)).
    Numerically stable: scores are shifted by their row maximum (which leaves p unchanged)
    so exp never overflows, and log p is computed as s_y - log(sum exp s) (log-sum-exp).
    """
    n = X.shape[0]
    rows = np.arange(n)
    s = scores(W, b, X)
    s -= s.max(axis=1, keepdims=True)
    exp_s = np.exp(s)
    sum_exp = exp_s.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sum_exp[:, 0]) - s[rows, y]))

    # dL_i/ds_j = p_j - [j == y_i]
    ds = exp_s
    ds /= sum_exp
    ds[rows, y] -= 1
    ds /= n
    return loss, X.T @ ds, ds.sum(axis=0)


LOSSES: dict[str, LossFn] = {"svm": svm_loss, "softmax": softmax_loss}
"""Loss functions by the names used in the config (``grid.loss``)."""
