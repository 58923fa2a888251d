"""Rule fit_dictionary: the k-means dictionary of a learned feature set, from train images.

Only the training split is read: validation and test images never reach the dictionary.
"""

import logging
import time

import numpy as np

from linbench.features import check_images, resolve_block
from linbench.kmeans import fit_dictionary
from linbench.scripting import run


def main() -> None:
    log = logging.getLogger("linbench.fit_dictionary")
    features = snakemake.wildcards.features
    images = np.load(snakemake.input.images, mmap_mode="r")
    check_images(images, snakemake.input.images)
    block = resolve_block(snakemake.params.block, images.shape[1:], key=f"features.sets.{features}")
    start = time.perf_counter()
    dictionary = fit_dictionary(images, block)
    dictionary.save(snakemake.output[0])
    log.info(
        "%s: %d centroids of %d dimensions from %d training images in %.1f s; objective %s",
        features,
        len(dictionary.centroids),
        dictionary.centroids.shape[1],
        len(images),
        time.perf_counter() - start,
        " -> ".join(f"{v:.4f}" for v in dictionary.objective[[0, -1]]),
    )


run(main, snakemake.log[0], rule="fit_dictionary")
