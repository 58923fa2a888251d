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
    try:
        passed, verdict = sanity.gate_verdict(table.read_text())
    except ValueError as err:
        raise LinbenchError(f"{table}: {err}; rerun rule sanity_checks") from None
    if not passed:
        raise LinbenchError(f"{verdict}: see {table.with_suffix('.md')}")
    write_text(snakemake.output[0], verdict + "\n")


run(gate, snakemake.log[0], rule="sanity_gate")
