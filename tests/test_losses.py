"""SVM and softmax losses: values, gradients (finite differences), stability, vectorisation."""

import math

import numpy as np
import pytest

from linbench.losses import LOSSES, predict, softmax_loss, svm_loss
from linbench.regularizers import make_regularizer

H = 1e-6  # finite-difference step


def numerical_gradient(f, x: np.ndarray) -> np.ndarray:
    """Centred differences (f(x + h) - f(x - h)) / 2h of the scalar f, entry by entry."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + H
        up = f()
        x[i] = old - H
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * H)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def problem(n=12, dim=6, classes=4, seed=0, weight_scale=0.5):
    """A small float64 problem; weights bounded away from 0 (|w| >= 0.05) so L1 is smooth."""
    rng = np.random.default_rng(seed)
    W = rng.choice([-1, 1], (dim, classes)) * rng.uniform(0.05, weight_scale, (dim, classes))
    b = rng.normal(0, 0.1, classes)
    X = rng.normal(0, 1, (n, dim))
    y = rng.integers(0, classes, n)
    return W, b, X, y


def svm_kink_distance(W, b, X, y, margin=1.0) -> float:
    """How far the closest hinge s_j - s_y + margin (j != y) is from its kink at 0."""
    s = X @ W + b
    m = s - s[np.arange(len(y)), y][:, None] + margin
    m[np.arange(len(y)), y] = np.inf
    return float(np.min(np.abs(m)))


def svm_problem(seed=0):
    """A problem whose hinges are all far (relative to H) from their kinks."""
    for s in range(seed, seed + 100):
        W, b, X, y = problem(seed=s)
        # one finite-difference step moves a score by at most H * max|x| (per sample)
        if svm_kink_distance(W, b, X, y) > 1e3 * H * np.abs(X).max():
            return W, b, X, y
    raise AssertionError("no kink-free problem found")


def naive_svm_loss(W, b, X, y, margin=1.0):
    """Reference: the textbook double loop over samples and classes."""
    loss, dW, db = 0.0, np.zeros_like(W), np.zeros_like(b)
    for i in range(X.shape[0]):
        s = X[i] @ W + b
        for j in range(W.shape[1]):
            if j == y[i]:
                continue
            m = s[j] - s[y[i]] + margin
            if m > 0:
                loss += m
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
                db[j] += 1
                db[y[i]] -= 1
    n = X.shape[0]
    return loss / n, dW / n, db / n


def naive_softmax_loss(W, b, X, y):
    """Reference: per-sample loop, written from the definition."""
    loss, dW, db = 0.0, np.zeros_like(W), np.zeros_like(b)
    for i in range(X.shape[0]):
        s = X[i] @ W + b
        p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        loss -= math.log(p[y[i]])
        for j in range(W.shape[1]):
            dW[:, j] += (p[j] - (j == y[i])) * X[i]
            db[j] += p[j] - (j == y[i])
    n = X.shape[0]
    return loss / n, dW / n, db / n


@pytest.mark.parametrize(
    ("loss_fn", "naive"), [(svm_loss, naive_svm_loss), (softmax_loss, naive_softmax_loss)]
)
def test_vectorised_loss_equals_naive_loop(loss_fn, naive):
    W, b, X, y = problem(n=30, classes=5, seed=3)
    loss, dW, db = loss_fn(W, b, X, y)
    ref_loss, ref_dW, ref_db = naive(W, b, X, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, ref_db, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("penalty", ["none", "l2", "l1", "elastic_net"])
@pytest.mark.parametrize("loss_name", ["svm", "softmax"])
def test_gradient_matches_finite_differences(loss_name, penalty):
    W, b, X, y = svm_problem() if loss_name == "svm" else problem()
    reg = make_regularizer(penalty, 0.0 if penalty == "none" else 0.3, beta=0.7)
    loss_fn = LOSSES[loss_name]

    def total_loss():
        return loss_fn(W, b, X, y)[0] + reg.penalty(W)[0]

    _, dW, db = loss_fn(W, b, X, y)
    dW = dW + reg.penalty(W)[1]
    assert relative_error(dW, numerical_gradient(total_loss, W)) < 1e-6
    assert relative_error(db, numerical_gradient(total_loss, b)) < 1e-6


def test_svm_margin_parameter_scales_the_hinge():
    W, b, X, y = svm_problem()
    assert svm_loss(W, b, X, y, margin=2.5)[0] == pytest.approx(
        naive_svm_loss(W, b, X, y, margin=2.5)[0]
    )


@pytest.mark.parametrize(("loss_fn", "expected"), [(svm_loss, 9.0), (softmax_loss, math.log(10))])
def test_loss_of_near_zero_weights(loss_fn, expected):
    # Every class scores ~0: each of the 9 wrong classes violates the margin by ~1 (SVM);
    # every class has probability ~1/10 (softmax).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 30))
    y = rng.integers(0, 10, 200)
    W = rng.normal(0, 1e-6, (30, 10))
    loss, _, _ = loss_fn(W, np.zeros(10), X, y)
    assert loss == pytest.approx(expected, abs=1e-3)


def test_softmax_is_stable_for_huge_scores():
    W, b, X, y = problem()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        loss, dW, db = softmax_loss(W * 1e4, b, X, y)
    assert np.isfinite(loss) and np.isfinite(dW).all() and np.isfinite(db).all()
    # With scores this far apart the loss is the mean gap to the top score.
    s = X @ (W * 1e4) + b
    gap = s.max(axis=1) - s[np.arange(len(y)), y]
    assert loss == pytest.approx(gap.mean(), rel=1e-6)


@pytest.mark.parametrize("loss_fn", [svm_loss, softmax_loss])
def test_float32_in_float32_out(loss_fn):
    W, b, X, y = (a.astype(np.float32) if a.dtype == np.float64 else a for a in problem())
    loss, dW, db = loss_fn(W, b, X, y)
    assert isinstance(loss, float)
    assert dW.dtype == np.float32 and db.dtype == np.float32
    ref_loss, ref_dW, _ = loss_fn(*(a.astype(np.float64) for a in (W, b, X)), y)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-4, atol=1e-6)


def test_predict_is_argmax_of_scores():
    W, b, X, _ = problem(n=50)
    expected = [int(np.argmax(x @ W + b)) for x in X]
    assert predict(W, b, X).tolist() == expected


def test_losses_by_name():
    assert LOSSES == {"svm": svm_loss, "softmax": softmax_loss}
