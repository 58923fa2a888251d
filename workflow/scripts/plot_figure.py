"""Rules plot_<figure>: one figure of the report (params.figure names it, see linbench.plots)."""

from linbench.plots import draw
from linbench.scripting import run


def main() -> None:
    draw(
        snakemake.params.figure,
        snakemake.output[0],
        inputs={key: snakemake.input[key] for key in snakemake.input.keys()},
        params={k: snakemake.params[k] for k in snakemake.params.keys() if k != "figure"},
    )


run(main, snakemake.log[0], rule=f"plot_{snakemake.params.figure}")
