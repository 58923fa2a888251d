"""Run outcomes (issue 12): each status on data shaped to provoke it, and each rule broken on
purpose to show that the label comes from that rule."""

import math

import numpy as np
import pandas as pd
import pytest

from linbench import outcome
from linbench.names import STATUSES
from linbench.regularizers import make_regularizer
from linbench.report import judge_outcomes
from linbench.train import train

CLASSES = 10


def clusters(n, spread, dim=32, seed=0):
    """`CLASSES` Gaussian clusters, standardised float32 features (like the real ones)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, dim))
    y = np.arange(n) % CLASSES
    X = centres[y] + spread * rng.normal(size=(n, dim))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


def fit(loss, batch_size, learning_rate, spread, reg="none", strength=0.0, epochs=5):
    X, y = clusters(5096, spread)
    return train(
        X[:4096],
        y[:4096],
        X[4096:],
        y[4096:],
        loss=loss,
        regularizer=make_regularizer(reg, strength),
        batch_size=batch_size,
        learning_rate=learning_rate,
        epochs=epochs,
        seed=0,
    )


# ----------------------------------------------------------------------------- the rules


def test_zero_model_loss_is_the_loss_at_w_zero():
    from linbench.losses import LOSSES

    X, y = clusters(50, 1.0)
    W, b = np.zeros((X.shape[1], CLASSES)), np.zeros(CLASSES)
    for loss, fn in LOSSES.items():
        value = fn(W, b, X.astype(np.float64), y)[0]
        assert outcome.zero_model_loss(loss, CLASSES) == pytest.approx(value)
    assert outcome.zero_model_loss("svm", CLASSES, margin=0.5) == 4.5


def test_chance_band_is_three_binomial_standard_errors():
    # 1/C = 0.1 on 5000 validation images: 3 * sqrt(0.09 / 5000) = 0.01273
    assert outcome.chance_band(10, 5000) == pytest.approx(3 * math.sqrt(0.09 / 5000))
    assert outcome.is_collapsed(0.1127, 10, 5000) and outcome.is_collapsed(0.0873, 10, 5000)
    assert not outcome.is_collapsed(0.1128, 10, 5000)
    assert not outcome.is_collapsed(0.0872, 10, 5000)


@pytest.mark.parametrize(
    ("diverged", "val_acc", "final_loss", "status"),
    [
        (False, 0.5, 1.0, "ok"),
        (True, 0.5, 1.0, "diverged"),
        (True, 0.1, 100.0, "diverged"),  # diverged wins over everything
        (False, 0.1, 100.0, "collapsed"),  # collapsed wins over unstable
        (False, 0.1, 1.0, "collapsed"),
        (False, 0.5, 9.01, "unstable"),
        (False, 0.5, 9.0, "ok"),  # exactly the zero model's loss is not worse than it
    ],
)
def test_status_precedence(diverged, val_acc, final_loss, status):
    got = outcome.run_status(
        diverged=diverged,
        val_acc=val_acc,
        final_loss=final_loss,
        loss="svm",
        num_classes=10,
        val_images=5000,
    )
    assert got == status and got in STATUSES


# ----------------------------------------------------------------------------- trained runs


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_a_large_rate_gets_the_same_status_at_batch_32_and_2048(loss):
    # The old rule stopped a run whose minibatch loss exceeded 1000x the first one's, so at
    # lr 100 it flagged small batches (early wild steps) but not large ones. Judged from the
    # finished run, both learned.
    small, large = (fit(loss, batch, 100.0, spread=1.0) for batch in (32, 2048))
    assert small.status == large.status == "ok"
    assert small.epochs_run == large.epochs_run == 5
    assert small.val_acc > 0.9 and large.val_acc > 0.9


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_max_norm_at_a_huge_rate_is_collapsed_though_its_loss_is_finite(loss):
    result = fit(loss, 32, 1000.0, spread=1.0, reg="max_norm", strength=0.1)
    assert result.status == "collapsed" and not result.diverged
    assert np.isfinite(result.final_loss) and result.epochs_run == 5
    assert np.linalg.norm(result.W, axis=0).max() <= 0.1 * (1 + 1e-5)  # W is bounded ...
    assert np.abs(result.b).max() > 100  # ... the bias is not: it ran away


def test_overflow_is_diverged_and_stops_training():
    # lr * 2 * lambda = 200 >> 2: every L2 step multiplies W by about -199; float32 overflows.
    result = fit("softmax", 32, 10.0, spread=1.0, reg="l2", strength=10.0, epochs=20)
    assert result.status == "diverged" and result.diverged
    assert result.diverged_epoch == result.epochs_run < 20


def test_an_objective_worse_than_the_zero_model_is_unstable():
    # Overlapping clusters, hinge at lr 100: it classifies well above chance, but its
    # objective (mean hinge) ends far above the zero model's 9.
    result = fit("svm", 32, 100.0, spread=2.0)
    assert result.status == "unstable"
    assert result.val_acc > 0.5 and result.final_loss > 9


# ----------------------------------------------------------------------------- rules broken


def test_collapsed_comes_from_the_chance_band(monkeypatch):
    # No band at all (its val_acc is exactly 0.1, so a band of width 0 would still hold it).
    monkeypatch.setattr(outcome, "chance_band", lambda num_classes, val_images: -1.0)
    result = fit("svm", 32, 1000.0, spread=1.0, reg="max_norm", strength=0.1)
    assert result.status == "unstable"  # no chance band: its huge hinge loss decides


def test_unstable_comes_from_the_zero_model_loss(monkeypatch):
    monkeypatch.setattr(outcome, "zero_model_loss", lambda loss, num_classes, margin=1.0: 1e9)
    assert fit("svm", 32, 100.0, spread=2.0).status == "ok"


def test_diverged_comes_from_the_non_finite_check(monkeypatch):
    import linbench.train as train_module

    # Blind to inf and nan: the overflowing run trains on (nan weights) to the end.
    monkeypatch.setattr(train_module.math, "isfinite", lambda value: True)
    monkeypatch.setattr(train_module.np, "isfinite", lambda value: np.ones_like(value, bool))
    result = fit("softmax", 32, 10.0, spread=1.0, reg="l2", strength=10.0, epochs=20)
    assert result.status != "diverged" and result.epochs_run == 20


# ----------------------------------------------------------------------------- one relative scale


def test_excess_share_runs_from_the_best_objective_to_the_start():
    assert outcome.excess_share(3.0, best=3.0, initial=9.0) == 0.0
    assert outcome.excess_share(9.0, best=3.0, initial=9.0) == 1.0
    assert outcome.excess_share(6.0, best=3.0, initial=9.0) == 0.5
    assert math.isnan(outcome.excess_share(1.0, best=2.0, initial=2.0))  # nothing to learn
    assert math.isnan(outcome.excess_share(math.nan, best=2.0, initial=3.0))


def runs_table(finals, loss, initial, regularizer="none", own_best=None):
    """Runs of one problem; each reached `own_best` (default: the lowest final) on the way."""
    own_best = min(finals) if own_best is None else own_best
    return pd.DataFrame(
        {
            "features": "hog",
            "train_size": 45000,
            "loss": loss,
            "regularizer": regularizer,
            "strength": 0.0,
            "status": "ok",
            "initial_objective": initial,
            "final_objective": finals,
            "best_objective": own_best,
        }
    )


@pytest.mark.parametrize(
    ("loss", "initial", "finals", "expected"),
    [
        # SVM (zero model 9): 7.0 is below 9, so the zero-model rule calls it ok; it kept 2/3
        # of the way back from the best (3.0), and is unstable on the relative scale.
        ("svm", 9.0, [3.0, 4.5, 7.0], ["ok", "ok", "unstable"]),
        # softmax (zero model ln 10): the same shares, the same verdicts.
        ("softmax", 2.3, [1.4, 1.625, 2.0], ["ok", "ok", "unstable"]),
    ],
)
def test_unstable_is_judged_on_one_relative_scale_for_both_losses(loss, initial, finals, expected):
    judged = judge_outcomes(runs_table(finals, loss, initial))
    assert judged["status"].tolist() == expected
    assert judged["best_objective_any"].tolist() == [min(finals)] * 3
    assert judged["excess_share"].iloc[0] == 0.0


def test_a_run_still_descending_when_its_budget_ends_crawls_and_is_not_unstable():
    """Too small a rate: far from F* at the end, but at the lowest objective it reached."""
    table = pd.concat(
        [runs_table([3.0], "svm", 9.0), runs_table([7.0], "svm", 9.0, own_best=7.0)],
        ignore_index=True,
    )
    judged = judge_outcomes(table)
    assert judged["status"].tolist() == ["ok", "ok"]
    assert judged["excess_share"].tolist() == pytest.approx([0.0, 2 / 3])
    # ...and the same run having been at 6.0 before climbing back to 7.0 lost ground: unstable
    table.loc[1, "best_objective"] = 6.0
    assert judge_outcomes(table)["status"].tolist() == ["ok", "unstable"]


def test_the_relative_rule_compares_runs_of_one_objective_only():
    """F* is per problem: a strong penalty's higher optimum does not make its runs look
    unstable against none's, and early stopping shares none's objective."""
    table = pd.concat(
        [
            runs_table([3.0, 3.2], "svm", 9.0),
            runs_table([6.0, 6.5], "svm", 9.0, regularizer="l2").assign(strength=10.0),
            runs_table([7.0], "svm", 9.0, regularizer="early_stopping", own_best=4.0),
        ],
        ignore_index=True,
    )
    judged = judge_outcomes(table)
    assert judged["status"].tolist() == ["ok", "ok", "ok", "ok", "unstable"]
    assert judged["best_objective_any"].tolist() == [3.0, 3.0, 6.0, 6.0, 3.0]


def test_a_diverged_or_collapsed_run_keeps_its_status():
    table = runs_table([3.0, 8.9, 8.9], "svm", 9.0)
    table.loc[1, "status"] = "collapsed"
    table.loc[2, "status"] = "diverged"
    assert judge_outcomes(table)["status"].tolist() == ["ok", "collapsed", "diverged"]
