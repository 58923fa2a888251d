rule train:
    input:
        **{
            f"{split}_{kind}": f"results/features/{{features}}/{split}_{kind}.npy"
            for split in SPLITS
            for kind in ("X", "y")
        },
    output:
        metrics=f"{RUNS_DIR}/{CELL_PATTERN}/metrics.json",
        history=f"{RUNS_DIR}/{CELL_PATTERN}/history.csv",
        weights=f"{RUNS_DIR}/{CELL_PATTERN}/weights.npz",
    log:
        f"logs/runs/{CELL_PATTERN}.log",
    benchmark:
        f"results/benchmarks/runs/{CELL_PATTERN}.tsv"
    group:
        "cells"
    conda:
        "../envs/linbench.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=1000,
        runtime=2,  # minutes
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/train_cell.py",
        settings=get_train_settings,
    # A shell job, not `script:`, so a cell's process imports numpy and the numpy core
    # only: start-up stays small next to a 1-2 s training run.
    shell:
        "{params.python:q} {params.script:q} --features-dir $(dirname {input.train_X:q})"
        " --out-dir $(dirname {output.metrics:q}) --features {wildcards.features}"
        " --loss {wildcards.loss}"
        " --regularizer {wildcards.regularizer} --strength {wildcards.strength}"
        " --batch-size {wildcards.batch_size} --learning-rate {wildcards.learning_rate}"
        " --seed {wildcards.seed} {params.settings} > {log:q} 2>&1"
