# Training: one job per bundle of grid cells (linbench.grid.make_bundles). A bundle's cells
# share their data, loss, batch size and seed, so one job trains them together in one pass
# over the data (linbench.bundle) and writes each cell's folder, results/runs/{group}/<model>.
# Snakemake needs a job's outputs from its rule, so bundles that train the same models
# (most bundles of one sub-grid) share a rule: train_<sub-grids>, whose {group} wildcard
# (features~F/n~N/loss~L/batch~B/seed~K) picks the bundle. Rerun one cell's bundle with
# `--forcerun results/runs/<cell>/metrics.json`.
for training in TRAINING_RULES:

    rule:
        name:
            training.name
        input:
            unpack(get_bundle_features),
            code=get_training_code(),
        output:
            get_training_outputs(training),
        log:
            f"logs/{training.name}/{{group}}.log",
        benchmark:
            f"results/benchmarks/{training.name}/{{group}}.tsv"
        wildcard_constraints:
            group=get_group_regex(training),
        group:
            "cells"
        conda:
            "../envs/linbench.yaml"
        threads: config["train"]["threads"]
        resources:
            mem_mb=get_bundle_mem_mb,
            runtime=get_bundle_runtime(training),  # minutes
        params:
            python=PYTHON,
            script=f"{SCRIPTS}/train_bundle.py",
            settings=get_train_settings(),
            subset_seed=config["data"]["seed"],
            progress=get_progress_flag(training),
        message:
            f"Train {len(training.models)} cells in one pass -> results/runs/{{wildcards.group}}/ ({training.name})"
        # A shell job, not `script:`, so the job imports numpy and the numpy core only. The
        # cells are named by their output folders, not by params: a bundle that loses cells
        # (a narrower grid) has nothing to rerun.
        shell:
            "{params.python:q} {params.script:q} --features-dir $(dirname {input.train_X:q})"
            " --settings {params.settings:q} --subset-seed {params.subset_seed} {params.progress}"
            " {output:q} > {log:q} 2>&1"
