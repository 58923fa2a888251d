"""Regularizers for linear classifiers, behind one small interface.

Every regularizer hooks into one (or none) of three places of an SGD step on the weights
W (D, C), and does nothing in the other two:

- ``penalty(W) -> (value, dW)``: a term added to the loss and its gradient
  (``l1``, ``l2``, ``elastic_net``);
- ``transform_batch(X, rng) -> X``: a random change of the training minibatch (``dropout``);
- ``project(W) -> W``: a constraint enforced after each update (``max_norm``).

The bias b is never regularized: it only shifts the scores, so shrinking it buys nothing.
L1 is the sum of absolute values and L2 the sum of squares (some course notes swap the
names); L1 drives many weights to zero (sparsity), L2 makes all of them small.

=============  =============================  ==========================================
name           class                          what ``strength`` means
=============  =============================  ==========================================
none           :class:`NoRegularizer`         must be 0
l1             :class:`L1`                    lambda in  lambda * sum |W|
l2             :class:`L2`                    lambda in  lambda * sum W^2
elastic_net    :class:`ElasticNet`            lambda in  lambda * (beta * sum W^2 + sum |W|)
max_norm       :class:`MaxNorm`               radius c:  ||W[:, j]||_2 <= c for every class j
dropout        :class:`Dropout`               keep probability p of each input feature
early_stopping :class:`EarlyStopping`         must be 0 (the trainer's ``early_stopping``)
=============  =============================  ==========================================

Build one by name with :func:`make_regularizer`; every class checks its parameters when it
is constructed and raises a one-line ValueError naming the bad one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Regularizer:
    """Base class: no penalty, no batch transform, no projection. Subclasses override one.

    ``strength`` is the one number that sets how strong the regularizer is; ``valid_strength``
    says which values make sense (checked on construction).
    """

    strength: float = 0.0

    name: ClassVar[str] = "none"
    valid_strength: ClassVar[tuple[str, Callable[[float], bool]]] = ("0", lambda s: s == 0)

    def __post_init__(self) -> None:
        rule, is_valid = self.valid_strength
        if not (_is_finite_number(self.strength) and is_valid(self.strength)):
            raise ValueError(
                f"regularizer {self.name!r}: strength must be {rule}, got {self.strength!r}"
            )

    def penalty(self, W: np.ndarray) -> tuple[float, np.ndarray | float]:
        """The penalty added to the loss and its gradient w.r.t. W (shape (D, C)).

        Without a penalty the gradient is the scalar 0.0, which adds nothing to dW.
        """
        return 0.0, 0.0

    def transform_batch(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The training minibatch X (N, D) as the model should see it; X itself is not changed."""
        return X

    def project(self, W: np.ndarray) -> np.ndarray:
        """Enforce a constraint on W (D, C) after an update, in place; returns W."""
        return W


@dataclass(frozen=True)
class NoRegularizer(Regularizer):
    """No regularization: plain empirical risk minimization."""


@dataclass(frozen=True)
class EarlyStopping(NoRegularizer):
    """No penalty, no transform, no projection: early stopping acts in the trainer, which
    returns the weights of the epoch with the best validation accuracy (``train(...,
    early_stopping=True)``); this name lets a grid cell ask for it."""

    name: ClassVar[str] = "early_stopping"


@dataclass(frozen=True)
class L1(Regularizer):
    """L1 penalty ``lambda * sum_ij |W_ij|`` (lasso): pushes individual weights to zero.

    Its gradient ``lambda * sign(W)`` has the same size for small and large weights, so it
    keeps pulling small weights all the way to 0: L1 makes W sparse. (Plain SGD uses this
    subgradient, so weights end up jittering within about ``lr * lambda`` of 0 rather than
    at exactly 0: they count as "near zero" only if lr * lambda is below that threshold.)
    """

    name: ClassVar[str] = "l1"
    valid_strength = (">= 0", lambda s: s >= 0)

    def penalty(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        sign = np.sign(W)
        value = self.strength * float(np.vdot(sign, W))  # sum |w| = sum sign(w) * w
        sign *= self.strength
        return value, sign


@dataclass(frozen=True)
class L2(Regularizer):
    """L2 penalty ``lambda * sum_ij W_ij^2`` (squared L2 norm, ridge, weight decay).

    Its gradient ``2 * lambda * W`` is proportional to the weight, so it shrinks large
    weights hard and small ones hardly at all: L2 makes W small and spread out, not sparse.
    """

    name: ClassVar[str] = "l2"
    valid_strength = (">= 0", lambda s: s >= 0)

    def penalty(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        value = self.strength * float(np.vdot(W, W))  # vdot: sum of squares without a temporary
        return value, (2 * self.strength) * W


@dataclass(frozen=True)
class ElasticNet(Regularizer):
    """Elastic net ``lambda * (beta * sum_ij W_ij^2 + sum_ij |W_ij|)``: L1 plus beta times L2.

    ``beta`` (default 1) weighs the L2 part against the L1 part; beta = 0 gives plain L1.
    """

    beta: float = 1.0

    name: ClassVar[str] = "elastic_net"
    valid_strength = (">= 0", lambda s: s >= 0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (_is_finite_number(self.beta) and self.beta >= 0):
            raise ValueError(f"regularizer 'elastic_net': beta must be >= 0, got {self.beta!r}")

    def penalty(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        sign = np.sign(W)
        value = self.strength * (self.beta * float(np.vdot(W, W)) + float(np.vdot(sign, W)))
        grad = (2 * self.strength * self.beta) * W
        sign *= self.strength
        grad += sign
        return value, grad


@dataclass(frozen=True)
class MaxNorm(Regularizer):
    """Max-norm constraint: each class's weight column stays in the L2 ball of radius c.

    No penalty; instead, after every update each column ``W[:, j]`` longer than ``c`` (the
    ``strength``) is scaled back to length c, so W stays bounded whatever the learning rate.
    The bias b is not bounded: at a large learning rate it can run away while W cannot keep
    up, and the model then predicts the same few classes for every input. Such a model's
    loss stays finite, yet it has *collapsed* to chance accuracy (:mod:`linbench.outcome`).
    """

    name: ClassVar[str] = "max_norm"
    valid_strength = ("a radius > 0", lambda c: c > 0)

    def project(self, W: np.ndarray) -> np.ndarray:
        col_norms = np.sqrt(np.einsum("dc,dc->c", W, W))
        # c / max(norm, c) is 1 for columns inside the ball and c / norm for the others.
        W *= self.strength / np.maximum(col_norms, self.strength)
        return W


@dataclass(frozen=True)
class Dropout(Regularizer):
    """Inverted dropout on the input features, during training only.

    Each entry of the training minibatch is kept with probability p (the ``strength``) and
    zeroed otherwise; kept entries are scaled by 1/p so that the expected input, and hence
    the expected score, is unchanged. Evaluation uses the plain inputs, no rescaling needed.
    p = 1 keeps everything (no dropout).
    """

    name: ClassVar[str] = "dropout"
    valid_strength = ("a keep probability in (0, 1]", lambda p: 0 < p <= 1)

    def transform_batch(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply_mask(X, random_uint16(X.shape, rng))

    def apply_mask(self, X: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """X (N, D) with the entries whose uniform 16-bit integer is >= p * 2^16 zeroed and
        the others scaled by 1/p. One `uniform` draw serves every keep probability p (the
        bundle trainer uses that: its dropout models see exactly the masks of :func:`train`).
        """
        # Textbook: keep = rng.random(X.shape) < p. Random bits are ~4x cheaper to draw than
        # floats, so we compare uniform 16-bit integers u with p * 2^16 (p rounded to a
        # multiple of 2^-16).
        threshold = max(1, round(self.strength * 2**16))
        out = X * (2**16 / threshold)  # 1 / (the keep probability), so E[out] = X
        out *= uniform < threshold
        return out


def random_uint16(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform 16-bit integers of the given shape: full-range 64-bit draws, each read as four."""
    size = math.prod(shape)
    words = rng.integers(0, 2**64 - 1, size // 4 + 1, dtype=np.uint64, endpoint=True)
    return words.view(np.uint16)[:size].reshape(shape)


REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.name: cls for cls in (NoRegularizer, L1, L2, ElasticNet, MaxNorm, Dropout, EarlyStopping)
}
"""Regularizer classes by the names used in the config (``grid.regularizer``)."""


def make_regularizer(name: str, strength: float, *, beta: float = 1.0) -> Regularizer:
    """The regularizer called `name` with the given `strength` (see the module table).

    `beta` is only used by ``elastic_net`` (weight of its L2 part). Raises ValueError for an
    unknown name or an invalid strength.
    """
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {name!r}; choose one of: {', '.join(REGULARIZERS)}")
    if name == "elastic_net":
        return ElasticNet(strength, beta=beta)
    return REGULARIZERS[name](strength)


def _is_finite_number(value: object) -> bool:
    """True for a finite real number (bool excluded: ``True`` is no strength)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
