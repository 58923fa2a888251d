"""Rule aggregate: every cell's metrics and history -> runs.csv, history.csv, comparisons.csv,
summary.md."""

import logging

from linbench.aggregate import write_tables
from linbench.grid import subgrids_of
from linbench.scripting import run


def main() -> None:
    runs = write_tables(
        snakemake.input.metrics,
        snakemake.input.history,
        runs_csv=snakemake.output.runs,
        history_csv=snakemake.output.history,
        summary_md=snakemake.output.summary,
        test_labels=snakemake.input.test_labels,
        comparisons_csv=snakemake.output.comparisons,
        subgrids=subgrids_of(snakemake.params.grid),
    )
    logging.getLogger("linbench.aggregate").info(
        "%d cells; status counts: %s", len(runs), runs["status"].value_counts().to_dict()
    )


run(main, snakemake.log[0], rule="aggregate")
