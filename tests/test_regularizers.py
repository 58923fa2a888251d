"""Regularizers: construction and validation, penalty formulas, max-norm, dropout."""

import numpy as np
import pytest

from linbench.regularizers import (
    L1,
    L2,
    REGULARIZERS,
    Dropout,
    ElasticNet,
    MaxNorm,
    NoRegularizer,
    Regularizer,
    make_regularizer,
)

# sum W^2 = 1 + 4 + 0 + 9 = 14, sum |W| = 6
W_SMALL = np.array([[1.0, -2.0], [0.0, 3.0]])


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("none", NoRegularizer),
        ("l1", L1),
        ("l2", L2),
        ("elastic_net", ElasticNet),
        ("max_norm", MaxNorm),
        ("dropout", Dropout),
    ],
)
def test_make_regularizer_by_name(name, cls):
    strength = 0.0 if name == "none" else 0.5
    reg = make_regularizer(name, strength)
    assert type(reg) is cls and reg.name == name and reg.strength == strength
    assert isinstance(reg, Regularizer)
    assert REGULARIZERS[name] is cls


def test_elastic_net_gets_beta():
    assert make_regularizer("elastic_net", 0.1, beta=0.25) == ElasticNet(0.1, beta=0.25)


@pytest.mark.parametrize(
    ("name", "strength", "message"),
    [
        ("l3", 0.1, "unknown regularizer 'l3'; choose one of: none, l1, l2"),
        ("none", 0.1, "'none': strength must be 0"),
        ("l1", -1e-3, "'l1': strength must be >= 0, got -0.001"),
        ("l2", float("nan"), "'l2': strength must be >= 0, got nan"),
        ("elastic_net", float("inf"), "'elastic_net': strength must be >= 0"),
        ("max_norm", 0.0, "'max_norm': strength must be a radius > 0, got 0.0"),
        ("dropout", 0.0, "'dropout': strength must be a keep probability in (0, 1]"),
        ("dropout", 1.5, "'dropout': strength must be a keep probability in (0, 1]"),
        ("l2", True, "'l2': strength must be >= 0, got True"),
        ("l2", "0.1", "'l2': strength must be >= 0, got '0.1'"),
    ],
)
def test_bad_name_or_strength_is_a_clear_error(name, strength, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        make_regularizer(name, strength)


def test_bad_beta_is_a_clear_error():
    with pytest.raises(ValueError, match="'elastic_net': beta must be >= 0, got -1"):
        make_regularizer("elastic_net", 0.1, beta=-1)


@pytest.mark.parametrize(
    ("reg", "expected_value", "expected_grad"),
    [
        (L2(0.5), 0.5 * 14, 0.5 * 2 * W_SMALL),
        (L1(0.5), 0.5 * 6, 0.5 * np.sign(W_SMALL)),
        (ElasticNet(0.5, beta=2.0), 0.5 * (2 * 14 + 6), 0.5 * (2 * 2 * W_SMALL + np.sign(W_SMALL))),
    ],
)
def test_penalty_formulas(reg, expected_value, expected_grad):
    W = W_SMALL.copy()
    value, grad = reg.penalty(W)
    assert value == pytest.approx(expected_value)
    np.testing.assert_allclose(grad, expected_grad)
    np.testing.assert_array_equal(W, W_SMALL)  # W untouched


@pytest.mark.parametrize("reg", [L1(0.3), L2(0.3), ElasticNet(0.3, beta=0.7)])
def test_penalty_gradient_matches_finite_differences(reg):
    rng = np.random.default_rng(0)
    W = rng.choice([-1, 1], (5, 3)) * rng.uniform(0.05, 1, (5, 3))  # away from L1's kink
    h = 1e-6
    numeric = np.zeros_like(W)
    for i in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[i] = h
        numeric[i] = (reg.penalty(W + step)[0] - reg.penalty(W - step)[0]) / (2 * h)
    np.testing.assert_allclose(reg.penalty(W)[1], numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("reg", [NoRegularizer(), MaxNorm(1.0), Dropout(0.5)])
def test_regularizers_without_penalty_add_nothing(reg):
    value, grad = reg.penalty(W_SMALL)
    assert value == 0
    dW = np.ones_like(W_SMALL)
    dW += grad
    np.testing.assert_array_equal(dW, 1)


@pytest.mark.parametrize("reg", [NoRegularizer(), L1(0.1), L2(0.1), ElasticNet(0.1)])
def test_penalties_leave_batch_and_weights_alone(reg):
    X = np.arange(6.0).reshape(2, 3)
    assert reg.transform_batch(X, np.random.default_rng(0)) is X
    W = W_SMALL.copy()
    assert reg.project(W) is W
    np.testing.assert_array_equal(W, W_SMALL)


def test_max_norm_projects_long_columns_onto_the_ball():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(8, 4))
    directions /= np.linalg.norm(directions, axis=0)
    W = directions * np.array([0.1, 0.99, 3.0, 100.0])
    short = W[:, :2].copy()
    assert MaxNorm(1.0).project(W) is W  # in place
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), [0.1, 0.99, 1.0, 1.0])
    np.testing.assert_array_equal(W[:, :2], short)  # columns inside the ball: untouched
    np.testing.assert_allclose(W[:, 2:], directions[:, 2:])  # long ones: same direction


def test_max_norm_handles_zero_columns():
    W = np.zeros((3, 2))
    with np.errstate(all="raise"):
        MaxNorm(0.5).project(W)
    np.testing.assert_array_equal(W, 0)


def test_dropout_zeroes_a_share_and_rescales_the_rest():
    X = np.random.default_rng(1).uniform(1, 2, (400, 50))
    X_before = X.copy()
    out = Dropout(0.8).transform_batch(X, np.random.default_rng(0))
    np.testing.assert_array_equal(X, X_before)  # input not modified
    kept = out != 0
    assert kept.mean() == pytest.approx(0.8, abs=0.01)
    np.testing.assert_allclose(out[kept], X[kept] / 0.8, rtol=1e-4)  # p rounded to 2^-16
    # inverted dropout keeps the expected input: the mean barely moves
    assert out.mean() == pytest.approx(X.mean(), rel=0.01)


def test_dropout_masks_come_from_the_generator():
    X = np.ones((20, 30), dtype=np.float32)
    drop = Dropout(0.5)
    a = drop.transform_batch(X, np.random.default_rng(7))
    b = drop.transform_batch(X, np.random.default_rng(7))
    c = drop.transform_batch(X, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32


def test_dropout_with_keep_probability_one_is_the_identity():
    X = np.random.default_rng(0).normal(size=(10, 4))
    np.testing.assert_array_equal(Dropout(1.0).transform_batch(X, np.random.default_rng(0)), X)
