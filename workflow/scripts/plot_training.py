"""Rule plot_training: learning curves and the weight distributions of the chosen models."""

from linbench.plots import training_figures
from linbench.scripting import run


def main() -> None:
    training_figures(
        snakemake.input.runs,
        snakemake.input.history,
        snakemake.input.weights,
        outputs={key: snakemake.output[key] for key in snakemake.output.keys()},
        regularizer=snakemake.params.regularizer,
        batch_size=snakemake.params.batch_size,
    )


run(main, snakemake.log[0], rule="plot_training")
