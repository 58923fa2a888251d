"""Mini-batch SGD training: fitting, regularizer effects, divergence, determinism, validation."""

import warnings

import numpy as np
import pytest

from linbench.losses import predict, softmax_loss
from linbench.regularizers import Dropout, NoRegularizer, make_regularizer
from linbench.train import TrainResult, accuracy, train, weight_stats

HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "val_acc", "seconds"}


def blobs(n=60, dim=4, classes=3, seed=0, spread=0.3, noise_dims=0, dtype=np.float64):
    """Gaussian clusters around well separated centres (+ pure-noise features)."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.normal(size=(classes, dim))
    y = np.arange(n) % classes
    X = centres[y] + spread * rng.normal(size=(n, dim))
    X = np.hstack([X, rng.normal(size=(n, noise_dims))])
    return X.astype(dtype), y


def fit(X, y, reg=None, **overrides):
    params = {
        "loss": "softmax",
        "regularizer": reg or NoRegularizer(),
        "batch_size": 8,
        "learning_rate": 0.1,
        "epochs": 5,
        "seed": 0,
    }
    params.update(overrides)
    return train(X, y, X, y, **params)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_fits_a_tiny_data_set(loss):
    X, y = blobs()
    result = fit(X, y, loss=loss, epochs=30)
    assert isinstance(result, TrainResult)
    assert accuracy(result.W, result.b, X, y) == 1.0
    assert result.train_acc == 1.0 and result.val_acc == 1.0
    assert not result.diverged and result.diverged_epoch is None and result.status == "ok"
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]


def test_history_and_result_fields():
    X, y = blobs()
    X_val, y_val = blobs(n=30, seed=0)
    result = train(
        X,
        y,
        X_val,
        y_val,
        loss="svm",
        regularizer=NoRegularizer(),
        batch_size=7,
        learning_rate=0.01,
        epochs=4,
        seed=1,
    )
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert all(set(h) == HISTORY_KEYS for h in result.history)
    seconds = [h["seconds"] for h in result.history]
    assert seconds == sorted(seconds) and result.seconds == seconds[-1]
    assert result.epochs_run == 4 and result.final_loss == result.history[-1]["train_loss"]
    assert result.history[-1]["val_acc"] == accuracy(result.W, result.b, X_val, y_val)
    assert result.W.shape == (4, 3) and result.b.shape == (3,)


def test_trains_in_float32_on_a_memory_mapped_file(tmp_path):
    X, y = blobs(dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    X_mmap = np.load(tmp_path / "X.npy", mmap_mode="r")
    result = fit(X_mmap, y)
    assert result.W.dtype == np.float32 and result.b.dtype == np.float32
    np.testing.assert_array_equal(X_mmap, X)  # data untouched
    in_memory = fit(X, y)
    np.testing.assert_array_equal(result.W, in_memory.W)


@pytest.mark.parametrize("reg", ["none", "l1", "l2", "elastic_net", "max_norm", "dropout"])
def test_same_seed_bit_identical_other_seed_differs(reg):
    X, y = blobs(noise_dims=3)
    regularizer = make_regularizer(reg, {"none": 0, "max_norm": 1.0, "dropout": 0.5}.get(reg, 0.01))
    a, b = fit(X, y, regularizer), fit(X, y, regularizer)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.b, b.b)
    assert [{**h, "seconds": 0} for h in a.history] == [{**h, "seconds": 0} for h in b.history]
    assert not np.array_equal(a.W, fit(X, y, regularizer, seed=1).W)


def test_a_huge_but_finite_loss_does_not_stop_training():
    # lr 1e8 makes wild steps and a huge loss, but nothing overflows in float64: the run
    # goes on to the end, and its status says what became of it.
    X, y = blobs(spread=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit(X, y, learning_rate=1e8, epochs=10)
    assert not result.diverged and result.epochs_run == 10
    assert result.history[0]["train_loss"] > 1e3 * np.log(3)
    assert result.status in ("collapsed", "unstable")


def test_overflow_to_inf_and_nan_is_reported_as_diverged():
    # lr * 2 * lambda = 200 >> 2: every L2 step multiplies W by about -199, W overflows.
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        result = fit(X, y, make_regularizer("l2", 10.0), learning_rate=10.0, epochs=200)
    assert result.diverged and 1 <= result.diverged_epoch < 200
    assert result.status == "diverged" and result.epochs_run == result.diverged_epoch
    assert not np.isfinite(result.final_loss)


def test_a_good_learning_rate_does_not_diverge():
    X, y = blobs()
    result = fit(X, y, loss="svm", learning_rate=0.5, epochs=20)
    assert not result.diverged and result.epochs_run == 20 and result.status == "ok"


def test_sgd_step_with_and_without_momentum():
    # One minibatch per epoch (batch_size >= N) makes every step full-batch gradient
    # descent, which we can replay by hand from W = 0 (init_scale=0).
    X, y = blobs(n=12, seed=2)
    for momentum in (0.0, 0.9):
        result = fit(
            X, y, batch_size=100, learning_rate=0.5, epochs=3, init_scale=0.0, momentum=momentum
        )
        W, b = np.zeros((4, 3)), np.zeros(3)
        vW, vb = np.zeros_like(W), np.zeros_like(b)
        for _ in range(3):
            _, dW, db = softmax_loss(W, b, X, y)
            vW, vb = momentum * vW - 0.5 * dW, momentum * vb - 0.5 * db
            W, b = W + vW, b + vb
        np.testing.assert_allclose(result.W, W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(result.b, b, rtol=1e-10, atol=1e-12)


def test_step_decay_lowers_the_learning_rate():
    # Decaying by 1e-9 after every epoch all but stops learning after the first one.
    X, y = blobs()
    one = fit(X, y, epochs=1)
    decayed = fit(X, y, epochs=4, lr_decay=1e-9, lr_decay_every_images=len(y))
    undecayed = fit(X, y, epochs=4)
    np.testing.assert_allclose(decayed.W, one.W, atol=1e-7)
    assert np.abs(undecayed.W - one.W).max() > 1e-2


def test_max_norm_bounds_every_column():
    X, y = blobs(noise_dims=5)
    free = fit(X, y, learning_rate=1.0, epochs=10)
    assert weight_stats(free.W)["w_max_col_norm"] > 1.0  # so the bound has work to do
    bounded = fit(X, y, make_regularizer("max_norm", 0.5), learning_rate=1.0, epochs=10)
    assert np.linalg.norm(bounded.W, axis=0).max() <= 0.5 * (1 + 1e-12)


def test_l1_makes_more_weights_near_zero_than_l2():
    # Many pure-noise features: L1 sets their weights to ~0, L2 only shrinks them.
    X, y = blobs(n=90, dim=3, noise_dims=30)
    stats = {
        name: weight_stats(fit(X, y, make_regularizer(name, 0.02), learning_rate=0.02, epochs=40).W)
        for name in ("l1", "l2")
    }
    assert stats["l1"]["w_small_share"] > stats["l2"]["w_small_share"] + 0.3


def test_l2_shrinks_the_weights():
    X, y = blobs(noise_dims=5)
    free, shrunk = fit(X, y, epochs=20), fit(X, y, make_regularizer("l2", 0.3), epochs=20)
    assert weight_stats(shrunk.W)["w_l2"] < 0.5 * weight_stats(free.W)["w_l2"]


def test_dropout_changes_training_not_evaluation():
    X, y = blobs(noise_dims=3)
    plain, dropped = fit(X, y), fit(X, y, Dropout(0.5))
    assert not np.allclose(plain.W, dropped.W)  # a different trajectory
    # Evaluation sees the clean inputs: the recorded accuracies are those of predict(X).
    assert dropped.train_acc == np.mean(predict(dropped.W, dropped.b, X) == y)
    # keep probability 1 drops nothing: bit-identical to no regularizer (the dropout
    # masks have their own random stream, so init and minibatch order are unchanged)
    np.testing.assert_array_equal(fit(X, y, Dropout(1.0)).W, plain.W)


def test_weight_stats():
    W = np.array([[3.0, 0.0], [4.0, -1e-4]])
    stats = weight_stats(W)
    assert stats == pytest.approx(
        {"w_l1": 7.0001, "w_l2": np.sqrt(25 + 1e-8), "w_small_share": 0.5, "w_max_col_norm": 5.0}
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"loss": "hinge"}, "loss must be one of svm, softmax, got 'hinge'"),
        ({"regularizer": "l2"}, "regularizer must be a Regularizer"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 8.0}, "batch_size must be an integer >= 1, got 8.0"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0, got 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0, got nan"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"init_scale": -1e-3}, "init_scale must be a finite number >= 0"),
        ({"margin": 0}, "margin must be a finite number > 0"),
        ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\), got 1.0"),
        ({"lr_decay": 0}, r"lr_decay must be a number in \(0, 1\], got 0"),
        ({"lr_decay_every_images": -1}, "lr_decay_every_images must be an integer >= 0"),
        ({"early_stopping": 1}, "early_stopping must be True or False, got 1"),
        ({"num_classes": 2}, "labels must lie in 0 .. num_classes-1"),
    ],
)
def test_bad_parameters_are_clear_errors(override, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=f"^train: {message}"):
        fit(X, y, **override)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda X, y: (X[:, 0], y, X, y), "X_train must be a 2-D float32 or float64 array"),
        (lambda X, y: (X.astype(int), y, X, y), "X_train must be a 2-D float32 or float64"),
        (lambda X, y: (X, y[:-1], X, y), r"y_train must be integer labels of shape \(60,\)"),
        (lambda X, y: (X, y * 1.0, X, y), "y_train must be integer labels"),
        (lambda X, y: (X, y, X[:, :2], y), "X_val must match X_train in columns and dtype"),
        (lambda X, y: (X, y, X[:0], y[:0]), "the val set is empty"),
        (lambda X, y: (X, y - 1, X, y), "labels must lie in 0 .. num_classes-1"),
    ],
)
def test_bad_data_are_clear_errors(data, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=f"^train: {message}"):
        train(
            *data(X, y),
            loss="svm",
            regularizer=NoRegularizer(),
            batch_size=8,
            learning_rate=0.1,
            epochs=1,
            seed=0,
        )


def test_step_decay_counts_images_seen():
    # Full-batch steps of 12 images, decay every 18 images: the steps start after 0, 12,
    # 24, 36 and 48 images, so their rates are lr * 0.5 ** (0, 0, 1, 2, 2).
    X, y = blobs(n=12, seed=2)
    result = fit(
        X,
        y,
        batch_size=100,
        learning_rate=0.5,
        epochs=5,
        init_scale=0.0,
        lr_decay=0.5,
        lr_decay_every_images=18,
    )
    W, b = np.zeros((4, 3)), np.zeros(3)
    for power in (0, 0, 1, 2, 2):
        _, dW, db = softmax_loss(W, b, X, y)
        W, b = W - 0.5 * 0.5**power * dW, b - 0.5 * 0.5**power * db
    np.testing.assert_allclose(result.W, W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.b, b, rtol=1e-12, atol=1e-15)


def test_step_decay_every_k_full_sets_of_images_is_decay_every_k_epochs():
    """The old schedule (rate x lr_decay after every k epochs), replayed with train's random
    streams, equals lr_decay_every_images = k * N bit for bit (the last minibatch of each
    epoch is smaller: the steps need not fall on multiples of k * N)."""
    X, y = blobs(n=60, noise_dims=2)
    k, lr, decay, batch_size = 2, 0.3, 0.5, 7
    result = fit(
        X,
        y,
        batch_size=batch_size,
        learning_rate=lr,
        epochs=6,
        lr_decay=decay,
        lr_decay_every_images=k * len(y),
    )
    init_rng, order_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(3))
    W = 1e-3 * init_rng.standard_normal((X.shape[1], 3))
    b = np.zeros(3)
    for epoch in range(1, 7):
        order = order_rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            _, dW, db = softmax_loss(W, b, X[batch], y[batch])
            W -= lr * dW
            b -= lr * db
        if epoch % k == 0:
            lr *= decay
    np.testing.assert_array_equal(result.W, W)
    np.testing.assert_array_equal(result.b, b)


def noisy_run(**overrides):
    """A run whose validation accuracy goes up and down: a large rate, few noisy images."""
    X, y = blobs(n=90, spread=1.5, noise_dims=6, seed=4)
    X_val, y_val = blobs(n=300, spread=1.5, noise_dims=6, seed=4)
    params = {
        "loss": "svm",
        "regularizer": NoRegularizer(),
        "batch_size": 4,
        "learning_rate": 1.0,
        "epochs": 12,
        "seed": 0,
    }
    return train(X, y, X_val[90:], y_val[90:], **{**params, **overrides})


def test_early_stopping_returns_the_weights_of_the_best_validation_epoch():
    plain, stopped = noisy_run(), noisy_run(early_stopping=True)
    val = [row["val_acc"] for row in plain.history]
    assert plain.best_epoch is None
    assert stopped.best_epoch == 1 + val.index(max(val)) < 12  # the first of the best
    assert val.count(max(val)) >= 1 and max(val) > val[-1]  # so the test can fail
    # the run itself is unchanged: history, status, final loss
    strip = [{**row, "seconds": 0} for row in plain.history]
    assert [{**row, "seconds": 0} for row in stopped.history] == strip
    assert (stopped.status, stopped.final_loss) == (plain.status, plain.final_loss)
    # the weights are those a run of best_epoch epochs ends with, and so are the accuracies
    short = noisy_run(epochs=stopped.best_epoch)
    np.testing.assert_array_equal(stopped.W, short.W)
    np.testing.assert_array_equal(stopped.b, short.b)
    assert stopped.val_acc == max(val) == short.val_acc
    assert stopped.train_acc == short.train_acc


def test_early_stopping_chooses_among_the_recorded_epochs_and_keeps_the_first_of_ties():
    stopped = noisy_run(early_stopping=True, eval_every=3)
    recorded = {row["epoch"]: row["val_acc"] for row in stopped.history}
    assert list(recorded) == [3, 6, 9, 12]
    best = max(recorded.values())
    assert stopped.best_epoch == min(e for e, v in recorded.items() if v == best)
    # ties: accuracy 1.0 in epochs 1, 3, 4, 5 and 6; the first one is kept
    X, y = blobs(n=30, seed=1)
    tied = fit(X, y, early_stopping=True, epochs=6, learning_rate=1.0)
    val = [row["val_acc"] for row in tied.history]
    assert val.count(1.0) >= 2 and val[0] == 1.0 and min(val) < 1.0
    assert tied.best_epoch == 1
    np.testing.assert_array_equal(tied.W, fit(X, y, epochs=1, learning_rate=1.0).W)
