"""Batch size against learning rate (issue 20): how far each run got towards the optimum
of its objective, how many steps and images it took, and what that says about batching.

The input is the workflow's progress table (``results/reports/progress.csv``): one row per
progress record of one training run, columns :data:`PROGRESS_COLUMNS`. A *problem* is one
objective function, :data:`PROBLEM` (features, training set, loss, regularizer, strength);
its runs (:data:`RUN`) differ in batch size, learning rate and seed. Full-batch gradient
descent is the batch size equal to the training set (``full_batch`` true).

Following benchopt (Moreau et al. 2022), a run's progress is its *suboptimality*
F - F*, F* the lowest objective any run of the problem reached (:func:`optimum`). A
target t in (0, 1) is *relative excess*: a run reaches it once F <= (1 + t) F*.

- :func:`time_to_targets`: per run and target, the steps, images and seconds to reach it
  (:func:`linbench.critical.steps_to_target`) and the gradient noise scale there.
- :func:`best_rates`: per problem, target and batch size, the learning rate that reached
  the target in the fewest steps, and whether it sits at the edge of the rates tried.
- :func:`critical_table`: per problem and target, the critical batch size of McCandlish
  et al. (2018) with seed-bootstrap intervals, the measured noise scale B_simple, the
  log-log slope of the best rate against the batch size, and the fastest batch in seconds.
- :func:`critical_sentences` and :func:`optimizer_markdown`: the summary's words.

numpy, pandas and scipy only (through :mod:`linbench.critical`), no plotting, so the
reports can import it cheaply; the figures are in :mod:`linbench.plots.optimizer`. Bad
input raises a ValueError naming the column, target, problem or run at fault;
:func:`read_progress` turns an unreadable CSV into a LinbenchError naming the file.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .critical import bootstrap_critical_batch, check_table, rate_scaling, steps_to_target
from .errors import LinbenchError
from .text import fmt_strength, markdown_table

PROBLEM = ("features", "train_size", "loss", "regularizer", "strength")
"""The columns that name one objective function."""
RUN = (*PROBLEM, "batch_size", "learning_rate", "seed")
"""The columns that name one training run (one cell)."""
PROGRESS_COLUMNS = (
    *RUN,
    "full_batch",
    "status",
    "step",
    "images",
    "seconds",
    "objective",
    "val_acc",
    "noise_scale",
)
"""The progress table's columns (``val_acc`` is carried, not used here)."""
NEEDED = tuple(c for c in PROGRESS_COLUMNS if c != "val_acc")
MEASURES = ("steps", "images", "seconds")
"""What :func:`time_to_targets` measures a run's progress in."""
MIN_BATCH_SIZES = 3
MIN_SEEDS = 2
STEP_CUT = 1.8
"""Doubling the batch below B_crit / 8 cuts the steps by at least this factor, and above
8 B_crit multiplies the images by at least it (see :func:`critical_sentences`)."""
ZONE = 8.0


# ----------------------------------------------------------------------------- checks


def _check_progress(progress: pd.DataFrame) -> None:
    check_table(progress, "progress table", NEEDED)
    # a missing key would silently drop its rows from every group
    blank = [c for c in (*RUN, "full_batch", "status", "step") if progress[c].isna().any()]
    if blank:
        raise ValueError(f"progress table has missing values in key column(s) {blank}")


def read_progress(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The progress table from its CSV, checked (a LinbenchError names the file)."""
    try:
        progress = pd.read_csv(path)
        _check_progress(progress)
    except (OSError, ValueError) as error:
        raise LinbenchError(f"{path}: cannot read the progress table ({error})") from None
    if progress["full_batch"].dtype != bool:
        bad = sorted(set(map(str, progress["full_batch"])) - {"True", "False"})
        if bad:
            raise LinbenchError(f"{path}: column full_batch holds {bad[:3]}, not True/False")
        progress["full_batch"] = progress["full_batch"].astype(str) == "True"
    return progress


def subgrid_progress(progress: pd.DataFrame, subgrid: str | None) -> pd.DataFrame:
    """The records of the cells in sub-grid `subgrid` (column ``subgrids``: the sub-grids a
    cell belongs to, ``;``-separated); all of them when `subgrid` is None or the table has
    no such column."""
    if not subgrid or "subgrids" not in progress.columns:
        return progress
    member = progress["subgrids"].fillna("").astype(str).str.split(";")
    return progress[member.map(lambda names: subgrid in names)]


def check_targets(targets: Iterable[float]) -> list[float]:
    """The targets as a sorted list of distinct floats, each in (0, 1), or a ValueError."""
    if isinstance(targets, numbers.Real):
        targets = [targets]
    out = []
    for t in targets:
        if not (isinstance(t, numbers.Real) and not isinstance(t, bool) and 0 < t < 1):
            raise ValueError(
                f"target {t!r} must be a relative excess over F* in (0, 1) "
                "(0.1: within 10 % of the best objective any run reached)"
            )
        out.append(float(t))
    if not out:
        raise ValueError("targets is empty: give at least one relative excess in (0, 1)")
    return sorted(set(out))


def problem_text(key: Sequence[object]) -> str:
    """``features=hog, train_size=45000, loss=svm, regularizer=l2, strength=0.001``."""
    return ", ".join(f"{name}={value}" for name, value in zip(PROBLEM, key, strict=True))


def target_text(target: float) -> str:
    """``within 10 % of F*``."""
    return f"within {100 * target:.3g} % of F*"


def batch_text(batch_size: float, full_batch: bool = False) -> str:
    """``128``, or ``all (45,000)`` for full-batch gradient descent."""
    size = f"{int(batch_size):,}"
    return f"all ({size})" if full_batch else size


def seconds_text(seconds: float) -> str:
    """``0.32 ms``, ``12 ms``, ``1.4 s``: a run's share of its bundle's wall time."""
    if seconds < 1:
        return f"{seconds * 1000:.2g} ms"
    return f"{seconds:.2g} s"


def about(value: float) -> str:
    """A number to two significant figures with thousands separators: ``2,600``, ``41``,
    ``0.53``; ``∞`` for infinity."""
    if not math.isfinite(value):
        return "∞" if value > 0 else "n/a"
    if value == 0:
        return "0"
    rounded = float(f"{value:.2g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 10 else f"{rounded:.2g}"


# ----------------------------------------------------------------------------- F*


def optimum(progress: pd.DataFrame) -> pd.DataFrame:
    """Per problem: ``F_star``, the lowest finite objective any record of any of its runs
    reached, and ``F_init``, the median objective at step 0 (the initial weights); with
    ``n_runs``. F_star is NaN for a problem whose every record is NaN."""
    _check_progress(progress)
    finite = progress["objective"].where(np.isfinite(progress["objective"].astype(float)))
    grouped = progress.assign(objective=finite).groupby(list(PROBLEM), sort=False)
    out = grouped["objective"].min().rename("F_star").to_frame()
    start = progress[progress["step"] == 0].groupby(list(PROBLEM), sort=False)["objective"]
    out["F_init"] = start.median()
    runs = progress[list(RUN)].drop_duplicates()
    out["n_runs"] = runs.groupby(list(PROBLEM), sort=False).size()
    return out.reset_index()


# ----------------------------------------------------------------------------- steps to targets


def time_to_targets(progress: pd.DataFrame, targets: Iterable[float]) -> pd.DataFrame:
    """One row per run and target: when the run first reached F <= (1 + target) F*.

    Columns: the :data:`RUN` keys, ``full_batch``, ``status`` (the run's final status),
    ``target`` (relative excess), ``F_star``, ``threshold`` = (1 + target) F_star;
    ``steps``, ``images``, ``seconds``: interpolated between the records around the
    crossing (:func:`linbench.critical.steps_to_target`; NaN if the run never got there);
    ``noise_scale``: B_simple at the first record at or below the threshold (NaN if
    never). A ValueError names a problem whose F* is <= 0 (a relative target needs F* > 0)
    and a run whose records cannot be read.
    """
    targets = check_targets(targets)
    _check_progress(progress)
    stars = optimum(progress).set_index(list(PROBLEM))["F_star"]
    bad = stars[stars <= 0]
    if len(bad):
        raise ValueError(
            f"problem ({problem_text(bad.index[0])}) has F* = {bad.iloc[0]:g} <= 0: targets "
            "are relative excess over F*, which needs a positive objective"
        )
    rows = []
    for key, run in progress.groupby(list(RUN), sort=False):
        run = run.sort_values("step")
        f_star = float(stars.loc[key[: len(PROBLEM)]])
        objective = run["objective"].to_numpy(dtype=float)
        noise = run["noise_scale"].to_numpy(dtype=float)
        base = dict(zip(RUN, key, strict=True)) | {
            "full_batch": bool(run["full_batch"].iloc[0]),
            "status": run["status"].iloc[-1],
            "F_star": f_star,
        }
        for t in targets:
            threshold = (1 + t) * f_star
            try:
                got = steps_to_target(run, threshold) if math.isfinite(f_star) else {}
            except ValueError as error:
                raise ValueError(
                    f"run ({problem_text(key[: len(PROBLEM)])}, "
                    f"batch_size={key[5]}, learning_rate={key[6]}, "
                    f"seed={key[7]}): {error}"
                ) from None
            below = np.flatnonzero(objective <= threshold)
            rows.append(
                base
                | {
                    "target": t,
                    "threshold": threshold,
                    "steps": got.get("step", math.nan),
                    "images": got.get("images", math.nan),
                    "seconds": got.get("seconds", math.nan),
                    "noise_scale": float(noise[below[0]]) if below.size else math.nan,
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- best rates


def best_rates(reached: pd.DataFrame) -> pd.DataFrame:
    """Per problem, target and batch size: the learning rate that reached the target in the
    fewest steps (mean over seeds), from :func:`time_to_targets`' table.

    A rate qualifies only if every seed run at it reached the target and none diverged (a
    run that crossed on its way to NaN is no recipe). Columns: the :data:`PROBLEM` keys,
    ``target``, ``batch_size``, ``full_batch``, ``learning_rate`` (the best one);
    ``steps``, ``images``, ``seconds`` (means over its seeds) with ``steps_std``,
    ``images_std``, ``seconds_std`` (standard deviation over seeds, 0 for one seed);
    ``noise_scale`` (median at the crossing); ``n_seeds``; ``n_rates`` (how many rates
    qualified); ``rate_edge``: ``"smallest"`` / ``"largest"`` when the best rate is the
    smallest / largest rate tried for the problem (the best may lie beyond), else ``""``.
    Batch sizes with no qualifying rate are absent.
    """
    keys = [*PROBLEM, "target", "batch_size", "learning_rate"]
    if reached.empty:
        return pd.DataFrame(columns=[*keys, "full_batch", *MEASURES, "n_seeds", "rate_edge"])
    groups = reached.groupby(keys, sort=False, dropna=False)
    per_rate = groups.agg(
        full_batch=("full_batch", "any"),
        steps=("steps", "mean"),
        images=("images", "mean"),
        seconds=("seconds", "mean"),
        steps_std=("steps", "std"),
        images_std=("images", "std"),
        seconds_std=("seconds", "std"),
        noise_scale=("noise_scale", lambda s: _median(s)),
        n_seeds=("seed", "nunique"),
        all_reached=("steps", lambda s: bool(np.isfinite(s.to_numpy(dtype=float)).all())),
        none_diverged=("status", lambda s: bool((s != "diverged").all())),
    ).reset_index()
    for m in MEASURES:
        per_rate[f"{m}_std"] = per_rate[f"{m}_std"].fillna(0.0)
    ok = per_rate[per_rate["all_reached"] & per_rate["none_diverged"]]
    ok = ok.sort_values([*keys[:-1], "steps", "learning_rate"])
    cell = [*PROBLEM, "target", "batch_size"]
    n_rates = ok.groupby(cell, sort=False).size().rename("n_rates")
    best = ok.drop_duplicates(cell).merge(n_rates.reset_index(), on=cell)
    span = reached.groupby(list(PROBLEM))["learning_rate"].agg(["min", "max"]).reset_index()
    best = best.merge(span, on=list(PROBLEM))
    best["rate_edge"] = np.where(
        best["learning_rate"] >= best["max"],
        "largest",
        np.where(best["learning_rate"] <= best["min"], "smallest", ""),
    )
    best = best.drop(columns=["min", "max", "all_reached", "none_diverged"])
    return best.sort_values([*PROBLEM, "target", "batch_size"]).reset_index(drop=True)


def _median(values: pd.Series) -> float:
    """Median of the values that are not NaN (inf counts: a noise scale can be infinite)."""
    v = values.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else math.nan


# ----------------------------------------------------------------------------- the table

CRITICAL_COLUMNS = (
    *PROBLEM,
    "target",
    "B_crit",
    "B_crit_low",
    "B_crit_high",
    "S_min",
    "S_min_low",
    "S_min_high",
    "E_min",
    "E_min_low",
    "E_min_high",
    "B_simple",
    "B_simple_batch",
    "slope",
    "slope_low",
    "slope_high",
    "slope_intercept",
    "linear_in_interval",
    "sqrt_in_interval",
    "fastest_batch",
    "fastest_full_batch",
    "fastest_seconds",
    "n_seeds",
    "n_batch_sizes",
    "n_edge_rates",
    "slope_points",
    "batch_min",
    "batch_max",
    "n_batch_sizes_run",
    "note",
)


def critical_table(
    progress: pd.DataFrame,
    targets: Iterable[float],
    *,
    n_resamples: int = 2000,
    reached: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per problem and target (columns :data:`CRITICAL_COLUMNS`); `reached`:
    :func:`time_to_targets` of the same `progress` and `targets`, if already computed.

    From the best rate per batch size (:func:`best_rates`), with the seeds every such batch
    size has:

    - ``B_crit``, ``S_min``, ``E_min`` with ``_low`` / ``_high`` 95 % intervals:
      :func:`linbench.critical.bootstrap_critical_batch` on the per-seed steps; NaN, with
      ``note`` saying why, when fewer than 3 batch sizes or 2 seeds reached the target.
    - ``B_simple``: the median noise scale at the crossing of the best-rate runs at the
      largest batch size that reached the target (``B_simple_batch``).
    - ``slope``, ``slope_low``, ``slope_high``, ``slope_intercept`` (log10 rate at batch 1),
      ``linear_in_interval``, ``sqrt_in_interval``: :func:`linbench.critical.rate_scaling`
      on the best rate per batch size (NaN below 3 batch sizes).
    - ``fastest_batch`` (``fastest_full_batch``): the batch size whose best-rate runs
      reached the target first in mean wall-clock seconds, ``fastest_seconds``.
    - ``n_seeds``, ``n_batch_sizes`` (behind the fit), ``n_edge_rates``: how many best rates
      sat at the edge of the rates tried; ``slope_points``: the points behind the slope.
    - ``batch_min``, ``batch_max``, ``n_batch_sizes_run``: the batch sizes the problem ran
      (whether they reached the target or not), to tell a B_crit inside them from one
      beyond.
    """
    if reached is None:
        reached = time_to_targets(progress, targets)
    best = best_rates(reached)
    rows = []
    for key, here in reached.groupby([*PROBLEM, "target"], sort=False):
        chosen = best.merge(pd.DataFrame([key], columns=[*PROBLEM, "target"]))
        sizes = here["batch_size"]
        ran = {
            "batch_min": sizes.min(),
            "batch_max": sizes.max(),
            "n_batch_sizes_run": sizes.nunique(),
        }
        rows.append(
            dict(zip([*PROBLEM, "target"], key, strict=True))
            | _row(reached, chosen, n_resamples)
            | ran
        )
    # problems in the progress table's order, targets from the deepest
    return pd.DataFrame(rows, columns=list(CRITICAL_COLUMNS))


def _row(reached: pd.DataFrame, chosen: pd.DataFrame, n_resamples: int) -> dict:
    """The numbers of one problem and target from its best rates `chosen`."""
    out: dict[str, object] = dict.fromkeys(CRITICAL_COLUMNS[len(PROBLEM) + 1 :], math.nan)
    out |= {"note": "", "n_seeds": 0, "n_batch_sizes": 0, "n_edge_rates": 0}
    out["linear_in_interval"] = out["sqrt_in_interval"] = False
    out["fastest_full_batch"] = False
    if chosen.empty:
        out["note"] = "no batch size reached the target at a rate where every seed did"
        return out
    out["n_edge_rates"] = int((chosen["rate_edge"] != "").sum())
    largest = chosen.loc[chosen["batch_size"].idxmax()]
    out["B_simple"], out["B_simple_batch"] = float(largest["noise_scale"]), largest["batch_size"]
    fastest = chosen.loc[chosen["seconds"].idxmin()]
    out["fastest_batch"], out["fastest_seconds"] = fastest["batch_size"], fastest["seconds"]
    out["fastest_full_batch"] = bool(fastest["full_batch"])

    # per-seed steps of the best rate at each batch size; a run already within the target
    # at step 0 took no steps and says nothing about batching (every rate ties there)
    runs = reached.merge(chosen[[*PROBLEM, "target", "batch_size", "learning_rate"]])
    at_start = set(runs.loc[runs["steps"] <= 0, "batch_size"])
    runs = runs[~runs["batch_size"].isin(at_start)]
    chosen = chosen[~chosen["batch_size"].isin(at_start)]
    notes = []
    if at_start:
        notes.append(
            f"{len(at_start)} batch size(s) left out: within the target at the initial weights"
        )
    by_size = [set(g["seed"]) for _, g in runs.groupby("batch_size")]
    seeds = set.intersection(*by_size) if by_size else set()
    runs = runs[runs["seed"].isin(seeds)]
    out["n_seeds"], out["n_batch_sizes"] = len(seeds), int(chosen["batch_size"].nunique())

    if out["n_batch_sizes"] < MIN_BATCH_SIZES:
        notes.append(
            f"only {out['n_batch_sizes']} batch size(s) reached the target "
            f"(a fit needs {MIN_BATCH_SIZES})"
        )
    else:
        scaling = rate_scaling(chosen[["batch_size", "learning_rate"]])
        out |= {k: scaling[k] for k in ("slope", "slope_low", "slope_high")}
        out["slope_intercept"] = scaling["intercept"]
        out["linear_in_interval"] = scaling["linear_in_interval"]
        out["sqrt_in_interval"] = scaling["sqrt_in_interval"]
        out["slope_points"] = scaling["n_points"]
        if len(seeds) < MIN_SEEDS:
            notes.append(f"only {len(seeds)} seed(s) at every batch size (a bootstrap needs 2)")
        else:
            fit = bootstrap_critical_batch(
                runs[["seed", "batch_size", "steps"]], n_resamples=n_resamples
            )
            out |= {k: v for k, v in fit.items() if k not in ("n_seeds", "n_batch_sizes")}
    out["note"] = "; ".join(notes)
    return out


# ----------------------------------------------------------------------------- words


def doubling_factors(b_crit: float, batch_size: float) -> tuple[float, float]:
    """How doubling the batch from `batch_size` changes the steps and the images under
    S(B) = S_min (1 + B_crit / B), E(B) = B S(B) = E_min (1 + B / B_crit):
    returns (S(B) / S(2B), E(2B) / E(B))."""
    x = b_crit / batch_size
    images = (1 + 2 / x) / (1 + 1 / x) if x > 0 else 2.0
    return (1 + x) / (1 + x / 2), images


def critical_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per loss from :func:`critical_table`, read off the fitted B_crit.

    With S(B) = S_min (1 + B_crit / B) and E(B) = B S(B) = E_min (1 + B / B_crit), doubling
    the batch from B divides the steps by S(B) / S(2B) = (1 + x) / (1 + x / 2), x =
    B_crit / B, which grows with x: at B = B_crit / 8 (x = 8) it is 9 / 5 = 1.8, below it
    more (towards 2). It multiplies the images by E(2B) / E(B) = (1 + 2y) / (1 + y),
    y = B / B_crit, growing with y: at B = 8 B_crit it is 17 / 9 = 1.89, above it more
    (1.8 is already reached at 4 B_crit; 8 keeps the two zones symmetric about B_crit on a
    log scale). So "below B_crit / 8 doubling the batch nearly halves the steps" and
    "above 8 B_crit it mostly doubles the images processed" both mean a factor >= 1.8.

    For each problem of a loss (features, regularizer), the deepest (smallest) target
    whose fit succeeded speaks: a fit *pinned down*, its B_crit and 95 % interval finite
    and above 0; a deeper target whose interval was not is named after it. With no pinned
    fit the deepest fit speaks and says so; a problem with no fit says "no fit" and why.
    A zone beyond the batch sizes run is marked as such.
    """
    sentences = []
    for loss, by_loss in table.groupby("loss", sort=False):
        clauses = []
        one_set = by_loss["features"].nunique() == 1
        problems = by_loss.groupby(
            ["features", "train_size", "regularizer", "strength"], sort=False
        )
        for (features, _, reg, strength), rows in problems:
            label = fmt_strength(reg, strength) if one_set else f"{features}, {reg}"
            # B_crit 0 (no gain from bigger batches) and inf (no saturation) are fits too
            fitted = rows[rows["B_crit"].notna()].sort_values("target")
            if fitted.empty:
                why = ", ".join(n for n in unique_notes(rows["note"]) if n) or "no data"
                clauses.append(f"{label}: no fit ({why})")
                continue
            pinned = fitted[[_pinned(r) for _, r in fitted.iterrows()]]
            if pinned.empty:
                clauses.append(_clause(label, fitted.iloc[0]))
                continue
            row = pinned.iloc[0]
            deeper = fitted[fitted["target"] < row["target"]]
            extra = ""
            if len(deeper):
                d = deeper.iloc[0]
                extra = f"; {target_text(float(d['target']))}: {_b_crit_text(d)}, not pinned down"
            clauses.append(_clause(label, row, extra))
        name = _loss_name(loss)
        head = f"{name} ({by_loss['features'].iloc[0]})" if one_set else name
        sentences.append(f"{head}: " + "; ".join(clauses) + ".")
    return sentences


def _pinned(row: pd.Series) -> bool:
    """B_crit and its interval finite and above 0: the batch sizes run located it."""
    values = [float(row[c]) for c in ("B_crit", "B_crit_low", "B_crit_high")]
    return all(0 < v < math.inf for v in values)


def unique_notes(notes: pd.Series) -> list[str]:
    return list(dict.fromkeys(str(n) for n in notes))


def _loss_name(loss: str) -> str:
    return {"svm": "SVM", "softmax": "Softmax"}.get(loss, str(loss))


def _b_crit_text(row: pd.Series) -> str:
    return f"B_crit {_interval(row['B_crit'], row['B_crit_low'], row['B_crit_high'])}"


def _clause(label: str, row: pd.Series, extra: str = "") -> str:
    b = float(row["B_crit"])
    source = f"{_b_crit_text(row)}, {int(row['n_seeds'])} seeds{extra}"
    head = f"{label}, {target_text(float(row['target']))}"
    if b == 0:
        return (
            f"{head}: bigger batches saved no steps, so doubling the batch doubles the "
            f"images ({source})"
        )
    if math.isinf(b):
        return (
            f"{head}: no saturation within the batch sizes run, doubling the batch saved "
            f"steps up to the largest, {int(row['batch_max']):,} ({source})"
        )
    if not _pinned(row):
        return f"{head}: B_crit not pinned down by the batch sizes run ({source})"
    low, high = b / ZONE, b * ZONE
    below = " (smaller than any batch run)" if low < row["batch_min"] else ""
    above = f" (beyond the largest batch run, {int(row['batch_max']):,})"
    above = above if high > row["batch_max"] else ""
    return (
        f"{head}: below a batch of about {about(low)}{below} doubling the batch nearly "
        f"halves the steps, above about {about(high)}{above} it mostly doubles the images "
        f"processed ({source})"
    )


def _interval(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{about(value)} [{about(low)}, {about(high)}]"


def _slope_text(row: pd.Series) -> str:
    if not math.isfinite(row["slope"]):
        return "–"
    if row["slope_high"] <= row["slope_low"]:
        # best rates on a grid can fall exactly on a line: no residual, no interval
        return f"{row['slope']:.2f} ({int(row['slope_points'])} points on a line: no interval)"
    which = {
        (True, True): "1 and 0.5",
        (True, False): "1",
        (False, True): "0.5",
        (False, False): "neither",
    }[(bool(row["linear_in_interval"]), bool(row["sqrt_in_interval"]))]
    return f"{row['slope']:.2f} [{row['slope_low']:.2f}, {row['slope_high']:.2f}] ({which})"


def optimizer_markdown(
    progress: pd.DataFrame, targets: Iterable[float], *, table: pd.DataFrame | None = None
) -> str:
    """The summary's optimizer section: one table (loss x features x regularizer x target),
    one sentence per loss, and how to read them. `table`: a :func:`critical_table` already
    computed from the same `progress` and `targets` (else computed here)."""
    targets = check_targets(targets)
    if table is None:
        table = critical_table(progress, targets)
    rows = []
    # the problems in the table's order, each from its loosest target to its deepest
    order = table.groupby(list(PROBLEM), sort=False).ngroup()
    ordered = table.assign(_problem=order).sort_values(
        ["_problem", "target"], ascending=[True, False], kind="stable"
    )
    for _, r in ordered.iterrows():
        fast = "–"
        if math.isfinite(float(r["fastest_seconds"])):
            fast = (
                f"{batch_text(r['fastest_batch'], bool(r['fastest_full_batch']))} "
                f"({seconds_text(r['fastest_seconds'])})"
            )
        simple = "–"
        if not math.isnan(float(r["B_simple"])):
            at = (
                "full batch"
                if r["B_simple_batch"] == r["train_size"]
                else f"batch {int(r['B_simple_batch']):,}"
            )
            simple = f"{about(float(r['B_simple']))} (at {at})"
        rows.append(
            [
                r["loss"],
                r["features"],
                fmt_strength(r["regularizer"], r["strength"]),
                f"{100 * r['target']:.3g} %",
                f"{int(r['n_batch_sizes'])} of {int(r['n_batch_sizes_run'])}",
                _interval(r["B_crit"], r["B_crit_low"], r["B_crit_high"]),
                simple,
                about(float(r["S_min"])) if math.isfinite(float(r["S_min"])) else "–",
                about(float(r["E_min"])) if math.isfinite(float(r["E_min"])) else "–",
                _slope_text(r),
                fast,
            ]
        )
    headers = [
        "loss",
        "features",
        "regularizer",
        "target",
        "batches reached",
        "B_crit [95 %]",
        "B_simple",
        "S_min",
        "E_min",
        "best-rate slope [95 %] (includes)",
        "first in wall time",
    ]
    lines = [
        markdown_table(headers, rows, right=[False] * 4 + [True] * 7),
        "",
        *(f"- {s}" for s in critical_sentences(table)),
        "",
        _how_to_read(progress, table, targets),
    ]
    return "\n".join(lines)


def _how_to_read(progress: pd.DataFrame, table: pd.DataFrame, targets: list[float]) -> str:
    seeds = progress["seed"].nunique()
    budget = progress.groupby(list(RUN))["images"].max().max()
    sizes = progress["train_size"].astype(float)
    epochs = budget / sizes.max() if sizes.max() > 0 else math.nan
    edges = int(table["n_edge_rates"].sum())
    edge_text = (
        f" {edges} of the best rates behind these rows sat at the edge of the rates tried "
        "(the best may lie beyond)."
        if edges
        else ""
    )
    return (
        "How to read: a target t is reached once the training objective F <= (1 + t) F*, "
        "F* the lowest objective any run of that problem reached "
        f"(targets {', '.join(f'{100 * t:.3g} %' for t in targets)}). "
        "Per batch size the best rate is the one whose runs reached the target in the fewest "
        "steps on average, every seed reaching it and none diverging (batches reached: the "
        "batch sizes with such a rate, of those run); B_crit, S_min (steps) and "
        "E_min (images) fit S(B) = S_min (1 + B_crit / B) to their per-seed steps, with 95 % "
        f"bootstrap intervals over seeds ({seeds} seeds); B_simple is the gradient noise scale "
        "measured where the largest batch's best runs reached the target; the slope is that of "
        "log best rate against log batch (1: linear scaling, 0.5: square root). "
        f"Budget: {budget:,.0f} images per run ({epochs:.3g} epochs); times are a run's share of "
        "its bundle's training wall time on this machine (a bundle trains its models in one "
        f"pass; 1 BLAS thread). B_simple is estimated on 5,000 training images with the "
        f"bias of the mean gradient's norm taken off.{edge_text}"
    )
