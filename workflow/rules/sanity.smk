# Seconds of work on files the submitting host has: no cluster jobs.
localrules:
    sanity_checks,
    sanity_gate,


rule sanity_checks:
    input:
        X=expand("results/features/{features}/train_X.npy", features=get_grid_features()),
        y=expand("results/features/{features}/train_y.npy", features=get_grid_features()),
        splits="results/data/splits.json",
        # The code under test: editing it (say, to fix a failed check) reruns the checks.
        code=expand(
            f"{LINBENCH_DIR}/linbench/{{module}}.py",
            module=["losses", "regularizers", "sanity"],
        ),
    output:
        table=report(
            SANITY_TABLE,
            caption="../report/sanity.rst",
            category="Sanity checks",
            labels={"table": "sanity checks (CSV)"},
        ),
        markdown=report(
            SANITY_MARKDOWN,
            caption="../report/sanity.rst",
            category="Sanity checks",
            labels={"table": "sanity checks"},
        ),
    log:
        "logs/report/sanity_checks.log",
    benchmark:
        "results/benchmarks/report/sanity_checks.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        features=get_grid_features(),
        losses=get_grid_values("loss"),
        # Each regularizer is checked at the grid's first strength for it.
        regularizers={
            reg: strengths[0]
            for reg, strengths in get_grid_strengths().items()
        },
        init_scale=config["train"]["init_scale"],
        margin=config["train"]["margin"],
        elastic_net_beta=config["train"]["elastic_net_beta"],
        seed=get_grid_values("seed")[0],
        # Sample sizes: rows for the initial loss and for the gradient, weights compared.
        loss_rows=500,
        gradient_rows=100,
        coordinates=40,
    script:
        "../scripts/sanity_checks.py"


# A failed check fails this job, not sanity_checks: a failed job's outputs are deleted,
# and the table must reach the report. With the failure, `snakemake` exits non-zero.
rule sanity_gate:
    input:
        table=SANITY_TABLE,
        others=get_gate_inputs,
    output:
        SANITY_OK,
    log:
        "logs/report/sanity_gate.log",
    conda:
        "../envs/linbench.yaml"
    script:
        "../scripts/sanity_gate.py"
