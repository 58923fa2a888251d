"""The ``aggregate`` job: every cell's files -> ``runs.csv``, ``history.csv``,
``comparisons.csv`` and ``summary.md``.

The top of the package's import graph: it uses :mod:`linbench.report` (the tables) and
:mod:`linbench.summary` (the Markdown), which themselves never import it, so no two
modules of the package import each other (``tests/test_imports.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from .io import atomic_path, write_text
from .report import add_subgrids, load_history, load_labels, load_runs
from .summary import answer_comparisons, summarize


def write_tables(
    metrics_paths: Sequence[str | os.PathLike[str]],
    history_paths: Sequence[str | os.PathLike[str]],
    runs_csv: str | os.PathLike[str],
    history_csv: str | os.PathLike[str],
    summary_md: str | os.PathLike[str],
    test_labels: str | os.PathLike[str] | None = None,
    comparisons_csv: str | os.PathLike[str] | None = None,
    subgrids: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Read every cell and write ``runs.csv``, ``history.csv``, ``summary.md`` and (if asked
    for) ``comparisons.csv``, each atomically.

    `test_labels` (``results/data/test_labels.npy``) makes the paired test comparisons
    possible; without it they say so. `subgrids` (cell folder -> the sub-grids holding it,
    :func:`linbench.grid.subgrids_of`) adds the ``subgrids`` column, so that each question
    is answered inside its own sub-grid. Returns the runs table.
    """
    runs = load_runs(metrics_paths)
    if subgrids is not None:
        runs = add_subgrids(runs, subgrids)
    history = load_history(history_paths, runs)
    labels = None if test_labels is None else load_labels(test_labels)
    comparisons = answer_comparisons(runs, labels)
    # Full float precision in the CSVs: the summary rounds, the tables do not.
    tables = [(runs, runs_csv), (history, history_csv)]
    if comparisons_csv is not None:
        tables.append((comparisons, comparisons_csv))
    for table, path in tables:
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    write_text(summary_md, summarize(runs, labels, comparisons=comparisons))
    return runs
