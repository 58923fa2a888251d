"""What each regularizer buys: its best setting against no regularizer, paired on test images.

Within each *regime* (feature set, training-set size and loss; :func:`report.regime_keys`)
every regularizer's best setting, chosen on **validation** accuracy among ``ok`` settings,
is compared with the best unregularized setting of the same regime on the **test**
predictions (``test_predictions.npy`` of each cell), image by image
(:func:`linbench.stats.paired_difference`). Test accuracy never chooses anything here:
it only measures the two settings validation already chose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .report import PREDICTIONS_FILE, cells_of, choose, group, regime_keys
from .stats import paired_difference
from .text import fmt_number, fmt_strength

BASELINE = "none"
"""The regularizer every other one is compared with."""
NO_OK = "no ok setting"
NO_PREDICTIONS = "n/a (no test predictions)"

Predictions = Callable[[str], np.ndarray | None]
"""Cell folder -> its test predictions (n,), or None when the cell has none."""


def read_predictions(cell_dir: str) -> np.ndarray | None:
    """A cell's ``test_predictions.npy`` (uint8, test order), or None if it has none."""
    path = Path(cell_dir) / PREDICTIONS_FILE
    return np.load(path) if path.exists() else None


def correctness(
    runs: pd.DataFrame, setting: pd.Series, labels: np.ndarray, predictions: Predictions
) -> tuple[list[int], np.ndarray] | None:
    """(seeds, (seeds, n) bool): per seed of `setting`, which test images it gets right.

    None when a seed has no predictions or they do not match the labels' length.
    """
    cells = cells_of(runs, setting)
    rows = []
    for cell_dir in cells["cell_dir"]:
        pred = predictions(str(cell_dir))
        if pred is None or pred.shape != labels.shape:
            return None
        rows.append(pred.astype(np.int64) == labels)
    return cells["seed"].astype(int).tolist(), np.array(rows)


def _paired_rows(seeds_a, a, seeds_b, b):
    """Rows of a and b paired by seed (the seeds both have), else by rank."""
    common = [s for s in seeds_a if s in seeds_b]
    if common:
        return a[[seeds_a.index(s) for s in common]], b[[seeds_b.index(s) for s in common]]
    k = min(len(a), len(b))
    return a[:k], b[:k]


def compare_to_baseline(
    runs: pd.DataFrame,
    settings: pd.DataFrame,
    labels: np.ndarray | None,
    predictions: Predictions = read_predictions,
) -> pd.DataFrame:
    """One row per regime and regularizer other than ``none``: its chosen setting vs none's.

    Columns: the regime keys, ``regularizer``, the chosen setting's ``strength``,
    ``batch_size``, ``learning_rate``, ``seeds``, ``val_acc_mean``, ``test_acc_mean``,
    ``baseline_val``, ``baseline_test``, then (test, A = regularizer, B = none)
    ``difference``, ``low``, ``high`` (95 % interval), ``p_value``, ``method`` and
    ``verdict``: better, worse, indistinguishable, :data:`NO_OK` (the regularizer has no
    ``ok`` setting here) or :data:`NO_PREDICTIONS`. Regimes without an ``ok``
    unregularized setting have no rows.
    """
    keys = regime_keys(settings)
    picked = choose(settings, [*keys, "regularizer"])
    rows = []
    for regime, members in group(settings, keys):
        regime = regime if isinstance(regime, tuple) else (regime,)
        mask = np.logical_and.reduce(
            [_same(picked[k], v) for k, v in zip(keys, regime, strict=True)]
        )
        here = picked[mask]
        base = here[here["regularizer"] == BASELINE]
        if base.empty:
            continue
        base = base.iloc[0]
        base_correct = None if labels is None else correctness(runs, base, labels, predictions)
        for reg in dict.fromkeys(members["regularizer"]):
            if reg == BASELINE:
                continue
            row = {
                **dict(zip(keys, regime, strict=True)),
                "regularizer": reg,
                "baseline_val": base["val_acc_mean"],
                "baseline_test": base["test_acc_mean"],
                "difference": np.nan,
                "low": np.nan,
                "high": np.nan,
                "p_value": np.nan,
                "method": "",
            }
            best = here[here["regularizer"] == reg]
            if best.empty:
                rows.append({**row, "verdict": NO_OK})
                continue
            best = best.iloc[0]
            row.update(
                strength=best["strength"],
                batch_size=best["batch_size"],
                learning_rate=best["learning_rate"],
                seeds=best["seeds"],
                val_acc_mean=best["val_acc_mean"],
                test_acc_mean=best["test_acc_mean"],
                difference=best["test_acc_mean"] - base["test_acc_mean"],
                verdict=NO_PREDICTIONS,
            )
            correct = None if labels is None else correctness(runs, best, labels, predictions)
            if correct is not None and base_correct is not None:
                a, b = _paired_rows(*correct, *base_correct)
                result = paired_difference(a, b)
                row.update(
                    difference=result.difference,
                    low=result.low,
                    high=result.high,
                    p_value=result.p_value,
                    method=result.method,
                    verdict=result.verdict,
                )
            rows.append(row)
    columns = [*keys, "regularizer", "strength", "batch_size", "learning_rate", "seeds"]
    columns += ["val_acc_mean", "test_acc_mean", "baseline_val", "baseline_test"]
    columns += ["difference", "low", "high", "p_value", "method", "verdict"]
    return pd.DataFrame(regime_sorted(rows, keys), columns=columns)


def regime_sorted(rows: list[dict], keys: Sequence[str]) -> list[dict]:
    """`rows` with their regimes in reading order: each key in the order its values first
    appear (grid order), but training-set sizes from small to large. Stable."""
    first: dict[str, dict] = {key: {} for key in keys}
    for row in rows:
        for key in keys:
            first[key].setdefault(row[key], len(first[key]))

    def rank(row: dict) -> tuple:
        return tuple(
            (0, float(row[key]))
            if key == "train_size" and pd.notna(row[key])
            else (1, first[key][row[key]])
            for key in keys
        )

    return sorted(rows, key=rank)


# ----------------------------------------------------------------------------- words


def fmt_points(difference: float, low: float = np.nan, high: float = np.nan) -> str:
    """An accuracy difference in percentage points: ``+2.1 pts [+0.8, +3.4]``."""
    if not np.isfinite(difference):
        return "n/a"
    text = f"{100 * difference:+.1f} pts"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return text


def regime_text(row: pd.Series | dict, keys: list[str]) -> str:
    """``softmax on hog, 500 training images`` (only the keys that vary are passed)."""
    parts = []
    if "loss" in keys:
        parts.append(str(row["loss"]))
    if "features" in keys:
        parts.append(f"on {row['features']}")
    text = " ".join(parts)
    if "train_size" in keys and not pd.isna(row["train_size"]):
        text += f", {int(row['train_size']):,} training images"
    return text or "this grid"


def varying_keys(table: pd.DataFrame) -> list[str]:
    """Regime keys with more than one value (always ``loss``), to keep labels short."""
    keys = regime_keys(table)
    return [k for k in keys if k == "loss" or table[k].nunique(dropna=False) > 1]


def answer_rows(settings: pd.DataFrame, comparisons: pd.DataFrame) -> list[dict]:
    """Per regime: the best regularizer by validation, its strength and gain over none.

    Each dict: the regime keys, ``regularizer`` (``None`` when nothing trained ok),
    ``strength``, ``gain`` (test, vs none; NaN when the best is none), ``low``, ``high``,
    ``verdict``.
    """
    keys = regime_keys(settings)
    best = choose(settings, keys)
    out = []
    for regime, _ in group(settings, keys):
        regime = regime if isinstance(regime, tuple) else (regime,)
        row = dict(zip(keys, regime, strict=True))
        mask = np.logical_and.reduce([_same(best[k], v) for k, v in row.items()])
        hit = best[mask]
        if hit.empty:
            out.append({**row, "regularizer": None, "strength": np.nan, "verdict": NO_OK})
            continue
        hit = hit.iloc[0]
        entry = {**row, "regularizer": hit["regularizer"], "strength": hit["strength"]}
        entry.update(gain=np.nan, low=np.nan, high=np.nan, verdict="")
        if hit["regularizer"] != BASELINE and not comparisons.empty:
            cmask = np.logical_and.reduce(
                [_same(comparisons[k], v) for k, v in row.items()]
                + [comparisons["regularizer"] == hit["regularizer"]]
            )
            if cmask.any():
                c = comparisons[cmask].iloc[0]
                entry.update(gain=c["difference"], low=c["low"], high=c["high"])
                entry["verdict"] = c["verdict"]
        out.append(entry)
    return regime_sorted(out, keys)


def _same(column: pd.Series, value: object) -> np.ndarray:
    if pd.isna(value):
        return column.isna().to_numpy()
    return (column == value).to_numpy()


def regularizer_sentences(comparisons: pd.DataFrame) -> list[str]:
    """One sentence per regularizer: where it helped, hurt or made no difference on test.

    Built from the verdicts of :func:`compare_to_baseline` (95 %, paired), in the
    order regularizers appear in the grid.
    """
    if comparisons.empty:
        return []
    keys = varying_keys(comparisons)
    sentences = []
    for reg, rows in group(comparisons, ["regularizer"]):
        reg = reg[0] if isinstance(reg, tuple) else reg
        total = len(rows)

        def where(verdict: str, rows: pd.DataFrame = rows, reg: str = reg) -> list[str]:
            hits = rows[rows["verdict"] == verdict]
            return [
                f"{regime_text(r, keys)} ({fmt_points(r['difference'], r['low'], r['high'])}, "
                f"{fmt_strength(reg, r['strength'])})"
                for _, r in hits.iterrows()
            ]

        helped, hurt, tied = where("better"), where("worse"), where("indistinguishable")
        parts = []
        if helped:
            parts.append(f"helped in {len(helped)} of {total}: {'; '.join(helped)}")
        if hurt:
            parts.append(f"hurt in {len(hurt)} of {total}: {'; '.join(hurt)}")
        if tied:
            parts.append(f"made no difference at 95 % in {len(tied)} of {total}: {'; '.join(tied)}")
        no_ok = int((rows["verdict"] == NO_OK).sum())
        if no_ok:
            parts.append(f"had no ok setting in {no_ok} of {total}")
        unknown = int((rows["verdict"] == NO_PREDICTIONS).sum())
        if unknown:
            parts.append(f"could not be tested in {unknown} of {total} (no test predictions)")
        sentences.append(f"**{reg}** " + "; ".join(parts) + ".")
    return sentences


def setting_text(row: pd.Series) -> str:
    """``l2 (λ = 0.001), batch 128, lr 0.01`` for a chosen setting."""
    return (
        f"{fmt_strength(row['regularizer'], row['strength'])}, batch {int(row['batch_size'])}, "
        f"lr {fmt_number(row['learning_rate'])}"
    )
