"""Sanity checks: the initial loss and the gradient check catch what they should."""

from __future__ import annotations

import csv
import io
import math
from functools import partial

import numpy as np
import pytest

from linbench import sanity
from linbench.losses import softmax_loss, svm_loss
from linbench.regularizers import REGULARIZERS, make_regularizer

C = 10
STRENGTHS = {
    "none": 0.0,
    "l1": 1e-2,
    "l2": 1e-1,
    "elastic_net": 1e-2,
    "max_norm": 0.5,
    "dropout": 0.5,
}
LOSSES = {"svm": partial(svm_loss, margin=1.0), "softmax": softmax_loss}


def features(n: int = 600, dim: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features with a class signal, like gather_features writes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    X = rng.standard_normal((n, dim)) + rng.standard_normal((C, dim))[y]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


def gradient_setup(seed: int = 0, n: int = 50, dim: int = 48):
    """A float64 batch and W, b at the scale run_checks uses (scores spread about ±1)."""
    X, y = features(n, dim, seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.standard_normal((dim, C)) / math.sqrt(dim)
    b = 0.1 * rng.standard_normal(C)
    return W, b, X.astype(np.float64), y, rng


def scaled(loss_fn, factor_W: float = 1.0, factor_b: float = 1.0):
    """A test double: `loss_fn` with its gradient scaled (a deliberate bug)."""

    def wrong(W, b, X, y, **kwargs):
        value, dW, db = loss_fn(W, b, X, y, **kwargs)
        return value, factor_W * dW, factor_b * db

    return wrong


# --------------------------------------------------------------------------- initial loss


@pytest.mark.parametrize(("loss", "expected"), [("svm", 9.0), ("softmax", math.log(10))])
def test_initial_loss_is_near_its_value_at_zero_weights(loss, expected):
    X, y = features()
    assert sanity.expected_initial_loss(loss, C, margin=1.0) == pytest.approx(expected)
    result = sanity.check_initial_loss(
        LOSSES[loss],
        X,
        y,
        num_classes=C,
        expected=expected,
        init_scale=1e-3,
        rng=np.random.default_rng(0),
    )
    assert result.passed
    assert result.measured == pytest.approx(expected, rel=0.01)
    assert result.error <= sanity.INITIAL_LOSS_TOLERANCE


def test_svm_expected_initial_loss_scales_with_the_margin():
    assert sanity.expected_initial_loss("svm", C, margin=2.0) == 18.0


def test_initial_loss_fails_when_the_weights_start_large():
    X, y = features()
    result = sanity.check_initial_loss(
        LOSSES["svm"],
        X,
        y,
        num_classes=C,
        expected=9.0,
        init_scale=1.0,
        rng=np.random.default_rng(0),
    )
    assert not result.passed
    assert result.status == "FAIL"


# --------------------------------------------------------------------------- gradient


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("regularizer", list(REGULARIZERS))
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_correct_gradient_passes(loss, regularizer, seed):
    # Dropout passes only because the mask stays fixed during the finite differences.
    W, b, X, y, rng = gradient_setup(seed)
    result = sanity.check_gradient(
        LOSSES[loss],
        W,
        b,
        X,
        y,
        make_regularizer(regularizer, STRENGTHS[regularizer]),
        rng=rng,
        hinge_margin=1.0 if loss == "svm" else None,
    )
    assert result.passed, result
    assert result.error <= sanity.GRADIENT_TOLERANCE
    assert result.coordinates == 40 + C


@pytest.mark.parametrize(("factor_W", "factor_b"), [(1.01, 1.0), (1.0, 1.01)])
@pytest.mark.parametrize("regularizer", ["none", "l2", "dropout"])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_scaled_gradient_fails(loss, regularizer, factor_W, factor_b):
    W, b, X, y, rng = gradient_setup()
    result = sanity.check_gradient(
        scaled(LOSSES[loss], factor_W, factor_b),
        W,
        b,
        X,
        y,
        make_regularizer(regularizer, STRENGTHS[regularizer]),
        rng=rng,
        hinge_margin=1.0 if loss == "svm" else None,
    )
    assert not result.passed
    assert result.error > 1e-3  # a 1 % bug shows as a ~1e-2 relative error


def test_hinge_kink_is_counted_and_not_judged():
    W, b, X, y, _ = gradient_setup(n=5)
    # Put sample 0's margin for a wrong class exactly at 0: moving b[j] by ±h crosses the
    # kink, where the analytic subgradient and the finite difference disagree.
    j = (y[0] + 1) % C
    s = X @ W + b
    b[j] -= s[0, j] - s[0, y[0]] + 1.0
    args = (LOSSES["svm"], W, b, X, y, make_regularizer("none", 0))
    result = sanity.check_gradient(*args, rng=np.random.default_rng(0), hinge_margin=1.0)
    assert result.passed
    assert result.at_kink >= 1
    assert result.max_error_at_kink > sanity.GRADIENT_TOLERANCE
    # Without kink detection the same coordinate fails the check: the kink is real.
    naive = sanity.check_gradient(*args, rng=np.random.default_rng(0))
    assert not naive.passed


def test_l1_kink_counts_zero_weights():
    W, b, X, y, _ = gradient_setup()
    W[:3, 0] = 0.0
    result = sanity.check_gradient(
        LOSSES["softmax"],
        W,
        b,
        X,
        y,
        make_regularizer("l1", 1e-2),
        rng=np.random.default_rng(0),
        n_coords=W.size,
    )
    assert result.at_kink == 3
    assert result.passed


def test_relative_error_floor_keeps_tiny_gradients_from_failing():
    # Two gradients that differ by rounding noise only: 100 % apart without the floor.
    assert sanity.relative_error(1e-12, 2e-12, floor=0.0) == pytest.approx(0.5)
    assert sanity.relative_error(1e-12, 2e-12, floor=1e-3) < 1e-8
    # Large gradients are compared relative to themselves.
    assert sanity.relative_error(1.0, 1.01, floor=1e-3) == pytest.approx(0.01 / 1.01)


# --------------------------------------------------------------------------- the table


def run(loss_fns=sanity.LOSSES):
    data = {"hog": features(seed=0), "pixels": features(dim=64, seed=1)}
    return sanity.run_checks(
        data,
        ["svm", "softmax"],
        STRENGTHS,
        num_classes=C,
        init_scale=1e-3,
        loss_rows=200,
        gradient_rows=50,
        n_coords=20,
        loss_fns=loss_fns,
    )


def test_table_has_one_row_per_check_and_all_pass():
    results = run()
    rows = list(csv.DictReader(io.StringIO(sanity.to_csv(results))))
    # Per feature set: one initial loss per loss, one gradient per loss x regularizer.
    assert len(rows) == 2 * (2 + 2 * len(STRENGTHS))
    assert list(rows[0]) == list(sanity.CSV_COLUMNS)
    assert {r["status"] for r in rows} == {"PASS"}
    initial = [r for r in rows if r["check"] == "initial loss"]
    assert len(initial) == 4
    for r in initial:
        assert float(r["measured"]) == pytest.approx(float(r["expected"]), rel=0.05)
    gradients = {
        (r["features"], r["loss"], r["regularizer"]) for r in rows if r["check"] == "gradient"
    }
    assert gradients == {
        (f, loss, g) for f in ("hog", "pixels") for loss in LOSSES for g in STRENGTHS
    }
    assert sanity.to_markdown(results).splitlines()[0] == "# PASS: all 28 sanity checks passed"


def test_wrong_gradient_shows_as_fail_in_table_banner_and_gate():
    results = run({"svm": scaled(svm_loss, 1.01), "softmax": softmax_loss})
    failed = [r for r in results if not r.passed]
    # Every svm gradient check, on both feature sets; the initial loss is still right.
    assert {(r.check, r.loss) for r in failed} == {("gradient", "svm")}
    assert len(failed) == 2 * len(STRENGTHS)
    first_line = sanity.to_markdown(results).splitlines()[0]
    assert first_line.startswith("# FAIL: 12 of 28 sanity checks failed: gradient hog/svm/none")
    statuses = sanity.read_statuses(sanity.to_csv(results))
    assert sum(status == "FAIL" for status, _ in statuses) == 12
    assert ("FAIL", "gradient pixels/svm/dropout") in statuses


def test_read_statuses_rejects_other_tables():
    with pytest.raises(ValueError, match="not a sanity table"):
        sanity.read_statuses("features,loss\nhog,svm\n")
