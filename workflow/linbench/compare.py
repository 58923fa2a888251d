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

from .names import STRONGER_WHEN_SMALLER
from .report import PREDICTIONS_FILE, cells_of, choose, group, regime_keys
from .stats import paired_difference
from .text import fmt_number, fmt_strength

BASELINE = "none"
"""The regularizer every other one is compared with."""
NO_OK = "no ok setting"
NO_PREDICTIONS = "n/a (no test predictions)"
NO_COMMON_SEEDS = "n/a (no seed in common)"

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
    """Rows of a and b of the seeds both have, in the same seed order (none: empty)."""
    common = [s for s in seeds_a if s in seeds_b]
    return a[[seeds_a.index(s) for s in common]], b[[seeds_b.index(s) for s in common]]


LIKE_WITH_LIKE = ("features", "train_size", "loss", "epochs", "test_images", "subgrids")
"""What two compared settings must share: they may differ only in the regularizer and the
values tuned for it (strength, learning rate, batch size), never in data, loss or budget,
nor come from different sub-grids (whose designs differ: seeds, rates, batch sizes)."""


def check_like_with_like(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Raise ValueError naming the first :data:`LIKE_WITH_LIKE` column on which the cells
    of two settings to compare differ (columns absent from the table are not checked)."""
    for key in LIKE_WITH_LIKE:
        if key == "subgrids" and key in a.columns and key in b.columns:
            # A cell two sub-grids share belongs to both: one sub-grid must hold them all.
            held = [set(str(v).split(";")) for v in (*a[key], *b[key])]
            if not set.intersection(*held):
                names = ", ".join(dict.fromkeys(str(v) for v in (*a[key], *b[key])))
                raise ValueError(
                    f"refusing to compare settings that differ in 'subgrids' ({names}): "
                    "a comparison stays inside one sub-grid"
                )
            continue
        if key in a.columns and key in b.columns:
            values = list(dict.fromkeys([*a[key].astype(str), *b[key].astype(str)]))
            if len(values) > 1:
                raise ValueError(
                    f"refusing to compare settings that differ in {key!r} ({', '.join(values)}): "
                    "only the regularizer and its tuned values may differ"
                )


def edge_of_range(value: float, tried: Sequence[float]) -> str:
    """``low`` or ``high`` when `value` is the smallest or largest of several values tried,
    else ``""``: there the best value may lie outside the range, and a gain is a bound."""
    tried = sorted({float(t) for t in tried if pd.notna(t)})
    if len(tried) < 2 or pd.isna(value):
        return ""
    if np.isclose(value, tried[0]):
        return "low"
    return "high" if np.isclose(value, tried[-1]) else ""


def strength_edge(regularizer: str, value: float, tried: Sequence[float]) -> str:
    """``strongest`` or ``weakest`` when `value` is the strongest or weakest strength of
    `regularizer` tried, else ``""`` (a smaller radius or keep probability is stronger)."""
    edge = edge_of_range(value, tried)
    if not edge:
        return ""
    smaller_is_stronger = regularizer in STRONGER_WHEN_SMALLER
    return "strongest" if (edge == "low") == smaller_is_stronger else "weakest"


def compare_to_baseline(
    runs: pd.DataFrame,
    settings: pd.DataFrame,
    labels: np.ndarray | None,
    predictions: Predictions = read_predictions,
) -> pd.DataFrame:
    """One row per regime and regularizer other than ``none``: its chosen setting vs none's.

    `runs` (and `settings`, its :func:`report.settings_table`) must be one sub-grid's cells
    (:func:`report.subgrid_runs`): every setting then has the same seeds and budget, and the
    regularizer and none are each tuned over the same strengths-x-rates-x-batch sizes.

    Columns: the regime keys, ``regularizer``, the chosen setting's ``strength``,
    ``batch_size``, ``learning_rate``, ``strength_edge`` (``strongest`` or ``weakest`` when
    the chosen strength is at that edge of the range tried, else ``""``), ``lr_edge`` (``low``
    or ``high`` likewise), ``seeds`` (paired:
    the seeds both settings have), ``val_acc_mean``, ``test_acc_mean``, ``baseline_val``,
    ``baseline_test``, ``baseline_lr``, then (test, A = regularizer, B = none)
    ``difference``, ``low``, ``high`` (95 % interval), ``p_value``, ``seed_sd``, ``method``
    and ``verdict``: better, worse, indistinguishable, :data:`NO_OK` (the regularizer has no
    ``ok`` setting here) or :data:`NO_PREDICTIONS`. Regimes without an ``ok`` unregularized
    setting have no rows.
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
        base_cells = cells_of(runs, base)
        base_correct = None if labels is None else correctness(runs, base, labels, predictions)
        for reg in dict.fromkeys(members["regularizer"]):
            if reg == BASELINE:
                continue
            row = {
                **dict(zip(keys, regime, strict=True)),
                "regularizer": reg,
                "baseline_val": base["val_acc_mean"],
                "baseline_test": base["test_acc_mean"],
                "baseline_lr": base["learning_rate"],
                "difference": np.nan,
                "low": np.nan,
                "high": np.nan,
                "p_value": np.nan,
                "seed_sd": np.nan,
                "method": "",
                "strength_edge": "",
                "lr_edge": "",
            }
            best = here[here["regularizer"] == reg]
            if best.empty:
                rows.append({**row, "verdict": NO_OK})
                continue
            best = best.iloc[0]
            check_like_with_like(cells_of(runs, best), base_cells)
            tried = members[members["regularizer"] == reg]
            row.update(
                strength=best["strength"],
                batch_size=best["batch_size"],
                learning_rate=best["learning_rate"],
                strength_edge=strength_edge(reg, best["strength"], tried["strength"]),
                lr_edge=edge_of_range(best["learning_rate"], tried["learning_rate"]),
                seeds=best["seeds"],
                val_acc_mean=best["val_acc_mean"],
                test_acc_mean=best["test_acc_mean"],
                difference=best["test_acc_mean"] - base["test_acc_mean"],
                verdict=NO_PREDICTIONS,
            )
            correct = None if labels is None else correctness(runs, best, labels, predictions)
            if correct is not None and base_correct is not None:
                a, b = _paired_rows(*correct, *base_correct)
                if not len(a):
                    rows.append({**row, "seeds": 0, "verdict": NO_COMMON_SEEDS})
                    continue
                result = paired_difference(a, b)
                row.update(
                    seeds=result.seeds,
                    difference=result.difference,
                    low=result.low,
                    high=result.high,
                    p_value=result.p_value,
                    seed_sd=result.seed_sd,
                    method=result.method,
                    verdict=result.verdict,
                )
            rows.append(row)
    columns = [*keys, "regularizer", "strength", "batch_size", "learning_rate"]
    columns += ["strength_edge", "lr_edge", "seeds", "val_acc_mean", "test_acc_mean"]
    columns += ["baseline_val", "baseline_test", "baseline_lr"]
    columns += ["difference", "low", "high", "p_value", "seed_sd", "method", "verdict"]
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
    """Per regime: the best regularizer by validation, its tuned values and gain over none.

    Each dict: the regime keys, ``regularizer`` (``None`` when nothing trained ok),
    ``strength``, ``learning_rate``, ``seeds``, ``strength_edge`` and ``lr_edge`` (see
    :func:`compare_to_baseline`), ``gain`` (test, vs none; NaN when the best is none),
    ``low``, ``high``, ``verdict``.
    """
    keys = regime_keys(settings)
    best = choose(settings, keys)
    out = []
    for regime, members in group(settings, keys):
        regime = regime if isinstance(regime, tuple) else (regime,)
        row = dict(zip(keys, regime, strict=True))
        mask = np.logical_and.reduce([_same(best[k], v) for k, v in row.items()])
        hit = best[mask]
        if hit.empty:
            out.append({**row, "regularizer": None, "strength": np.nan, "verdict": NO_OK})
            continue
        hit = hit.iloc[0]
        tried = members[members["regularizer"] == hit["regularizer"]]
        entry = {
            **row,
            "regularizer": hit["regularizer"],
            "strength": hit["strength"],
            "learning_rate": hit["learning_rate"],
            "seeds": hit["seeds"],
            "strength_edge": strength_edge(hit["regularizer"], hit["strength"], tried["strength"]),
            "lr_edge": edge_of_range(hit["learning_rate"], tried["learning_rate"]),
        }
        entry.update(gain=np.nan, low=np.nan, high=np.nan, verdict="")
        if hit["regularizer"] != BASELINE and not comparisons.empty:
            cmask = np.logical_and.reduce(
                [_same(comparisons[k], v) for k, v in row.items()]
                + [comparisons["regularizer"] == hit["regularizer"]]
            )
            if cmask.any():
                c = comparisons[cmask].iloc[0]
                entry.update(gain=c["difference"], low=c["low"], high=c["high"])
                entry.update(verdict=c["verdict"], seeds=c["seeds"])
        out.append(entry)
    return regime_sorted(out, keys)


def _same(column: pd.Series, value: object) -> np.ndarray:
    if pd.isna(value):
        return column.isna().to_numpy()
    return (column == value).to_numpy()


def _gain_range(rows: pd.DataFrame) -> str:
    """``+0.3 to +4.1 pts`` (or ``+2.0 pts`` for one) over the rows' differences."""
    values = 100 * rows["difference"].to_numpy(dtype=float)
    if len(values) == 1:
        return f"{values[0]:+.1f} pts"
    return f"{values.min():+.1f} to {values.max():+.1f} pts"


def regularizer_sentences(comparisons: pd.DataFrame) -> list[str]:
    """One short line per regularizer: in how many regimes it helped, hurt or made no
    difference on test (95 %, paired), with the range of gains, and how often its best
    strength sat at the edge of the range tried. In grid order."""
    if comparisons.empty:
        return []
    sentences = []
    for reg, rows in group(comparisons, ["regularizer"]):
        reg = reg[0] if isinstance(reg, tuple) else reg
        total = len(rows)
        parts = []
        for verdict, words in (
            ("better", "helped"),
            ("worse", "hurt"),
            ("indistinguishable", "no difference"),
        ):
            hits = rows[rows["verdict"] == verdict]
            if len(hits):
                parts.append(f"{words} in {len(hits)} ({_gain_range(hits)})")
        for verdict, words in (
            (NO_OK, "no ok setting"),
            (NO_PREDICTIONS, "not tested (no test predictions)"),
            (NO_COMMON_SEEDS, "not tested (no seed in common)"),
        ):
            count = int((rows["verdict"] == verdict).sum())
            if count:
                parts.append(f"{words} in {count}")
        line = f"**{reg}**: of {total} regime{'s' if total > 1 else ''}, " + ", ".join(parts)
        edges = rows["strength_edge"] if "strength_edge" in rows else pd.Series(dtype=str)
        ends = [
            f"the {end} tried in {int((edges == end).sum())}"
            for end in ("strongest", "weakest")
            if (edges == end).any()
        ]
        if ends:
            line += "; best strength " + " and ".join(ends)
        sentences.append(line + ".")
    return sentences


def setting_text(row: pd.Series) -> str:
    """``l2 (λ = 0.001), batch 128, lr 0.01`` for a chosen setting."""
    return (
        f"{fmt_strength(row['regularizer'], row['strength'])}, batch {int(row['batch_size'])}, "
        f"lr {fmt_number(row['learning_rate'])}"
    )
