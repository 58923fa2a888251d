"""What became of a training run: ``ok``, ``diverged``, ``collapsed`` or ``unstable``.

A run's status is decided from the whole finished run, never from one minibatch:

=========  =============================================================================
status     when
=========  =============================================================================
diverged   a loss, a weight or the bias became non-finite (overflow); training stopped there
collapsed  its validation accuracy is within 3 binomial standard errors of chance (1/C):
           ``|val_acc - 1/C| <= 3 * sqrt((1/C) * (1 - 1/C) / n_val)``
unstable   it finished, but its last epoch's mean training objective is above the loss of
           the all-zero model (``ln C`` softmax, ``(C - 1) * margin`` SVM): SGD made the
           objective worse than doing nothing
ok         none of the above: it learned
=========  =============================================================================

When several apply, the first in the order diverged, collapsed, unstable wins. Only ``ok``
runs are ever chosen as best.

A run alone cannot know the best objective its problem allows, so that is the rule it
applies to itself (``metrics.json``). Once every run of a problem (one objective: feature
set, training set, loss, regularizer and strength) is in, the aggregate judges ``unstable``
on one relative scale for both losses (:func:`is_unstable_relative`): a run is unstable if
its final objective F kept more than :data:`UNSTABLE_SHARE` of the way from its initial
objective F0 (about the zero model's) to the best objective any run of its problem reached,
F*: ``(F - F*) / (F0 - F*) > 1/2``, *and* it ended above the best it had itself reached, by
more than :data:`LOST_GROUND` of that same scale. The second condition keeps a run with too
small a rate, still descending when its budget ran out, from being called unstable: it
crawls (it is ``ok``; the F - F* figure shows it). A run's own best is the lowest of its
progress records (``best_objective``): about 32 of them in a sub-grid with ``progress``, its
start and end only elsewhere (there "lost ground" means ending above its start). The
zero-model rule is the first condition with a share of 1.

Pure Python and numpy-free on purpose: the numpy core, the
reports and the tests all call :func:`run_status`.
"""

from __future__ import annotations

import math

from .names import STATUSES

COLLAPSE_STANDARD_ERRORS = 3.0
"""A validation accuracy this many binomial standard errors (or fewer) from 1/C is chance."""


def zero_model_loss(loss: str, num_classes: int, margin: float = 1.0) -> float:
    """The data loss of W = 0, b = 0: ``ln C`` (softmax), ``(C - 1) * margin`` (SVM)."""
    if loss == "softmax":
        return math.log(num_classes)
    if loss == "svm":
        return (num_classes - 1) * margin
    raise ValueError(f"outcome: unknown loss {loss!r}")


def chance_band(num_classes: int, val_images: int) -> float:
    """Half-width of the band around 1/C in which a validation accuracy counts as chance."""
    p = 1.0 / num_classes
    return COLLAPSE_STANDARD_ERRORS * math.sqrt(p * (1.0 - p) / val_images)


def is_collapsed(val_acc: float, num_classes: int, val_images: int) -> bool:
    """True if `val_acc` on `val_images` images cannot be told apart from guessing."""
    return abs(val_acc - 1.0 / num_classes) <= chance_band(num_classes, val_images)


def is_unstable(final_loss: float, loss: str, num_classes: int, margin: float = 1.0) -> bool:
    """True if the last epoch's mean training objective is worse than the all-zero model's."""
    return final_loss > zero_model_loss(loss, num_classes, margin)


UNSTABLE_SHARE = 0.5
"""A run that ends with more than this share of its problem's initial excess over the best
objective, (F - F*) / (F0 - F*), is unstable: it ended nearer where it started than the best."""


def excess_share(final: float, best: float, initial: float) -> float:
    """(F - F*) / (F0 - F*): 0 at the best objective any run reached, 1 at the start.
    NaN when the start is already the best (nothing to learn) or a value is missing."""
    gap = initial - best
    if not (gap > 0 and math.isfinite(gap)) or not math.isfinite(final):
        return math.nan
    return (final - best) / gap


LOST_GROUND = 0.1
"""...and ended this share of (F0 - F*) or more above the lowest objective it had reached."""


def is_unstable_relative(
    final: float,
    best: float,
    initial: float,
    own_best: float,
    share: float = UNSTABLE_SHARE,
    lost: float = LOST_GROUND,
) -> bool:
    """True if the final objective kept more than `share` of the initial excess over F*
    (`best`) and lies more than `lost` of it above the run's own best, `own_best`."""
    return (
        excess_share(final, best, initial) > share
        and excess_share(final, best, initial) - excess_share(own_best, best, initial) > lost
    )


def run_status(
    *,
    diverged: bool,
    val_acc: float,
    final_loss: float,
    loss: str,
    num_classes: int,
    val_images: int,
    margin: float = 1.0,
) -> str:
    """The status of a finished run (one of :data:`linbench.names.STATUSES`).

    `diverged`: the run stopped on a non-finite loss, weight or bias; `val_acc`: its final
    validation accuracy on `val_images` images; `final_loss`: the mean training objective
    (loss + penalty) of its last epoch.
    """
    if diverged:
        status = "diverged"
    elif is_collapsed(val_acc, num_classes, val_images):
        status = "collapsed"
    elif is_unstable(final_loss, loss, num_classes, margin):
        status = "unstable"
    else:
        status = "ok"
    assert status in STATUSES
    return status
