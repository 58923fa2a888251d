# Compute nodes of a cluster often have no internet: the download runs where Snakemake runs.
localrules:
    download,


# Network errors and corrupted transfers are retried inside the job, with back-off
# (pooch); the archive appears only once its checksum matches.
rule download:
    output:
        archive="resources/cifar-10-binary.tar.gz",
    log:
        "logs/download.log",
    benchmark:
        "results/benchmarks/download.tsv"
    conda:
        "../envs/linbench.yaml"
    params:
        url=config["data"]["url"],
        md5=config["data"]["md5"],
    message:
        "Download CIFAR-10 (binary version) -> {output}"
    script:
        "../scripts/download.py"


rule prepare:
    input:
        archive=rules.download.output.archive,
    output:
        **{
            f"{split}_{kind}": f"results/data/{split}_{kind}.npy"
            for split in SPLITS
            for kind in ("images", "labels")
        },
        summary="results/data/splits.json",
    log:
        "logs/prepare.log",
    benchmark:
        "results/benchmarks/prepare.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=2000,
    params:
        val_size=config["data"]["val_size"],
        train_subset=config["data"]["train_subset"],
        seed=config["data"]["seed"],
    message:
        "Split train / validation / test -> results/data/"
    script:
        "../scripts/prepare.py"
