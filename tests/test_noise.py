"""Gradient noise scale: against a slow per-example loop, the loss functions' gradients, and
cases whose answer is known."""

import math
from pathlib import Path

import numpy as np
import pytest
from test_imports import PACKAGE, imports_of

from linbench import noise
from linbench.losses import LOSSES
from linbench.noise import gradient_noise_scale, score_gradients

KINDS = ["svm", "softmax"]


def problem(n=40, dim=7, classes=4, seed=0, weight_scale=0.6):
    """A small float64 problem whose SVM margins are a mix of violated and met."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, weight_scale, (dim, classes))
    b = rng.normal(0, 0.2, classes)
    X = rng.normal(0, 1, (n, dim))
    y = rng.integers(0, classes, n)
    return W, b, X, y


def loss_call(kind, W, b, X, y, margin=1.0):
    return LOSSES[kind](W, b, X, y, margin) if kind == "svm" else LOSSES[kind](W, b, X, y)


def slow_noise_scale(kind, W, b, X, y, margin=1.0):
    """The definition, one example at a time: each g_i from the loss function itself on a
    batch of one, flattened over (W, b); then mean, unbiased covariance, trace."""
    grads = []
    for i in range(len(y)):
        _, dW, db = loss_call(kind, W, b, X[i : i + 1], y[i : i + 1], margin)
        grads.append(np.concatenate([dW.ravel(), db]))
    grads = np.array(grads)  # (N, D*C + C)
    G = grads.mean(axis=0)
    tr_sigma = float(np.trace(np.cov(grads, rowvar=False, ddof=1)))
    return tr_sigma / float(G @ G), tr_sigma, float(G @ G)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_slow_per_example_loop(kind, seed):
    W, b, X, y = problem(seed=seed)
    fast = gradient_noise_scale(W, b, X, y, loss=kind, block_rows=7)  # blocks that do not divide N
    b_simple, tr_sigma, g_norm2 = slow_noise_scale(kind, W, b, X, y)
    assert fast["tr_sigma"] == pytest.approx(tr_sigma, rel=1e-12)
    assert fast["g_norm2"] == pytest.approx(g_norm2, rel=1e-12)
    assert fast["B_simple"] == pytest.approx(b_simple, rel=1e-12)


def test_svm_problem_has_both_violated_and_met_margins():
    """Else the SVM comparison above would not test the hinge's switching."""
    W, b, X, y = problem()
    R = score_gradients(W, b, X, y, loss="svm")
    wrong = np.ones_like(R, dtype=bool)
    wrong[np.arange(len(y)), y] = False
    assert 0.2 < (R[wrong] > 0).mean() < 0.8


def test_svm_margin_is_passed_through():
    W, b, X, y = problem()
    slow = slow_noise_scale("svm", W, b, X, y, margin=0.3)
    fast = gradient_noise_scale(W, b, X, y, loss="svm", margin=0.3)
    assert fast["B_simple"] == pytest.approx(slow[0], rel=1e-12)
    default = gradient_noise_scale(W, b, X, y, loss="svm")
    assert fast["B_simple"] != pytest.approx(default["B_simple"])


@pytest.mark.parametrize("kind", KINDS)
def test_mean_score_gradient_is_the_loss_gradient(kind):
    """The data part of the losses' dW, db is the mean of the per-example gradients."""
    W, b, X, y = problem(n=25, seed=3)
    R = score_gradients(W, b, X, y, loss=kind)
    _, dW, db = loss_call(kind, W, b, X, y)
    np.testing.assert_allclose(X.T @ R / len(y), dW, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(R.mean(axis=0), db, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_block_size_and_float32_input_do_not_change_the_answer(kind):
    W, b, X, y = problem(n=101, seed=4)
    whole = gradient_noise_scale(W, b, X, y, loss=kind, block_rows=1000)
    for rows in (1, 10, 100):
        assert gradient_noise_scale(W, b, X, y, loss=kind, block_rows=rows)["B_simple"] == (
            pytest.approx(whole["B_simple"], rel=1e-12)
        )
    # float32 features are widened per block: only the features' own rounding remains
    X32 = X.astype(np.float32)
    exact32 = gradient_noise_scale(W, b, X32.astype(np.float64), y, loss=kind)
    assert gradient_noise_scale(W, b, X32, y, loss=kind)["B_simple"] == pytest.approx(
        exact32["B_simple"], rel=1e-12
    )


@pytest.mark.parametrize("kind", KINDS)
def test_identical_examples_have_no_noise(kind):
    W, b, X, y = problem(seed=5)
    X, y = np.repeat(X[:1], 30, axis=0), np.repeat(y[:1], 30)
    out = gradient_noise_scale(W, b, X, y, loss=kind)
    assert out["g_norm2"] > 0
    assert out["tr_sigma"] == pytest.approx(0, abs=1e-12 * out["g_norm2"])
    assert out["B_simple"] == pytest.approx(0, abs=1e-12)


def test_zero_mean_gradient_gives_infinite_noise_scale():
    """Softmax at W = 0, b = 0 with balanced, mirrored examples: per class the x's cancel and
    the p - onehot(y) average to 0, so G = 0 while no g_i is. (C = 4 and integer features
    keep every sum exact, so G is exactly 0, not a rounding error.)"""
    classes, dim = 4, 3
    half = np.random.default_rng(6).integers(-5, 6, (classes, dim)).astype(float)
    X = np.concatenate([half, -half])
    y = np.concatenate([np.arange(classes), np.arange(classes)])
    W, b = np.zeros((dim, classes)), np.zeros(classes)
    out = gradient_noise_scale(W, b, X, y, loss="softmax")
    assert out["g_norm2"] == 0.0
    assert out["tr_sigma"] > 0
    assert math.isinf(out["B_simple"])


def test_exact_zero_gradients():
    """SVM with every margin met by far: each g_i is exactly 0 (nan: no signal, no noise)."""
    classes = 3
    X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    y = np.array([0, 1, 0])
    W = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])  # true score 10 or 20, others 0
    out = gradient_noise_scale(W, np.zeros(classes), X, y, loss="svm")
    assert (out["tr_sigma"], out["g_norm2"]) == (0.0, 0.0)
    assert math.isnan(out["B_simple"])


def test_known_value_one_gradient_and_one_zero():
    """Two examples, one with gradient g and one with gradient 0: G = g/2 and
    tr(Σ) = (|g - g/2|^2 + |0 - g/2|^2) / (N - 1) = |g|^2 / 2, so B_simple = 2 exactly."""
    X = np.array([[1.0, 2.0], [5.0, 5.0]])
    y = np.array([0, 0])
    W = np.array([[0.4, 0.0], [0.0, 0.0]])  # s_0 = 0.4 x_1, s_1 = 0
    b = np.zeros(2)
    # SVM margin s_1 - s_0 + 1: 0.6 > 0 for example 1 (violated), -1 for example 2 (met)
    out = gradient_noise_scale(W, b, X, y, loss="svm")
    assert out["B_simple"] == pytest.approx(2.0, rel=1e-14)
    # |g_1|^2 = (|x_1|^2 + 1) |r_1|^2 = (5 + 1) * 2
    assert out["g_norm2"] == pytest.approx(12 / 4, rel=1e-14)


def test_bad_input_names_the_argument():
    W, b, X, y = problem()
    with pytest.raises(ValueError, match="loss"):
        gradient_noise_scale(W, b, X, y, loss="hinge")
    with pytest.raises(ValueError, match="X must"):
        gradient_noise_scale(W, b, X[:1], y[:1], loss="svm")
    with pytest.raises(ValueError, match="W must"):
        gradient_noise_scale(W[:-1], b, X, y, loss="svm")
    with pytest.raises(ValueError, match="b must"):
        gradient_noise_scale(W, b[:-1], X, y, loss="svm")
    with pytest.raises(ValueError, match="y must"):
        gradient_noise_scale(W, b, X, y[:-1], loss="svm")
    with pytest.raises(ValueError, match="y must"):
        gradient_noise_scale(W, b, X, y.astype(float), loss="svm")
    with pytest.raises(ValueError, match="y must"):
        gradient_noise_scale(W, b, X, y + W.shape[1], loss="svm")
    with pytest.raises(ValueError, match="block_rows"):
        gradient_noise_scale(W, b, X, y, loss="svm", block_rows=0)


def test_a_broken_score_gradient_is_caught(monkeypatch):
    """Break the SVM's true-class entry (count of violations) on purpose: the comparison
    with the slow loop over the loss function fails."""
    W, b, X, y = problem()
    good = noise.score_gradients

    def broken(W, b, X, y, *, loss, margin=1.0):
        R = good(W, b, X, y, loss=loss, margin=margin)
        R[np.arange(len(y)), y] = -1.0
        return R

    monkeypatch.setattr(noise, "score_gradients", broken)
    fast = noise.gradient_noise_scale(W, b, X, y, loss="svm")
    assert fast["B_simple"] != pytest.approx(slow_noise_scale("svm", W, b, X, y)[0], rel=1e-6)


def test_noise_is_numpy_core():
    """The numpy core layer: numpy and the names / losses modules, nothing else."""
    internal, external = imports_of(Path(noise.__file__), PACKAGE, "linbench")
    assert internal <= {"names", "losses"}
    assert external <= {"__future__", "math", "numpy"}
