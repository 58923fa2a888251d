"""Rule plot_templates: the learned templates of one feature set and loss, per regularizer."""

import logging

from linbench.scripting import run
from linbench.templates import plot_templates


def main() -> None:
    layout = plot_templates(
        snakemake.input.runs,
        snakemake.input.weights,
        snakemake.input.info,
        snakemake.input.splits,
        features=snakemake.wildcards.features,
        loss=snakemake.wildcards.loss,
        path=snakemake.output[0],
    )
    logging.getLogger("linbench.templates").info(
        "%d x %d tiles: %s",
        *layout.shape,
        ", ".join(f"{row.block}/{row.regularizer}" for row in layout.rows),
    )


run(main, snakemake.log[0], rule="plot_templates")
