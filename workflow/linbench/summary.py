"""``summary.md``: the study's answer first, then how sure each number is and where it came from.

Sections, in order: what each regularizer buys (best regularizer per feature set,
training-set size and loss, its gain over none with a 95 % interval, and one sentence
per regularizer), how to read the numbers, the best setting overall, each regularizer
against none on test (paired), the best per loss and regularizer, the chosen settings,
learning rate x batch size, and the run outcomes (statuses).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
from .names import STATUSES
from .report import choose, group, settings_table, status_words
from .stats import ALPHA
from .text import fmt_number, fmt_strength, markdown_table, strength_text

ACC_DIGITS = 4
INTERVAL_DIGITS = 3
STATUS_MEANING = {
    "ok": "it learned: finished, beats chance, and ended below the all-zero model's loss",
    "diverged": "a loss, weight or bias became non-finite (overflow); training stopped there, "
    "the only early stop",
    "collapsed": "validation accuracy within 3 binomial standard errors of chance 1/C: "
    "|val acc − 1/C| ≤ 3·√((1/C)(1 − 1/C)/n_val)",
    "unstable": "finished, but the last epoch's mean training objective is above the "
    "all-zero model's loss (ln C for softmax, (C − 1) × margin for the SVM)",
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
) -> str:
    """The study's findings as Markdown.

    `labels` (n,) are the test labels; with them (and each cell's test predictions) every
    regularizer is compared with none, paired on the test images.
    """
    settings = settings_table(runs)
    comparisons = compare_to_baseline(runs, settings, labels, predictions)
    parts = [
        _intro(runs),
        _answer(settings, comparisons, labels is not None),
        _how_to_read(runs),
        _best_overall(settings),
        _comparisons(comparisons),
        _glance(settings),
        _chosen_table(settings),
        _lr_batch(settings),
        _outcomes(runs),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


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
    return (
        "# linbench results\n\n"
        f"{len(runs)} cells: features {_join(_unique(runs['features']))}; {size_text}"
        f"loss {_join(_unique(runs['loss']))}; "
        f"regularizer {_join(_unique(runs['regularizer']))}; "
        f"batch size {_join(sorted(_unique(runs['batch_size'])))}; "
        f"learning rate {_join(sorted(_unique(runs['learning_rate'])))}; "
        f"seed {_join(sorted(_unique(runs['seed'])))}; "
        f"{_join(_unique(runs['epochs']))} epochs."
    )


def _regime_columns(keys: list[str]) -> list[str]:
    names = {"features": "features", "train_size": "training images", "loss": "loss"}
    return [names[k] for k in keys]


def _regime_values(row: pd.Series | dict, keys: list[str]) -> list[object]:
    return [
        ("?" if pd.isna(row[k]) else f"{int(row[k]):,}") if k == "train_size" else row[k]
        for k in keys
    ]


def _answer(settings: pd.DataFrame, comparisons: pd.DataFrame, paired: bool) -> str:
    """The opening table and one sentence per regularizer."""
    keys = varying_keys(settings)
    head = [
        "## What each regularizer buys",
        "",
        "Per regime, the regularizer whose best setting has the highest validation accuracy "
        "(only `ok` settings), its strength, and its gain over the best unregularized setting "
        "in **test** accuracy, paired image by image, with its 95 % interval: *better* or "
        "*worse* when the paired test rejects no difference at 95 %, else *indistinguishable*.",
        "",
    ]
    rows = []
    for r in answer_rows(settings, comparisons):
        if r["regularizer"] is None:
            rows.append([*_regime_values(r, keys), "no ok setting", "", "", ""])
            continue
        reg = r["regularizer"]
        if reg == BASELINE:
            gain, verdict = "best is none", ""
        else:
            gain, verdict = fmt_points(r["gain"], r["low"], r["high"]), r["verdict"]
        rows.append(
            [*_regime_values(r, keys), reg, strength_text(reg, r["strength"]), gain, verdict]
        )
    headers = [*_regime_columns(keys), "best regularizer", "strength", "gain over none (test)"]
    headers.append("verdict")
    right = [False] * len(keys) + [False, False, True, False]
    out = [*head, markdown_table(headers, rows, right)]
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
        "A *setting* is a cell up to its seed (the training-set size is part of it). Settings "
        "are chosen by **validation accuracy** (mean over seeds); **test accuracy is reported, "
        "never used to choose**. Only settings whose every seed ended `ok` are chosen. "
        f"Accuracies: {ACC_DIGITS} decimals; {spread}"
        "`[a, b]`: 95 % Wilson interval over the images of the split. "
        "Differences to `none` are in percentage points (pts) on the test images: with one "
        "seed, McNemar's exact test on the images only one of the two models gets right, with "
        "a paired Wald interval; with several seeds, each image's correctness is averaged over "
        f"seeds and a paired bootstrap over images gives the interval (α = {ALPHA:g}).\n\n"
        "Every run ends with one status (when several apply, the first in this order wins "
        "after `ok`):\n\n" + statuses + "\n\nWhere seeds of a setting disagree the tables say "
        "so: `1 of 3 seeds diverged`."
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
    if comparisons.empty:
        return ""
    keys = varying_keys(comparisons)
    rows = []
    for _, c in comparisons.iterrows():
        if pd.isna(c["strength"]):
            rows.append([*_regime_values(c, keys), c["regularizer"], "", "", "", "", c["verdict"]])
            continue
        rows.append(
            [
                *_regime_values(c, keys),
                fmt_strength(c["regularizer"], c["strength"]),
                f"{c['test_acc_mean']:.{ACC_DIGITS}f}",
                f"{c['baseline_test']:.{ACC_DIGITS}f}",
                fmt_points(c["difference"], c["low"], c["high"]),
                fmt_p(c["p_value"]),
                c["verdict"],
            ]
        )
    headers = [*_regime_columns(keys), "regularizer", "test acc", "none test acc"]
    headers += ["difference [95 %]", "p", "verdict"]
    right = [False] * (len(keys) + 1) + [True] * 4 + [False]
    return (
        "## Each regularizer against none (test, paired)\n\n"
        "Each regularizer's setting chosen on validation against none's, on the same test "
        "images.\n\n" + markdown_table(headers, rows, right)
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
    keys = varying_keys(runs)
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
    skeys = [k for k in keys if k != "loss"]
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
        for _, r in bad.iterrows()
    ]
    # A long list: folded on a code host, plain text in a terminal.
    out += [
        "",
        f"<details><summary>Every setting not ok on every seed ({len(bad)})</summary>",
        "",
        markdown_table(headers, rows, [False] * (len(skeys) + 2) + [True, True, False]),
        "",
        "</details>",
    ]
    return head + "\n".join(out)


def fmt_p(p: float) -> str:
    """A p-value as a reader compares it with 0.05: ``0.0128``, ``< 0.0001``; ``""`` if none."""
    if pd.isna(p):
        return ""
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"
