"""Rule extract_features: raw (unstandardised) features of one shard of one split.

Memory-maps the split's images and reads only the shard's rows; a set with a kmeans
block encodes them with the dictionary fitted by rule fit_dictionary.
"""

import logging
import time

import numpy as np

from linbench.features import (
    describe_blocks,
    extract,
    keep_freed_memory,
    learned_block,
    resolve_blocks,
    shard_bounds,
)
from linbench.io import save_npy, write_json
from linbench.kmeans import KMeansDictionary
from linbench.scripting import run


def main() -> None:
    log = logging.getLogger("linbench.extract_features")
    wildcards, params = snakemake.wildcards, snakemake.params
    keep_freed_memory()
    cpu, wall = time.process_time(), time.perf_counter()
    images = np.load(snakemake.input.images, mmap_mode="r")
    blocks = resolve_blocks(
        params.blocks, images.shape[1:], key=f"features.sets.{wildcards.features}"
    )
    dictionary = None
    if learned_block(blocks) is not None:
        dictionary = KMeansDictionary.load(snakemake.input.dictionary)
    shard = int(wildcards.shard)
    start, stop = shard_bounds(len(images), params.shards, shard)
    features = extract(
        images[start:stop], blocks, name=snakemake.input.images, dictionary=dictionary
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    save_npy(snakemake.output.features, features)
    write_json(
        snakemake.output.info,
        {
            "feature_set": wildcards.features,
            "split": wildcards.split,
            "shard": shard,
            "shards": params.shards,
            "start": start,
            "stop": stop,
            "dimension": features.shape[1],
            "image_shape": list(images.shape[1:]),
            "blocks": describe_blocks(blocks, images.shape[1:]),
            "cpu_seconds": cpu,
            "wall_seconds": wall,
        },
    )
    log.info(
        "%s %s shard %d/%d: images [%d, %d) -> %s features in %.2f s CPU (%.1f us/image)",
        wildcards.features,
        wildcards.split,
        shard,
        params.shards,
        start,
        stop,
        features.shape,
        cpu,
        1e6 * cpu / max(stop - start, 1),
    )


run(main, snakemake.log[0], rule="extract_features")
