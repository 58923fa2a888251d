"""The gradient noise scale of a linear classifier: how large a batch the gradient deserves.

McCandlish et al. (2018), "An Empirical Model of Large-Batch Training", predict the
critical batch size from the simple noise scale

    B_simple = tr(Σ) / |G|^2,

G the mean per-example gradient of the data loss and Σ the covariance of the per-example
gradients. A minibatch of B examples estimates G with noise of total variance tr(Σ) / B,
so below B_simple the noise dominates the signal (doubling the batch nearly halves the
steps) and above it the gradient is already accurate (doubling the batch mostly doubles
the work).

For a linear model the per-example gradients are cheap and exact. With scores
``s_i = x_i @ W + b`` and r_i = dL_i/ds_i (C,), the gradient of L_i over (W, b) is

    g_i = (x_i r_i^T, r_i)            shapes (D, C) and (C,)

- softmax: r_i = p_i - onehot(y_i);
- Weston-Watkins SVM: r_ij = 1 for each wrong class j whose margin s_j - s_{y_i} + margin
  is violated (> 0), r_{i,y_i} = -(number of violations), 0 elsewhere,

exactly as :mod:`linbench.losses` computes them (their dW, db are the means of these g_i).
Being an outer product, g_i has a squared norm we can take without building it:

    |g_i|^2 = (|x_i|^2 + 1) |r_i|^2,

and since Σ is unbiased (divides by N - 1),

    tr(Σ) = 1/(N-1) sum_i |g_i - G|^2 = N/(N-1) (mean_i |g_i|^2 - |G|^2).

So one pass over X in blocks gives everything; nothing of size N x D x C is ever built.
The penalty of a regularizer is the same for every example, so it shifts G but not Σ;
B_simple here is of the data loss only (the issue's definition).
"""

from __future__ import annotations

import math

import numpy as np

from linbench import names
from linbench.losses import scores

BLOCK_ROWS = 1024
"""Examples per block: a float64 block of 1,024 x 6,400 features is 52 MB."""


def score_gradients(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, *, loss: str, margin: float = 1.0
) -> np.ndarray:
    """Per-example gradients of the data loss with respect to the scores, R (N, C).

    Row i is r_i = dL_i/ds_i for the *unaveraged* loss L_i of example i, so the per-example
    gradient over (W, b) is (x_i r_i^T, r_i) and ``X.T @ R / N``, ``R.mean(axis=0)`` equal the
    dW, db of :func:`linbench.losses.svm_loss` / :func:`linbench.losses.softmax_loss`.

    Shapes: W (D, C), b (C,), X (N, D), y (N,) ints; `loss` one of ``names.LOSSES``;
    `margin` is the SVM's margin (ignored by softmax).
    """
    rows = np.arange(X.shape[0])
    s = scores(W, b, X)
    if loss == "softmax":
        s -= s.max(axis=1, keepdims=True)  # same shift as softmax_loss: exp never overflows
        R = np.exp(s)
        R /= R.sum(axis=1, keepdims=True)
        R[rows, y] -= 1
        return R
    # svm: same margins, same strict "> 0" (a margin exactly met costs nothing) as svm_loss
    margins = s - s[rows, y][:, None] + margin
    margins[rows, y] = 0
    R = (margins > 0).astype(s.dtype)
    R[rows, y] = -R.sum(axis=1)
    return R


def gradient_noise_scale(
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: str,
    margin: float = 1.0,
    block_rows: int = BLOCK_ROWS,
) -> dict[str, float]:
    """The simple gradient noise scale B_simple = tr(Σ) / |G|^2 of the data loss at (W, b).

    Shapes: W (D, C), b (C,), X (N, D) with N >= 2, y (N,) ints in ``0 .. C-1``.
    `loss` is ``"svm"`` or ``"softmax"``; `margin` the SVM's margin. X is read in blocks of
    `block_rows` examples, each computed in float64 whatever X's dtype (the sums run over
    tens of thousands of examples), so memory stays at about one block.

    Returns a dict:

    - ``B_simple``: tr(Σ) / |G|^2; ``inf`` when G = 0 but the examples disagree (at an
      optimum of the data loss), ``nan`` when every per-example gradient is 0;
    - ``tr_sigma``: the trace of the unbiased covariance of the per-example gradients over
      (W, b), clipped at 0 (it can come out a rounding error below 0 when all examples agree);
    - ``g_norm2``: |G|^2, the squared norm of the mean gradient over (W, b).
    """
    if loss not in names.LOSSES:
        raise ValueError(f"loss must be one of {list(names.LOSSES)}, got {loss!r}")
    X, y = np.asarray(X), np.asarray(y)
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must be (N, D) with N >= 2 examples, got shape {X.shape}")
    n, dim = X.shape
    if W.ndim != 2 or W.shape[0] != dim:
        raise ValueError(f"W must be (D, C) with D = {dim} (X's columns), got shape {W.shape}")
    classes = W.shape[1]
    if b.shape != (classes,):
        raise ValueError(f"b must be (C,) with C = {classes} (W's columns), got shape {b.shape}")
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y must be {n} integer labels (one per row of X), got {y.dtype} {y.shape}"
        )
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(f"y must hold labels in 0 .. {classes - 1}, got {y.min()} .. {y.max()}")
    if not (isinstance(block_rows, int) and block_rows >= 1):
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")

    sum_dW = np.zeros((dim, classes))  # sum_i x_i r_i^T
    sum_db = np.zeros(classes)  # sum_i r_i
    sum_g2 = 0.0  # sum_i |g_i|^2
    for start in range(0, n, block_rows):
        Xb = X[start : start + block_rows].astype(np.float64, copy=False)
        R = score_gradients(W, b, Xb, y[start : start + block_rows], loss=loss, margin=margin)
        sum_dW += Xb.T @ R
        sum_db += R.sum(axis=0)
        x_norm2 = np.einsum("ij,ij->i", Xb, Xb)  # |x_i|^2 without an (N, D) temporary
        r_norm2 = np.einsum("ij,ij->i", R, R)
        sum_g2 += float((x_norm2 + 1.0) @ r_norm2)

    g_norm2 = (float(np.sum(sum_dW**2)) + float(sum_db @ sum_db)) / n**2
    tr_sigma = max(0.0, n / (n - 1) * (sum_g2 / n - g_norm2))
    if g_norm2 > 0:
        b_simple = tr_sigma / g_norm2
    else:
        b_simple = math.inf if tr_sigma > 0 else math.nan
    return {"B_simple": b_simple, "tr_sigma": tr_sigma, "g_norm2": g_norm2}
