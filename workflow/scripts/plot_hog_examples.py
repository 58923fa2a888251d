"""Rule plot_hog_examples: one test image per class beside its HOG picture."""

import json

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np

from linbench.features import example_indices, resolve_block
from linbench.io import atomic_path
from linbench.plots.features import hog_examples_figure
from linbench.scripting import run


def main() -> None:
    images = np.load(snakemake.input.images, mmap_mode="r")
    labels = np.load(snakemake.input.labels)
    with open(snakemake.input.splits) as fh:
        classes = json.load(fh)["classes"]
    picks = example_indices(labels, len(classes))
    fig = hog_examples_figure(
        np.asarray(images[picks]),
        [classes[labels[i]] for i in picks],
        resolve_block(snakemake.params.block, images.shape[1:]),
        suptitle=f"Test images and their HOG (feature set {snakemake.params.fset!r})",
    )
    with atomic_path(snakemake.output[0], suffix=".png") as tmp:
        fig.savefig(tmp, dpi=150)
    plt.close(fig)


run(main, snakemake.log[0], rule="plot_hog_examples")
