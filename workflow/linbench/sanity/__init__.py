"""Sanity checks on the real features, each one able to fail (and tested failing).

The habits every course on linear classifiers insists on, run before trusting a grid,
plus a check of what each regularizer does in an SGD step:

========================  ===========================================  =====================
check                     catches                                      module
========================  ===========================================  =====================
initial loss              a loss wrong at W = 0, features too large    :mod:`.loss_checks`
large scores              exp overflow (softmax without the max shift) :mod:`.loss_checks`
gradient                  an analytic gradient (loss, penalty) that    :mod:`.gradient`
                          disagrees with finite differences
overfits a small slice    training that cannot fit 200 rows            :mod:`.loss_checks`
labels matter             labels that do not reach training (shifted,  :mod:`.loss_checks`
                          permuted, ignored)
acts only through its     a regularizer acting where its hook          :mod:`.regularizer_checks`
hook                      (``names.REGULARIZERS[...].hook``) says not
transform keeps the mean  dropout scaling kept entries by p, not 1/p   :mod:`.regularizer_checks`
keep share                dropout keeping the wrong share              :mod:`.regularizer_checks`
projection                a max-norm projection that does not project  :mod:`.regularizer_checks`
========================  ===========================================  =====================

Which regularizer checks run is decided by the regularizer's hook, never by its name: a
new regularizer gets the checks of its hook, or a FAIL row saying its hook has none.
Every check takes the implementation under test as a parameter (a loss function, a
training function, a regularizer), so tests pass broken doubles. :func:`run_checks` runs
them all; :mod:`.table` writes ``sanity.csv`` and ``sanity.md``. Imports numpy and the
numpy core only.
"""

from .gradient import (
    GRADIENT_TOLERANCE,
    STEP,
    check_gradient,
    hinge_kinks,
    noise_floor,
    penalty_kinks,
    relative_error,
)
from .loss_checks import (
    INITIAL_LOSS_TOLERANCE,
    OVERFIT_ACCURACY,
    SCORE_SHIFT,
    WIDE_MARGIN,
    check_initial_loss,
    check_labels,
    check_large_scores,
    expected_initial_loss,
)
from .regularizer_checks import (
    MAX_Z,
    check_hooks,
    check_projection,
    check_transform,
    no_check,
)
from .result import CSV_COLUMNS, CheckResult
from .run import HOOK_CHECKS, SampleSizes, run_checks, sample_rows
from .table import banner, gate_verdict, read_statuses, to_csv, to_markdown

__all__ = [
    "CSV_COLUMNS",
    "GRADIENT_TOLERANCE",
    "HOOK_CHECKS",
    "INITIAL_LOSS_TOLERANCE",
    "MAX_Z",
    "OVERFIT_ACCURACY",
    "SCORE_SHIFT",
    "STEP",
    "WIDE_MARGIN",
    "CheckResult",
    "SampleSizes",
    "banner",
    "check_gradient",
    "check_hooks",
    "check_initial_loss",
    "check_labels",
    "check_large_scores",
    "check_projection",
    "check_transform",
    "expected_initial_loss",
    "gate_verdict",
    "hinge_kinks",
    "no_check",
    "noise_floor",
    "penalty_kinks",
    "read_statuses",
    "relative_error",
    "run_checks",
    "sample_rows",
    "to_csv",
    "to_markdown",
]
