"""Rules sanity_checks and sanity_gate (workflow/rules/sanity.smk).

sanity_checks: the initial loss and gradient checks on the real training features ->
sanity.csv and sanity.md; always succeeds when the checks ran, failed or not.
sanity_gate: creates sanity.ok when every check passed, and fails naming the failed
checks otherwise, so that `snakemake` exits with an error.
"""

import json
import logging
from pathlib import Path

import numpy as np

from linbench import sanity
from linbench.errors import LinbenchError
from linbench.io import write_text
from linbench.scripting import run

log = logging.getLogger("linbench.sanity")


def checks() -> None:
    params, inputs, output = snakemake.params, snakemake.input, snakemake.output
    with open(inputs.splits) as fh:
        classes = json.load(fh)["classes"]
    data = {
        fset: (np.load(X, mmap_mode="r"), np.load(y))
        for fset, X, y in zip(params.features, inputs.X, inputs.y, strict=True)
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
        loss_rows=params.loss_rows,
        gradient_rows=params.gradient_rows,
        n_coords=params.coordinates,
    )
    write_text(output.table, sanity.to_csv(results))
    write_text(output.markdown, sanity.to_markdown(results))
    banner = sanity.banner(results)
    # A failure goes to stderr too; the rule still succeeds, so its table reaches the report.
    (log.info if banner.startswith("PASS") else log.warning)("%s", banner)


def gate() -> None:
    table = Path(snakemake.input.table)
    statuses = sanity.read_statuses(table.read_text())
    if not statuses:
        raise LinbenchError(f"{table}: holds no sanity check; rerun rule sanity_checks")
    failed = [name for status, name in statuses if status != "PASS"]
    if failed:
        raise LinbenchError(
            f"{len(failed)} of {len(statuses)} sanity checks failed ({'; '.join(failed)}): "
            f"see {table.with_suffix('.md')}"
        )
    write_text(snakemake.output[0], f"all {len(statuses)} sanity checks passed\n")


# One script for both rules: they share the table's format (linbench.sanity).
MAIN = {"sanity_checks": checks, "sanity_gate": gate}
run(MAIN[snakemake.rule], snakemake.log[0], rule=snakemake.rule)
