"""Many linear models trained in one pass over the data: weights stacked side by side.

K models that share the data, the loss, the batch size, the seed and the number of epochs
see the same initial weights and the same minibatches (:func:`linbench.train.train` draws
both from the seed). Their weights can then sit side by side in one matrix W_all (D, K*C),
and one product ``X_batch @ W_all`` scores every model at once: a thin (batch x D) @ (D x C)
product per model uses a small part of what the BLAS can do, a wide one uses much more.

What a model may have of its own (:class:`Model`): learning rate, regularizer and strength,
momentum, step decay, early stopping. The penalties act on each model's columns with its
own strength; a max-norm model's columns are projected on their own; dropout models see
other inputs, so they get their own products, one per keep probability, with exactly the
masks ``train`` draws for that seed. A model whose loss, weights or bias become non-finite
is frozen at that step and recorded as diverged in that epoch, as ``train`` would stop it;
the others go on. An early-stopping model keeps a copy of its weights at its best
evaluation so far; it trains exactly as the model without a regularizer at its settings, so
the two share one set of columns (trained once; likewise a model given twice).

Each model's result equals ``train``'s for the same settings to float32 rounding
(``tests/test_bundle.py``). Two differences are on purpose: the per-epoch training accuracy
may be measured on a fixed, stratified subset of the training set (`history_train_images`;
the final one is on the whole set), and ``seconds`` is the bundle's time shared equally by
its models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from linbench.losses import predict
from linbench.outcome import run_status
from linbench.regularizers import (
    L1,
    L2,
    Dropout,
    EarlyStopping,
    ElasticNet,
    MaxNorm,
    NoRegularizer,
    Regularizer,
    random_uint16,
)
from linbench.train import TrainResult, _check_data, _check_params, decayed_rate

EVAL_ROWS = 4096
"""Rows scored at once when evaluating: bounds the (rows, K*C) score matrix; a block of
1,000-8,000 rows runs the product near the BLAS's peak."""


@dataclass(frozen=True)
class Model:
    """What one model of a bundle has of its own (see :func:`linbench.train.train`)."""

    regularizer: Regularizer
    learning_rate: float
    momentum: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every_images: int = 0
    early_stopping: bool = False


@dataclass
class BundleResult:
    """The models of a bundle, in the order given, and how their history was measured.

    `models[k]` is model k's :class:`TrainResult`; its history's ``train_acc`` and
    ``val_acc`` are measured on `history_train_images` training and `history_val_images`
    validation images (all of them unless subsets were asked for); `train_acc[k]` and
    `val_acc[k]` are the accuracies of the weights it returns on the whole training and
    validation sets. `progress[k]` are model k's progress records, if asked for, with the
    objective on `progress_train_images` training images; `gradient_noise_scale[k]` is
    B_simple of its data loss at its final weights over the whole training set (NaN if it
    diverged; see :func:`progress_record`).
    """

    models: list[TrainResult]
    train_acc: list[float]
    history_train_images: int
    val_acc: list[float] | None = None
    history_val_images: int | None = None
    progress: list[list[dict[str, float]]] | None = None
    progress_train_images: int | None = None
    gradient_noise_scale: list[float] | None = None


# The order of the models' columns in W_all: models without dropout first, kind by kind,
# so that each penalty and the max-norm projection is one operation on a slice of columns;
# then the dropout models, one slice per keep probability (they need their own products).
_KINDS = ("none", "max_norm", "l2", "elastic_net", "l1", "dropout")


def _kind(regularizer: Regularizer) -> str:
    kinds = {NoRegularizer: "none", MaxNorm: "max_norm", L2: "l2", ElasticNet: "elastic_net"}
    kinds.update({L1: "l1", Dropout: "dropout", EarlyStopping: "none"})
    if type(regularizer) not in kinds:
        raise ValueError(f"bundle: regularizer {regularizer.name!r} is not supported")
    return kinds[type(regularizer)]


def _as_trained(model: Model) -> Model:
    """The model as the stack trains it: early stopping as no regularizer, and no early
    stopping (the trainer keeps the best weights of the models that ask for them)."""
    if isinstance(model.regularizer, EarlyStopping):
        model = replace(model, regularizer=NoRegularizer())
    return replace(model, early_stopping=False)


def _column_key(model: Model) -> tuple[int, float]:
    kind = _kind(model.regularizer)
    return _KINDS.index(kind), (model.regularizer.strength if kind == "dropout" else 0.0)


class _Stack:
    """The parameters of K models side by side: W_all, b (K*C,) and each model's learning
    rate and momentum. Model j owns columns ``j*C .. (j+1)*C - 1``; the models are sorted as
    :data:`_KINDS` says.

    W_all (D, K*C) is kept transposed, as `Wt` (K*C, D): then each group of models is one
    contiguous block of rows, and elementwise work on it (penalties, steps, projections) runs
    as one flat loop instead of D short ones. The products take the transpose for free.

    Why the step is written the way it is (measured with ``benchmarks/bench_limit.py``): at
    batch 128 one elementwise pass over W_all costs 4-8 % of the step's two products, so
    passes count, and so does where their data sits.

    - Work arrays (scores, gradient, masked inputs, penalty terms) are allocated once and
      written with ``out=``: no temporary the size of W_all or of a minibatch per step.
    - :meth:`update` (penalties, divergence check, step, projection) runs block by block of
      rows (:class:`_Block`, at most BLOCK_BYTES of Wt each, whole models of one kind): the
      five to eight operations of a model's update then find its rows of Wt and dWt in the
      core's cache instead of fetching the whole of both from memory for each operation
      (W_all of 66 models on 1,600 features is 4 MB: 30 % less time than whole-array
      passes).
    - A per-model factor (learning rate, strength) multiplies a block as a scalar where the
      block's models share it, else as a (models, 1) column over the block's (models, C*D)
      view, where numpy's inner loop runs over C*D values per model instead of D per row
      (2.6x faster at 1,600 features; the same at 324).
    - Each model still gets exactly train's operations in train's order (penalty gradient,
      then ``W -= lr * dW``), so a float64 bundle equals train bit for bit where the BLAS sums
      a wide product as it sums a thin one (``tests/test_bundle.py``). This is also why the
      dropout models keep a (thin, slower) product per keep probability: each sees its own
      masked inputs, and no exact product of several of them does less work.
    """

    BLOCK_BYTES = 512 * 1024
    """Bytes of Wt per block of :meth:`update`: three such blocks (Wt, dWt, a penalty term)
    sit in a core's L2 cache with room to spare (measured best at 256 KB-1 MB)."""

    def __init__(self, models: Sequence[Model], W0: np.ndarray, batch_size: int) -> None:
        c = W0.shape[1]
        dtype = W0.dtype
        # Stable sort: models of one kind keep their given order, except that dropout models
        # are sorted by keep probability, so that each probability's models are one
        # contiguous slice of columns (the rates of a bundle interleave them otherwise).
        self.order = sorted(range(len(models)), key=lambda i: _column_key(models[i]))
        self.models = [models[i] for i in self.order]
        self.k, self.c = len(self.models), c
        kinds = np.array([_kind(m.regularizer) for m in self.models])
        strength = np.array([m.regularizer.strength for m in self.models])

        # C order even for one model (np.tile then copies W0.T in its own, F order): update()
        # reshapes rows of Wt and of the work arrays like it into per-model views
        self.Wt = np.ascontiguousarray(np.tile(W0.T, (self.k, 1)))
        self.b = np.zeros(self.k * c, dtype=dtype)
        # each model's learning rate; after changing one, call set_lr_columns()
        self.lr = np.array([m.learning_rate for m in self.models])
        self.momentum = np.array([m.momentum for m in self.models])
        if self.momentum.any():
            self.Wt_velocity, self.b_velocity = np.zeros_like(self.Wt), np.zeros_like(self.b)
            self.momentum_columns = np.repeat(self.momentum, c).astype(dtype)
        self.active = np.ones(self.k, dtype=bool)

        # Inputs: (dropout or None, columns); X_batch as it is for the models without dropout.
        self.inputs: list[tuple[Dropout | None, slice]] = []
        plain = self._models_of(kinds, "none", "max_norm", "l2", "elastic_net", "l1")
        if plain is not None:
            self.inputs.append((None, self._columns(plain)))
        for p in dict.fromkeys(strength[kinds == "dropout"]):
            models_p = np.flatnonzero((kinds == "dropout") & (strength == p))
            self.inputs.append(
                (Dropout(float(p)), self._columns(slice(models_p[0], models_p[-1] + 1)))
            )

        # Penalties: lambda * sum W^2 on the l2 and elastic net models (times beta for the
        # latter), lambda * sum |W| on the elastic net and l1 models, each with its strength.
        beta = np.array([getattr(m.regularizer, "beta", 1.0) for m in self.models])
        has_l2 = np.isin(kinds, ("l2", "elastic_net"))
        has_l1 = np.isin(kinds, ("elastic_net", "l1"))
        l2_strength = np.where(has_l2, strength * np.where(kinds == "elastic_net", beta, 1.0), 0)
        l1_strength = np.where(has_l1, strength, 0.0)
        self.l2_models = self._models_of(kinds, "l2", "elastic_net")
        self.l1_models = self._models_of(kinds, "elastic_net", "l1")
        if self.l2_models is not None:
            self.l2_strength = l2_strength[self.l2_models]
        if self.l1_models is not None:
            self.l1_strength = l1_strength[self.l1_models]

        # Blocks of update(): runs of models of one kind, cut to at most BLOCK_BYTES of Wt.
        per_block = max(1, self.BLOCK_BYTES // (c * W0.shape[0] * dtype.itemsize))
        self.blocks: list[_Block] = []
        start = 0
        for j in range(1, self.k + 1):
            if j == self.k or kinds[j] != kinds[start] or j - start == per_block:
                m = slice(start, j)
                self.blocks.append(
                    _Block(
                        models=m,
                        rows=self._columns(m),
                        # (2 lambda beta), per model: the factor train's penalty multiplies W by
                        l2_factor=_factor(2 * l2_strength[m], dtype) if has_l2[start] else None,
                        l1_factor=_factor(l1_strength[m], dtype) if has_l1[start] else None,
                        l2_strength=l2_strength[m],
                        l1_strength=l1_strength[m],
                        radius=(
                            np.repeat(strength[m], c).astype(dtype)[:, None]
                            if kinds[start] == "max_norm"
                            else None
                        ),
                        momentum=_factor(self.momentum[m], dtype),
                    )
                )
                start = j
        self.set_lr_columns()

        # Work arrays, written in place every step.
        dim = W0.shape[0]
        self.S = np.empty((batch_size, self.k * c), dtype=dtype)
        self.dWt = np.empty_like(self.Wt)
        block_rows = max(b.rows.stop - b.rows.start for b in self.blocks)
        self.penalty_grad = np.empty((block_rows, dim), dtype=dtype)
        self.sign = np.empty((block_rows, dim), dtype=dtype)
        self.X_masked = [
            np.empty((batch_size, dim), dtype=dtype) for dropout, _ in self.inputs if dropout
        ]
        self.kept = np.empty((batch_size, dim) if self.X_masked else 0, dtype=bool)

    @staticmethod
    def _models_of(kinds: np.ndarray, *wanted: str) -> slice | None:
        """The (contiguous) models of the given kinds, or None if there are none."""
        found = np.flatnonzero(np.isin(kinds, wanted))
        return slice(found[0], found[-1] + 1) if found.size else None

    def _columns(self, models: slice) -> slice:
        return slice(models.start * self.c, models.stop * self.c)

    def set_lr_columns(self) -> None:
        """The learning rates per block of models (for Wt) and per column (for b), in Wt's
        dtype as train's Python-float rate is when it multiplies a float32 gradient."""
        dtype = self.Wt.dtype
        self.lr_columns = np.repeat(self.lr, self.c).astype(dtype)
        self.lr_blocks = [_factor(self.lr[block.models], dtype) for block in self.blocks]

    @staticmethod
    def gather(X_train: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """The minibatch's rows of X_train (a copy: fancy indexing is 5x faster than
        ``np.take`` into a work array); gradient descent's batch of the whole set is X_train
        itself, in storage order (as train takes it: the same gradient, no copy per step)."""
        return np.asarray(X_train) if len(batch) == len(X_train) else X_train[batch]

    def masked_inputs(self, X_batch: np.ndarray, uniform: np.ndarray | None) -> list:
        """Every group's inputs: X_batch, and per keep probability the inputs with
        :meth:`linbench.regularizers.Dropout.apply_mask`'s operations, in work arrays."""
        n = len(X_batch)
        X_inputs, masked = [], iter(self.X_masked)
        for dropout, _ in self.inputs:
            if dropout is None:
                X_inputs.append(X_batch)
                continue
            out, kept = next(masked)[:n], self.kept[:n]
            threshold = max(1, round(dropout.strength * 2**16))
            np.multiply(X_batch, 2**16 / threshold, out=out)
            np.less(uniform, threshold, out=kept)
            np.multiply(out, kept, out=out)
            X_inputs.append(out)
        return X_inputs

    def scores(self, X_inputs: list[np.ndarray]) -> np.ndarray:
        """Scores (N, K*C) of every model, each on its own inputs (a work array)."""
        S = self.S[: len(X_inputs[0])]
        for X_in, (_, cols) in zip(X_inputs, self.inputs, strict=True):
            np.matmul(X_in, self.Wt[cols].T, out=S[:, cols] if len(self.inputs) > 1 else S)
        S += self.b
        return S

    def weight_gradient(self, X_inputs: list[np.ndarray], dS: np.ndarray) -> np.ndarray:
        """dW transposed, (K*C, D), from dL/dS (N, K*C): dS.T @ X, each model with its inputs."""
        dWt = self.dWt
        for X_in, (_, cols) in zip(X_inputs, self.inputs, strict=True):
            np.matmul(dS[:, cols].T, X_in, out=dWt[cols])
        return dWt

    def update(
        self, dWt: np.ndarray, db: np.ndarray, losses: np.ndarray
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """One training step of every model, block by block: add its penalty to its data loss
        in `losses` (K,), in place; freeze it if that is not finite (train stops before the
        update); else add the penalty's gradient to dWt, step (SGD or momentum) and project
        (max norm). Returns the models frozen, with their weights (W, b) before the step.

        Per model, the operations of the regularizer's ``penalty`` in its order (elastic net:
        2 lambda beta W + lambda sign W, then added to dW): the same roundings as train,
        which L1's sign flips would otherwise amplify."""
        c, frozen = self.c, {}
        momentum = self.momentum.any()
        data_finite = np.isfinite(losses).all()  # the usual case: no model checked one by one
        for i, block in enumerate(self.blocks):
            lr = self.lr_blocks[i]
            m, rows = block.models, block.rows
            W, dW = self.Wt[rows], dWt[rows]
            n = rows.stop - rows.start
            finite = data_finite
            if block.l2_factor is not None or block.l1_factor is not None:
                penalty = np.zeros(m.stop - m.start)
                if block.l2_factor is not None:
                    penalty += block.l2_strength * _per_model(np.einsum("cd,cd->c", W, W), c)
                if block.l1_factor is not None:
                    sign = np.sign(W, out=self.sign[:n])
                    penalty += block.l1_strength * _per_model(np.einsum("cd,cd->c", sign, W), c)
                losses[m] += penalty
                finite = finite and np.isfinite(penalty).all()
            diverging = None if finite else self.active[m] & ~np.isfinite(losses[m])
            if diverging is not None and diverging.any():  # rare: a run overflowing
                for j in m.start + np.flatnonzero(diverging):
                    frozen[int(j)] = self.freeze(int(j), dWt, db)
                lr = self.lr_blocks[i]  # the frozen models' rate is 0 now
                if block.l1_factor is not None:
                    np.sign(W, out=sign)  # their weights are 0 now
            # A model's C rows of Wt are contiguous, so a (models, C*D) view lets a per-model
            # factor broadcast over C*D values at once (faster than over (rows, 1): _Stack).
            per_model = (m.stop - m.start, -1)
            W_m, dW_m = W.reshape(per_model), dW.reshape(per_model)
            if block.l1_factor is not None:
                sign_m = sign.reshape(per_model)
            if block.l2_factor is not None:
                grad = np.multiply(
                    W_m, block.l2_factor, out=self.penalty_grad[:n].reshape(per_model)
                )
                if block.l1_factor is not None:  # elastic net: its L1 term joins its L2 term
                    grad += np.multiply(sign_m, block.l1_factor, out=sign_m)
                dW_m += grad
            elif block.l1_factor is not None:
                dW_m += np.multiply(sign_m, block.l1_factor, out=sign_m)
            np.multiply(dW_m, lr, out=dW_m)
            if not momentum:
                W -= dW
            else:
                velocity = self.Wt_velocity[rows].reshape(per_model)
                np.multiply(velocity, block.momentum, out=velocity)
                velocity -= dW_m
                W_m += velocity
            if block.radius is not None:
                # summed down D in a (D, columns) copy, as MaxNorm.project sums: bit for bit
                W_copy = W.T.copy()
                col_norms = np.sqrt(np.einsum("dc,dc->c", W_copy, W_copy))[:, None]
                W *= block.radius / np.maximum(col_norms, block.radius)
        db *= self.lr_columns
        if not momentum:
            self.b -= db
        else:
            self.b_velocity *= self.momentum_columns
            self.b_velocity -= db
            self.b += self.b_velocity
        return frozen

    def penalty_values(self) -> np.ndarray:
        """Each model's penalty (K,), as :meth:`update` computes it, without a gradient."""
        values = np.zeros(self.k)
        c, Wt = self.c, self.Wt
        if self.l2_models is not None:
            rows = Wt[self._columns(self.l2_models)]
            values[self.l2_models] += self.l2_strength * _per_model(
                np.einsum("cd,cd->c", rows, rows), c
            )
        if self.l1_models is not None:
            rows = Wt[self._columns(self.l1_models)]
            values[self.l1_models] += self.l1_strength * _per_model(np.abs(rows).sum(axis=1), c)
        return values

    def model_weights(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of model j's (W (D, C), b (C,))."""
        cols = slice(j * self.c, (j + 1) * self.c)
        return self.Wt[cols].T.copy(), self.b[cols].copy()

    def freeze(self, j: int, dWt: np.ndarray | None = None, db: np.ndarray | None = None):
        """Take model j out of training: return its (W, b) as they are, and zero its columns
        (and those of this step's gradient) so that it spreads no inf or nan."""
        snapshot = self.model_weights(j)
        cols = slice(j * self.c, (j + 1) * self.c)
        velocities = (self.Wt_velocity, self.b_velocity) if self.momentum.any() else ()
        for array in (self.Wt, self.b, dWt, db, *velocities):
            if array is not None:
                array[cols] = 0  # rows of Wt, entries of b
        self.lr[j] = 0.0
        self.set_lr_columns()
        self.active[j] = False
        return snapshot

    def finite_models(self) -> np.ndarray:
        """(K,) True where every weight and bias of the model is finite."""
        finite = np.isfinite(self.Wt).all(axis=1) & np.isfinite(self.b)
        return finite.reshape(self.k, self.c).all(axis=1)

    def accuracies(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Accuracy (K,) of every model on (X, y), scored in blocks of EVAL_ROWS rows: wide
        enough to run the product near the BLAS's peak, small enough to stay in cache."""
        correct = np.zeros(self.k, dtype=np.int64)
        S = np.empty((min(EVAL_ROWS, len(y)), self.k * self.c), dtype=self.Wt.dtype)
        for start in range(0, len(y), EVAL_ROWS):
            X_block = X[start : start + EVAL_ROWS]
            scores = np.matmul(X_block, self.Wt.T, out=S[: len(X_block)])
            scores += self.b
            pred = scores.reshape(len(scores), self.k, self.c).argmax(axis=2)
            correct += (pred == y[start : start + EVAL_ROWS, None]).sum(axis=0)
        return correct / len(y)


@dataclass(frozen=True)
class _Block:
    """Models (contiguous, one kind) whose update runs together, and their per-model factors:
    scalars where the models share them, else (models, 1) columns; None where not used."""

    models: slice
    rows: slice
    l2_factor: np.generic | np.ndarray | None
    l1_factor: np.generic | np.ndarray | None
    l2_strength: np.ndarray  # (models,) lambda (times beta) for the penalty's value
    l1_strength: np.ndarray
    radius: np.ndarray | None  # max norm: (rows, 1)
    momentum: np.generic | np.ndarray


def _factor(per_model: np.ndarray, dtype: np.dtype) -> np.generic | np.ndarray:
    """A per-model factor for a block's models in the block's dtype, as train's Python-float
    factor is when it multiplies a float32 array: a scalar if all are equal (numpy multiplies
    by a scalar fastest), else a (models, 1) column for the block's (models, C*D) view."""
    if (per_model == per_model[0]).all():
        return np.dtype(dtype).type(per_model[0])
    return per_model.astype(dtype)[:, None]


def _per_model(column_values: np.ndarray, num_classes: int) -> np.ndarray:
    """Sum per model of a per-column vector (k*C,) -> (k,), in float64."""
    return column_values.reshape(-1, num_classes).sum(axis=1, dtype=np.float64)


def svm_losses(
    S: np.ndarray, y: np.ndarray, k: int, margin: float = 1.0, *, rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`linbench.losses.svm_loss` of k models at once, from their scores S (N, k*C).

    Returns the k losses (float64) and dL/dS (N, k*C), written over S; the gradients are
    dW = X.T @ dS and db = dS.sum(axis=0). Same operations as ``svm_loss``, model by model.
    `rows`: the batch's rows if S is a block of them (:func:`_losses_in_blocks`): the loss
    and its gradient are means over the batch, so both are divided by `rows`, not N.
    """
    n = rows or len(S)
    P = _to_planes(S, k)
    true = _true_class_index(y, k, len(P))
    margins = P
    margins -= margins.reshape(-1).take(true)
    margins += margin
    margins.reshape(-1)[true] = 0
    np.maximum(margins, 0, out=margins)
    # over the classes (elementwise, fast), then over the samples per model
    losses = margins.sum(axis=0).sum(axis=0, dtype=np.float64) / n
    ds = np.greater(margins, 0, out=margins)  # 1.0 where the margin is violated
    violations = ds.sum(axis=0)  # a count, exact in any order
    ds.reshape(-1)[true] = -violations
    return losses, _from_planes(ds, S, divisor=n)  # ds / n, written back


def softmax_losses(
    S: np.ndarray, y: np.ndarray, k: int, *, rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`linbench.losses.softmax_loss` of k models at once (see :func:`svm_losses`)."""
    n = rows or len(S)
    P = _to_planes(S, k)
    true = _true_class_index(y, k, len(P))
    P -= P.max(axis=0)
    shifted_true = P.reshape(-1).take(true)
    exp_s = np.exp(P, out=P)
    sum_exp = _class_sum(exp_s)
    losses = np.sum(np.log(sum_exp) - shifted_true, axis=0, dtype=np.float64) / n  # the mean
    ds = exp_s
    ds /= sum_exp
    ds.reshape(-1)[true] -= 1
    return losses, _from_planes(ds, S, divisor=n)  # ds / n, written back


LOSS_BLOCK_BYTES = 512 * 1024
"""Bytes of scores per block of :func:`_losses_in_blocks`: the loss's dozen passes over its
scores and class planes then stay in a core's cache (measured 0.5-2 MB best)."""


def _losses_in_blocks(losses_of, S: np.ndarray, y: np.ndarray, k: int):
    """``losses_of(S, y, k)`` over blocks of rows of S (dL/dS written over S): a batch of
    many rows (gradient descent's, of every training image) would otherwise go through the
    loss's passes from memory, 2.5x slower. dL/dS is the same bit for bit (each entry's
    operations are); the losses are summed block by block (float64: rounding apart)."""
    block = max(64, LOSS_BLOCK_BYTES // max(1, S[0].nbytes))
    if len(S) <= block:
        return losses_of(S, y, k)
    losses = np.zeros(k)
    for start in range(0, len(S), block):
        rows = slice(start, start + block)
        losses += losses_of(S[rows], y[rows], k, rows=len(S))[0]
    return losses, S


# numpy reduces over a short last axis (C = 10) one row at a time: for every model of every
# sample a call of its inner loop, which costs about 10x the arithmetic. So the losses work
# on "class planes": the scores copied once into a (C, N, k) array, where a reduction over
# the classes is C - 1 elementwise operations on contiguous (N, k) planes, and broadcasting
# an (N, k) value over the classes is one. (Measured: half the time of the same operations
# on the strided (N, k, C) view.)


def _to_planes(S: np.ndarray, k: int) -> np.ndarray:
    """Scores (N, k*C) as class planes (C, N, k), a contiguous copy."""
    n = len(S)
    return np.ascontiguousarray(S.reshape(n, k, -1).transpose(2, 0, 1))


def _from_planes(P: np.ndarray, out: np.ndarray, divisor: int = 1) -> np.ndarray:
    """Class planes (C, N, k) written back into `out` (N, k*C), divided by `divisor` on the
    way (the gradient's last operation, without a pass of its own); returns out."""
    c, n, k = P.shape
    np.divide(P.transpose(1, 2, 0), divisor, out=out.reshape(n, k, c))
    return out


def _true_class_index(y: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """Flat indices (N, k) into class planes (C, N, k) of each sample's true-class entry
    in every model: one ``take`` (or flat assignment) of N*k values."""
    n = len(y)
    return (y * (n * k) + np.arange(n) * k)[:, None] + np.arange(k)


def _class_sum(P: np.ndarray) -> np.ndarray:
    """The sum over the classes of planes P (C, N, k), bit for bit as numpy sums a row of C
    values: for 8 to 128 values, eight running sums (over blocks of 8) added pairwise, then
    the last C % 8 values one by one. Other C: numpy's own reduce, on rows."""
    c = len(P)
    if not 8 <= c <= 128:
        return np.ascontiguousarray(np.moveaxis(P, 0, -1)).sum(axis=-1)
    # the running sums; a copy only if further blocks are added to them (C >= 16)
    lanes = P[:8].copy() if c >= 16 else P[:8]
    for block in range(8, c - c % 8, 8):
        lanes += P[block : block + 8]
    total = lanes[0] + lanes[1]
    total += lanes[2] + lanes[3]
    right = lanes[4] + lanes[5]
    right += lanes[6] + lanes[7]
    total += right
    for j in range(c - c % 8, c):
        total += P[j]
    return total


def stratified_subset(y: np.ndarray, size: int) -> np.ndarray:
    """Sorted indices of `size` samples (about) with y's class shares: the first ones of
    each class. Fixed, so every epoch and every model is measured on the same samples."""
    if size >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    take = np.maximum(1, np.round(counts * size / len(y)).astype(int))
    by_class = [np.flatnonzero(y == c)[:t] for c, t in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(by_class))


def train_bundle(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    models: Sequence[Model],
    *,
    loss: str,
    batch_size: int,
    epochs: int,
    seed: int,
    init_scale: float = 1e-3,
    margin: float = 1.0,
    num_classes: int | None = None,
    history_train_images: int | None = None,
    history_val_images: int | None = None,
    eval_every: int = 1,
    progress_steps: Sequence[int] | None = None,
    progress_train_images: int | None = None,
) -> BundleResult:
    """Train every model of `models` as :func:`linbench.train.train` would, in one pass.

    The shared arguments mean what they mean for ``train``; `history_train_images` and
    `history_val_images`, if given, measure the history's training and validation accuracy
    on that many images (fixed, stratified subsets) instead of all of them: evaluating often
    then stays cheap. Early stopping chooses among those evaluations; the accuracies of the
    weights returned are measured on the whole sets at the end (``BundleResult.train_acc``,
    ``val_acc``), and so is the validation accuracy that decides a run's status.
    `eval_every` records the history after every `eval_every`-th epoch (and the last) only,
    as ``train`` does.

    `progress_steps` (optional) asks for progress records after those steps (0: the
    initial weights; :func:`progress_schedule` spaces them): per model, the steps and
    images so far, its share of the training's wall time so far (the records' own time
    left out), the training objective (data loss + penalty, on `progress_train_images`
    training images, a fixed stratified subset; dropout models on their inputs unmasked),
    the accuracy on the history's validation images and the gradient noise scale
    (:func:`progress_record`). A model frozen (diverged) is no longer recorded.
    Raises ValueError, naming the parameter, for invalid parameters or data.
    """
    if not models:
        raise ValueError("bundle: models must not be empty")
    _check_params(
        loss=loss,
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        init_scale=init_scale,
        margin=margin,
        eval_every=eval_every,
    )
    for model in models:
        _check_params(
            regularizer=model.regularizer,
            learning_rate=model.learning_rate,
            momentum=model.momentum,
            lr_decay=model.lr_decay,
            lr_decay_every_images=model.lr_decay_every_images,
            early_stopping=model.early_stopping,
        )
        _kind(model.regularizer)
    X_train, y_train, X_val, y_val, num_classes = _check_data(
        X_train, y_train, X_val, y_val, num_classes
    )
    if loss == "svm":
        losses_of = lambda S, y, k, rows=None: svm_losses(S, y, k, margin, rows=rows)  # noqa: E731
    else:
        losses_of = softmax_losses
    history_rows = (
        np.arange(len(y_train))
        if history_train_images is None
        else stratified_subset(y_train, history_train_images)
    )
    X_history, y_history = X_train[history_rows], y_train[history_rows]
    val_rows = (
        np.arange(len(y_val))
        if history_val_images is None
        else stratified_subset(y_val, history_val_images)
    )
    X_val_history, y_val_history = X_val[val_rows], y_val[val_rows]
    recording_at = sorted(set(progress_steps)) if progress_steps is not None else []
    if recording_at:
        objective_rows = (
            np.arange(len(y_train))
            if progress_train_images is None
            else stratified_subset(y_train, progress_train_images)
        )
        progress_data = (X_train[objective_rows], y_train[objective_rows])
        progress: list[list[dict[str, float]]] = [[] for _ in models]

    # The streams of train(): same seed, same initial W, minibatch order and dropout bits.
    init_rng, order_rng, dropout_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    n, dim = X_train.shape
    W0 = init_scale * init_rng.standard_normal((dim, num_classes), dtype=X_train.dtype)
    # Models that train alike share columns: early stopping trains as no regularizer does at
    # the same settings (it only chooses which evaluation's weights to return), and a model
    # given twice trains once. column_of[i]: model i's index among the models trained.
    trained: dict[Model, int] = {}
    column_of = [trained.setdefault(_as_trained(m), len(trained)) for m in models]
    stack = _Stack(list(trained), W0, min(batch_size, n))
    K = stack.k  # below, j numbers the models trained, in the stack's order
    slot = np.argsort(stack.order)  # index among the trained -> j
    keeps_best = np.zeros(K, dtype=bool)  # j -> some model of it stops early
    for i, model in enumerate(models):
        keeps_best[slot[column_of[i]]] |= model.early_stopping
    histories: list[list[dict[str, float]]] = [[] for _ in range(K)]
    diverged_epoch: list[int | None] = [None] * K
    frozen: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # model -> its last (W, b)
    best: dict[int, tuple[int, float, tuple[np.ndarray, np.ndarray]]] = {}  # early stopping:
    # model -> (epoch, val_acc, (W, b)) of its best evaluation so far
    decaying = [j for j, m in enumerate(stack.models) if m.lr_decay_every_images]
    images_seen = steps = 0
    any_dropout = any(dropout is not None for dropout, _ in stack.inputs)
    start_time = time.perf_counter()
    recording_time = 0.0  # spent on progress records: not training time

    def record() -> None:
        nonlocal recording_time
        began = time.perf_counter()
        seconds = (began - start_time - recording_time) / len(models)
        values = progress_record(stack, *progress_data, losses_of)
        val_acc = stack.accuracies(X_val_history, y_val_history)
        for j in np.flatnonzero(stack.active):
            row = {"step": steps, "images": images_seen, "seconds": seconds}
            row |= {key: float(values[key][j]) for key in ("objective", "noise_scale")}
            progress[stack.order[j]].append(row | {"val_acc": float(val_acc[j])})
        recording_time += time.perf_counter() - began

    if recording_at and recording_at[0] == 0:
        record()

    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            order = order_rng.permutation(n)
            batch_losses = []  # per step, (K,)
            steps_taken: dict[int, int] = {}  # model frozen this epoch -> its steps
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                if decaying:
                    _decay_rates(stack, decaying, images_seen)
                images_seen += len(batch)
                X_batch = stack.gather(X_train, batch)
                y_batch = y_train if len(batch) == n else y_train[batch]
                uniform = random_uint16(X_batch.shape, dropout_rng) if any_dropout else None
                X_inputs = stack.masked_inputs(X_batch, uniform)
                step_losses, dS = _losses_in_blocks(losses_of, stack.scores(X_inputs), y_batch, K)
                dWt = stack.weight_gradient(X_inputs, dS)
                db = dS.sum(axis=0)
                batch_losses.append(step_losses)  # the penalties join them in update()
                # train stops a model on a non-finite loss, before the update: freeze it.
                for j, weights in stack.update(dWt, db, step_losses).items():
                    frozen[j] = weights
                    diverged_epoch[j] = epoch
                    steps_taken[j] = len(batch_losses)
                steps += 1
                if steps in recording_at and stack.active.any():
                    record()
            # ... and a model whose weights the epoch's last step made non-finite.
            for j in np.flatnonzero(stack.active & ~stack.finite_models()):
                frozen[j] = stack.freeze(j)
                diverged_epoch[j] = epoch

            seconds = (time.perf_counter() - start_time) / len(models)
            # As train records: every eval_every-th epoch, the last, and a diverged one.
            ending = np.array([e == epoch for e in diverged_epoch])
            recording = stack.active & (epoch % eval_every == 0 or epoch == epochs)
            if recording.any() or ending.any():
                train_acc = _accuracies(stack, X_history, y_history, frozen, diverged_epoch, epoch)
                val_acc = _accuracies(
                    stack, X_val_history, y_val_history, frozen, diverged_epoch, epoch
                )
                step_losses = np.array(batch_losses)  # (steps, K)
            for j in np.flatnonzero(recording | ending):
                histories[j].append(
                    {
                        "epoch": epoch,
                        "train_loss": float(np.mean(step_losses[: steps_taken.get(j), j])),
                        "train_acc": train_acc[j],
                        "val_acc": val_acc[j],
                        "seconds": seconds,
                    }
                )
                if keeps_best[j] and val_acc[j] > best.get(j, (0, -1.0))[1]:
                    weights = frozen[j] if j in frozen else stack.model_weights(j)
                    best[j] = (epoch, val_acc[j], weights)
            if not stack.active.any():
                break

    # Final weights, accuracy on the whole training set, and the results in the given order.
    with np.errstate(all="ignore"):  # a diverged model may hold inf/nan weights
        final = progress_record(stack, X_train, y_train, losses_of, unbiased=False)
        noise = final["noise_scale"]
        noise[~stack.active] = np.nan  # a diverged model has no gradient to speak of
        full_train_acc = _accuracies(
            stack, X_train, y_train, frozen, diverged_epoch, None, live=final["accuracy"]
        )
        full_val_acc = (
            _accuracies(stack, X_val, y_val, frozen, diverged_epoch, None)
            if history_val_images is not None
            else None
        )
    results: list[TrainResult] = []
    final_train_acc: list[float] = []
    final_val_acc: list[float] = []
    for i, model in enumerate(models):
        j = slot[column_of[i]]
        history = [dict(row) for row in histories[j]]  # models sharing columns share no list
        last_val = history[-1]["val_acc"] if full_val_acc is None else full_val_acc[j]
        W, b = (a.copy() for a in frozen[j]) if j in frozen else stack.model_weights(j)
        returned_val, returned_train = last_val, full_train_acc[j]
        stopped_early = model.early_stopping and j in best
        if stopped_early:  # the best evaluation's weights, and their accuracy
            W, b = (a.copy() for a in best[j][2])
            with np.errstate(all="ignore"):
                returned_train = float(np.mean(predict(W, b, X_train) == y_train))
                returned_val = (
                    best[j][1]
                    if full_val_acc is None
                    else float(np.mean(predict(W, b, X_val) == y_val))
                )
        final_val_acc.append(returned_val)
        final_train_acc.append(returned_train)
        results.append(
            TrainResult(
                W=W,
                b=b,
                history=history,
                status=run_status(
                    diverged=diverged_epoch[j] is not None,
                    val_acc=last_val,
                    final_loss=history[-1]["train_loss"],
                    loss=loss,
                    num_classes=num_classes,
                    val_images=len(y_val),
                    margin=margin,
                ),
                diverged=diverged_epoch[j] is not None,
                diverged_epoch=diverged_epoch[j],
                epochs_run=history[-1]["epoch"],
                final_loss=history[-1]["train_loss"],
                seconds=history[-1]["seconds"],
                best_epoch=best[j][0] if stopped_early else None,
            )
        )
    return BundleResult(
        results,
        final_train_acc,
        len(history_rows),
        final_val_acc,
        len(val_rows),
        [[dict(row) for row in progress[u]] for u in column_of] if recording_at else None,
        len(progress_data[1]) if recording_at else None,
        [float(noise[slot[u]]) for u in column_of],
    )


PROGRESS_POINTS = 32
"""Progress records of a run: about this many, log-spaced in steps (and the start)."""


def progress_schedule(total_steps: int, points: int = PROGRESS_POINTS) -> list[int]:
    """Steps after which to record progress: 0 (the start), then at least `points` steps
    from 1 to the last, evenly spaced in log step (every step of a run shorter than that).
    Early on, log spacing asks for the same step several times; those merge, so the grid
    is made finer until `points` distinct steps remain.

    >>> progress_schedule(5)
    [0, 1, 2, 3, 4, 5]
    >>> len(progress_schedule(440)) - 1 >= PROGRESS_POINTS
    True
    """
    if total_steps <= points:
        return list(range(total_steps + 1))
    steps: set[int] = set()
    tried = points
    while len(steps) < points:
        steps = {round(float(s)) for s in np.geomspace(1, total_steps, tried)} | {total_steps}
        tried += 1
    return [0, *sorted(steps)]


def progress_record(
    stack: _Stack, X: np.ndarray, y: np.ndarray, losses_of, *, unbiased: bool = True
) -> dict[str, np.ndarray]:
    """Every model's training objective, gradient noise scale and accuracy on (X, y), each
    (K,), in one pass over X.

    The objective is the data loss plus the penalty. The noise scale is McCandlish et al.'s
    B_simple = tr(Σ) / |G|^2 of the data loss (:mod:`linbench.noise` derives it and computes
    it for one model): from the per-example score gradients r_i, |g_i|^2 = (|x_i|^2 + 1)
    |r_i|^2 and G = (X.T R, sum R) / N, so every model's comes from one wide product per
    block of rows. On a subset of N examples |G|^2 is biased up by tr(Σ) / N (the mean of N
    noisy gradients is noisy); `unbiased` takes that off, and where nothing is left (near an
    optimum the noise swamps G on N images) the estimate is inf. Over the whole training
    set (``unbiased=False``) it is the plain ratio, as :func:`linbench.noise.gradient_noise_scale`.
    """
    n, k, c = len(y), stack.k, stack.c
    loss_sum = np.zeros(k)
    g_sum = np.zeros((k * c, X.shape[1]))  # sum_i r_i x_i^T, per column
    db_sum = np.zeros(k * c)
    g2_sum = np.zeros(k)  # sum_i |g_i|^2
    correct = np.zeros(k, dtype=np.int64)
    for start in range(0, n, EVAL_ROWS):
        X_block, y_block = np.asarray(X[start : start + EVAL_ROWS]), y[start : start + EVAL_ROWS]
        rows = len(y_block)
        S = np.matmul(X_block, stack.Wt.T)
        S += stack.b
        # the accuracy comes with the scores (one pass over X serves both at the end of a run)
        correct += (S.reshape(rows, k, c).argmax(axis=2) == y_block[:, None]).sum(axis=0)
        losses, dS = losses_of(S, y_block, k)  # dS = R / rows
        loss_sum += losses * rows
        dS *= rows
        g_sum += np.matmul(dS.T, X_block)
        db_sum += dS.sum(axis=0, dtype=np.float64)
        x_norm2 = np.einsum("nd,nd->n", X_block, X_block, dtype=np.float64) + 1.0
        r_norm2 = np.square(dS, dtype=np.float64).reshape(rows, k, c).sum(axis=2)
        g2_sum += x_norm2 @ r_norm2
    g_norm2 = _per_model(np.einsum("cd,cd->c", g_sum, g_sum), c) + _per_model(db_sum**2, c)
    g_norm2 /= n**2
    tr_sigma = np.maximum(0.0, n / (n - 1) * (g2_sum / n - g_norm2))
    signal = g_norm2 - tr_sigma / n if unbiased else g_norm2
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = np.where(signal > 0, tr_sigma / signal, np.inf)
    noise[~np.isfinite(loss_sum)] = np.nan
    objective = loss_sum / n + stack.penalty_values()
    return {"objective": objective, "noise_scale": noise, "accuracy": correct / n}


def _decay_rates(stack: _Stack, decaying: list[int], images_seen: int) -> None:
    """Step decay of the models in `decaying` for a step after `images_seen` images, as
    train computes it; the (costly) per-row rates are rebuilt only when a rate changes."""
    changed = False
    for j in decaying:
        model = stack.models[j]
        rate = decayed_rate(
            model.learning_rate, model.lr_decay, model.lr_decay_every_images, images_seen
        )
        if stack.active[j] and stack.lr[j] != rate:
            stack.lr[j], changed = rate, True
    if changed:
        stack.set_lr_columns()


def _accuracies(
    stack: _Stack, X, y, frozen, diverged_epoch, epoch, live: np.ndarray | None = None
) -> dict[int, float]:
    """Accuracy on (X, y) of every model still training, and of those frozen in `epoch`
    (all frozen ones if `epoch` is None), from their last weights; `live`: the training
    models' accuracies, if already measured."""
    acc = {}
    if stack.active.any():
        live = stack.accuracies(X, y) if live is None else live
        acc = {int(j): float(live[j]) for j in np.flatnonzero(stack.active)}
    for j, (W, b) in frozen.items():
        if epoch is None or diverged_epoch[j] == epoch:
            acc[j] = float(np.mean(predict(W, b, X) == y))
    return acc


def predictions(result: TrainResult, X: np.ndarray) -> np.ndarray:
    """Predicted labels (N,) of one trained model, scored in chunks of :data:`EVAL_ROWS`."""
    with np.errstate(all="ignore"):  # a diverged model may hold inf/nan weights
        return np.concatenate(
            [predict(result.W, result.b, X[i : i + EVAL_ROWS]) for i in range(0, len(X), EVAL_ROWS)]
        )


def bundle_predictions(results: Sequence[TrainResult], X: np.ndarray) -> np.ndarray:
    """Predicted labels (K, N) of K trained models: their weights side by side, one wide
    product per block of :data:`EVAL_ROWS` rows (K thin ones cost 4-5x as much). Each
    model's scores are those of :func:`predictions` up to float rounding of the product."""
    c = results[0].W.shape[1]
    W_all = np.concatenate([r.W for r in results], axis=1)
    b_all = np.concatenate([r.b for r in results])
    out = np.empty((len(results), len(X)), dtype=np.int64)
    with np.errstate(all="ignore"):  # a diverged model may hold inf/nan weights
        for start in range(0, len(X), EVAL_ROWS):
            S = np.asarray(X[start : start + EVAL_ROWS]) @ W_all
            S += b_all
            out[:, start : start + len(S)] = S.reshape(len(S), len(results), c).argmax(axis=2).T
    return out
