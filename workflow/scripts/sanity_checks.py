"""Rule sanity_checks: every sanity check on the real training and validation features.

Writes sanity.csv and sanity.md, and succeeds whenever the checks ran, failed or not:
rule sanity_gate turns a failed check into a failed run.
"""

import json
import logging

import numpy as np

from linbench import sanity
from linbench.io import write_text
from linbench.scripting import run

log = logging.getLogger("linbench.sanity")


def checks() -> None:
    params, inputs, output = snakemake.params, snakemake.input, snakemake.output
    with open(inputs.splits) as fh:
        classes = json.load(fh)["classes"]
    files = zip(params.features, inputs.X, inputs.y, inputs.val_X, inputs.val_y, strict=True)
    data = {
        features: (
            np.load(X, mmap_mode="r"),
            np.load(y),
            np.load(val_X, mmap_mode="r"),
            np.load(val_y),
        )
        for features, X, y, val_X, val_y in files
    }
    results = sanity.run_checks(
        data,
        params.losses,
        params.regularizers,
        num_classes=len(classes),
        init_scale=params.init_scale,
        margin=params.margin,
        elastic_net_beta=params.elastic_net_beta,
        seed=params.seed,
        sizes=sanity.SampleSizes(**params.sizes),
    )
    write_text(output.table, sanity.to_csv(results))
    write_text(output.markdown, sanity.to_markdown(results))
    banner = sanity.banner(results)
    # A failure goes to stderr too; the rule still succeeds, so its table reaches the report.
    (log.info if banner.startswith("PASS") else log.warning)("%s", banner)


run(checks, snakemake.log[0], rule="sanity_checks")
