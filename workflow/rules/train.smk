# One rule per bundle of grid cells (linbench.grid.make_bundles): a bundle's cells share
# their data, loss, batch size and seed, so one job trains them together in one pass over
# the data (linbench.bundle) and writes every cell's folder. Snakemake must know each job's
# outputs when it reads the workflow, hence one named rule per bundle, made in a loop.
for bundle in BUNDLES:

    rule:
        name:
            bundle.rule_name
        input:
            **get_bundle_features(bundle),
            code=get_training_code(),
        output:
            get_bundle_outputs(bundle),
        log:
            f"logs/bundles/{bundle.path}.log",
        benchmark:
            f"results/benchmarks/bundles/{bundle.path}.tsv"
        group:
            "cells"
        conda:
            "../envs/linbench.yaml"
        threads: config["train"]["threads"]
        resources:
            mem_mb=get_bundle_mem_mb,
            runtime=get_bundle_runtime(bundle),  # minutes
        params:
            python=PYTHON,
            script=f"{SCRIPTS}/train_bundle.py",
            settings=get_train_settings(),
            subset_seed=config["data"]["seed"],
        # A shell job, not `script:`, so the job imports numpy and the numpy core only. The
        # cells are named by their output folders, not by params: a bundle that loses cells
        # (a narrower grid) has nothing to rerun.
        shell:
            "{params.python:q} {params.script:q} --features-dir $(dirname {input.train_X:q})"
            " --settings {params.settings:q} --subset-seed {params.subset_seed}"
            " {output:q} > {log:q} 2>&1"
