"""How sure a number is: intervals for accuracies and paired comparisons of two settings.

scipy.stats does the distributions (binomial, Student's t); what is written out here is the
design of the comparison, so a reader can check every formula.

- :func:`wilson_interval`: the 95 % interval of one accuracy measured on ``n`` images.
- :func:`mcnemar_exact`: McNemar's exact test of two models on the same images: only the
  images one gets right and the other wrong (the *discordant* pairs) carry information,
  and under "no difference" each of them is a fair coin.
- :func:`paired_difference`: the accuracy difference of two settings over their common
  seeds on the same test images, its 95 % interval and a verdict (better / worse /
  indistinguishable). With several seeds the interval covers both what a rerun would
  change (which training images each seed drew, and SGD's own noise) and which test
  images happened to be in the test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

Z95 = float(sps.norm.ppf(0.975))
"""Two-sided 95 % quantile of the standard normal distribution."""
ALPHA = 0.05
VERDICTS = ("better", "worse", "indistinguishable")
ONE_SEED = "McNemar exact, one seed (test images only)"
SEEDS_AND_IMAGES = "seeds and test images (two-way, t)"


def wilson_interval(accuracy: float, n: float) -> tuple[float, float]:
    """95 % Wilson score interval of a share `accuracy` observed on `n` images.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is sensible near 0 and 1.
    A mean over seeds is rounded to the nearest count of the `n` images (a shift of at most
    half an image). NaN bounds when `accuracy` or `n` is missing or ``n <= 0``.

    >>> [round(x, 4) for x in wilson_interval(0.5, 100)]
    [0.4038, 0.5962]
    """
    if not (np.isfinite(accuracy) and np.isfinite(n)) or n <= 0:
        return math.nan, math.nan
    p, count = float(accuracy), round(float(n))
    ci = sps.binomtest(min(count, max(0, round(p * count))), count).proportion_ci(
        confidence_level=1 - ALPHA, method="wilson"
    )
    # The interval holds the observed share; clamp so that rounding the count cannot put
    # p a hair outside it.
    return max(0.0, min(p, ci.low)), min(1.0, max(p, ci.high))


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
    if a_only + b_only == 0:
        return a_only, b_only, 1.0
    return a_only, b_only, float(sps.binomtest(a_only, a_only + b_only, 0.5).pvalue)


@dataclass(frozen=True)
class Comparison:
    """Setting A against setting B on the same test images and seeds (A minus B)."""

    difference: float
    """Accuracy of A minus accuracy of B, mean over the paired seeds (0.02 is two points)."""
    low: float
    high: float
    """95 % interval of the difference."""
    p_value: float
    """Two-sided p-value of "no difference" (McNemar with one seed, t with several)."""
    a_only: int
    b_only: int
    """Discordant images (summed over seeds when there are several)."""
    method: str
    """:data:`ONE_SEED` or :data:`SEEDS_AND_IMAGES`."""
    seeds: int = 1
    """Seeds paired (each seed's A and B trained on the same training images)."""
    seed_sd: float = math.nan
    """Standard deviation of the per-seed differences (NaN for one seed)."""
    df: float = math.nan
    """Degrees of freedom of the t interval (Satterthwaite; NaN for one seed)."""

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``indistinguishable`` at 95 %: is A better than B?"""
        if not self.p_value < ALPHA:
            return "indistinguishable"
        return "better" if self.difference > 0 else "worse"


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray) -> Comparison:
    """Compare two settings on the same test images, paired seed by seed and image by image.

    Args:
        correct_a, correct_b: (seeds, n) or (n,) bool: per seed of each setting, True
            where it classifies test image i correctly. Row k of A is paired with row k of
            B (the same seed: the same training subset, initial weights and minibatches).

    One seed: McNemar's exact test decides, and the interval is the paired Wald interval
    ``d ± 1.96 * sqrt(b + c - (b - c)² / n) / n`` (b, c: the discordant counts). It covers
    the test images only: a rerun with another training draw is not in it.

    Several seeds (K seeds x N images): the difference e[k, i] of the two settings'
    correctness varies with the seed (the training images it drew, SGD noise), with the
    image (every seed is tested on the same images, so an image's effect is shared by all
    seeds and does not show in the spread between seeds), and with the two together. The
    two-way random-effects model e = μ + seed_k + image_i + residual_ki gives the variance
    of the mean difference as (MS_seed + MS_image - MS_residual) / (K N), from the mean
    squares of the two-way table (each variance component truncated at zero), and a t
    interval with Satterthwaite's degrees of freedom: with few seeds and seeds that
    disagree, the interval widens as it should (``tests/test_stats.py`` checks its coverage
    on simulated studies whose true gain is known).
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
            ONE_SEED,
        )
    e = a.astype(np.float64) - b.astype(np.float64)
    per_seed, per_image = e.mean(axis=1), e.mean(axis=0)
    ms_seed = n * np.sum((per_seed - difference) ** 2) / (seeds - 1)
    ms_image = seeds * np.sum((per_image - difference) ** 2) / (n - 1)
    ss_residual = np.sum((e - difference) ** 2) - (seeds - 1) * ms_seed - (n - 1) * ms_image
    ms_residual = max(ss_residual, 0.0) / ((seeds - 1) * (n - 1))
    # Each component truncated at zero: a mean square below the residual's is noise.
    ms_seed, ms_image = max(ms_seed, ms_residual), max(ms_image, ms_residual)
    combined = ms_seed + ms_image - ms_residual
    seed_sd = float(per_seed.std(ddof=1))
    if combined <= 0:  # the two settings agree on every image of every seed
        return Comparison(
            difference,
            difference,
            difference,
            1.0,
            a_only,
            b_only,
            SEEDS_AND_IMAGES,
            seeds,
            seed_sd,
            math.inf,
        )
    se = math.sqrt(combined / (seeds * n))
    df = combined**2 / (
        ms_seed**2 / (seeds - 1) + ms_image**2 / (n - 1) + ms_residual**2 / ((seeds - 1) * (n - 1))
    )
    half = float(sps.t.ppf(1 - ALPHA / 2, df)) * se
    p = float(2 * sps.t.sf(abs(difference) / se, df))
    return Comparison(
        float(difference),
        float(difference - half),
        float(difference + half),
        p,
        a_only,
        b_only,
        SEEDS_AND_IMAGES,
        seeds,
        seed_sd,
        float(df),
    )


def seed_spread(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (std NaN for one seed)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if values.size else math.nan
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return mean, std
