"""Rule plot_centroids: the centroids of a learned feature set as colour patches."""

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np

from linbench.io import atomic_path
from linbench.kmeans import KMeansDictionary
from linbench.plots.features import centroids_figure
from linbench.scripting import run


def main() -> None:
    dictionary = KMeansDictionary.load(snakemake.input[0])
    most_used = np.argsort(-dictionary.counts, kind="stable")
    fig = centroids_figure(
        dictionary.centroid_patches()[most_used],
        dictionary.objective,
        suptitle=f"k-means dictionary of feature set {snakemake.wildcards.features!r}",
    )
    with atomic_path(snakemake.output[0], suffix=".png") as tmp:
        fig.savefig(tmp, dpi=150)
    plt.close(fig)


run(main, snakemake.log[0], rule="plot_centroids")
