"""Every sanity check of a grid, in table order: :func:`run_checks`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import train as training
from ..losses import LOSSES, LossFn
from ..names import REGULARIZERS
from ..regularizers import Regularizer, make_regularizer
from .gradient import check_gradient
from .loss_checks import (
    TrainFn,
    check_initial_loss,
    check_labels,
    check_large_scores,
    expected_initial_loss,
)
from .regularizer_checks import check_hooks, check_projection, check_transform, no_check
from .result import CheckResult

FeatureData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(X_train (N, D), y_train (N,), X_val (M, D), y_val (M,)); memory maps are fine."""


@dataclass(frozen=True)
class SampleSizes:
    """How much of the real data each check uses (the rule's ``params.sizes``)."""

    loss_rows: int = 500
    """Training rows for the initial loss."""
    gradient_rows: int = 100
    """Training rows for the gradient and large-score checks."""
    coordinates: int = 40
    """Random weights compared by each gradient check (plus every bias)."""
    label_rows: int = 200
    """Training rows the labels checks train on (fewer than most feature dimensions)."""
    label_val_rows: int = 2000
    """Validation rows the labels checks evaluate on."""
    permutations: int = 5
    """Permuted-label trainings per loss."""
    label_epochs: int = 100
    """Full-batch epochs of each labels training."""
    label_learning_rate: float = 0.1
    """Learning rate of each labels training."""
    transform_rows: int = 10
    """Training rows a batch transform is drawn on."""
    transform_draws: int = 1000
    """Draws of the batch transform."""


RegularizerCheck = Callable[
    [Regularizer, np.ndarray, np.random.Generator, int, str, SampleSizes], list[CheckResult]
]
"""``check(regularizer, X (N, D) training rows, rng, num_classes, features, sizes)``."""


def _transform(
    regularizer: Regularizer,
    X: np.ndarray,
    rng: np.random.Generator,
    num_classes: int,
    features: str,
    sizes: SampleSizes,
) -> list[CheckResult]:
    draws = sizes.transform_draws
    return check_transform(regularizer, X, rng=rng, draws=draws, features=features)


def _project(
    regularizer: Regularizer,
    X: np.ndarray,
    rng: np.random.Generator,
    num_classes: int,
    features: str,
    sizes: SampleSizes,
) -> list[CheckResult]:
    dim = X.shape[1]
    return [
        check_projection(regularizer, dim, num_classes, rng=rng, dtype=X.dtype, features=features)
    ]


HOOK_CHECKS: dict[str, RegularizerCheck | None] = {
    "penalty": None,  # checked with each loss by the gradient check
    "transform": _transform,
    "project": _project,
    "none": None,  # nothing to check beyond acting nowhere
}
"""The checks of a regularizer beyond :func:`check_hooks`, by its hook. A hook missing
here gets a FAIL row (:func:`no_check`)."""


def sample_rows(
    X: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`n` random rows of X (N, D) and y (N,) (all if N <= n), in file order, as arrays.

    X may be a memory map: only the chosen rows are read.
    """
    index = np.sort(rng.choice(len(X), size=min(n, len(X)), replace=False))
    return np.asarray(X[index]), np.asarray(y[index])


def run_checks(
    data: Mapping[str, FeatureData],
    losses: Sequence[str],
    regularizers: Mapping[str, float],
    *,
    num_classes: int,
    init_scale: float,
    margin: float = 1.0,
    elastic_net_beta: float = 1.0,
    seed: int = 0,
    sizes: SampleSizes = SampleSizes(),
    loss_fns: Mapping[str, LossFn] = LOSSES,
    train_fn: TrainFn = training.train,
    make: Callable[..., Regularizer] = make_regularizer,
    hooks: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Every sanity check of a grid.

    Per feature set and loss: initial loss, large scores, the gradient of the loss alone,
    overfits a small slice, labels matter; then the gradient of loss + penalty for each
    regularizer whose hook is ``penalty``. Then, once, on the first feature set (they
    depend on neither the loss nor which features): for each regularizer *acts only
    through its hook* and the checks of its hook (:data:`HOOK_CHECKS`), or a FAIL row
    when its hook has none.

    `data` maps a feature set to its training and validation arrays (:data:`FeatureData`);
    `regularizers` maps a regularizer name to the strength to check it with. Gradients use
    float64 rows and W ~ N(0, 1/D), b ~ N(0, 0.1^2), so scores spread over about ±1: some
    hinge margins are active and some are not, and softmax probabilities are far from
    uniform. The implementations under test are parameters, so tests pass doubles:
    `loss_fns` (svm's is called with ``margin=margin``), `train_fn` (the keyword interface
    of :func:`linbench.train.train`), `make` (``make(name, strength, beta=...)``) and
    `hooks` (regularizer name -> hook; default from :data:`linbench.names.REGULARIZERS`).
    Deterministic in `seed`.
    """
    hooks = {name: reg.hook for name, reg in REGULARIZERS.items()} if hooks is None else hooks
    made = {
        name: make(name, strength, beta=elastic_net_beta) for name, strength in regularizers.items()
    }
    penalties = [reg for name, reg in made.items() if hooks.get(name) == "penalty"]
    fns = {loss: _bind(loss, loss_fns[loss], margin) for loss in losses}
    results: list[CheckResult] = []
    for features, arrays in data.items():
        results += _loss_checks(
            features,
            arrays,
            fns,
            penalties,
            train_fn,
            num_classes=num_classes,
            init_scale=init_scale,
            margin=margin,
            sizes=sizes,
            rng=np.random.default_rng(seed),
        )

    features, (X_all, *_) = next(iter(data.items()))
    rng = np.random.default_rng(seed)
    X = sample_rows(X_all, np.zeros(len(X_all)), sizes.transform_rows, rng)[0]
    for name, regularizer in made.items():
        hook = hooks.get(name, "")
        results.append(
            check_hooks(regularizer, hook, X, rng=rng, num_classes=num_classes, features=features)
        )
        if hook not in HOOK_CHECKS:
            results.append(no_check(regularizer, hook, features=features))
        elif (checks := HOOK_CHECKS[hook]) is not None:
            results += checks(regularizer, X, rng, num_classes, features, sizes)
    return results


def _loss_checks(
    features: str,
    arrays: FeatureData,
    fns: Mapping[str, LossFn],
    penalties: Sequence[Regularizer],
    train_fn: TrainFn,
    *,
    num_classes: int,
    init_scale: float,
    margin: float,
    sizes: SampleSizes,
    rng: np.random.Generator,
) -> list[CheckResult]:
    """The checks of one feature set that involve a loss (see :func:`run_checks`)."""
    X_all, y_all, X_val_all, y_val_all = arrays
    X, y = sample_rows(X_all, y_all, sizes.loss_rows, rng)
    X_grad, y_grad = sample_rows(X_all, y_all, sizes.gradient_rows, rng)
    X_grad = X_grad.astype(np.float64)
    X_label, y_label = sample_rows(X_all, y_all, sizes.label_rows, rng)
    X_val, y_val = sample_rows(X_val_all, y_val_all, sizes.label_val_rows, rng)
    dim = X.shape[1]

    def start() -> tuple[np.ndarray, np.ndarray]:
        """W, b for a gradient check: scores spread over about ±1."""
        W = rng.standard_normal((dim, num_classes)) / math.sqrt(dim)
        return W, 0.1 * rng.standard_normal(num_classes)

    def gradient(loss: str, regularizer: Regularizer | None) -> CheckResult:
        W, b = start()
        return check_gradient(
            fns[loss],
            W,
            b,
            X_grad,
            y_grad,
            regularizer,
            rng=rng,
            hinge_margin=margin if loss == "svm" else None,
            n_coords=sizes.coordinates,
            features=features,
            loss=loss,
        )

    results = []
    for loss, fn in fns.items():
        results.append(
            check_initial_loss(
                fn,
                X,
                y,
                num_classes=num_classes,
                expected=expected_initial_loss(loss, num_classes, margin),
                init_scale=init_scale,
                rng=rng,
                features=features,
                loss=loss,
            )
        )
        W, b = start()
        results.append(check_large_scores(fn, W, b, X_grad, y_grad, features=features, loss=loss))
        results.append(gradient(loss, None))
        results += check_labels(
            train_fn,
            X_label,
            y_label,
            X_val,
            y_val,
            loss=loss,
            num_classes=num_classes,
            rng=rng,
            permutations=sizes.permutations,
            learning_rate=sizes.label_learning_rate,
            epochs=sizes.label_epochs,
            init_scale=init_scale,
            margin=margin,
            features=features,
        )
    for regularizer in penalties:
        results += [gradient(loss, regularizer) for loss in fns]
    return results


def _bind(loss: str, fn: LossFn, margin: float) -> LossFn:
    return partial(fn, margin=margin) if loss == "svm" else fn
