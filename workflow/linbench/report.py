"""Tables of a finished grid: ``runs.csv``, ``history.csv`` and ``summary.md``.

Every cell folder holds ``metrics.json`` and ``history.csv`` (see ``linbench.cell``).
This module gathers them into two tidy pandas tables and writes a Markdown summary that
answers the study's question: how do loss, regularizer, batch size and learning rate
change the result?

Choosing is always done on **validation** accuracy. Cells that differ only in the seed
form one *setting*; a setting's score is its mean validation accuracy over seeds, and a
setting in which any seed diverged is never chosen. Test accuracy is reported for the
chosen settings and never used to choose.

Imports pandas but not matplotlib, so the ``aggregate`` job starts fast; the figures
live in :mod:`linbench.plots`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import LinbenchError
from .text import fmt_number, fmt_strength, markdown_table

# A cell is one setting plus a seed; a setting is what a user chooses.
SETTING_KEYS = ("features", "loss", "regularizer", "strength", "batch_size", "learning_rate")
CELL_KEYS = (*SETTING_KEYS, "seed")
RESULT_KEYS = (
    "epochs",
    "epochs_run",
    "diverged",
    "diverged_epoch",
    "train_acc",
    "val_acc",
    "test_acc",
    "final_loss",
    "train_seconds",
    "w_l1",
    "w_l2",
    "w_small_share",
    "w_max_col_norm",
)
# The last column locates the cell's files (weights.npz, metrics.json) for the figures.
RUN_COLUMNS = (*CELL_KEYS, *RESULT_KEYS, "cell_dir")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_acc", "seconds")
# Metrics that may be null in metrics.json (a diverged model has no finite loss or norms).
NULLABLE_KEYS = ("diverged_epoch", "final_loss", "w_l1", "w_l2", "w_small_share", "w_max_col_norm")

ACC_DIGITS = 4


# --------------------------------------------------------------------------- loading


def read_metrics(path: str | os.PathLike[str]) -> dict:
    """One cell's ``metrics.json`` as a flat dict (``test_confusion`` dropped).

    Adds ``cell_dir``, the folder of `path`. Extra scalar keys are kept, so a new metric
    reaches ``runs.csv`` without a change here.

    Raises:
        LinbenchError: naming the file when it is not JSON or lacks a contract key.
    """
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LinbenchError(f"{path}: cannot read cell metrics ({err})") from None
    if not isinstance(metrics, dict):
        raise LinbenchError(f"{path}: expected a JSON object of cell metrics")
    missing = [k for k in (*CELL_KEYS, *RESULT_KEYS) if k not in metrics]
    if missing:
        raise LinbenchError(f"{path}: missing key(s) {', '.join(missing)}; rerun the cell")
    row = {k: v for k, v in metrics.items() if not isinstance(v, list | dict)}
    row["cell_dir"] = str(path.parent)
    return row


def load_runs(metrics_paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """One row per cell (in the order given), columns :data:`RUN_COLUMNS` + extra metrics.

    Null values (diverged cells) become NaN; ``diverged_epoch`` is a nullable integer.
    """
    rows = [read_metrics(p) for p in metrics_paths]
    if not rows:
        raise LinbenchError("no cell metrics to aggregate: the grid is empty")
    runs = pd.DataFrame.from_records(rows)
    extra = [c for c in runs.columns if c not in RUN_COLUMNS]
    runs = runs[[*RUN_COLUMNS, *extra]]
    for col in ("strength", "learning_rate", "train_acc", "val_acc", "test_acc"):
        runs[col] = runs[col].astype(float)
    for col in NULLABLE_KEYS:
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    for col in ("batch_size", "seed", "epochs", "epochs_run"):
        runs[col] = runs[col].astype(int)
    runs["diverged_epoch"] = runs["diverged_epoch"].astype("Int64")
    runs["diverged"] = runs["diverged"].astype(bool)
    return runs


def load_history(
    history_paths: Iterable[str | os.PathLike[str]], runs: pd.DataFrame
) -> pd.DataFrame:
    """All cells' per-epoch histories as one tidy table.

    Columns: :data:`CELL_KEYS` then :data:`HISTORY_COLUMNS`; one row per cell and epoch run.
    Each ``history.csv`` is matched to its cell in `runs` by folder. Read with the csv
    module: a few hundred small files in a fraction of a second (``pd.read_csv`` per file
    is ten times slower).

    Raises:
        LinbenchError: naming the file when its header lacks a column, a value is not a
            number, or its folder has no row in `runs`.
    """
    cells = runs.set_index("cell_dir")[list(CELL_KEYS)]
    keys: list[str] = []
    values: list[list[float]] = []
    for path in map(Path, history_paths):
        cell_dir = str(path.parent)
        if cell_dir not in cells.index:
            raise LinbenchError(f"{path}: no metrics.json for this cell in the aggregate")
        try:
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, [])
                missing = [c for c in HISTORY_COLUMNS if c not in header]
                if missing:
                    raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}")
                idx = [header.index(c) for c in HISTORY_COLUMNS]
                for line in reader:
                    if line:
                        values.append([float(line[i]) for i in idx])
                        keys.append(cell_dir)
        except (OSError, ValueError, IndexError) as err:
            raise LinbenchError(f"{path}: cannot read the training history ({err})") from None
    table = pd.DataFrame(values, columns=list(HISTORY_COLUMNS))
    table["epoch"] = table["epoch"].astype(int)
    params = cells.loc[keys].reset_index(drop=True)
    return pd.concat([params, table], axis=1)


# ---------------------------------------------------------------------- choosing


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Cells grouped over seeds: one row per setting, in grid order.

    Columns: :data:`SETTING_KEYS`, ``seeds`` (count), ``diverged`` (count of diverged
    seeds), ``{train,val,test}_acc_mean`` / ``_std`` (sample std, NaN for one seed) and
    ``train_seconds_mean``. A NaN accuracy of any seed makes the mean NaN, so such a
    setting is never chosen.
    """
    grouped = runs.groupby(list(SETTING_KEYS), sort=False)
    out = grouped.agg(
        seeds=("seed", "size"),
        diverged=("diverged", "sum"),
        train_seconds_mean=("train_seconds", "mean"),
    )
    for acc in ("train_acc", "val_acc", "test_acc"):
        out[f"{acc}_mean"] = grouped[acc].mean(skipna=False)
        out[f"{acc}_std"] = grouped[acc].std(ddof=1, skipna=False)
    return out.reset_index()


def choose(settings: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """The setting with the highest mean validation accuracy in each group of `by`.

    Eligible settings: no diverged seed and a finite mean validation accuracy. Ties go
    to the first setting in grid order. Groups without an eligible setting have no row.
    Test accuracy plays no part.
    """
    ok = settings[(settings["diverged"] == 0) & settings["val_acc_mean"].notna()]
    if ok.empty:
        return ok.copy()
    if not by:
        return ok.loc[[ok["val_acc_mean"].idxmax()]]
    best = ok.groupby(list(by), sort=False)["val_acc_mean"].idxmax()
    return ok.loc[best.to_numpy()]


def chosen_cells(runs: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """One cell per group of `by`: the chosen setting's seed with the best validation accuracy.

    This is the model whose weights or confusion matrix a figure shows. Columns as `runs`.
    """
    picked = choose(settings_table(runs), by)
    if picked.empty:
        return runs.iloc[0:0]
    cells = runs.merge(picked[list(SETTING_KEYS)], on=list(SETTING_KEYS))
    best = cells.groupby(list(SETTING_KEYS), sort=False)["val_acc"].idxmax()
    return cells.loc[best.to_numpy()].reset_index(drop=True)


# -------------------------------------------------------------------- formatting


def fmt_acc(mean: float, std: float = math.nan, seeds: int = 1) -> str:
    """``0.4123``, or ``0.4123 ± 0.0051`` over several seeds; ``n/a`` when missing."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    text = f"{mean:.{ACC_DIGITS}f}"
    if seeds > 1 and std is not None and np.isfinite(std):
        text += f" ± {std:.{ACC_DIGITS}f}"
    return text


# ----------------------------------------------------------------------- summary


def summarize(runs: pd.DataFrame) -> str:
    """The study's findings as Markdown: best overall, best per loss and regularizer,
    learning rate x batch size, and the diverged cells."""
    settings = settings_table(runs)
    n_seeds = runs["seed"].nunique()
    multi_features = runs["features"].nunique() > 1
    feat = ["features"] if multi_features else []
    parts = [_intro(runs, n_seeds), _best_overall(settings, multi_features)]
    parts.append(_glance(settings, feat))
    parts.append(_chosen_table(settings, feat))
    parts.append(_lr_batch(settings))
    parts.append(_diverged(runs, feat))
    return "\n\n".join(p for p in parts if p) + "\n"


def _unique(values: Iterable[object]) -> list:
    return list(dict.fromkeys(values))


def _join(values: Iterable[object]) -> str:
    return ", ".join(
        fmt_number(v) if isinstance(v, int | float | np.number) else str(v) for v in values
    )


def _intro(runs: pd.DataFrame, n_seeds: int) -> str:
    epochs = _unique(runs["epochs"])
    spread = (
        f"mean ± sample standard deviation over {n_seeds} seeds"
        if n_seeds > 1
        else "one seed per setting"
    )
    return "\n".join(
        [
            "# linbench results",
            "",
            f"{len(runs)} cells: features {_join(_unique(runs['features']))}; "
            f"loss {_join(_unique(runs['loss']))}; "
            f"regularizer {_join(_unique(runs['regularizer']))}; "
            f"batch size {_join(sorted(_unique(runs['batch_size'])))}; "
            f"learning rate {_join(sorted(_unique(runs['learning_rate'])))}; "
            f"seed {_join(sorted(_unique(runs['seed'])))}; "
            f"{_join(epochs)} epochs.",
            "",
            "How to read: a *setting* is a cell up to its seed. Every setting below was chosen "
            "by **validation accuracy** (mean over seeds); **test accuracy is reported, never "
            "used to choose**. Settings in which any seed diverged are not chosen. "
            f"Accuracies have {ACC_DIGITS} decimals ({spread}).",
        ]
    )


def _acc(row: pd.Series, split: str) -> str:
    """A settings-table row's accuracy on `split` (train, val or test), mean ± std."""
    return fmt_acc(row[f"{split}_acc_mean"], row[f"{split}_acc_std"], row["seeds"])


def _setting_words(row: pd.Series) -> str:
    return (
        f"{row['loss']} + {fmt_strength(row['regularizer'], row['strength'])}, "
        f"batch size {int(row['batch_size'])}, learning rate {fmt_number(row['learning_rate'])}"
    )


def _best_overall(settings: pd.DataFrame, multi_features: bool) -> str:
    best = choose(settings)
    if best.empty:
        return "## Best overall\n\nNo setting trained without diverging."
    row = best.iloc[0]
    feats = f" on {row['features']} features" if multi_features else ""
    return (
        "## Best overall\n\n"
        f"**{_setting_words(row)}**{feats}: "
        f"validation accuracy **{_acc(row, 'val')}**, test accuracy **{_acc(row, 'test')}**."
    )


def _glance(settings: pd.DataFrame, feat: list[str]) -> str:
    """Regularizer rows x loss columns: the chosen setting's validation / test accuracy."""
    picked = choose(settings, [*feat, "loss", "regularizer"])
    losses = _unique(settings["loss"])
    headers = [*feat, "regularizer"]
    for loss in losses:
        headers += [f"{loss} val", f"{loss} test"]
    rows = []
    for key, _ in settings.groupby([*feat, "regularizer"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = list(key)
        for loss in losses:
            mask = (picked["loss"] == loss) & (picked["regularizer"] == key[-1])
            if feat:
                mask &= picked["features"] == key[0]
            hit = picked[mask]
            if hit.empty:
                has_cells = (settings["loss"] == loss) & (settings["regularizer"] == key[-1])
                row += ["diverged" if has_cells.any() else "", ""]
                continue
            r = hit.iloc[0]
            row += [
                fmt_acc(r["val_acc_mean"], r["val_acc_std"], r["seeds"]),
                fmt_acc(r["test_acc_mean"], r["test_acc_std"], r["seeds"]),
            ]
        rows.append(row)
    right = [False] * (len(feat) + 1) + [True] * (2 * len(losses))
    return (
        "## Best per loss and regularizer\n\n"
        "Validation and test accuracy of the setting chosen by validation accuracy "
        "(strength, batch size and learning rate in the next table).\n\n"
        + markdown_table(headers, rows, right)
    )


def _chosen_table(settings: pd.DataFrame, feat: list[str]) -> str:
    picked = choose(settings, [*feat, "loss", "regularizer"])
    picked = picked.sort_values("val_acc_mean", ascending=False, kind="stable")
    headers = [*feat, "loss", "regularizer", "batch size", "learning rate", "seeds"]
    headers += ["train acc", "val acc", "test acc", "train s"]
    rows = [
        [
            *(r["features"] for _ in feat),
            r["loss"],
            fmt_strength(r["regularizer"], r["strength"]),
            int(r["batch_size"]),
            fmt_number(r["learning_rate"]),
            int(r["seeds"]),
            fmt_acc(r["train_acc_mean"], r["train_acc_std"], r["seeds"]),
            fmt_acc(r["val_acc_mean"], r["val_acc_std"], r["seeds"]),
            fmt_acc(r["test_acc_mean"], r["test_acc_std"], r["seeds"]),
            f"{r['train_seconds_mean']:.2f}",
        ]
        for _, r in picked.iterrows()
    ]
    right = [False] * (len(feat) + 2) + [True] * 7
    return (
        "## Chosen settings, best first\n\n"
        "`train s`: training time of one cell in seconds (mean over seeds).\n\n"
        + markdown_table(headers, rows, right)
    )


def _lr_batch(settings: pd.DataFrame) -> str:
    """Per loss: best validation accuracy at each learning rate x batch size."""
    out = [
        "## Learning rate × batch size",
        "",
        "Best validation accuracy over regularizers and strengths at each learning rate "
        "(rows) and batch size (columns); `diverged`: every cell there diverged.",
    ]
    batches = sorted(_unique(settings["batch_size"]))
    groups = settings.groupby(["features", "loss"], sort=False)
    for (features, loss), group in groups:
        title = f"### {loss}" + (f" ({features})" if settings["features"].nunique() > 1 else "")
        picked = choose(group, ["learning_rate", "batch_size"])
        best = {(r.learning_rate, r.batch_size): r for r in picked.itertuples()}
        rows = []
        for lr in sorted(_unique(group["learning_rate"])):
            row: list[object] = [fmt_number(lr)]
            for batch in batches:
                here = group[(group["learning_rate"] == lr) & (group["batch_size"] == batch)]
                if (lr, batch) in best:
                    r = best[(lr, batch)]
                    row.append(fmt_acc(r.val_acc_mean, r.val_acc_std, r.seeds))
                elif here.empty:
                    row.append("")
                else:
                    row.append("diverged")
            rows.append(row)
        headers = ["learning rate", *(f"batch {b}" for b in batches)]
        out += ["", title, "", markdown_table(headers, rows, [True] * len(headers))]
    return "\n".join(out)


def _diverged(runs: pd.DataFrame, feat: list[str]) -> str:
    """How many cells diverged where (learning rate x batch size), then the full list."""
    div = runs[runs["diverged"]]
    head = "## Diverged cells\n\n"
    if div.empty:
        return head + f"None of the {len(runs)} cells diverged."
    out = [
        f"{len(div)} of {len(runs)} cells diverged (training stopped when the loss blew up); "
        f"learning rates involved: {_join(sorted(_unique(div['learning_rate'])))}. "
        "Diverged / all cells per loss, learning rate and batch size (over regularizers, "
        "strengths and seeds):",
    ]
    batches = sorted(_unique(runs["batch_size"]))
    rates = sorted(_unique(div["learning_rate"]))
    counts = runs.groupby([*feat, "loss", "learning_rate", "batch_size"], sort=False)["diverged"]
    counts = counts.agg(["sum", "size"])
    rows = []
    for key, _ in runs.groupby([*feat, "loss"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for lr in rates:
            row: list[object] = [*key, fmt_number(lr)]
            for batch in batches:
                n = counts.loc[(*key, lr, batch)] if (*key, lr, batch) in counts.index else None
                row.append("" if n is None else f"{int(n['sum'])}/{int(n['size'])}")
            rows.append(row)
    headers = [*feat, "loss", "learning rate", *(f"batch {b}" for b in batches)]
    right = [False] * (len(feat) + 1) + [True] * (len(batches) + 1)
    out += ["", markdown_table(headers, rows, right)]
    headers = [*feat, "loss", "regularizer", "batch size", "learning rate", "seed", "at epoch"]
    rows = [
        [
            *(r["features"] for _ in feat),
            r["loss"],
            fmt_strength(r["regularizer"], r["strength"]),
            int(r["batch_size"]),
            fmt_number(r["learning_rate"]),
            int(r["seed"]),
            "" if pd.isna(r["diverged_epoch"]) else int(r["diverged_epoch"]),
        ]
        for _, r in div.iterrows()
    ]
    # A long list: folded on a code host, plain text in a terminal.
    out += [
        "",
        f"<details><summary>Every diverged cell ({len(div)})</summary>",
        "",
        markdown_table(headers, rows, [False] * (len(feat) + 2) + [True] * 4),
        "",
        "</details>",
    ]
    return head + "\n".join(out)


# ---------------------------------------------------------------------- writing


def write_tables(
    metrics_paths: Sequence[str | os.PathLike[str]],
    history_paths: Sequence[str | os.PathLike[str]],
    runs_csv: str | os.PathLike[str],
    history_csv: str | os.PathLike[str],
    summary_md: str | os.PathLike[str],
) -> pd.DataFrame:
    """Read every cell and write ``runs.csv``, ``history.csv`` and ``summary.md`` atomically.

    Returns the runs table.
    """
    from .io import atomic_path, write_text

    runs = load_runs(metrics_paths)
    history = load_history(history_paths, runs)
    # Full float precision in the CSVs: the summary rounds, the tables do not.
    for table, path in ((runs, runs_csv), (history, history_csv)):
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    write_text(summary_md, summarize(runs))
    return runs


def read_runs_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``runs.csv`` back as :func:`load_runs` made it (nullable ``diverged_epoch``)."""
    runs = pd.read_csv(path)
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}; rerun aggregate")
    runs["diverged_epoch"] = runs["diverged_epoch"].astype("Int64")
    runs["diverged"] = runs["diverged"].astype(bool)
    return runs


def read_history_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``history.csv`` back as a DataFrame (columns checked)."""
    history = pd.read_csv(path)
    missing = [c for c in (*CELL_KEYS, *HISTORY_COLUMNS) if c not in history.columns]
    if missing:
        raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}; rerun aggregate")
    return history
