"""How sure a number is: intervals for accuracies and paired tests between two models.

Plain numpy and ``math`` (no scipy), so a reader can check every formula here.

- :func:`wilson_interval`: the 95 % interval of one accuracy measured on ``n`` images.
- :func:`mcnemar_exact`: McNemar's exact test of two models on the same images: only the
  images one gets right and the other wrong (the *discordant* pairs) carry information,
  and under "no difference" each of them is a fair coin.
- :func:`paired_difference`: accuracy difference of two models on the same images, its
  95 % interval, and a verdict (better / worse / indistinguishable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
"""Two-sided 95 % quantile of the standard normal distribution."""
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
VERDICTS = ("better", "worse", "indistinguishable")


def wilson_interval(accuracy: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion `accuracy` observed on `n` trials.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is sensible near 0 and 1.
    NaN bounds when `accuracy` or `n` is missing or ``n <= 0``.

    >>> [round(x, 4) for x in wilson_interval(0.5, 100)]
    [0.4038, 0.5962]
    """
    if not (np.isfinite(accuracy) and np.isfinite(n)) or n <= 0:
        return math.nan, math.nan
    p, n = float(accuracy), float(n)
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # The interval always holds p (it is where a score test at p does not reject); clamp so
    # that rounding at p = 0 or 1 cannot put p a hair outside it.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair-coin trials.

    Twice the smaller tail, capped at 1 (the usual exact McNemar p-value). 1 for ``n = 0``.
    """
    if n == 0:
        return 1.0
    k = min(k, n - k)
    # log-space terms: n can be in the thousands, C(n, i) / 2**n underflows as floats.
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
        for i in range(k + 1)
    ]
    return min(1.0, 2.0 * math.fsum(math.exp(t) for t in log_terms))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test of two models' correctness on the same images.

    Args:
        correct_a, correct_b: (n,) bool, True where each model is right on image i.

    Returns:
        (a_only, b_only, p): images only A gets right, only B gets right, and the exact
        two-sided p-value of "A and B are equally accurate" (binomial on the discordant
        pairs, each a fair coin under that hypothesis).
    """
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError(
            f"paired predictions differ in shape: {correct_a.shape}, {correct_b.shape}"
        )
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    return a_only, b_only, binomial_two_sided_p(a_only, a_only + b_only)


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on the same test images (A minus B)."""

    difference: float
    """Accuracy of A minus accuracy of B (a fraction: 0.02 is two points)."""
    low: float
    high: float
    """95 % interval of the difference."""
    p_value: float
    """McNemar's exact p-value (one seed each), or the bootstrap's two-sided p (several)."""
    a_only: int
    b_only: int
    """Discordant images (summed over seeds when there are several)."""
    method: str
    """``McNemar exact`` or ``paired bootstrap over images``."""

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``indistinguishable`` at 95 %: is A better than B?"""
        if not self.p_value < ALPHA:
            return "indistinguishable"
        return "better" if self.difference > 0 else "worse"


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> Comparison:
    """Compare two models on the same images, paired image by image.

    Args:
        correct_a, correct_b: (seeds, n) or (n,) bool: per seed (training run) of each
            model, True where it classifies test image i correctly. Row k of A is paired
            with row k of B; both need the same number of rows.

    With one seed each: McNemar's exact test decides, and the interval of the difference
    is the paired Wald interval ``d ± 1.96 * sqrt(b + c - (b - c)² / n) / n`` (b, c: the
    discordant counts). With several seeds: each image's correctness is averaged over
    seeds, and a paired bootstrap over images (resampling whole images, so the pairing and
    the seeds' shared images are kept) gives the percentile interval and the p-value.
    """
    a = np.atleast_2d(np.asarray(correct_a, dtype=bool))
    b = np.atleast_2d(np.asarray(correct_b, dtype=bool))
    if a.shape != b.shape:
        raise ValueError(f"paired predictions differ in shape: {a.shape}, {b.shape}")
    seeds, n = a.shape
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    difference = (a_only - b_only) / (seeds * n)
    if seeds == 1:
        _, _, p = mcnemar_exact(a[0], b[0])
        spread = math.sqrt(max(a_only + b_only - (a_only - b_only) ** 2 / n, 0.0)) / n
        return Comparison(
            difference,
            difference - Z95 * spread,
            difference + Z95 * spread,
            p,
            a_only,
            b_only,
            "McNemar exact",
        )
    per_image = a.mean(axis=0) - b.mean(axis=0)
    rng = np.random.default_rng(seed)
    means = np.empty(BOOTSTRAP_RESAMPLES)
    chunk = 100  # resamples at a time: (chunk, n) indices stay small
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        idx = rng.integers(0, n, size=(min(chunk, BOOTSTRAP_RESAMPLES - start), n))
        means[start : start + len(idx)] = per_image[idx].mean(axis=1)
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    # Two-sided bootstrap p: how often the resampled difference lands on the other side of 0.
    tail = min(np.mean(means <= 0), np.mean(means >= 0))
    p = min(1.0, 2 * float(tail)) if a_only + b_only else 1.0
    return Comparison(
        float(difference),
        float(low),
        float(high),
        p,
        a_only,
        b_only,
        "paired bootstrap over images",
    )


def seed_spread(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (std NaN for one seed)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if values.size else math.nan
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return mean, std
