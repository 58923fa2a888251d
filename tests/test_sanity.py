"""Sanity checks: each passes on the real code and fails on a deliberately broken double."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from linbench import sanity
from linbench.losses import scores, softmax_loss, svm_loss
from linbench.names import REGULARIZERS as REGULARIZER_NAMES
from linbench.regularizers import (
    L2,
    Dropout,
    MaxNorm,
    NoRegularizer,
    make_regularizer,
)
from linbench.train import train

C = 10
STRENGTHS = {
    "none": 0.0,
    "l1": 1e-2,
    "l2": 1e-1,
    "elastic_net": 1e-2,
    "max_norm": 0.5,
    "dropout": 0.5,
    "early_stopping": 0.0,
}
PENALTIES = [name for name, reg in REGULARIZER_NAMES.items() if reg.hook == "penalty"]
LOSSES = {"svm": partial(svm_loss, margin=1.0), "softmax": softmax_loss}
SIZES = sanity.SampleSizes(
    loss_rows=200,
    gradient_rows=50,
    coordinates=20,
    label_rows=100,
    label_val_rows=1000,
    permutations=3,
    label_epochs=50,
    transform_draws=500,
)


def features(n: int = 600, dim: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features with a class signal, like gather_features writes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    X = rng.standard_normal((n, dim)) + 0.3 * rng.standard_normal((C, dim))[y]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


def split(n: int = 1600, dim: int = 128, seed: int = 0):
    """(X_train, y_train, X_val, y_val) from one distribution, as run_checks takes them."""
    X, y = features(n, dim, seed)
    return X[:600], y[:600], X[600:], y[600:]


def gradient_setup(seed: int = 0, n: int = 50, dim: int = 48):
    """A float64 batch and W, b at the scale run_checks uses (scores spread about ±1)."""
    X, y = features(n, dim, seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.standard_normal((dim, C)) / math.sqrt(dim)
    b = 0.1 * rng.standard_normal(C)
    return W, b, X.astype(np.float64), y, rng


# --------------------------------------------------------------------------- broken doubles


def scaled(loss_fn, factor_W: float = 1.0, factor_b: float = 1.0):
    """`loss_fn` with its gradient scaled (a deliberate bug)."""

    def wrong(W, b, X, y, **kwargs):
        value, dW, db = loss_fn(W, b, X, y, **kwargs)
        return value, factor_W * dW, factor_b * db

    return wrong


def svm_counting_the_true_class(W, b, X, y, margin=1.0):
    """The hinge summed over every class, the true one included: margin too much per row."""
    value, dW, db = svm_loss(W, b, X, y, margin=margin)
    return value + margin, dW, db


def softmax_without_max_shift(W, b, X, y):
    """Softmax cross-entropy straight from the formula: exp overflows on large scores."""
    n = X.shape[0]
    s = scores(W, b, X)
    exp_s = np.exp(s)
    p = exp_s / exp_s.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(p[np.arange(n), y])))
    p[np.arange(n), y] -= 1
    p /= n
    return loss, X.T @ p, p.sum(axis=0)


def train_on_shifted_labels(**kwargs):
    """Training that reads every label as (y + 3) mod 10."""
    return train(**{**kwargs, "y_train": (kwargs["y_train"] + 3) % C})


def train_ignoring_labels(true_labels):
    """Training that uses the real labels whatever it is given (a label leak)."""
    return lambda **kwargs: train(**{**kwargs, "y_train": true_labels})


@dataclass
class Untrained:
    W: np.ndarray
    b: np.ndarray


def no_training(**kwargs):
    """A "training" that returns the all-zero model."""
    return Untrained(np.zeros((kwargs["X_train"].shape[1], C), np.float32), np.zeros(C))


@dataclass(frozen=True)
class L2WithoutFactor2(L2):
    """L2 whose gradient forgot the 2 of d(w^2)/dw."""

    def penalty(self, W):
        value, _ = super().penalty(W)
        return value, self.strength * W


@dataclass(frozen=True)
class DropoutScaledByP(Dropout):
    """Inverted dropout that scales the kept entries by p instead of 1/p."""

    def transform_batch(self, X, rng):
        keep = rng.random(X.shape) < self.strength
        return X * self.strength * keep


@dataclass(frozen=True)
class DropoutKeepingOneMinusP(Dropout):
    """Dropout that keeps 1 - p of the entries (scaled to keep the mean): a swapped p."""

    def transform_batch(self, X, rng):
        keep = rng.random(X.shape) < 1 - self.strength
        return X / (1 - self.strength) * keep


@dataclass(frozen=True)
class NoOpMaxNorm(MaxNorm):
    """A max-norm projection that does nothing."""

    def project(self, W):
        return W


@dataclass(frozen=True)
class CopyingMaxNorm(MaxNorm):
    """Projects a copy and returns it: W itself, which training keeps, is unchanged."""

    def project(self, W):
        return super().project(W.copy())


@dataclass(frozen=True)
class ShrinkAllMaxNorm(MaxNorm):
    """Scales every column to norm c, also those inside the ball."""

    def project(self, W):
        W *= self.strength / np.linalg.norm(W, axis=0)
        return W


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


def initial_loss(loss_fn, init_scale=1e-3, labels=lambda y: y):
    X, y = features()
    return sanity.check_initial_loss(
        loss_fn,
        X,
        labels(y),
        num_classes=C,
        expected=9.0,
        init_scale=init_scale,
        rng=np.random.default_rng(0),
    )


def test_initial_loss_fails_when_the_weights_start_large():
    result = initial_loss(LOSSES["svm"], init_scale=1.0)
    assert not result.passed
    assert result.status == "FAIL"


def test_initial_loss_fails_for_a_hinge_counting_the_true_class():
    result = initial_loss(svm_counting_the_true_class)
    assert not result.passed
    assert result.measured == pytest.approx(10.0, rel=0.01)


def test_initial_loss_cannot_see_the_labels():
    # Why "labels matter" exists: with shifted labels the initial loss still passes.
    assert initial_loss(LOSSES["svm"], labels=lambda y: (y + 3) % C).passed


# --------------------------------------------------------------------------- large scores


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_large_scores_pass(loss):
    W, b, X, y, _ = gradient_setup()
    result = sanity.check_large_scores(LOSSES[loss], W, b, X, y)
    assert result.passed, result
    assert result.error <= 1e-9


def test_large_scores_fail_for_softmax_without_the_max_shift():
    W, b, X, y, _ = gradient_setup()
    # On ordinary scores the naive formula is right: only large scores show the bug.
    naive = softmax_without_max_shift(W, b, X, y)
    assert naive[0] == pytest.approx(softmax_loss(W, b, X, y)[0])
    result = sanity.check_large_scores(softmax_without_max_shift, W, b, X, y)
    assert not result.passed
    assert result.error == math.inf


# --------------------------------------------------------------------------- gradient


def gradient(loss_fn, regularizer=None, seed=0, loss="softmax", **kwargs):
    W, b, X, y, rng = gradient_setup(seed)
    return sanity.check_gradient(
        loss_fn,
        W,
        b,
        X,
        y,
        regularizer,
        rng=rng,
        hinge_margin=1.0 if loss == "svm" else None,
        **kwargs,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("regularizer", [None, *PENALTIES])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_correct_gradient_passes(loss, regularizer, seed):
    reg = make_regularizer(regularizer, STRENGTHS[regularizer]) if regularizer else None
    result = gradient(LOSSES[loss], reg, seed, loss)
    assert result.passed, result
    assert result.error <= sanity.GRADIENT_TOLERANCE
    assert result.coordinates == 40 + C


@pytest.mark.parametrize(("factor_W", "factor_b"), [(1.01, 1.0), (1.0, 1.01)])
@pytest.mark.parametrize("regularizer", [None, "l2"])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_scaled_loss_gradient_fails(loss, regularizer, factor_W, factor_b):
    reg = make_regularizer(regularizer, STRENGTHS[regularizer]) if regularizer else None
    result = gradient(scaled(LOSSES[loss], factor_W, factor_b), reg, loss=loss)
    assert not result.passed
    assert result.error > 1e-3  # a 1 % bug shows as a ~1e-2 relative error


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_l2_gradient_without_its_factor_2_fails(loss):
    assert gradient(LOSSES[loss], L2(0.1), loss=loss).passed
    result = gradient(LOSSES[loss], L2WithoutFactor2(0.1), loss=loss)
    assert not result.passed
    assert result.error > 1e-2


def test_hinge_kink_is_counted_and_not_judged():
    W, b, X, y, _ = gradient_setup(n=5)
    # Put sample 0's margin for a wrong class exactly at 0: moving b[j] by ±h crosses the
    # kink, where the analytic subgradient and the finite difference disagree.
    j = (y[0] + 1) % C
    s = X @ W + b
    b[j] -= s[0, j] - s[0, y[0]] + 1.0
    args = (LOSSES["svm"], W, b, X, y, None)
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


# --------------------------------------------------------------------------- labels matter


def labels(train_fn=train, loss="softmax"):
    X, y, X_val, y_val = split()
    overfit, matter = sanity.check_labels(
        train_fn,
        X[:100],
        y[:100],
        X_val,
        y_val,
        loss=loss,
        num_classes=C,
        rng=np.random.default_rng(0),
        permutations=3,
        epochs=50,
    )
    assert (overfit.check, matter.check) == ("overfits a small slice", "labels matter")
    return overfit, matter


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_labels_checks_pass_on_real_training(loss):
    overfit, matter = labels(loss=loss)
    assert overfit.passed, overfit
    assert overfit.measured >= sanity.OVERFIT_ACCURACY
    assert matter.passed, matter
    assert matter.measured >= 0.1 + sanity.WIDE_MARGIN


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_labels_checks_fail_on_shifted_labels(loss):
    overfit, matter = labels(train_on_shifted_labels, loss)
    assert not overfit.passed
    assert not matter.passed
    assert matter.measured < 0.1  # it predicts y + 3: worse than chance


def test_labels_matter_fails_when_training_ignores_the_labels_it_is_given():
    _, y, *_ = split()
    overfit, matter = labels(train_ignoring_labels(y[:100]))
    assert overfit.passed  # the real labels are learned...
    assert not matter.passed  # ...but so they are when permuted: labels leak in
    assert "permuted" in matter.result


def test_labels_checks_fail_when_nothing_is_trained():
    overfit, matter = labels(no_training)
    assert not overfit.passed
    assert not matter.passed


# --------------------------------------------------------------------------- regularizers


def transform(regularizer, draws=500, rows=10):
    X, _ = features(rows, 64)
    return sanity.check_transform(regularizer, X, rng=np.random.default_rng(0), draws=draws)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1.0])
def test_dropout_keeps_the_mean_and_its_share(p):
    mean, share = transform(Dropout(p))
    assert (mean.check, share.check) == ("transform keeps the mean", "keep share")
    assert mean.passed, mean
    assert share.passed, share
    assert share.measured == pytest.approx(p, abs=0.01)


def test_dropout_scaled_by_p_fails_the_mean():
    mean, share = transform(DropoutScaledByP(0.5))
    assert not mean.passed
    assert mean.measured == pytest.approx(0.25, abs=0.01)  # E[out] = p * p * X
    assert share.passed  # the share kept is right; only the scale is wrong


def test_dropout_keeping_the_wrong_share_fails_the_share():
    mean, share = transform(DropoutKeepingOneMinusP(0.8))
    assert mean.passed  # unbiased, but not with the keep probability asked for
    assert not share.passed
    assert share.measured == pytest.approx(0.2, abs=0.01)


def test_a_one_percent_dropout_bias_fails_the_mean():
    @dataclass(frozen=True)
    class Biased(Dropout):
        def transform_batch(self, X, rng):
            return 1.01 * super().transform_batch(X, rng)

    # Too small for any one entry to show; the overall scale does: 1.01 ± 0.001.
    mean, _ = transform(Biased(0.5), draws=1000, rows=40)
    assert not mean.passed
    assert mean.measured == pytest.approx(1.01, abs=0.003)


def projection(regularizer):
    return sanity.check_projection(regularizer, 64, C, rng=np.random.default_rng(0))


@pytest.mark.parametrize("c", [0.5, 3.0])
def test_max_norm_projection_passes(c):
    result = projection(MaxNorm(c))
    assert result.passed, result
    assert result.measured <= c * (1 + 1e-6)


@pytest.mark.parametrize("broken", [NoOpMaxNorm, CopyingMaxNorm, ShrinkAllMaxNorm])
def test_broken_max_norm_projection_fails(broken):
    result = projection(broken(0.5))
    assert not result.passed, result


def hooks(regularizer, hook):
    X, _ = features(10, 64)
    return sanity.check_hooks(regularizer, hook, X, rng=np.random.default_rng(0), num_classes=C)


@pytest.mark.parametrize("name", list(REGULARIZER_NAMES))
def test_every_regularizer_acts_only_through_its_hook(name):
    regularizer = make_regularizer(name, STRENGTHS[name])
    assert hooks(regularizer, REGULARIZER_NAMES[name].hook).passed


@pytest.mark.parametrize(
    ("regularizer", "wrong_hook"),
    [(Dropout(0.5), "penalty"), (MaxNorm(0.5), "transform"), (L2(0.1), "project")],
)
def test_a_mislabelled_hook_fails(regularizer, wrong_hook):
    result = hooks(regularizer, wrong_hook)
    assert not result.passed


# --------------------------------------------------------------------------- the table


def run(**kwargs):
    data = {"hog": split(seed=0), "pixels": split(dim=160, seed=1)}
    return sanity.run_checks(
        data,
        ["svm", "softmax"],
        kwargs.pop("regularizers", STRENGTHS),
        num_classes=C,
        init_scale=1e-3,
        sizes=SIZES,
        **kwargs,
    )


@pytest.fixture(scope="module")
def real_results():
    return run()


def expected_rows(n_features: int = 2) -> int:
    per_features = 2 * 5 + 2 * len(PENALTIES)  # per loss 5 checks; gradient of each penalty
    # Once: every regularizer's hook check, dropout's two, max-norm's one.
    return n_features * per_features + len(STRENGTHS) + 2 + 1


def test_table_has_one_row_per_check_and_all_pass(real_results):
    rows = list(csv.DictReader(io.StringIO(sanity.to_csv(real_results))))
    assert len(rows) == expected_rows()
    assert list(rows[0]) == list(sanity.CSV_COLUMNS)
    assert {r["status"] for r in rows} == {"PASS"}, [r for r in rows if r["status"] != "PASS"]
    # No check counted twice: every row names a different check.
    names = [r.name for r in real_results]
    assert len(set(names)) == len(names)
    gradients = {(r.features, r.loss, r.regularizer) for r in real_results if r.check == "gradient"}
    assert gradients == {
        (f, loss, g) for f in ("hog", "pixels") for loss in LOSSES for g in ["", *PENALTIES]
    }
    first = sanity.to_markdown(real_results).splitlines()[0]
    assert first == f"# PASS: all {expected_rows()} sanity checks passed"
    assert sanity.gate_verdict(sanity.to_csv(real_results)) == (
        True,
        f"all {expected_rows()} sanity checks passed",
    )


def failed(results):
    return {(r.check, r.features, r.loss, r.regularizer) for r in results if not r.passed}


def test_wrong_gradient_shows_as_fail_in_table_banner_and_gate():
    results = run(loss_fns={"svm": scaled(svm_loss, 1.01), "softmax": softmax_loss})
    # Every svm gradient check, on both feature sets; nothing else.
    assert {(check, loss) for check, _, loss, _ in failed(results)} == {("gradient", "svm")}
    n_failed = 2 * (1 + len(PENALTIES))
    assert len(failed(results)) == n_failed
    first_line = sanity.to_markdown(results).splitlines()[0]
    assert first_line.startswith(
        f"# FAIL: {n_failed} of {expected_rows()} sanity checks failed: gradient hog/svm,"
    )
    statuses = sanity.read_statuses(sanity.to_csv(results))
    assert sum(status == "FAIL" for status, _ in statuses) == n_failed
    assert ("FAIL", "gradient pixels/svm/l2") in statuses
    passed, verdict = sanity.gate_verdict(sanity.to_csv(results))
    assert not passed
    assert verdict.startswith(f"{n_failed} of {expected_rows()} sanity checks failed")


def test_shifted_labels_fail_the_labels_rows_of_every_loss():
    results = run(train_fn=train_on_shifted_labels)
    assert {check for check, *_ in failed(results)} == {"overfits a small slice", "labels matter"}
    assert len(failed(results)) == 2 * 2 * 2  # 2 checks x 2 losses x 2 feature sets


def test_softmax_without_max_shift_fails_large_scores_only():
    results = run(loss_fns={"svm": svm_loss, "softmax": softmax_without_max_shift})
    assert failed(results) == {("large scores", f, "softmax", "") for f in ("hog", "pixels")}


@pytest.mark.parametrize(
    ("name", "broken", "check"),
    [
        ("dropout", DropoutScaledByP, "transform keeps the mean"),
        ("max_norm", NoOpMaxNorm, "projection"),
        ("l2", L2WithoutFactor2, "gradient"),
    ],
)
def test_a_broken_regularizer_fails_its_own_rows(name, broken, check):
    def make(reg_name, strength, beta=1.0):
        if reg_name == name:
            return broken(strength)
        return make_regularizer(reg_name, strength, beta=beta)

    results = run(make=make)
    assert failed(results)
    assert {(c, reg) for c, _, _, reg in failed(results)} == {(check, name)}


@dataclass(frozen=True)
class Noise(Dropout):
    """A seventh regularizer: here simply dropout under another name."""

    name = "noise"


def test_a_new_regularizer_gets_the_checks_of_its_hook():
    hooks = {name: reg.hook for name, reg in REGULARIZER_NAMES.items()}

    def make(name, strength, beta=1.0):
        return Noise(strength) if name == "noise" else make_regularizer(name, strength, beta=beta)

    results = run(
        regularizers={"none": 0.0, "noise": 0.5},
        make=make,
        hooks={**hooks, "noise": "transform"},
    )
    checks = {r.check for r in results if r.regularizer == "noise"}
    assert checks == {"acts only through its hook", "transform keeps the mean", "keep share"}
    assert all(r.passed for r in results)


def test_a_hook_without_checks_gets_a_failing_row():
    hooks = {name: reg.hook for name, reg in REGULARIZER_NAMES.items()}
    results = run(
        regularizers={"none": 0.0, "l2": 0.1},
        hooks={**hooks, "l2": "schedule"},
        make=lambda name, strength, beta=1.0: NoRegularizer() if name == "none" else L2(strength),
    )
    rows = [r for r in results if r.check == "no check for this hook"]
    assert [(r.regularizer, r.passed) for r in rows] == [("l2", False)]
    assert "schedule" in rows[0].result
    # An unknown hook is no penalty: the l2 gradient rows are gone, and the l2 penalty
    # shows up as acting outside its hook.
    assert not any(r.check == "gradient" and r.regularizer == "l2" for r in results)
    assert ("acts only through its hook", "hog", "", "l2") in failed(results)


def test_read_statuses_rejects_other_tables():
    with pytest.raises(ValueError, match="not a sanity table"):
        sanity.read_statuses("features,loss\nhog,svm\n")


def test_gate_rejects_an_empty_table():
    with pytest.raises(ValueError, match="no sanity check"):
        sanity.gate_verdict(",".join(sanity.CSV_COLUMNS) + "\n")


def test_sanity_imports_numpy_and_the_core_only():
    code = (
        "import sys; import linbench.sanity; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'seaborn', 'snakemake') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "workflow")},
    )
    assert out.stdout.strip() == "[]"
