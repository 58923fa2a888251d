"""The gradient check: analytic gradient against a centred finite difference.

The analytic gradient of one training step's objective (data loss, plus the regularizer's
penalty when it has one) is compared with ``(f(w + h) - f(w - h)) / 2h`` on a random sample
of coordinates of W and on every coordinate of b, in float64. Per coordinate the relative
error is ``|a - n| / max(|a|, |n|, floor)`` (see :func:`noise_floor`); the check passes when
the largest error is below ``tolerance`` (1e-7, "you should be happy" in the CS231n notes)
on every coordinate that does not sit at a kink:

- the hinge ``max(0, s_j - s_y + margin)`` has a kink where a margin is 0; a coordinate
  whose ±h step moves some margin across 0 has a one-sided analytic (sub)gradient and an
  averaged numerical one, so a larger error there says nothing about a bug;
- so does ``|w|`` (L1, elastic net) for ``|w| <= h``.

Such coordinates are counted and reported, and the check is judged on the others.
"""

from __future__ import annotations

import math

import numpy as np

from ..losses import LossFn
from ..regularizers import L1, ElasticNet, Regularizer
from .result import CheckResult

GRADIENT_TOLERANCE = 1e-7
"""Largest relative gradient error that passes (CS231n: below 1e-7 "you should be happy")."""
STEP = 1e-5
"""Finite-difference step h: the usual compromise between truncation and rounding error."""
FLOOR_SAFETY = 10.0
"""How far above its estimate the finite difference's rounding error may be (see noise_floor)."""


def relative_error(analytic: np.ndarray, numerical: np.ndarray, floor: float) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, floor)``, elementwise.

    Without the floor, two tiny gradients that differ by rounding noise only would show a
    relative error near 1; with it, gradients below `floor` are compared on its scale.
    """
    analytic, numerical = np.asarray(analytic), np.asarray(numerical)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), floor)
    return np.abs(analytic - numerical) / scale


def noise_floor(value: float, step: float = STEP, tolerance: float = GRADIENT_TOLERANCE) -> float:
    """The smallest gradient whose centred difference float64 resolves to `tolerance`.

    A loss `value` is computed to about ``eps * |value|`` (eps = 2.2e-16), so the centred
    difference carries a rounding error of about ``eps * |value| / step`` (5e-11 for a
    softmax loss of 2.3 and step 1e-5). Below ``FLOOR_SAFETY`` times that error divided by
    `tolerance` (here 5e-3), a correct gradient could exceed the tolerance by noise alone;
    a wrong one still shows (a 1 % error of a 1e-4 gradient gives 2e-4).
    """
    rounding = np.finfo(np.float64).eps * max(abs(value), 1.0) / step
    return FLOOR_SAFETY * rounding / tolerance


def hinge_margins(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, margin: float
) -> np.ndarray:
    """Hinge margins ``s_j - s_{y_i} + margin`` (N, C), unclipped (the true class: `margin`)."""
    s = X @ W + b
    return s - s[np.arange(len(X)), y][:, None] + margin


def hinge_kinks(
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    margin: float,
    step: float,
) -> np.ndarray:
    """Which coordinates of (W, b) sit at a kink of the Weston-Watkins hinge.

    Changing W[d, c] by ±`step` moves the score s_c of sample i by ``step * |X[i, d]|``
    (b[c]: by `step`). That moves the margin ``s_c - s_{y_i} + margin`` when c is a wrong
    class, and every margin of sample i when c = y_i. The coordinate is at a kink when
    some margin it moves lies within that distance of 0.

    `coords` are flat indices into the concatenation ``[W.ravel(), b]``; returns a bool
    array, one entry per coordinate.
    """
    num_classes = W.shape[1]
    rows = np.arange(len(X))
    margins = np.abs(hinge_margins(W, b, X, y, margin))
    margins[rows, y] = np.inf  # the true class's own "margin" is no hinge
    # near[i, c]: distance to 0 of the closest margin that moves with s_c of sample i.
    near = margins.copy()
    near[rows, y] = margins.min(axis=1)
    coords = np.asarray(coords)
    in_W = coords < W.size
    # Score shift per unit step: |X[i, d]| for a weight, 1 for a bias.
    shift = np.ones((len(X), len(coords)))
    shift[:, in_W] = np.abs(X[:, coords[in_W] // num_classes])
    return np.any(near[:, coords % num_classes] <= step * shift, axis=0)


def penalty_kinks(regularizer: Regularizer | None, W: np.ndarray, step: float) -> np.ndarray:
    """Which weights sit at the kink of ``|w|`` (L1 and elastic net): ``|w| <= step``."""
    if isinstance(regularizer, (L1, ElasticNet)):
        return (np.abs(W) <= step).ravel()
    return np.zeros(W.size, dtype=bool)


def check_gradient(
    loss_fn: LossFn,
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    regularizer: Regularizer | None = None,
    *,
    rng: np.random.Generator,
    hinge_margin: float | None = None,
    n_coords: int = 40,
    step: float = STEP,
    tolerance: float = GRADIENT_TOLERANCE,
    features: str = "",
    loss: str = "",
) -> CheckResult:
    """Compare the analytic gradient of one training step's objective with finite differences.

    The objective is what :func:`linbench.train.train` differentiates: ``loss_fn(W, b, X,
    y) -> (loss, dW, db)`` plus ``regularizer.penalty(W) -> (value, dW)`` (None: the loss
    alone). Shapes: W (D, C), b (C,), X (N, D), y (N,); everything is cast to float64.
    `n_coords` random coordinates of W (without repeats, drawn from `rng`) and every
    coordinate of b are compared, with step `step`.

    `hinge_margin`: set it (to the SVM's margin) when `loss_fn` is a hinge loss, so that
    coordinates at its kinks (:func:`hinge_kinks`) are not judged; None for a smooth loss.
    Kinks of the penalty come from :func:`penalty_kinks`. The check passes when the
    largest relative error (:func:`relative_error` with :func:`noise_floor`) of the
    coordinates away from kinks is at most `tolerance`, and at least one such coordinate
    was compared.
    """
    W = np.array(W, dtype=np.float64)  # a copy: coordinates are perturbed in place
    b = np.array(b, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    num_classes = W.shape[1]

    def penalty(weights: np.ndarray) -> tuple[float, np.ndarray | float]:
        return regularizer.penalty(weights) if regularizer is not None else (0.0, 0.0)

    def objective() -> float:
        return float(loss_fn(W, b, X, y)[0]) + float(penalty(W)[0])

    value, dW, db = loss_fn(W, b, X, y)
    penalty_value, dW_penalty = penalty(W)
    analytic = np.concatenate([np.ravel(dW + dW_penalty), np.ravel(db)])
    value = float(value) + float(penalty_value)

    picks = rng.choice(W.size, size=min(n_coords, W.size), replace=False)
    coords = np.concatenate([np.sort(picks), W.size + np.arange(num_classes)])
    flat_W = W.reshape(-1)  # a view: perturbing it perturbs W
    numerical = np.empty(len(coords))
    for k, coord in enumerate(coords):
        array, index = (flat_W, coord) if coord < W.size else (b, coord - W.size)
        old = array[index]
        array[index] = old + step
        above = objective()
        array[index] = old - step
        below = objective()
        array[index] = old
        numerical[k] = (above - below) / (2 * step)

    floor = noise_floor(value, step, tolerance)
    errors = relative_error(analytic[coords], numerical, floor)
    kinks = np.concatenate([penalty_kinks(regularizer, W, step), np.zeros(num_classes, bool)])
    kinks = kinks[coords]
    if hinge_margin is not None:
        kinks |= hinge_kinks(W, b, X, y, coords, margin=hinge_margin, step=step)
    judged = errors[~kinks]
    error = float(judged.max()) if judged.size else math.nan
    at_kink = int(kinks.sum())
    max_error_at_kink = float(errors[kinks].max()) if at_kink else math.nan

    objective_words = f"loss + {regularizer.name} penalty" if regularizer else "loss alone"
    detail = [
        objective_words,
        f"{len(picks)} W + {num_classes} b coordinates on {len(X)} training rows, "
        f"h = {step:g}, error floor {floor:.1e}",
    ]
    if hinge_margin is not None:
        margins = hinge_margins(W, b, X, y, hinge_margin)
        margins[np.arange(len(X)), y] = -np.inf
        active = (margins > 0).sum() / (margins.size - len(X))
        detail.append(f"{active:.0%} of hinge margins active")
    result = f"max rel. error {error:.2g}" if judged.size else "no coordinate away from a kink"
    if at_kink:
        detail.append(f"{at_kink} at a kink, not judged")
        result += f" ({max_error_at_kink:.2g} at a kink)"
    return CheckResult(
        check="gradient",
        features=features,
        loss=loss,
        regularizer=regularizer.name if regularizer is not None else "",
        strength=float(regularizer.strength) if regularizer is not None else math.nan,
        measured=math.nan,
        expected=math.nan,
        error=error,
        tolerance=tolerance,
        passed=bool(judged.size and error <= tolerance),  # False for NaN too
        result=result,
        criterion=f"≤ {tolerance:g} away from kinks",
        detail="; ".join(detail),
        coordinates=len(coords),
        at_kink=at_kink,
        max_error_at_kink=max_error_at_kink,
    )
