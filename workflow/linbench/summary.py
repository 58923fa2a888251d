"""``summary.md``: the study's answer first, then how sure each number is and where it came from.

Sections, in order: what each regularizer buys (best regularizer per feature set,
training-set size and loss, its tuned strength and rate, its gain over none with a 95 %
interval over seeds and test images, and one line per regularizer), how to read the
numbers, each regularizer against none (test, paired), the best setting overall, then the
learning rate x batch size sub-grid (best per loss and regularizer, chosen settings, the
grid of rates x batch sizes), and the run outcomes. Each question is answered inside the
one sub-grid designed for it (:data:`linbench.names.ANSWER_SUBGRID`, ``SWEEP_SUBGRID``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .compare import (
    BASELINE,
    Predictions,
    answer_rows,
    compare_to_baseline,
    fmt_points,
    read_predictions,
    regime_text,
    regularizer_sentences,
    varying_keys,
)
from .names import ANSWER_SUBGRID, STATUSES, SWEEP_SUBGRID
from .optimizer import optimizer_markdown, subgrid_progress
from .report import choose, group, settings_table, status_words, subgrid_name, subgrid_runs
from .stats import ALPHA
from .text import fmt_number, fmt_strength, markdown_table, strength_text

ACC_DIGITS = 4
MAX_LISTED = 30
"""Settings listed one by one under the run outcomes; the rest are counted."""
INTERVAL_DIGITS = 3
STATUS_MEANING = {
    "ok": "it learned: finished, beats chance, and ended below the all-zero model's loss",
    "diverged": "a loss, weight or bias became non-finite (overflow); training stopped there, "
    "the only early stop",
    "collapsed": "validation accuracy within 3 binomial standard errors of chance 1/C: "
    "|val acc − 1/C| ≤ 3·√((1/C)(1 − 1/C)/n_val)",
    "unstable": "finished, but its final training objective F kept more than half of its "
    "initial excess over the best objective any run of the same problem reached, F*: "
    "(F − F*)/(F0 − F*) > 1/2, one scale for both losses (a run alone, not knowing F*, "
    "applies the same test with the zero model's loss: ln C softmax, (C − 1) × margin SVM)",
}
"""What each status means, as ``linbench.outcome`` decides it (see ``names.STATUSES``)."""


def fmt_acc(
    mean: float,
    std: float = math.nan,
    seeds: int = 1,
    low: float = math.nan,
    high: float = math.nan,
) -> str:
    """``0.4123 [0.398, 0.426]``, ``0.4123 ± 0.0051 [0.398, 0.426]`` over several seeds.

    ``± std``: sample standard deviation over seeds; ``[low, high]``: 95 % Wilson interval
    over the split's images. ``n/a`` when the accuracy is missing.
    """
    if mean is None or not np.isfinite(mean):
        return "n/a"
    text = f"{mean:.{ACC_DIGITS}f}"
    if seeds > 1 and std is not None and np.isfinite(std):
        text += f" ± {std:.{ACC_DIGITS}f}"
    if low is not None and np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.{INTERVAL_DIGITS}f}, {high:.{INTERVAL_DIGITS}f}]"
    return text


def _acc(row: pd.Series, split: str) -> str:
    """A settings-table row's accuracy on `split` (train, val or test) with its intervals."""
    low = row.get(f"{split}_low", math.nan)
    high = row.get(f"{split}_high", math.nan)
    return fmt_acc(row[f"{split}_acc_mean"], row[f"{split}_acc_std"], row["seeds"], low, high)


def summarize(
    runs: pd.DataFrame,
    labels: np.ndarray | None = None,
    predictions: Predictions = read_predictions,
    comparisons: pd.DataFrame | None = None,
    progress: pd.DataFrame | None = None,
    optimizer: Mapping[str, object] | None = None,
) -> str:
    """The study's findings as Markdown.

    `labels` (n,) are the test labels; with them (and each cell's test predictions) every
    regularizer is compared with none, paired on the test images. `comparisons` (from
    :func:`answer_comparisons`) spares computing them again. `progress` (every run's
    progress records) and `optimizer` (config ``optimizer``: its sub-grid and targets) add
    the batch size and learning rate section.
    """
    answer_runs = subgrid_runs(runs, ANSWER_SUBGRID)
    sweep_runs = subgrid_runs(runs, SWEEP_SUBGRID)
    answer_settings = settings_table(answer_runs)
    sweep_settings = settings_table(sweep_runs)
    if comparisons is None:
        comparisons = compare_to_baseline(answer_runs, answer_settings, labels, predictions)
    parts = [
        _intro(runs),
        _answer(
            answer_settings, comparisons, labels is not None, subgrid_name(runs, ANSWER_SUBGRID)
        ),
        _how_to_read(answer_runs),
        _comparisons(comparisons),
        _best_overall(settings_table(runs)),
        _optimizer_section(progress, optimizer),
        _sweep_heading(subgrid_name(runs, SWEEP_SUBGRID)),
        _glance(sweep_settings),
        _chosen_table(sweep_settings),
        _lr_batch(sweep_settings),
        _outcomes(runs),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _optimizer_section(
    progress: pd.DataFrame | None, optimizer: Mapping[str, object] | None
) -> str:
    """Batch size and learning rate (:mod:`linbench.optimizer`), from the progress records
    of the sub-grid config ``optimizer.subgrid`` names; nothing without them."""
    if progress is None or not optimizer or not optimizer.get("subgrid"):
        return ""
    progress = subgrid_progress(progress, str(optimizer["subgrid"]))
    if progress.empty:
        return ""
    heading = f"## Batch size and learning rate (sub-grid `{optimizer['subgrid']}`)"
    return f"{heading}\n\n{optimizer_markdown(progress, list(optimizer['targets']))}"


def answer_comparisons(
    runs: pd.DataFrame, labels: np.ndarray | None, predictions: Predictions = read_predictions
) -> pd.DataFrame:
    """Each regularizer against none in the answer's sub-grid (``comparisons.csv``)."""
    answer_runs = subgrid_runs(runs, ANSWER_SUBGRID)
    return compare_to_baseline(answer_runs, settings_table(answer_runs), labels, predictions)


def _unique(values: Iterable[object]) -> list:
    return list(dict.fromkeys(values))


def _join(values: Iterable[object]) -> str:
    return ", ".join(
        fmt_number(v) if isinstance(v, int | float | np.number) else str(v) for v in values
    )


def _sizes(table: pd.DataFrame) -> list:
    return sorted(int(v) for v in _unique(table["train_size"].dropna()))


def _intro(runs: pd.DataFrame) -> str:
    sizes = _sizes(runs)
    size_text = f"training images {_join(sizes)}; " if sizes else ""
    grids = ""
    if "subgrids" in runs.columns:
        names = _unique(n for v in runs["subgrids"].astype(str) for n in v.split(";"))
        grids = f" in the sub-grids {_join(f'`{n}`' for n in names)}"
    return (
        "# linbench results\n\n"
        f"{len(runs)} cells{grids}: features {_join(_unique(runs['features']))}; {size_text}"
        f"loss {_join(_unique(runs['loss']))}; "
        f"regularizer {_join(_unique(runs['regularizer']))}; "
        f"batch size {_batches(runs)}; "
        f"learning rate {_join(sorted(_unique(runs['learning_rate'])))}; "
        f"seed {_join(sorted(_unique(runs['seed'])))}."
    )


def _batches(runs: pd.DataFrame) -> str:
    """The batch sizes, gradient descent's as ``all`` (its batch is the training set)."""
    full = runs["full_batch"] if "full_batch" in runs.columns else pd.Series(False, runs.index)
    sizes = _join(sorted(_unique(runs.loc[~full, "batch_size"])))
    return f"{sizes}, all (gradient descent)" if full.any() else sizes


def _regime_columns(keys: list[str]) -> list[str]:
    names = {"features": "features", "train_size": "training images", "loss": "loss"}
    return [names[k] for k in keys]


def _regime_values(row: pd.Series | dict, keys: list[str]) -> list[object]:
    return [
        ("?" if pd.isna(row[k]) else f"{int(row[k]):,}") if k == "train_size" else row[k]
        for k in keys
    ]


EDGE_MARK = " (edge"
EDGE_NOTE = (
    "(edge: …): the chosen strength is the strongest or weakest tried, or the chosen rate "
    "the lowest or highest, so the best may lie outside the range and the gain is a bound."
)


def _edge(text: str, edge: object) -> str:
    """`text` with the edge it sits at: ``λ = 100 (edge: strongest)``, ``0.01 (edge: high)``."""
    return text + (f" (edge: {edge})" if isinstance(edge, str) and edge else "")


def _answer(
    settings: pd.DataFrame, comparisons: pd.DataFrame, paired: bool, subgrid: str | None
) -> str:
    """The opening table and one line per regularizer."""
    keys = varying_keys(settings)
    seeds = sorted(_unique(int(n) for n in settings["seeds"])) if len(settings) else []
    source = f"the sub-grid `{subgrid}`, " if subgrid else ""
    counts = f"{seeds[0]} to {seeds[-1]}" if len(seeds) > 1 else _join(seeds)
    head = [
        "## What each regularizer buys",
        "",
        f"From {source}{counts} seeds per setting (column *seeds*; below all images each seed "
        "draws its own training subset). Per regime, the regularizer whose best setting "
        "(strength and learning rate tuned on **validation**, only `ok` settings) has the "
        "highest validation accuracy, and its gain over the tuned unregularized setting in "
        "**test** accuracy, paired seed by seed and image by image; the 95 % interval covers "
        "both the seeds and the test images. *better* / *worse*: the interval excludes 0. "
        "Figure: `figures/answer.png`.",
        "",
    ]
    rows = []
    for r in answer_rows(settings, comparisons):
        if r["regularizer"] is None:
            rows.append([*_regime_values(r, keys), "no ok setting", "", "", "", "", ""])
            continue
        reg = r["regularizer"]
        if reg == BASELINE:
            gain, verdict = "best is none", ""
        else:
            gain, verdict = fmt_points(r["gain"], r["low"], r["high"]), r["verdict"]
        rows.append(
            [
                *_regime_values(r, keys),
                reg,
                _edge(strength_text(reg, r["strength"]), r["strength_edge"]),
                _edge(fmt_number(r["learning_rate"]), r["lr_edge"]),
                int(r["seeds"]),
                gain,
                verdict,
            ]
        )
    headers = [*_regime_columns(keys), "best regularizer", "strength", "learning rate"]
    headers += ["seeds", "gain over none (test)", "verdict"]
    right = [False] * len(keys) + [False, False, True, True, True, False]
    out = [*head, markdown_table(headers, rows, right)]
    if any(EDGE_MARK in str(cell) for row in rows for cell in row):
        out += ["", EDGE_NOTE]
    sentences = regularizer_sentences(comparisons)
    if sentences:
        out += ["", *(f"- {s}" for s in sentences)]
    elif BASELINE not in set(settings["regularizer"]):
        out += ["", "The grid has no `none` regularizer, so nothing is compared with it."]
    if not paired:
        out += ["", "No test labels were given: gains are plain differences, not tested."]
    return "\n".join(out)


def _how_to_read(runs: pd.DataFrame) -> str:
    n_seeds = runs["seed"].nunique()
    spread = (
        f"`± s`: sample standard deviation over the {n_seeds} seeds; "
        if n_seeds > 1
        else "one seed per setting; "
    )
    statuses = "\n".join(f"- `{s}`: {STATUS_MEANING[s]}." for s in STATUSES)
    return (
        "## How to read\n\n"
        "A *setting* is a cell up to its seed. Settings are chosen by **validation accuracy** "
        "(mean over seeds); **test accuracy is reported, never used to choose**; only settings "
        f"whose every seed ended `ok` are chosen. Accuracies: {ACC_DIGITS} decimals; {spread}"
        "`[a, b]`: 95 % Wilson interval over the images of the split. Gains over `none` are "
        "in percentage points (pts) on the test images, over the seeds both settings have "
        "(each seed: the same training subset, initial weights and minibatches for both). "
        "With several seeds the interval is a t interval from the two-way table seeds x test "
        "images (Satterthwaite degrees of freedom), so it covers which training images were "
        "drawn and which test images were; with one seed it is McNemar's exact test and covers "
        f"the test images only (α = {ALPHA:g}). Early stopping chooses its stopping point on "
        "validation too, so its validation accuracy is the best of its evaluations: a head "
        "start when the best regularizer is chosen on validation, none in its test gain.\n\n"
        "Every run ends with one status (the first that applies after `ok`):\n\n" + statuses
    )


def _setting_words(row: pd.Series) -> str:
    size = "" if pd.isna(row.get("train_size", np.nan)) else f", {int(row['train_size']):,} images"
    return (
        f"{row['loss']} + {fmt_strength(row['regularizer'], row['strength'])}, "
        f"batch size {int(row['batch_size'])}, learning rate {fmt_number(row['learning_rate'])}"
        f"{size}"
    )


def _best_overall(settings: pd.DataFrame) -> str:
    best = choose(settings)
    if best.empty:
        return "## Best overall\n\nNo setting ended `ok` with every seed."
    row = best.iloc[0]
    feats = f" on {row['features']} features" if settings["features"].nunique() > 1 else ""
    return (
        "## Best overall\n\n"
        f"**{_setting_words(row)}**{feats}: "
        f"validation accuracy **{_acc(row, 'val')}**, test accuracy **{_acc(row, 'test')}**."
    )


def _comparisons(comparisons: pd.DataFrame) -> str:
    """Every regularizer against none: regime rows, one column per loss."""
    if comparisons.empty:
        return ""
    keys = [k for k in varying_keys(comparisons) if k != "loss"]
    losses = _unique(comparisons["loss"])
    rows = []
    for key, members in group(comparisons, [*keys, "regularizer"]):
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip([*keys, "regularizer"], key, strict=True))
        row = [*_regime_values(where, keys), key[-1]]
        for loss in losses:
            hit = members[members["loss"] == loss]
            row.append(_comparison_text(hit.iloc[0]) if len(hit) else "")
        rows.append(row)
    headers = [*_regime_columns(keys), "regularizer", *losses]
    return (
        "## Each regularizer against none (test, paired)\n\n"
        "Each regularizer's setting tuned on validation (strength, learning rate) against "
        "none's, on the same seeds and test images: gain [95 %], verdict, p.\n\n"
        + markdown_table(headers, rows, [False] * (len(keys) + 1) + [False] * len(losses))
    )


def _comparison_text(c: pd.Series) -> str:
    if pd.isna(c["strength"]) or not np.isfinite(c["difference"]):
        return str(c["verdict"])
    setting = _edge(fmt_strength(c["regularizer"], c["strength"]), c["strength_edge"])
    rate = _edge(f"lr {fmt_number(c['learning_rate'])}", c["lr_edge"])
    p = fmt_p(c["p_value"])
    return (
        f"{setting}, {rate}: {fmt_points(c['difference'], c['low'], c['high'])} "
        f"{c['verdict']}" + (f", p {p}" if p else "")
    )


def _sweep_heading(subgrid: str | None) -> str:
    source = f" (sub-grid `{subgrid}`)" if subgrid else ""
    return (
        f"## Learning rate and batch size{source}\n\n"
        "The sections below draw only from this sub-grid."
    )


def _glance(settings: pd.DataFrame) -> str:
    """Regularizer rows x loss columns: the chosen setting's validation / test accuracy."""
    keys = [k for k in varying_keys(settings) if k != "loss"]
    picked = choose(settings, [*keys, "loss", "regularizer"])
    losses = _unique(settings["loss"])
    headers = [*_regime_columns(keys), "regularizer"]
    for loss in losses:
        headers += [f"{loss} val", f"{loss} test"]
    rows = []
    for key, members in group(settings, [*keys, "regularizer"]):
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip([*keys, "regularizer"], key, strict=True))
        row = [*_regime_values(where, keys), key[-1]]
        for loss in losses:
            mask = picked["loss"] == loss
            for k, v in where.items():
                mask &= picked[k].isna() if pd.isna(v) else picked[k] == v
            hit = picked[mask]
            if hit.empty:
                tried = members[members["loss"] == loss]
                row += [_no_ok_words(tried) if len(tried) else "", ""]
                continue
            r = hit.iloc[0]
            row += [_acc(r, "val"), _acc(r, "test")]
        rows.append(row)
    right = [False] * (len(keys) + 1) + [True] * (2 * len(losses))
    return (
        "## Best per loss and regularizer\n\n"
        "Validation and test accuracy of the setting chosen by validation accuracy "
        "(strength, batch size and learning rate in the next table).\n\n"
        + markdown_table(headers, rows, right)
    )


def _no_ok_words(settings: pd.DataFrame) -> str:
    """Why a group of settings has none to choose: ``no ok setting (4 diverged, 2 unstable)``.

    Counts are cells (setting x seed) by status.
    """
    counts = [f"{int(settings[f'n_{s}'].sum())} {s}" for s in STATUSES if settings[f"n_{s}"].sum()]
    return f"no ok setting ({', '.join(counts)})"


def _chosen_table(settings: pd.DataFrame) -> str:
    keys = [k for k in varying_keys(settings) if k != "loss"]
    picked = choose(settings, [*keys, "loss", "regularizer"])
    picked = picked.sort_values("val_acc_mean", ascending=False, kind="stable")
    headers = [*_regime_columns(keys), "loss", "regularizer", "batch size", "learning rate"]
    headers += ["seeds", "train acc", "val acc", "test acc", "train s"]
    rows = [
        [
            *_regime_values(r, keys),
            r["loss"],
            fmt_strength(r["regularizer"], r["strength"]),
            int(r["batch_size"]),
            fmt_number(r["learning_rate"]),
            int(r["seeds"]),
            fmt_acc(r["train_acc_mean"], r["train_acc_std"], r["seeds"]),
            _acc(r, "val"),
            _acc(r, "test"),
            f"{r['train_seconds_mean']:.2f}",
        ]
        for _, r in picked.iterrows()
    ]
    right = [False] * (len(keys) + 2) + [True] * 7
    return (
        "## Chosen settings, best first\n\n"
        "`train s`: training time of one cell in seconds (mean over seeds).\n\n"
        + markdown_table(headers, rows, right)
    )


def _lr_batch(settings: pd.DataFrame) -> str:
    """Per regime: best validation accuracy at each learning rate x batch size."""
    out = [
        "## Learning rate × batch size",
        "",
        "Best validation accuracy over regularizers and strengths at each learning rate "
        "(rows) and batch size (columns), among `ok` settings; after `·`, the cells there "
        "(settings × seeds) that did not end `ok`, by status. Where no setting is `ok`: "
        "`no ok setting` and the count of every status.",
    ]
    keys = varying_keys(settings)
    batches = sorted(_unique(settings["batch_size"]))
    for regime, members in group(settings, keys):
        regime = regime if isinstance(regime, tuple) else (regime,)
        title = regime_text(dict(zip(keys, regime, strict=True)), keys)
        picked = choose(members, ["learning_rate", "batch_size"])
        best = {(r.learning_rate, r.batch_size): r for r in picked.itertuples()}
        rows = []
        for lr in sorted(_unique(members["learning_rate"])):
            row: list[object] = [fmt_number(lr)]
            for batch in batches:
                here = members[(members["learning_rate"] == lr) & (members["batch_size"] == batch)]
                if here.empty:
                    row.append("")
                    continue
                r = best.get((lr, batch))
                if r is None:
                    row.append(_no_ok_words(here))
                    continue
                text = fmt_acc(r.val_acc_mean, r.val_acc_std, r.seeds, r.val_low, r.val_high)
                bad = [f"{int(here[f'n_{s}'].sum())} {s}" for s in STATUSES[1:]]
                bad = [b for b in bad if not b.startswith("0 ")]
                row.append(text + (f" · {', '.join(bad)}" if bad else ""))
            rows.append(row)
        headers = ["learning rate", *(f"batch {b}" for b in batches)]
        out += ["", f"### {title}", "", markdown_table(headers, rows, [True] * len(headers))]
    return "\n".join(out)


def _outcomes(runs: pd.DataFrame) -> str:
    """How many cells ended in each status where, then every setting that was not all ok."""
    head = "## Run outcomes\n\n"
    totals = {s: int((runs["status"] == s).sum()) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in totals.items())
    if totals["ok"] == len(runs):
        return head + f"All {len(runs)} cells ended `ok`."
    out = [
        f"Of {len(runs)} cells: {summary}. Cells per status and learning rate (over the "
        "other settings and seeds):"
    ]
    # By loss and rate only: a row per regime would repeat the same story many times.
    keys = ["loss"]
    rates = sorted(_unique(runs.loc[runs["status"] != "ok", "learning_rate"]))
    rows = []
    for regime, members in group(runs, keys):
        regime = regime if isinstance(regime, tuple) else (regime,)
        where = dict(zip(keys, regime, strict=True))
        for lr in rates:
            here = members[members["learning_rate"] == lr]
            if here.empty:  # this regime has no cell at this rate
                continue
            counts = [int((here["status"] == s).sum()) for s in STATUSES]
            rows.append([*_regime_values(where, keys), fmt_number(lr), *counts])
    headers = [*_regime_columns(keys), "learning rate", *STATUSES]
    out += ["", markdown_table(headers, rows, [False] * len(keys) + [True] * 5)]
    settings = settings_table(runs)
    bad = settings[settings["n_ok"] < settings["seeds"]]
    skeys = [k for k in varying_keys(runs) if k != "loss"]
    headers = [*_regime_columns(skeys), "loss", "regularizer", "batch size", "learning rate"]
    headers.append("outcome")
    rows = [
        [
            *_regime_values(r, skeys),
            r["loss"],
            fmt_strength(r["regularizer"], r["strength"]),
            int(r["batch_size"]),
            fmt_number(r["learning_rate"]),
            status_words(r),
        ]
        for _, r in bad.head(MAX_LISTED).iterrows()
    ]
    more = len(bad) - len(rows)
    # A long list: folded on a code host, plain text in a terminal, cut to MAX_LISTED.
    out += [
        "",
        f"<details><summary>Settings not ok on every seed ({len(bad)})</summary>",
        "",
        markdown_table(headers, rows, [False] * (len(skeys) + 2) + [True, True, False]),
        *(["", f"… and {more} more: `runs.csv`, column `status`."] if more > 0 else []),
        "",
        "</details>",
    ]
    return head + "\n".join(out)


def fmt_p(p: float) -> str:
    """A p-value as a reader compares it with 0.05: ``0.0128``, ``< 0.0001``; ``""`` if none."""
    if pd.isna(p):
        return ""
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"
