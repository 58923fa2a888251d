"""Rule prepare: decode the archive, split train/val/test, write compact arrays."""

import logging

from linbench.data import make_splits, read_archive
from linbench.io import save_npy, write_json
from linbench.scripting import run


def main() -> None:
    log = logging.getLogger("linbench.prepare")
    raw = read_archive(snakemake.input.archive)
    splits = make_splits(
        raw,
        val_size=snakemake.params.val_size,
        seed=snakemake.params.seed,
        train_subset=snakemake.params.train_subset,
    )
    for split in ("train", "val", "test"):
        save_npy(snakemake.output[f"{split}_images"], splits.images[split])
        save_npy(snakemake.output[f"{split}_labels"], splits.labels[split])
        log.info("%s: %d images", split, len(splits.labels[split]))
    write_json(snakemake.output.summary, splits.summary())


run(main, snakemake.log[0], rule="prepare")
