"""Rule gather_features: join the shards of each split, standardise with train statistics.

Writes {split}_X.npy (float32), {split}_y.npy (int64), stats.npz and info.json; reads the
shards as memory maps and streams the standardised rows out, so memory stays bounded.
"""

import json
import logging
from pathlib import Path

import numpy as np

from linbench.features import check_shards, describe_blocks, keep_freed_memory, resolve_blocks
from linbench.io import save_npy, save_npz, write_json
from linbench.names import SPLITS
from linbench.scripting import run
from linbench.standardize import Standardizer


def main() -> None:
    log = logging.getLogger("linbench.gather_features")
    features, inputs, output = snakemake.wildcards.features, snakemake.input, snakemake.output
    keep_freed_memory()
    infos = {s: [json.loads(Path(p).read_text()) for p in inputs[f"{s}_info"]] for s in SPLITS}
    image_shape = infos["train"][0]["image_shape"]
    blocks = resolve_blocks(snakemake.params.blocks, image_shape, key=f"features.sets.{features}")
    described = describe_blocks(blocks, image_shape)
    dimension = described[-1]["stop"]

    parts, labels = {}, {}
    for split in SPLITS:
        paths = list(inputs[f"{split}_features"])
        parts[split] = [np.load(p, mmap_mode="r") for p in paths]
        labels[split] = np.load(inputs[f"{split}_labels"]).astype(np.int64)
        check_shards(infos[split], parts[split], paths, len(labels[split]), dimension)

    stats = Standardizer.fit(parts["train"])
    for split in SPLITS:
        stats.save_transformed(output[f"{split}_X"], parts[split])
        save_npy(output[f"{split}_y"], labels[split])
    save_npz(output.stats, mean=stats.mean, std=stats.std, constant=stats.constant)

    shard_records = [info for split in SPLITS for info in infos[split]]
    write_json(
        output.info,
        {
            "feature_set": features,
            "dimension": dimension,
            "dtype": "float32",
            "image_shape": image_shape,
            "blocks": described,
            "counts": {split: len(labels[split]) for split in SPLITS},
            "shards": len(infos["train"]),
            "standardization": {
                "fitted_on": "train",
                "constant_features": int(stats.constant.sum()),
            },
            "extraction_cpu_seconds": sum(i["cpu_seconds"] for i in shard_records),
            "extraction_wall_seconds": sum(i["wall_seconds"] for i in shard_records),
            "extraction_cpu_seconds_per_split": {
                split: sum(i["cpu_seconds"] for i in infos[split]) for split in SPLITS
            },
        },
    )
    log.info(
        "%s: %d features; %s images; %d constant on train",
        features,
        dimension,
        ", ".join(f"{split} {len(labels[split])}" for split in SPLITS),
        stats.constant.sum(),
    )


run(main, snakemake.log[0], rule="gather_features")
