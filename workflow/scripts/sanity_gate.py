"""Rule sanity_gate: create sanity.ok when every sanity check passed.

Otherwise fail with one line naming the failed checks, so that `snakemake` exits with an
error after the rest of the report is built.
"""

from pathlib import Path

from linbench import sanity
from linbench.errors import LinbenchError
from linbench.io import write_text
from linbench.scripting import run


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


run(gate, snakemake.log[0], rule="sanity_gate")
