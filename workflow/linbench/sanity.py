"""Sanity checks on real features: the loss at initialisation and a numerical gradient check.

Two habits every course on linear classifiers insists on, run before trusting a grid:

**Initial loss.** With small random weights (``W ~ N(0, init_scale^2)``, ``b = 0``, as
:func:`linbench.train.train` starts) every score is close to 0, so the loss must be close
to its value at ``W = 0``: ``(C - 1) * margin`` for the Weston-Watkins SVM (9 for C = 10,
margin 1) and ``ln C`` for softmax (2.303). A different value means a bug in the loss or
in the data (labels, scaling) before a single step is taken.

**Gradient check.** The analytic gradient (loss + regularizer penalty, exactly as a
training step computes it) is compared with a centred finite difference
``(f(w + h) - f(w - h)) / 2h`` on a random sample of coordinates of W and on every
coordinate of b, in float64, on a small batch of real features. Per coordinate the
relative error is ``|a - n| / max(|a|, |n|, floor)`` (see :func:`noise_floor`); a check
passes when the largest error is below ``tolerance`` (1e-7, "you should be happy" in the
CS231n notes) on every coordinate that does not sit at a kink:

- the hinge ``max(0, s_j - s_y + margin)`` has a kink where a margin is 0; a coordinate
  whose ±h step moves some margin across 0 has a one-sided analytic (sub)gradient and an
  averaged numerical one, so a larger error there says nothing about a bug;
- so does ``|w|`` (L1, elastic net) for ``|w| <= h``.

Such coordinates are counted and reported, and the check is judged on the others.
Regularizers without a penalty are checked for what a step does: ``max_norm`` on the
loss gradient (its projection after the step is not a gradient), ``dropout`` on the loss
gradient at one fixed inverted-dropout mask applied to X.

Every check takes the loss function as a parameter, so a test double with a wrong
gradient is caught like a real bug. Imports numpy and the numpy core only.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from .losses import LOSSES, LossFn
from .regularizers import L1, ElasticNet, Regularizer, make_regularizer
from .text import fmt_strength, markdown_table

INITIAL_LOSS_TOLERANCE = 0.05
"""Relative deviation of the initial loss from its expected value that still passes."""
GRADIENT_TOLERANCE = 1e-7
"""Largest relative gradient error that passes (CS231n: below 1e-7 "you should be happy")."""
STEP = 1e-5
"""Finite-difference step h: the usual compromise between truncation and rounding error."""
FLOOR_SAFETY = 10.0
"""How far above its estimate the finite difference's rounding error may be (see noise_floor)."""

CSV_COLUMNS = (
    "status",
    "check",
    "features",
    "loss",
    "regularizer",
    "strength",
    "measured",
    "expected",
    "error",
    "tolerance",
    "coordinates",
    "at_kink",
    "max_error_at_kink",
    "detail",
)
"""Columns of ``sanity.csv``, one row per check."""
# What a regularizer's strength means, for the table (as linbench.report, which needs pandas).


@dataclass(frozen=True)
class CheckResult:
    """One row of the sanity table.

    ``check`` is ``"initial loss"`` or ``"gradient"``. ``error`` is the number judged
    against ``tolerance``: the relative deviation of the initial loss from ``expected``
    (``measured`` is the loss), or the largest relative gradient error away from kinks
    (``measured`` and ``expected`` are NaN). ``coordinates``, ``at_kink`` and
    ``max_error_at_kink`` describe a gradient check's sample (None, None and NaN for the
    initial loss).
    ``regularizer`` is ``""`` for the initial loss, which is the data loss alone.
    """

    check: str
    features: str
    loss: str
    regularizer: str
    strength: float
    measured: float
    expected: float
    error: float
    tolerance: float
    passed: bool
    detail: str
    coordinates: int | None = None
    at_kink: int | None = None
    max_error_at_kink: float = math.nan

    @property
    def status(self) -> str:
        """``PASS`` or ``FAIL``."""
        return "PASS" if self.passed else "FAIL"

    def row(self) -> dict[str, object]:
        """The result as a dict with the keys :data:`CSV_COLUMNS`."""
        values = asdict(self)
        values["status"] = self.status
        return {key: values[key] for key in CSV_COLUMNS}


# --------------------------------------------------------------------------- initial loss


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
        detail=f"W ~ N(0, {init_scale:g}²), b = 0, {len(X)} training rows",
    )


# --------------------------------------------------------------------------- gradient


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
    margins = np.abs(_margins(W, b, X, y, margin))
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


def _margins(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, margin: float
) -> np.ndarray:
    """Hinge margins ``s_j - s_{y_i} + margin`` (N, C), unclipped (the true class: `margin`)."""
    s = X @ W + b
    return s - s[np.arange(len(X)), y][:, None] + margin


def penalty_kinks(regularizer: Regularizer, W: np.ndarray, step: float) -> np.ndarray:
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
    regularizer: Regularizer,
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
    y) -> (loss, dW, db)`` on the batch as the regularizer transforms it (dropout: one
    inverted-dropout mask drawn from `rng`, then fixed), plus the regularizer's penalty.
    Shapes: W (D, C), b (C,), X (N, D), y (N,); everything is cast to float64. `n_coords`
    random coordinates of W (without repeats) and every coordinate of b are compared,
    with step `step`.

    `hinge_margin`: set it (to the SVM's margin) when `loss_fn` is a hinge loss, so that
    coordinates at its kinks (:func:`hinge_kinks`) are not judged; None for a smooth loss.
    Kinks of the penalty come from :func:`penalty_kinks`. The check passes when the
    largest relative error (:func:`relative_error` with :func:`noise_floor`) of the
    coordinates away from kinks is at most `tolerance`, and at least one such coordinate
    was compared.
    """
    W = np.array(W, dtype=np.float64)  # a copy: coordinates are perturbed in place
    b = np.array(b, dtype=np.float64)
    X = regularizer.transform_batch(np.asarray(X, dtype=np.float64), rng)
    y = np.asarray(y)
    num_classes = W.shape[1]

    def objective() -> float:
        return float(loss_fn(W, b, X, y)[0]) + float(regularizer.penalty(W)[0])

    value, dW, db = loss_fn(W, b, X, y)
    penalty, dW_penalty = regularizer.penalty(W)
    analytic = np.concatenate([np.ravel(dW + dW_penalty), np.ravel(db)])
    value = float(value) + float(penalty)

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

    detail = [
        _objective_words(regularizer),
        f"{len(picks)} W + {num_classes} b coordinates on {len(X)} training rows, "
        f"h = {step:g}, error floor {floor:.1e}",
    ]
    if hinge_margin is not None:
        margins = _margins(W, b, X, y, hinge_margin)
        margins[np.arange(len(X)), y] = -np.inf
        active = (margins > 0).sum() / (margins.size - len(X))
        detail.append(f"{active:.0%} of hinge margins active")
    if at_kink:
        detail.append(f"{at_kink} at a kink, not judged")
    return CheckResult(
        check="gradient",
        features=features,
        loss=loss,
        regularizer=regularizer.name,
        strength=float(regularizer.strength),
        measured=math.nan,
        expected=math.nan,
        error=error,
        tolerance=tolerance,
        passed=bool(judged.size and error <= tolerance),  # False for NaN too
        detail="; ".join(detail),
        coordinates=len(coords),
        at_kink=at_kink,
        max_error_at_kink=float(errors[kinks].max()) if at_kink else math.nan,
    )


def _objective_words(regularizer: Regularizer) -> str:
    """What the gradient check differentiates, for the table."""
    name = regularizer.name
    if name in ("l1", "l2", "elastic_net"):
        return f"loss + {name} penalty"
    if name == "max_norm":
        return "loss only (the max-norm projection is not a gradient)"
    if name == "dropout":
        return f"loss on X with one fixed inverted-dropout mask (keep p = {regularizer.strength:g})"
    return "loss (no penalty)"


# --------------------------------------------------------------------------- all checks


def sample_rows(
    X: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`n` random rows of X (N, D) and y (N,) (all if N <= n), in file order, as arrays.

    X may be a memory map: only the chosen rows are read.
    """
    index = np.sort(rng.choice(len(X), size=min(n, len(X)), replace=False))
    return np.asarray(X[index]), np.asarray(y[index])


def run_checks(
    data: Mapping[str, tuple[np.ndarray, np.ndarray]],
    losses: Sequence[str],
    regularizers: Mapping[str, float],
    *,
    num_classes: int,
    init_scale: float,
    margin: float = 1.0,
    elastic_net_beta: float = 1.0,
    seed: int = 0,
    loss_rows: int = 500,
    gradient_rows: int = 100,
    n_coords: int = 40,
    loss_fns: Mapping[str, LossFn] = LOSSES,
) -> list[CheckResult]:
    """Every sanity check of a grid: per feature set, the initial loss of each loss, then
    the gradient of each loss x regularizer.

    `data` maps a feature set to its training (X (N, D), y (N,)) (memory maps are fine);
    `regularizers` maps a regularizer name to the strength to check it with (the grid's
    first). The initial loss uses `loss_rows` random rows in their stored dtype; gradients
    use `gradient_rows` rows in float64 and W ~ N(0, 1/D), b ~ N(0, 0.1^2), so that scores
    spread over about ±1: some hinge margins are active and some are not, and softmax
    probabilities are far from uniform. `loss_fns` maps a loss name to its function
    (svm's is called with ``margin=margin``); tests pass doubles. Deterministic in `seed`.
    """
    results = []
    for features, (X_all, y_all) in data.items():
        rng = np.random.default_rng(seed)
        X, y = sample_rows(X_all, y_all, loss_rows, rng)
        fns = {loss: _bind(loss, loss_fns[loss], margin) for loss in losses}
        for loss in losses:
            results.append(
                check_initial_loss(
                    fns[loss],
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
        X, y = sample_rows(X_all, y_all, gradient_rows, rng)
        X = X.astype(np.float64)
        dim = X.shape[1]
        for loss in losses:
            for name, strength in regularizers.items():
                regularizer = make_regularizer(name, strength, beta=elastic_net_beta)
                W = rng.standard_normal((dim, num_classes)) / math.sqrt(dim)
                b = 0.1 * rng.standard_normal(num_classes)
                results.append(
                    check_gradient(
                        fns[loss],
                        W,
                        b,
                        X,
                        y,
                        regularizer,
                        rng=rng,
                        hinge_margin=margin if loss == "svm" else None,
                        n_coords=n_coords,
                        features=features,
                        loss=loss,
                    )
                )
    return results


def _bind(loss: str, fn: LossFn, margin: float) -> LossFn:
    return partial(fn, margin=margin) if loss == "svm" else fn


# --------------------------------------------------------------------------- tables


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}g}"
    return str(value)


def to_csv(results: Sequence[CheckResult]) -> str:
    """The results as CSV text, columns :data:`CSV_COLUMNS`, full float precision."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow(
            {
                k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                for k, v in result.row().items()
            }
        )
    return buf.getvalue()


def banner(results: Sequence[CheckResult]) -> str:
    """One line: ``PASS: all 26 sanity checks passed`` or ``FAIL: 2 of 26 ...: <which>``."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return f"PASS: all {len(results)} sanity checks passed"
    which = ", ".join(_name(r) for r in failed)
    return f"FAIL: {len(failed)} of {len(results)} sanity checks failed: {which}"


def _name(result: CheckResult) -> str:
    parts = [result.check, result.features, result.loss, result.regularizer]
    return " ".join([parts[0], "/".join(p for p in parts[1:] if p)])


def _result_text(result: CheckResult) -> tuple[str, str]:
    """(result, criterion) columns of the Markdown table."""
    if result.check == "initial loss":
        formula = "(C−1)·margin" if result.loss == "svm" else "ln C"
        return (
            f"{result.measured:.4f} (expected {result.expected:.4g} = {formula}, "
            f"off by {100 * result.error:.2f} %)",
            f"within {100 * result.tolerance:g} %",
        )
    text = f"max rel. error {_fmt(result.error, 2) or 'n/a'}"
    if result.at_kink:
        text += f" ({_fmt(result.max_error_at_kink, 2)} at a kink)"
    return text, f"≤ {result.tolerance:g} away from kinks"


def to_markdown(results: Sequence[CheckResult]) -> str:
    """``sanity.md``: the PASS/FAIL banner as its first line, then what is checked, the table."""
    lines = [
        f"# {banner(results)}",
        "",
        "## Sanity checks on the real training features",
        "",
        "*Initial loss*: the loss at the small random initialisation training starts from "
        "must be close to its value at W = 0. *Gradient*: the analytic gradient of a "
        "training step's objective against a centred finite difference on sampled "
        "coordinates of W and on every coordinate of b, in float64; per coordinate the "
        "relative error |a − n| / max(|a|, |n|, floor), where the floor is the smallest "
        "gradient float64 resolves to the tolerance. Coordinates at a kink (a hinge margin "
        "or a weight |w| within the step of 0) are counted, not judged.",
        "",
    ]
    headers = ["status", "check", "features", "loss", "regularizer"]
    headers += ["result", "criterion", "details"]
    rows = []
    for r in results:
        result, criterion = _result_text(r)
        reg = fmt_strength(r.regularizer, r.strength) if r.regularizer else ""
        status = r.status if r.passed else f"**{r.status}**"
        rows.append([status, r.check, r.features, r.loss, reg, result, criterion, r.detail])
    lines.append(markdown_table(headers, rows))
    return "\n".join(lines) + "\n"


def read_statuses(csv_text: str) -> list[tuple[str, str]]:
    """(status, check name) of each row of ``sanity.csv`` text, for the gate rule.

    Raises ValueError when the text is not a sanity table.
    """
    reader = csv.DictReader(io.StringIO(csv_text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"not a sanity table: missing column(s) {', '.join(missing)}")
    out = []
    for row in reader:
        parts = [row["features"], row["loss"], row["regularizer"]]
        out.append((row["status"], f"{row['check']} {'/'.join(p for p in parts if p)}"))
    return out
