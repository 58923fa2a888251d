"""The bundle trainer: K models in one pass give the numbers of train() one model at a time."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from linbench import bundle
from linbench.bundle import (
    Model,
    _class_sum,
    _from_planes,
    _Stack,
    _to_planes,
    _true_class_index,
    bundle_predictions,
    predictions,
    progress_record,
    progress_schedule,
    softmax_losses,
    stratified_subset,
    train_bundle,
)
from linbench.losses import predict, softmax_loss, svm_loss
from linbench.noise import gradient_noise_scale
from linbench.regularizers import make_regularizer
from linbench.train import train

REGULARIZERS = {
    "none": 0.0,
    "l1": 1e-3,
    "l2": 1e-2,
    "elastic_net": 1e-2,
    "max_norm": 0.5,
    "dropout": 0.5,
}
EPOCHS = 20


@pytest.fixture(scope="module")
def data():
    """Real-shaped: 2000 training and 500 validation images, 324 float32 features, 10
    overlapping classes (so that the runs neither converge at once nor stop learning)."""
    rng = np.random.default_rng(0)
    centres = 0.15 * rng.normal(size=(10, 324))
    y = rng.integers(0, 10, 2500)
    X = (centres[y] + rng.normal(size=(2500, 324))).astype(np.float32)
    return X[:2000], y[:2000], X[2000:], y[2000:]


def single(data, model, loss, batch_size, **shared):
    X, y, Xv, yv = data
    return train(
        X,
        y,
        Xv,
        yv,
        loss=loss,
        regularizer=model.regularizer,
        learning_rate=model.learning_rate,
        momentum=model.momentum,
        lr_decay=model.lr_decay,
        lr_decay_every_images=model.lr_decay_every_images,
        early_stopping=model.early_stopping,
        batch_size=batch_size,
        epochs=shared.pop("epochs", EPOCHS),
        seed=3,
        **shared,
    )


def l1_jitter(model):
    """Under the L1 subgradient a weight near 0 jitters by lr * lambda around it each step; a
    rounding difference can leave it on the other side: 2 lr lambda apart."""
    reg = model.regularizer
    return 2 * model.learning_rate * reg.strength if reg.name in ("l1", "elastic_net") else 0.0


def assert_same_model(bundled, alone, bundled_train_acc, model):
    assert bundled.status == alone.status
    assert bundled.best_epoch == alone.best_epoch
    assert bundled.diverged_epoch == alone.diverged_epoch
    assert bundled.epochs_run == alone.epochs_run
    if alone.status == "diverged":
        return  # an overflowing run multiplies every rounding difference: only its epoch counts
    scale = np.abs(alone.W).max()
    assert np.abs(bundled.W - alone.W).max() <= 1e-4 * scale + l1_jitter(model)
    assert np.abs(bundled.b - alone.b).max() <= 1e-4 * max(np.abs(alone.b).max(), scale)
    assert abs(bundled.val_acc - alone.val_acc) <= 0.002
    assert abs(bundled_train_acc - alone.train_acc) <= 0.002
    for a, b in zip(bundled.history, alone.history, strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4, nan_ok=True)


@pytest.mark.parametrize("batch_size", [32, 500])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_every_model_of_a_bundle_equals_train_alone(data, loss, batch_size):
    models = [
        Model(make_regularizer(reg, strength), lr)
        for reg, strength in REGULARIZERS.items()
        for lr in (1e-3, 1e-2)
    ]
    # A second dropout keep probability (its own products), and a model that overflows in
    # the first epochs: it is frozen there, and the others go on.
    models += [Model(make_regularizer("dropout", 0.8), 1e-2)]
    models += [Model(make_regularizer("l2", 10.0), 10.0)]
    result = train_bundle(*data, models, loss=loss, batch_size=batch_size, epochs=EPOCHS, seed=3)
    assert result.history_train_images == 2000
    assert result.models[-1].status == "diverged"
    for model, bundled, train_acc in zip(models, result.models, result.train_acc, strict=True):
        assert_same_model(bundled, single(data, model, loss, batch_size), train_acc, model)


def test_dropout_keep_probabilities_interleaved_by_the_rates_each_keep_their_masks(data):
    """The grid lists a bundle rate by rate, so its dropout models come p1, p2, p1, p2: each
    keep probability must still get its own masks (once, p1's slice of columns ran over
    p2's, and every p at the second rate trained with the last p's masks)."""
    models = [
        Model(make_regularizer(reg, strength), lr)
        for lr in (1e-3, 3e-3)
        for reg, strength in (("none", 0.0), ("dropout", 0.1), ("dropout", 0.5), ("l2", 0.1))
    ]
    models += [Model(make_regularizer("dropout", 0.9), 3e-3)]
    result = train_bundle(*data, models, loss="softmax", batch_size=64, epochs=2, seed=3)
    for model, bundled, train_acc in zip(models, result.models, result.train_acc, strict=True):
        alone = single(data, model, "softmax", 64, epochs=2)
        assert_same_model(bundled, alone, train_acc, model)


def blas_sums_wide_as_thin(n, dim, k, c=10):
    """Whether this BLAS gives one model's float64 products (scores X @ W and gradient
    X.T @ ds, as train computes them) bit for bit inside a bundle's wide products of k
    models (X @ W_all and dS.T @ X)."""
    rng = np.random.default_rng(0)
    X, W, ds = (rng.standard_normal(shape) for shape in ((n, dim), (dim, c), (n, c)))
    Wt, dS = np.tile(W.T, (k, 1)), np.tile(ds, (1, k))
    return np.array_equal((X @ Wt.T)[:, :c], X @ W) and np.array_equal((dS.T @ X)[:c].T, X.T @ ds)


@pytest.mark.parametrize("rates", ["one", "per model"])  # row factors as scalars or a column
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_in_float64_a_bundle_is_bit_identical_to_train(loss, rates):
    """Same operations in the same order, so only the BLAS can make a difference: a product
    of many models' columns may be summed in another order than one model's. OpenBLAS
    (0.3.31 on this SkylakeX) does so for small products, whose kernel it chooses by shape
    (e.g. 64 x 324 x 10, train's product at batch 64 on HOG features: its "small matrix"
    kernel, while the bundle's 64 x 324 x 60 is not small; differences of 1e-17). So the test
    runs where the products are large enough, and asserts bit identity when this BLAS sums
    those shapes alike (checked first; else 1e-12, a few roundings of float64)."""
    rng = np.random.default_rng(0)
    centres = 0.15 * rng.normal(size=(10, 1024))
    y = rng.integers(0, 10, 2500)
    X = (centres[y] + rng.normal(size=(2500, 1024))).astype(np.float32).astype(np.float64)
    data = (X[:2000], y[:2000], X[2000:], y[2000:])
    models = [
        Model(make_regularizer(reg, s), 1e-2 * (1 + i / 10 if rates == "per model" else 1))
        for i, (reg, s) in enumerate(REGULARIZERS.items())
    ]
    models += [
        Model(
            make_regularizer("l2", 1e-2),
            1e-1,
            momentum=0.9,
            lr_decay=0.5,
            lr_decay_every_images=3000,  # in the second of three epochs of 2,000 images
        )
    ]
    result = train_bundle(*data, models, loss=loss, batch_size=100, epochs=3, seed=3)
    plain_models = len(models) - 1  # the dropout model has its own (thin) products
    exact = blas_sums_wide_as_thin(100, 1024, plain_models)
    for model, bundled in zip(models, result.models, strict=True):
        alone = single(data, model, loss, 100, epochs=3)
        if exact:
            np.testing.assert_array_equal(bundled.W, alone.W)
            np.testing.assert_array_equal(bundled.b, alone.b)
        else:
            np.testing.assert_allclose(bundled.W, alone.W, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(bundled.b, alone.b, rtol=1e-12, atol=1e-15)


def test_the_bit_identity_check_sees_this_blas():
    """On the OpenBLAS of the project's machine (SkylakeX kernels) the float64 test above
    asserts bit identity (not the tolerance), and train's thin product at batch 64 on 324
    features is summed otherwise than the bundle's: why that test does not run there."""
    blas = [b.get("architecture") for b in threadpool_info() if b["internal_api"] == "openblas"]
    if "SkylakeX" not in blas:
        pytest.skip("another BLAS: its kernels choose other summation orders")
    assert blas_sums_wide_as_thin(100, 1024, 6)
    assert not blas_sums_wide_as_thin(64, 324, 6)


def test_momentum_and_step_decay_per_model(data):
    l2 = make_regularizer("l2", 1e-2)
    models = [
        Model(l2, 1e-2),
        Model(l2, 1e-2, momentum=0.9),
        Model(l2, 3e-2, lr_decay=0.5, lr_decay_every_images=10_000),
        Model(
            make_regularizer("dropout", 0.5),
            1e-2,
            momentum=0.5,
            lr_decay=0.1,
            lr_decay_every_images=20_000,
        ),
    ]
    result = train_bundle(*data, models, loss="softmax", batch_size=64, epochs=EPOCHS, seed=3)
    for model, bundled, train_acc in zip(models, result.models, result.train_acc, strict=True):
        assert_same_model(bundled, single(data, model, "softmax", 64), train_acc, model)


def test_early_stopping_per_model_as_train_does(data):
    """Early stopping models keep their best validation epoch's weights (and the final
    training accuracy is theirs); the others, and the run itself, are unchanged."""
    none = make_regularizer("none", 0)
    models = [
        Model(none, 3e-1),
        Model(none, 3e-1, early_stopping=True),
        Model(make_regularizer("early_stopping", 0), 3e-1, early_stopping=True),
        Model(make_regularizer("dropout", 0.5), 1e-1, early_stopping=True),
        Model(make_regularizer("l2", 10.0), 10.0, early_stopping=True),  # diverges
    ]
    result = train_bundle(*data, models, loss="svm", batch_size=32, epochs=8, seed=3)
    assert result.models[0].best_epoch is None
    assert 1 <= result.models[1].best_epoch < 8  # the best is not the last: the test can fail
    np.testing.assert_array_equal(result.models[1].W, result.models[2].W)
    assert result.models[4].status == "diverged"
    for model, bundled, train_acc in zip(models, result.models, result.train_acc, strict=True):
        assert_same_model(bundled, single(data, model, "svm", 32, epochs=8), train_acc, model)


def test_early_stopping_and_repeated_models_share_columns_and_train_once(data, monkeypatch):
    """Early stopping trains as no regularizer does at the same settings, and a model given
    twice trains alike: the stack holds each once. Every model still gets its own result
    (early stopping its best evaluation's weights), equal to train's."""
    trained = []
    init = _Stack.__init__

    def spy(self, models, W0, batch_size):
        trained.append(len(models))
        init(self, models, W0, batch_size)

    monkeypatch.setattr(_Stack, "__init__", spy)
    none, l2 = make_regularizer("none", 0), make_regularizer("l2", 1e-2)
    models = [
        Model(none, 3e-1),
        Model(make_regularizer("early_stopping", 0), 3e-1, early_stopping=True),
        Model(none, 1e-1),
        Model(l2, 3e-1, early_stopping=True),
        Model(l2, 3e-1),
        Model(none, 3e-1),
    ]
    result = train_bundle(*data, models, loss="svm", batch_size=32, epochs=6, seed=3)
    assert trained == [3]
    assert result.models[1].best_epoch is not None and result.models[0].best_epoch is None
    assert result.models[0].history is not result.models[5].history
    np.testing.assert_array_equal(result.models[0].W, result.models[5].W)
    for model, bundled, train_acc in zip(models, result.models, result.train_acc, strict=True):
        assert_same_model(bundled, single(data, model, "svm", 32, epochs=6), train_acc, model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_update_in_blocks_of_any_size_gives_the_same_bits(data, dtype, monkeypatch):
    """update() runs block by block of rows (a cache's worth): one model per block, or a
    kind cut anywhere, gives the same numbers bit for bit, a divergence inside a block too
    (per-model factors as scalars or as columns multiply alike)."""
    X, y, Xv, yv = (a.astype(dtype) if a.dtype.kind == "f" else a for a in data)
    models = [
        Model(make_regularizer(reg, strength), lr, momentum=0.5 if lr == 1e-2 else 0.0)
        for reg, strength in REGULARIZERS.items()
        for lr in (1e-3, 1e-2, 3e-2)
    ]
    models += [Model(make_regularizer("l2", 1e3), 1e2)]  # diverges mid-block, float64 too
    kwargs = dict(loss="softmax", batch_size=50, epochs=3, seed=3)
    whole = train_bundle(X, y, Xv, yv, models, **kwargs)
    monkeypatch.setattr(_Stack, "BLOCK_BYTES", 2 * 10 * X.shape[1] * X.itemsize)  # 2 models
    blocked = train_bundle(X, y, Xv, yv, models, **kwargs)
    assert whole.models[-1].diverged and blocked.models[-1].diverged
    for a, b in zip(whole.models, blocked.models, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        untimed = [{key: v for key, v in row.items() if key != "seconds"} for row in a.history]
        assert untimed == [
            {key: v for key, v in row.items() if key != "seconds"} for row in b.history
        ]


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_the_loss_of_a_large_batch_in_blocks_of_rows_gives_the_same_steps(data, loss, monkeypatch):
    """Gradient descent's batch (every training image) goes through the loss in blocks of
    rows: the same gradient bit for bit, the loss to float64 rounding."""
    models = [Model(make_regularizer("none", 0), 1e-1), Model(make_regularizer("l1", 1e-3), 1.0)]
    kwargs = dict(loss=loss, batch_size=len(data[0]), epochs=4, seed=3)
    whole = train_bundle(*data, models, **kwargs)
    monkeypatch.setattr(bundle, "LOSS_BLOCK_BYTES", 1)  # blocks of 64 rows
    blocked = train_bundle(*data, models, **kwargs)
    for a, b in zip(whole.models, blocked.models, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        for row_a, row_b in zip(a.history, b.history, strict=True):
            assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-12)


def test_history_may_measure_training_accuracy_on_a_stratified_subset(data):
    X, y, Xv, yv = data
    models = [Model(make_regularizer("none", 0), 1e-2)]
    full = train_bundle(X, y, Xv, yv, models, loss="svm", batch_size=100, epochs=3, seed=0)
    part = train_bundle(
        X, y, Xv, yv, models, loss="svm", batch_size=100, epochs=3, seed=0, history_train_images=500
    )
    assert part.history_train_images == len(stratified_subset(y, 500))
    np.testing.assert_array_equal(part.models[0].W, full.models[0].W)  # training is the same
    assert part.train_acc == full.train_acc  # the final number is on the whole training set
    assert part.models[0].history[-1]["train_acc"] != full.models[0].history[-1]["train_acc"]


def test_a_long_run_records_every_few_epochs_as_train_does(data):
    """eval_every: the history of many short epochs, thinned the same way in both trainers;
    the training itself, and the epoch a model diverges in, are unchanged."""
    models = [Model(make_regularizer("l2", 1e-2), 1e-2), Model(make_regularizer("l2", 10.0), 10.0)]
    result = train_bundle(*data, models, loss="softmax", batch_size=500, epochs=7, seed=3)
    thinned = train_bundle(
        *data, models, loss="softmax", batch_size=500, epochs=7, seed=3, eval_every=3
    )
    assert [row["epoch"] for row in thinned.models[0].history] == [3, 6, 7]
    np.testing.assert_array_equal(thinned.models[0].W, result.models[0].W)
    assert thinned.models[1].diverged_epoch == result.models[1].diverged_epoch
    assert thinned.models[1].history[-1]["epoch"] == result.models[1].diverged_epoch
    for model, bundled, train_acc in zip(models, thinned.models, thinned.train_acc, strict=True):
        alone = single(data, model, "softmax", 500, epochs=7, eval_every=3)
        assert [r["epoch"] for r in alone.history] == [r["epoch"] for r in bundled.history]
        assert_same_model(bundled, alone, train_acc, model)


def test_stratified_subset_keeps_class_shares():
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    rows = stratified_subset(y, 100)
    assert list(np.bincount(y[rows])) == [10, 20, 30, 40]
    assert list(rows) == sorted(rows) and len(set(rows)) == 100
    assert list(stratified_subset(y, 5000)) == list(range(1000))


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([], "models must not be empty"),
        ([Model(make_regularizer("l2", 0.1), 0.0)], "learning_rate must be a finite number > 0"),
        ([Model(make_regularizer("l2", 0.1), 0.1, momentum=1.0)], "momentum must be"),
    ],
)
def test_bad_models_are_clear_errors(data, models, message):
    with pytest.raises(ValueError, match=message):
        train_bundle(*data, models, loss="svm", batch_size=32, epochs=1, seed=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_classes", [3, 10, 17])
def test_class_plane_helpers_equal_numpy_bit_for_bit(num_classes, dtype):
    """The sum over the class planes gives what numpy's sum over the class axis gives, in
    the same summation order (the float64 bundle equals train bit for bit only then)."""
    rng = np.random.default_rng(num_classes)
    n, k = 37, 5
    s = np.exp(4 * rng.standard_normal((n, k, num_classes))).astype(dtype)
    y = rng.integers(0, num_classes, n)
    planes = _to_planes(s.reshape(n, -1), k)
    assert planes.shape == (num_classes, n, k) and planes.flags.c_contiguous
    np.testing.assert_array_equal(_class_sum(planes), s.sum(axis=2))
    true = _true_class_index(y, k, num_classes)
    np.testing.assert_array_equal(planes.reshape(-1).take(true), s[np.arange(n), :, y])
    out = np.empty((n, k * num_classes), dtype=dtype)
    np.testing.assert_array_equal(_from_planes(planes, out), s.reshape(n, -1))


def test_history_on_a_validation_subset_and_the_returned_weights_on_all(data):
    """Evaluations during training score a stratified validation subset (cheap, so a run can
    be evaluated often for early stopping); the accuracy of the weights returned, which
    chooses settings, is measured on the whole validation set."""
    X, y, Xv, yv = data
    models = [
        Model(make_regularizer("none", 0.0), 1e-2),
        Model(make_regularizer("early_stopping", 0.0), 1e-2, early_stopping=True),
    ]
    result = train_bundle(
        X,
        y,
        Xv,
        yv,
        models,
        loss="softmax",
        batch_size=64,
        epochs=6,
        seed=3,
        history_val_images=100,
    )
    rows = stratified_subset(yv, 100)
    assert result.history_val_images == 100
    for model, res, val_acc in zip(models, result.models, result.val_acc, strict=True):
        assert val_acc == pytest.approx(np.mean(predict(res.W, res.b, Xv) == yv))
        last = res.history[-1]
        if not model.early_stopping:
            assert last["val_acc"] == pytest.approx(
                np.mean(predict(res.W, res.b, Xv[rows]) == yv[rows])
            )
    stopped = result.models[1]
    chosen = max(row["val_acc"] for row in stopped.history)
    assert next(r for r in stopped.history if r["epoch"] == stopped.best_epoch)["val_acc"] == chosen
    full = train_bundle(X, y, Xv, yv, models[:1], loss="softmax", batch_size=64, epochs=6, seed=3)
    assert full.val_acc[0] == full.models[0].val_acc  # without a subset: the history's own


# ----------------------------------------------------------------------------- gradient descent


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_full_batch_steps_equal_gradient_descent_written_out_by_hand(loss):
    """batch_size >= N is gradient descent: each epoch one step on the mean gradient of the
    whole set, W -= lr (dW + penalty), the same from train and from a bundle."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 20))
    y = rng.integers(0, 10, 300)
    Xv, yv = X[:50], y[:50]
    reg, lr, epochs = make_regularizer("l2", 0.1), 0.05, 6
    W = 1e-3 * np.random.default_rng(np.random.SeedSequence(3).spawn(3)[0]).standard_normal(
        (20, 10)
    )
    b = np.zeros(10)
    losses = {"svm": svm_loss, "softmax": softmax_loss}
    for _ in range(epochs):
        _, dW, db = losses[loss](W, b, X, y)
        dW = dW + 2 * 0.1 * W
        W, b = W - lr * dW, b - lr * db
    alone = train(
        X,
        y,
        Xv,
        yv,
        loss=loss,
        regularizer=reg,
        batch_size=300,
        learning_rate=lr,
        epochs=epochs,
        seed=3,
    )
    bundled = train_bundle(
        X, y, Xv, yv, [Model(reg, lr)], loss=loss, batch_size=10_000, epochs=epochs, seed=3
    )
    for result in (alone, bundled.models[0]):
        np.testing.assert_allclose(result.W, W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(result.b, b, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- progress records


def test_progress_schedule_is_log_spaced_from_the_first_step_to_the_last():
    assert progress_schedule(20) == list(range(21))  # a short run: every step
    steps = progress_schedule(28_140)  # batch 32, 20 epochs of 45,000 images
    assert steps[:3] == [0, 1, 2] and steps[-1] == 28_140
    assert 33 <= len(steps) <= 34 and steps == sorted(set(steps))
    for total in (40, 440, 1760, 7040):  # batch 2048, 512, 128 of 20 epochs: 32 points past 0
        assert len(progress_schedule(total)) == 33, total
    ratios = np.diff(np.log(steps[5:]))
    assert ratios.max() < 2 * ratios.min()  # evenly spaced in log step, past the first few


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_progress_records_the_objective_and_noise_scale_of_the_weights(data, loss):
    """The last record's objective is the data loss + penalty of the returned weights on the
    stratified subset; the final noise scale is linbench.noise's over the whole set."""
    X, y, _, _ = data
    models = [Model(make_regularizer("l2", 0.01), 0.01), Model(make_regularizer("l1", 1e-3), 0.03)]
    models += [Model(make_regularizer("l2", 10.0), 10.0)]  # diverges: records stop there
    total = 3 * (2000 // 100)
    result = train_bundle(
        *data,
        models,
        loss=loss,
        batch_size=100,
        epochs=3,
        seed=3,
        progress_steps=progress_schedule(total),
        progress_train_images=500,
    )
    rows = stratified_subset(y, 500)
    assert result.progress_train_images == len(rows)
    data_loss = {"svm": svm_loss, "softmax": softmax_loss}[loss]
    for model, trained, records, noise in zip(
        models, result.models, result.progress, result.gradient_noise_scale, strict=True
    ):
        if model.learning_rate == 10.0:
            assert trained.status == "diverged"
            assert len(records) < len(progress_schedule(total)) and np.isnan(noise)
            continue
        assert [r["step"] for r in records] == progress_schedule(total)
        assert [r["images"] for r in records] == [100 * r["step"] for r in records]
        assert all(np.diff([r["seconds"] for r in records]) >= 0)
        W, b = trained.W.astype(np.float64), trained.b.astype(np.float64)
        expected = data_loss(W, b, X[rows].astype(np.float64), y[rows])[0]
        expected += model.regularizer.penalty(W)[0]
        assert records[-1]["objective"] == pytest.approx(expected, rel=1e-4)
        assert records[0]["objective"] > records[-1]["objective"]
        reference = gradient_noise_scale(W, b, X, y, loss=loss)["B_simple"]
        assert noise == pytest.approx(reference, rel=1e-3)


@pytest.mark.parametrize(("scale", "size"), [(0.1, 1000), (0.2, 300)])
def test_progress_noise_scale_on_a_subset_takes_off_the_bias_of_the_mean(scale, size):
    """On n examples |mean g|^2 overstates |G|^2 by about tr(Σ)/n, so the plain ratio on a
    subset comes out near n at most, however large the noise scale of the whole set. With
    the bias taken off, the median over 20 subsets lands near the whole set's (40,000
    examples, labels drawn from a softmax model; noise scales ~900 and ~370)."""
    rng = np.random.default_rng(0)
    n = 40_000
    X = rng.standard_normal((n, 8)).astype(np.float32)
    y = (X @ (scale * rng.standard_normal((8, 10))) + rng.gumbel(size=(n, 10))).argmax(axis=1)
    stack = _Stack([Model(make_regularizer("none", 0.0), 0.1)], np.zeros((8, 10), np.float32), 10)
    whole = progress_record(stack, X, y, softmax_losses, unbiased=False)["noise_scale"][0]
    subsets = [rng.choice(n, size, replace=False) for _ in range(20)]
    plain = [progress_record(stack, X[r], y[r], softmax_losses, unbiased=False) for r in subsets]
    fair = [progress_record(stack, X[r], y[r], softmax_losses) for r in subsets]
    assert np.median([p["noise_scale"][0] for p in plain]) < 0.6 * whole
    assert np.median([f["noise_scale"][0] for f in fair]) == pytest.approx(whole, rel=0.25)


def test_bundle_predictions_equal_each_models_own(data):
    """The test split scored for every model in one wide product gives each model's labels,
    a diverged model's included (its inf/nan scores as predict ranks them)."""
    _, _, Xv, yv = data
    models = [Model(make_regularizer(reg, s), 0.01) for reg, s in REGULARIZERS.items()]
    models += [Model(make_regularizer("l2", 10.0), 10.0)]  # diverges
    result = train_bundle(*data, models, loss="softmax", batch_size=100, epochs=2, seed=3)
    wide = bundle_predictions(result.models, Xv)
    assert wide.shape == (len(models), len(yv))
    for labels, trained in zip(wide, result.models, strict=True):
        np.testing.assert_array_equal(labels, predictions(trained, Xv))
