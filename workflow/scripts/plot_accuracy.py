"""Rule plot_accuracy: heatmaps, best accuracy, accuracy vs time and the confusion matrix."""

from linbench.plots import accuracy_figures
from linbench.scripting import run


def main() -> None:
    accuracy_figures(
        snakemake.input.runs,
        snakemake.input.metrics,
        snakemake.input.splits,
        outputs={key: snakemake.output[key] for key in snakemake.output.keys()},
    )


run(main, snakemake.log[0], rule="plot_accuracy")
