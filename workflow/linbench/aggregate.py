"""The ``aggregate`` job: every cell's files -> ``runs.csv``, ``history.csv`` and ``summary.md``.

The top of the package's import graph: it uses :mod:`linbench.report` (the tables) and
:mod:`linbench.summary` (the Markdown), which themselves never import it, so no two
modules of the package import each other (``tests/test_imports.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from .io import atomic_path, write_text
from .report import load_history, load_labels, load_runs
from .summary import summarize


def write_tables(
    metrics_paths: Sequence[str | os.PathLike[str]],
    history_paths: Sequence[str | os.PathLike[str]],
    runs_csv: str | os.PathLike[str],
    history_csv: str | os.PathLike[str],
    summary_md: str | os.PathLike[str],
    test_labels: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read every cell and write ``runs.csv``, ``history.csv`` and ``summary.md`` atomically.

    `test_labels` (``results/data/test_labels.npy``) makes the paired test comparisons
    possible; without it they say so. Returns the runs table.
    """
    runs = load_runs(metrics_paths)
    history = load_history(history_paths, runs)
    # Full float precision in the CSVs: the summary rounds, the tables do not.
    for table, path in ((runs, runs_csv), (history, history_csv)):
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    labels = None if test_labels is None else load_labels(test_labels)
    write_text(summary_md, summarize(runs, labels))
    return runs
