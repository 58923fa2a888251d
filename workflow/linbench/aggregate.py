"""The ``aggregate`` job: every cell's files -> ``runs.csv``, ``history.csv``,
``comparisons.csv``, ``summary.md``, and the first page of the HTML report (the answer).

The top of the package's import graph: it uses :mod:`linbench.report` (the tables) and
:mod:`linbench.summary` (the Markdown), which themselves never import it, so no two
modules of the package import each other (``tests/test_imports.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import pandas as pd

from .io import atomic_path, write_text
from .report import (
    add_subgrids,
    judge_outcomes,
    load_history,
    load_labels,
    load_progress,
    load_runs,
)
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
    progress_paths: Sequence[str | os.PathLike[str]] | None = None,
    progress_csv: str | os.PathLike[str] | None = None,
    optimizer: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Read every cell and write ``runs.csv``, ``history.csv``, ``summary.md`` and (if asked
    for) ``comparisons.csv``, each atomically.

    `test_labels` (``results/data/test_labels.npy``) makes the paired test comparisons
    possible; without it they say so. `subgrids` (cell folder -> the sub-grids holding it,
    :func:`linbench.grid.subgrids_of`) adds the ``subgrids`` column, so that each question
    is answered inside its own sub-grid. `progress_paths` (every cell's ``progress.csv``)
    give ``progress.csv`` and, with `optimizer` (config ``optimizer``), the summary's
    batch size and learning rate section. Returns the runs table.
    """
    runs = judge_outcomes(load_runs(metrics_paths))
    if subgrids is not None:
        runs = add_subgrids(runs, subgrids)
    history = load_history(history_paths, runs)
    progress = load_progress(progress_paths, runs) if progress_paths else None
    labels = None if test_labels is None else load_labels(test_labels)
    comparisons = answer_comparisons(runs, labels)
    # Full float precision in the CSVs: the summary rounds, the tables do not.
    tables = [(runs, runs_csv), (history, history_csv)]
    if comparisons_csv is not None:
        tables.append((comparisons, comparisons_csv))
    if progress is not None and progress_csv is not None:
        tables.append((progress, progress_csv))
    for table, path in tables:
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    write_text(
        summary_md,
        summarize(runs, labels, comparisons=comparisons, progress=progress, optimizer=optimizer),
    )
    return runs


# ------------------------------------------------------------------ the report's first page


def first_markdown_table(markdown: str) -> list[list[str]]:
    """The first pipe table of `markdown` as rows of cells, its header first (the line of
    dashes under the header dropped); [] if there is none."""
    rows: list[list[str]] = []
    for line in markdown.splitlines():
        if line.lstrip().startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [row for row in rows if not all(set(cell) <= set(":- ") for cell in row)]


def rst_text(markdown: str) -> str:
    """Markdown inline text as plain RST text: emphasis markers dropped, the characters
    RST gives a meaning escaped (so a ``*`` or ``|`` in a cell can never warn)."""
    text = re.sub(r"\*\*(.+?)\*\*|\*(.+?)\*", lambda m: m.group(1) or m.group(2), markdown)
    text = text.replace("`", "")
    return re.sub(r"([\\*_|])", r"\\\1", text)


def landing_page(summary_md: str, description_rst: str, answer_figure: str, category: str) -> str:
    """The report's first page: the answer table (the first table of ``summary.md``) and
    where its figure is, then the workflow's description.

    Snakemake opens its HTML report on the workflow's description; this puts the answer
    there. `answer_figure` is the file name of the answer's figure (``answer.png``) and
    `category` the report category that holds it, linked as Snakemake links every report
    item and category (``answer.png_``).
    """
    table = first_markdown_table(summary_md)
    lines = ["The answer", "==========", ""]
    if table:
        lines += [".. csv-table::", "   :header-rows: 1", ""]
        for row in table:
            cells = ('"' + rst_text(cell).replace('"', '""') + '"' for cell in row)
            lines.append("   " + ",".join(cells))
        lines.append("")
    else:
        lines += ["summary.md has no table yet.", ""]
    lines += [
        f"The figure of this answer: {answer_figure}_ (category `{category}`_); every",
        "number behind it, and how sure each one is: summary.md_.",
        "",
        "",
    ]
    return "\n".join(lines) + description_rst
