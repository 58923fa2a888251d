"""Tables of a finished grid: ``runs.csv`` and ``history.csv``, settings, and choosing.

Every cell folder holds ``metrics.json``, ``history.csv`` and ``test_predictions.npy``
(see ``linbench.cell``). This module gathers them into two tidy pandas tables, groups
cells over seeds into *settings*, and chooses the best ones; :mod:`linbench.summary`
writes the Markdown summary and :mod:`linbench.compare` the paired comparisons.

Choosing is always done on **validation** accuracy. Cells that differ only in the seed
form one *setting* (the training-set size, when the grid has one, is part of it); a
setting's score is its mean validation accuracy over seeds, and only a setting whose
every seed has status ``ok`` (:data:`linbench.names.STATUSES`) is ever chosen. Test
accuracy is reported for the chosen settings and never used to choose.

Imports pandas but not matplotlib, so the ``aggregate`` job starts fast; the figures
live in :mod:`linbench.plots`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import LinbenchError
from .grid import parse_cell_path
from .names import (
    ALL_IMAGES,
    ANSWER_SUBGRID,
    CELL_KEYS,
    HISTORY_COLUMNS,
    PROGRESS_COLUMNS,
    SETTING_KEYS,
    STATUSES,
    SWEEP_SUBGRID,
)
from .outcome import excess_share, is_unstable_relative
from .stats import wilson_interval

SIZE_COLUMNS = ("train_size", "val_images", "test_images")
"""Training images used, and the images of the validation and test splits (for intervals)."""
REQUIRED_KEYS = ("epochs", "epochs_run", "train_acc", "val_acc", "test_acc", "train_seconds")
WEIGHT_KEYS = ("w_l1", "w_l2", "w_small_share", "w_max_col_norm")
RESULT_KEYS = (
    "epochs",
    "epochs_run",
    "status",
    "diverged",
    "train_acc",
    "val_acc",
    "test_acc",
    "final_loss",
    "train_seconds",
    *WEIGHT_KEYS,
)
# The last column locates the cell's files (weights.npz, test_predictions.npy) for figures.
RUN_COLUMNS = tuple(dict.fromkeys((*CELL_KEYS, *SIZE_COLUMNS, *RESULT_KEYS, "cell_dir")))
# May be null in metrics.json (a diverged model has no finite loss or norms).
NULLABLE_KEYS = ("final_loss", *WEIGHT_KEYS)
PREDICTIONS_FILE = "test_predictions.npy"
SPLIT_IMAGES = {"train": "train_size", "val": "val_images", "test": "test_images"}
"""The column counting the images each split's accuracy was measured on."""


# --------------------------------------------------------------------------- loading


def read_metrics(path: str | os.PathLike[str]) -> dict:
    """One cell's ``metrics.json`` as a flat dict (``test_confusion`` dropped).

    Adds ``cell_dir``, the folder of `path`. Extra scalar keys are kept, so a new metric
    reaches ``runs.csv`` without a change here. A file written before ``status`` existed
    gets it from ``diverged`` (``diverged`` or ``ok``); ``diverged`` is always derived
    from ``status``.

    Raises:
        LinbenchError: naming the file when it is not JSON, lacks a contract key or has
            an unknown status.
    """
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LinbenchError(f"{path}: cannot read cell metrics ({err})") from None
    if not isinstance(metrics, dict):
        raise LinbenchError(f"{path}: expected a JSON object of cell metrics")
    missing = [k for k in (*CELL_KEYS, *REQUIRED_KEYS) if k not in metrics]
    if "status" not in metrics and "diverged" not in metrics:
        missing.append("status")
    if missing:
        raise LinbenchError(f"{path}: missing key(s) {', '.join(missing)}; rerun the cell")
    row = {k: v for k, v in metrics.items() if not isinstance(v, list | dict)}
    if "status" not in row:
        row["status"] = "diverged" if row["diverged"] else "ok"
    if row["status"] not in STATUSES:
        raise LinbenchError(f"{path}: status {row['status']!r} is not one of {', '.join(STATUSES)}")
    row["diverged"] = row["status"] == "diverged"
    row["cell_dir"] = str(path.parent)
    return row


def load_runs(metrics_paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """One row per cell (in the order given), columns :data:`RUN_COLUMNS` + extra metrics.

    Null values (diverged cells) become NaN; a size column a cell does not report is NA.
    """
    rows = [read_metrics(p) for p in metrics_paths]
    if not rows:
        raise LinbenchError("no cell metrics to aggregate: the grid is empty")
    runs = pd.DataFrame.from_records(rows)
    for col in RUN_COLUMNS:
        if col not in runs.columns:
            runs[col] = np.nan
    extra = [c for c in runs.columns if c not in RUN_COLUMNS]
    runs = runs[[*RUN_COLUMNS, *extra]]
    return _types(runs)


def _types(runs: pd.DataFrame) -> pd.DataFrame:
    for col in ("strength", "learning_rate", "train_acc", "val_acc", "test_acc"):
        runs[col] = runs[col].astype(float)
    for col in (*NULLABLE_KEYS, "train_seconds"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    # Gradient descent (batch_size 'all') as the images of its steps, so batch sizes stay
    # numbers that sort and plot; `full_batch` says which rows are.
    runs["full_batch"] = runs["batch_size"].astype(str) == ALL_IMAGES
    if runs["full_batch"].any():
        if "batch_images" not in runs.columns:
            raise LinbenchError("a cell with batch_size 'all' lacks batch_images: rerun it")
        runs.loc[runs["full_batch"], "batch_size"] = runs.loc[runs["full_batch"], "batch_images"]
    for col in ("batch_size", "seed", "epochs", "epochs_run"):
        runs[col] = runs[col].astype(int)
    for col in SIZE_COLUMNS:
        runs[col] = pd.to_numeric(runs[col], errors="coerce").astype("Int64")
    for col in ("diverged_epoch", "best_epoch", "subset_seed"):
        if col in runs.columns:
            runs[col] = pd.to_numeric(runs[col]).astype("Int64")
    runs["status"] = runs["status"].astype(str)
    runs["diverged"] = runs["status"] == "diverged"
    return runs


def load_history(
    history_paths: Iterable[str | os.PathLike[str]],
    runs: pd.DataFrame,
    columns: Sequence[str] = HISTORY_COLUMNS,
) -> pd.DataFrame:
    """All cells' per-epoch histories (or, with :data:`PROGRESS_COLUMNS`, their progress
    records, ``progress.csv``) as one tidy table.

    Columns: :func:`cell_keys` then `columns`; one row per cell and epoch run (or record).
    Each ``history.csv`` is matched to its cell in `runs` by folder. Read with the csv
    module: a few hundred small files in a fraction of a second (``pd.read_csv`` per file
    is ten times slower).

    Raises:
        LinbenchError: naming the file when its header lacks a column, a value is not a
            number, or its folder has no row in `runs`.
    """
    keys_in = cell_keys(runs)
    cells = runs.set_index("cell_dir")[keys_in]
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
                missing = [c for c in columns if c not in header]
                if missing:
                    raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}")
                idx = [header.index(c) for c in columns]
                for line in reader:
                    if line:
                        values.append([float(line[i]) for i in idx])
                        keys.append(cell_dir)
        except (OSError, ValueError, IndexError) as err:
            raise LinbenchError(f"{path}: cannot read the training history ({err})") from None
    table = pd.DataFrame(values, columns=list(columns))
    for col in ("epoch", "step", "images"):
        if col in table.columns:
            table[col] = table[col].astype(int)
    params = cells.loc[keys].reset_index(drop=True)
    return pd.concat([params, table], axis=1)


def load_progress(
    progress_paths: Iterable[str | os.PathLike[str]], runs: pd.DataFrame
) -> pd.DataFrame:
    """Every cell's progress records (``progress.csv``) as one tidy table: :func:`cell_keys`,
    ``full_batch``, ``status``, ``subgrids`` (if known), then :data:`PROGRESS_COLUMNS`.
    Gradient descent's ``batch_size`` is its training-set size, as in ``runs.csv``."""
    progress = load_history(progress_paths, runs, PROGRESS_COLUMNS)
    extra = [c for c in ("full_batch", "status", "subgrids") if c in runs.columns]
    keys = cell_keys(runs)
    merged = progress.merge(runs[[*keys, *extra]], on=keys, how="left")
    return merged[[*keys, *extra, *PROGRESS_COLUMNS]]


# ---------------------------------------------------------------------- outcomes on one scale


def _problem_keys(runs: pd.DataFrame) -> list[str]:
    """What fixes a run's objective: features, training set (its size and draw), loss,
    regularizer and strength (``objective_of``: early stopping optimizes none's)."""
    keys = ["features", "train_size", "loss", "objective_of", "strength"]
    return [*keys, *(["subset_seed"] if "subset_seed" in runs.columns else [])]


def judge_outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with ``best_objective_any`` (F*: the lowest objective any run of the cell's
    problem reached), ``excess_share`` ((F - F*) / (F0 - F*) of its final objective) and
    ``status`` re-judged: an ``ok`` run that :func:`linbench.outcome.is_unstable_relative`
    finds unstable becomes ``unstable`` (one scale for both losses). Cells without
    objectives (older metrics) are left as they are."""
    needed = ("final_objective", "initial_objective", "best_objective")
    if runs.empty or any(c not in runs.columns for c in needed):
        return runs
    runs = runs.copy()
    runs["objective_of"] = runs["regularizer"].replace({"early_stopping": "none"})
    keys = _problem_keys(runs)
    best = pd.to_numeric(runs["best_objective"], errors="coerce")
    runs["best_objective_any"] = best.groupby(
        [runs[k] for k in keys], sort=False, dropna=False
    ).transform("min")
    final = pd.to_numeric(runs["final_objective"], errors="coerce")
    initial = pd.to_numeric(runs["initial_objective"], errors="coerce")
    triples = list(zip(final, runs["best_objective_any"], initial, best, strict=True))
    runs["excess_share"] = [excess_share(f, b, i) for f, b, i, _ in triples]
    relative = pd.Series([is_unstable_relative(*t) for t in triples], index=runs.index)
    unstable = (runs["status"] == "ok") & relative
    runs.loc[unstable, "status"] = "unstable"
    runs["diverged"] = runs["status"] == "diverged"
    return runs.drop(columns="objective_of")


# ---------------------------------------------------------------------- sub-grids


def add_subgrids(runs: pd.DataFrame, membership: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """`runs` with a ``subgrids`` column: the sub-grids that hold each cell, ``;``-joined in
    config order (``sweep;regimes`` for a cell both share; trained once, analysed in each).

    `membership` maps a cell's folder (``Cell.path``, :func:`linbench.grid.subgrids_of`) to
    its sub-grids' names.

    Raises:
        LinbenchError: naming the folder of a cell that no sub-grid holds.
    """
    names = []
    for cell_dir in runs["cell_dir"]:
        path = parse_cell_path(cell_dir).path
        if path not in membership:
            raise LinbenchError(f"{cell_dir}: this cell belongs to no sub-grid of the config")
        names.append(";".join(membership[path]))
    return runs.assign(subgrids=names)


def subgrid_runs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """The cells of sub-grid `name`, so that a question is answered inside one sub-grid.

    Without the sub-grid, the cells of ``regimes`` or else ``sweep`` (the sub-grids built
    for the study's two first questions), or else of the first sub-grid the table has;
    without a ``subgrids`` column (a table built by hand, one design), every cell.
    """
    if "subgrids" not in runs.columns or runs.empty:
        return runs
    members = runs["subgrids"].astype(str).str.split(";")
    present = list(dict.fromkeys(n for names in members for n in names))
    chosen = next(n for n in (name, ANSWER_SUBGRID, SWEEP_SUBGRID, *present) if n in present)
    return runs[members.map(lambda names: chosen in names).to_numpy()].copy()


def subgrid_name(runs: pd.DataFrame, name: str) -> str | None:
    """The sub-grid :func:`subgrid_runs` draws from for `name` (None without the column)."""
    if "subgrids" not in runs.columns or runs.empty:
        return None
    present = list(dict.fromkeys(n for v in runs["subgrids"].astype(str) for n in v.split(";")))
    return name if name in present else present[0]


# ---------------------------------------------------------------------- settings


def setting_keys(table: pd.DataFrame) -> list[str]:
    """The columns that make a setting: :data:`names.SETTING_KEYS`, and ``train_size``
    when the table has it (it is a grid axis: a model trained on fewer images is another
    setting)."""
    keys = list(SETTING_KEYS)
    if "train_size" in table.columns and "train_size" not in keys:
        keys.insert(keys.index("features") + 1, "train_size")
    return keys


def cell_keys(table: pd.DataFrame) -> list[str]:
    """:func:`setting_keys` and the seed."""
    return [*setting_keys(table), *(k for k in CELL_KEYS if k not in SETTING_KEYS)]


def regime_keys(table: pd.DataFrame) -> list[str]:
    """What a regularizer is compared within: feature set, training-set size and loss."""
    return [k for k in ("features", "train_size", "loss") if k in table.columns]


def group(table: pd.DataFrame, keys: Sequence[str]):
    """``groupby`` in grid order that keeps rows whose keys are missing (an unknown size)."""
    return table.groupby(list(keys), sort=False, dropna=False)


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Cells grouped over seeds: one row per setting, in grid order.

    Columns: :func:`setting_keys`, ``seeds`` (count), ``n_<status>`` for every status
    (count of its seeds), ``eligible`` (every seed ``ok`` and a finite mean validation
    accuracy: may be chosen), ``diverged`` (count of diverged seeds), ``val_images``,
    ``test_images``, ``{train,val,test}_acc_mean`` / ``_std`` (sample std, NaN for one
    seed), ``{val,test}_low`` / ``_high`` (95 % Wilson interval of the mean accuracy over
    the split's images) and ``train_seconds_mean``.
    """
    grouped = group(runs, setting_keys(runs))
    out = grouped.agg(
        seeds=("seed", "size"),
        train_seconds_mean=("train_seconds", "mean"),
        val_images=("val_images", "first"),
        test_images=("test_images", "first"),
    )
    for status in STATUSES:
        out[f"n_{status}"] = grouped["status"].agg(lambda s, st=status: int((s == st).sum()))
    out["diverged"] = out["n_diverged"]
    for acc in ("train_acc", "val_acc", "test_acc"):
        out[f"{acc}_mean"] = grouped[acc].mean(skipna=False)
        out[f"{acc}_std"] = grouped[acc].std(ddof=1, skipna=False)
    out["eligible"] = (out["n_ok"] == out["seeds"]) & out["val_acc_mean"].notna()
    out = out.reset_index()
    for split in ("val", "test"):
        bounds = [
            wilson_interval(acc, np.nan if pd.isna(n) else n)
            for acc, n in zip(out[f"{split}_acc_mean"], out[f"{split}_images"], strict=True)
        ]
        out[f"{split}_low"] = [b[0] for b in bounds]
        out[f"{split}_high"] = [b[1] for b in bounds]
    return out


def status_words(row: pd.Series | object) -> str:
    """A setting's outcome over its seeds: ``ok``, ``diverged``, or where seeds disagree
    ``1 of 3 seeds diverged`` (``1 of 3 seeds diverged, 1 of 3 collapsed``)."""
    seeds = int(_get(row, "seeds"))
    counts = {s: int(_get(row, f"n_{s}")) for s in STATUSES}
    present = [s for s in STATUSES if counts[s]]
    if len(present) == 1:
        return present[0]
    others = [s for s in present if s != "ok"]
    return ", ".join(
        f"{counts[s]} of {seeds}{' seeds' if i == 0 else ''} {s}" for i, s in enumerate(others)
    )


def _get(row: object, key: str) -> object:
    return row[key] if isinstance(row, pd.Series | dict) else getattr(row, key)


def choose(settings: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """The setting with the highest mean validation accuracy in each group of `by`.

    Only eligible settings (every seed ``ok``, finite mean validation accuracy) count.
    Ties go to the first setting in grid order. Groups without an eligible setting have
    no row. Test accuracy plays no part.
    """
    ok = settings[settings["eligible"]]
    if ok.empty:
        return ok.copy()
    if not by:
        return ok.loc[[ok["val_acc_mean"].idxmax()]]
    best = group(ok, by)["val_acc_mean"].idxmax()
    return ok.loc[best.to_numpy()]


def chosen_cells(runs: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """One cell per group of `by`: the chosen setting's seed with the best validation accuracy.

    This is the model whose weights or confusion matrix a figure shows. Columns as `runs`.
    """
    picked = choose(settings_table(runs), by)
    if picked.empty:
        return runs.iloc[0:0]
    keys = setting_keys(runs)
    cells = runs.merge(picked[keys], on=keys)
    best = group(cells, keys)["val_acc"].idxmax()
    return cells.loc[best.to_numpy()].reset_index(drop=True)


def cells_of(runs: pd.DataFrame, setting: pd.Series) -> pd.DataFrame:
    """The cells (one per seed, by seed) of one row of the settings table."""
    mask = np.ones(len(runs), dtype=bool)
    for key in setting_keys(runs):
        value = setting[key]
        mask &= runs[key].isna().to_numpy() if pd.isna(value) else (runs[key] == value).to_numpy()
    return runs[mask].sort_values("seed")


# ------------------------------------------------------------ reading back


def load_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """The test labels (n,) as integers."""
    try:
        return np.load(path).astype(np.int64)
    except (OSError, ValueError) as err:
        raise LinbenchError(f"{path}: cannot read the test labels ({err})") from None


def read_runs_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``runs.csv`` back as :func:`load_runs` made it."""
    runs = pd.read_csv(path)
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}; rerun aggregate")
    bad = sorted(set(runs["status"].astype(str)) - set(STATUSES))
    if bad:
        raise LinbenchError(f"{path}: unknown status {', '.join(bad)}; rerun aggregate")
    return _types(runs)


def read_history_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``history.csv`` back as a DataFrame (columns checked)."""
    history = pd.read_csv(path)
    missing = [c for c in (*CELL_KEYS, *HISTORY_COLUMNS) if c not in history.columns]
    if missing:
        raise LinbenchError(f"{path}: missing column(s) {', '.join(missing)}; rerun aggregate")
    return history
