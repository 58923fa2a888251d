"""Rule aggregate: every cell's metrics and history -> runs.csv, history.csv, comparisons.csv,
summary.md, and the report's first page (the answer, then the workflow's description)."""

import logging
from pathlib import Path

from linbench.aggregate import landing_page, write_tables
from linbench.grid import subgrids_of
from linbench.io import write_text
from linbench.scripting import run


def beside(paths: list[str], name: str) -> list[str]:
    """The file `name` in each cell's folder (written by the job that wrote its metrics)."""
    return [str(Path(path).with_name(name)) for path in paths]


def main() -> None:
    metrics = list(snakemake.input.metrics)
    runs = write_tables(
        metrics,
        beside(metrics, "history.csv"),
        runs_csv=snakemake.output.runs,
        history_csv=snakemake.output.history,
        summary_md=snakemake.output.summary,
        test_labels=snakemake.input.test_labels,
        comparisons_csv=snakemake.output.comparisons,
        subgrids=subgrids_of(snakemake.params.grid),
        progress_paths=beside(metrics, "progress.csv"),
        progress_csv=snakemake.output.progress,
        optimizer=dict(snakemake.params.optimizer),
    )
    page = landing_page(
        Path(snakemake.output.summary).read_text(),
        Path(snakemake.input.description).read_text(),
        answer_figure=snakemake.params.answer_figure,
        category=snakemake.params.answer_category,
    )
    write_text(snakemake.output.landing, page)
    logging.getLogger("linbench.aggregate").info(
        "%d cells; status counts: %s", len(runs), runs["status"].value_counts().to_dict()
    )


run(main, snakemake.log[0], rule="aggregate")
