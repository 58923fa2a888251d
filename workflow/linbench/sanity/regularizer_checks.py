"""Checks of what a regularizer does in an SGD step, chosen by its hook.

``linbench.names.REGULARIZERS[name].hook`` says where a regularizer acts: ``penalty`` (added
to the loss: its gradient is checked with the loss, see :mod:`.gradient`), ``transform``
(of the training minibatch), ``project`` (of W after each update) or ``none``.

- :func:`check_hooks`, for every regularizer: it does nothing outside its hook (no penalty,
  batch unchanged, W unchanged), so the hook it is checked by is the one it uses.
- :func:`check_transform` (hook ``transform``, inverted
  dropout): over many draws the mean of the transformed batch equals X within a few
  standard errors, and the share of entries kept equals the keep probability (strength).
- :func:`check_projection` (hook ``project``, max-norm): after the projection every column
  norm of W is at most c, columns inside the ball are untouched and the others are scaled
  onto it.
- :func:`no_check` for a hook none of these knows: a FAIL row that says so.
"""

from __future__ import annotations

import math

import numpy as np

from ..regularizers import Regularizer
from .result import CheckResult

MAX_Z = 6.0
"""Largest |deviation| / standard error that passes a statistical check. Over 10^4
independent entries a correct transform exceeds it with probability about 2e-5."""
PROJECTION_TOLERANCE = 1e-5
"""Relative rounding allowed in a float32 projection (float32 eps is 1.2e-7)."""
KEEP_RESOLUTION = 2.0**-16
"""Keep probabilities are rounded to this resolution by the fast dropout mask."""


def check_hooks(
    regularizer: Regularizer,
    hook: str,
    X: np.ndarray,
    *,
    rng: np.random.Generator,
    num_classes: int,
    features: str = "",
) -> CheckResult:
    """The regularizer does nothing outside its `hook`.

    Unless `hook` is ``penalty``, ``penalty(W)`` must be (0, 0); unless ``transform``,
    ``transform_batch(X, rng)`` must equal X (N, D); unless ``project``, ``project(W)`` must
    leave W unchanged. W (D, num_classes) is drawn from `rng` with column norms around 3,
    so that a max-norm radius below that would act.
    """
    X = np.asarray(X)
    W = rng.standard_normal((X.shape[1], num_classes)).astype(X.dtype)
    W *= 3 / np.sqrt(X.shape[1])
    acts = []
    if hook != "penalty":
        value, grad = regularizer.penalty(W.copy())
        if float(value) != 0 or np.any(np.asarray(grad) != 0):
            acts.append("penalty")
    if hook != "transform" and not np.array_equal(regularizer.transform_batch(X, rng), X):
        acts.append("transform")
    if hook != "project":
        projected = W.copy()
        regularizer.project(projected)
        if not np.array_equal(projected, W):
            acts.append("project")
    others = [h for h in ("penalty", "transform", "project") if h != hook]
    return CheckResult(
        check="acts only through its hook",
        features=features,
        loss="",
        regularizer=regularizer.name,
        strength=float(regularizer.strength),
        measured=float(len(acts)),
        expected=0.0,
        error=float(len(acts)),
        tolerance=0.0,
        passed=not acts,
        result=f"also acts through: {', '.join(acts)}" if acts else f"hook {hook}; inert elsewhere",
        criterion=f"no effect through {', '.join(others)}",
        detail=f"{len(X)} training rows, W with column norms about 3",
    )


def _transform_draws(
    regularizer: Regularizer, X: np.ndarray, rng: np.random.Generator, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per entry of X (N, D): sum and sum of squares of `draws` transforms (float64), the
    number of draws that left it non-zero, and each draw's scale ``<out, X> / <X, X>``."""
    total = np.zeros(X.shape)
    squares = np.zeros(X.shape)
    kept = np.zeros(X.shape, dtype=np.int64)
    scales = np.empty(draws)
    X64 = np.asarray(X, dtype=np.float64)
    norm2 = float(np.vdot(X64, X64))
    for k in range(draws):
        out = np.asarray(regularizer.transform_batch(X, rng), dtype=np.float64)
        total += out
        squares += out * out
        kept += out != 0
        scales[k] = float(np.vdot(out, X64)) / norm2
    return total, squares, kept, scales


def check_transform(
    regularizer: Regularizer,
    X: np.ndarray,
    *,
    rng: np.random.Generator,
    draws: int = 1000,
    max_z: float = MAX_Z,
    features: str = "",
) -> list[CheckResult]:
    """Two rows: over `draws` transforms of the batch X (N, D), drawn from `rng`, the mean
    equals X (*transform keeps the mean*), and the share of non-zero entries of X left
    non-zero equals the strength (*keep share*, dropout's keep probability p).

    Mean: two z-scores, each |deviation| / its standard error estimated from the draws,
    must be at most `max_z`: the largest over entries, and that of the overall scale
    ``<mean, X> / <X, X>`` (expected 1), which sees a bias no single entry shows (1 %,
    with 1000 draws of a few thousand entries). An entry whose draws all agree must equal
    X (to 1e-6, relative).
    Keep share: ``|share - p| <= max_z * sqrt(p (1 - p) / n) + 2^-16`` (n entries drawn).
    """
    X64 = np.asarray(X, dtype=np.float64)
    total, squares, kept, scales = _transform_draws(regularizer, np.asarray(X), rng, draws)
    mean = total / draws
    se = np.sqrt(np.maximum(squares / draws - mean**2, 0) / (draws - 1))
    deviation = np.abs(mean - X64)
    fixed = se <= 1e-7 * np.abs(X64)  # every draw gave the same value
    entry_z = np.where(fixed, np.where(deviation <= 1e-6 * np.abs(X64), 0.0, np.inf), 0.0)
    entry_z[~fixed] = deviation[~fixed] / se[~fixed]
    scale = float(scales.mean())
    scale_se = float(scales.std(ddof=1)) / math.sqrt(draws)
    if scale_se > 1e-7:
        scale_z = abs(scale - 1) / scale_se
    else:  # every draw gave the same scale (no randomness): it must be 1
        scale_z = 0.0 if abs(scale - 1) <= 1e-6 else math.inf
    z = max(float(entry_z.max()), scale_z)
    name, strength = regularizer.name, float(regularizer.strength)
    setup = f"{draws} draws of {X.shape[0]} x {X.shape[1]} training features"
    mean_row = CheckResult(
        check="transform keeps the mean",
        features=features,
        loss="",
        regularizer=name,
        strength=strength,
        measured=scale,
        expected=1.0,
        error=z,
        tolerance=max_z,
        passed=bool(z <= max_z),
        result=f"mean = {scale:.4f} · X; largest entry z = {float(entry_z.max()):.2f}, "
        f"scale z = {scale_z:.2f}",
        criterion=f"|mean − X| ≤ {max_z:g} standard errors (every entry, overall scale)",
        detail=setup,
    )

    nonzero = X64 != 0
    n = int(nonzero.sum()) * draws
    share = float(kept[nonzero].sum()) / n
    p = strength
    allowed = max_z * math.sqrt(p * (1 - p) / n) + KEEP_RESOLUTION if 0 <= p <= 1 else -1.0
    share_row = CheckResult(
        check="keep share",
        features=features,
        loss="",
        regularizer=name,
        strength=strength,
        measured=share,
        expected=p,
        error=abs(share - p),
        tolerance=allowed,
        passed=bool(abs(share - p) <= allowed),
        result=f"{share:.4f} of the entries kept (expected {p:g})",
        criterion=f"within {allowed:.1e} ({max_z:g} standard errors + 2^-16)",
        detail=setup,
    )
    return [mean_row, share_row]


def check_projection(
    regularizer: Regularizer,
    dim: int,
    num_classes: int,
    *,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
    tolerance: float = PROJECTION_TOLERANCE,
    features: str = "",
) -> CheckResult:
    """After ``regularizer.project(W)``, in place as training calls it, W is the column-wise
    projection of W onto the ball of radius c (the strength).

    W (dim, num_classes) in `dtype` gets column norms spread geometrically from c/2 to 2c, so
    some columns are inside the ball and some outside. Passes when every column norm is
    at most ``c (1 + tolerance)``, columns inside are bit for bit unchanged, and columns
    outside equal ``c w / ||w||`` to `tolerance` (relative to c).
    """
    c = float(regularizer.strength)
    W = rng.standard_normal((dim, num_classes))
    W *= np.geomspace(0.5 * c, 2 * c, num_classes) / np.linalg.norm(W, axis=0)
    W = W.astype(dtype)
    original = W.copy()
    regularizer.project(W)
    norms = np.linalg.norm(original.astype(np.float64), axis=0)
    inside = norms <= c
    expected = original * np.minimum(1.0, c / norms)
    largest = float(np.linalg.norm(W.astype(np.float64), axis=0).max())
    off = float(np.abs(W - expected).max()) / c
    untouched = np.array_equal(W[:, inside], original[:, inside])
    passed = largest <= c * (1 + tolerance) and untouched and off <= tolerance
    return CheckResult(
        check="projection",
        features=features,
        loss="",
        regularizer=regularizer.name,
        strength=c,
        measured=largest,
        expected=c,
        error=off,
        tolerance=tolerance,
        passed=bool(passed),
        result=f"largest column norm {largest:.6g} (c = {c:g}); "
        f"inside columns {'untouched' if untouched else 'CHANGED'}; "
        f"off the projection by {off:.1e} · c",
        criterion=f"norms ≤ c, inside unchanged, outside = c·w/‖w‖ (to {tolerance:g})",
        detail=f"W {dim} x {num_classes} {np.dtype(dtype).name}, column norms c/2 .. 2c "
        f"({int(inside.sum())} inside), projected in place",
    )


def no_check(regularizer: Regularizer, hook: str, *, features: str = "") -> CheckResult:
    """A FAIL row for a regularizer whose hook no sanity check knows."""
    return CheckResult(
        check="no check for this hook",
        features=features,
        loss="",
        regularizer=regularizer.name,
        strength=float(regularizer.strength),
        measured=math.nan,
        expected=math.nan,
        error=math.nan,
        tolerance=math.nan,
        passed=False,
        result=f"hook {hook!r} has no sanity check",
        criterion="a check for every hook",
        detail="add a check for this hook to linbench.sanity (HOOK_CHECKS)",
    )
