# Seconds of work on files the submitting host has: no cluster jobs.
localrules:
    sanity_checks,
    sanity_gate,


rule sanity_checks:
    input:
        X=expand(
            "results/features/{features}/train_X.npy", features=get_grid_features()
        ),
        y=expand(
            "results/features/{features}/train_y.npy", features=get_grid_features()
        ),
        # The labels checks judge accuracy on validation rows.
        val_X=expand(
            "results/features/{features}/val_X.npy", features=get_grid_features()
        ),
        val_y=expand(
            "results/features/{features}/val_y.npy", features=get_grid_features()
        ),
        splits="results/data/splits.json",
        # The code under test: editing it (say, to fix a failed check) reruns the checks.
        code=get_sanity_code(),
    output:
        table=report(
            SANITY_TABLE,
            caption="../report/sanity.rst",
            category=get_category("sanity"),
            labels={"table": "sanity checks (CSV)"},
        ),
        markdown=report(
            SANITY_MARKDOWN,
            caption="../report/sanity.rst",
            category=get_category("sanity"),
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
            reg: strengths[0] for reg, strengths in get_grid_strengths().items()
        },
        init_scale=config["train"]["init_scale"],
        margin=config["train"]["margin"],
        elastic_net_beta=config["train"]["elastic_net_beta"],
        seed=get_grid_values("seed")[0],
        # How much of the real data each check uses (linbench.sanity.SampleSizes): a few
        # seconds per feature set.
        sizes={
            "loss_rows": 500,  # initial loss
            "gradient_rows": 100,  # gradient and large-score checks
            "coordinates": 40,  # weights compared per gradient check (and every bias)
            "label_rows": 200,  # training rows the labels checks overfit
            "label_val_rows": 2000,  # validation rows they are judged on
            "permutations": 5,  # permuted-label trainings per loss
            "label_epochs": 100,
            "label_learning_rate": 0.1,
            "transform_rows": 10,  # dropout: rows and draws of the batch transform
            "transform_draws": 1000,
        },
    message:
        "Sanity checks of the losses and regularizers on the real features: {output.markdown}"
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
    message:
        "Did every sanity check pass? ({input.table})"
    script:
        "../scripts/sanity_gate.py"
