rule fit_dictionary:
    input:
        images="results/data/train_images.npy",
    output:
        "results/features/{features}/dictionary.npz",
    log:
        "logs/features/{features}/dictionary.log",
    benchmark:
        "results/benchmarks/features/{features}/dictionary.tsv"
    conda:
        "../envs/linbench.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        block=get_learned_block,
    message:
        "Features {wildcards.features}: learn the k-means dictionary -> {output}"
    script:
        "../scripts/fit_dictionary.py"


rule extract_features:
    input:
        images="results/data/{split}_images.npy",
        dictionary=get_dictionary,
    output:
        features="results/features/{features}/shards/{split}_{shard}.npy",
        info="results/features/{features}/shards/{split}_{shard}.json",
    log:
        "logs/features/{features}/{split}_{shard}.log",
    benchmark:
        "results/benchmarks/features/{features}/{split}_{shard}.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        blocks=get_feature_blocks,
        shards=config["features"]["shards"],
    message:
        "Features {wildcards.features}: extract shard {wildcards.shard} of {wildcards.split}"
    script:
        "../scripts/extract_features.py"


rule gather_features:
    input:
        unpack(get_shard_outputs),
        **{f"{split}_labels": f"results/data/{split}_labels.npy" for split in SPLITS},
    output:
        **{
            f"{split}_{kind}": f"results/features/{{features}}/{split}_{kind}.npy"
            for split in SPLITS
            for kind in ("X", "y")
        },
        stats="results/features/{features}/stats.npz",
        info="results/features/{features}/info.json",
    log:
        "logs/features/{features}/gather.log",
    benchmark:
        "results/benchmarks/features/{features}/gather.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        blocks=get_feature_blocks,
    message:
        "Features {wildcards.features}: gather the shards, standardise -> results/features/{wildcards.features}/"
    script:
        "../scripts/gather_features.py"


rule plot_hog_examples:
    input:
        images="results/data/test_images.npy",
        labels="results/data/test_labels.npy",
        splits="results/data/splits.json",
    output:
        report(
            "results/reports/figures/hog_examples.png",
            caption="../report/hog_examples.rst",
            category=get_category("hog_examples"),
            labels={"figure": "HOG examples"},
        ),
    log:
        "logs/features/hog_examples.log",
    benchmark:
        "results/benchmarks/features/hog_examples.tsv"
    # Needs only the data: drawn first, it is not left running when a long study stops.
    priority: 10
    conda:
        "../envs/linbench.yaml"
    params:
        fset=get_hog_example_block()[0],
        block=get_hog_example_block()[1],
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_hog_examples.py"


rule plot_centroids:
    input:
        "results/features/{features}/dictionary.npz",
    output:
        report(
            "results/reports/figures/centroids_{features}.png",
            caption="../report/centroids.rst",
            category=get_category("centroids"),
            labels={"figure": "k-means centroids", "features": "{features}"},
        ),
    log:
        "logs/features/{features}/centroids.log",
    benchmark:
        "results/benchmarks/features/{features}/centroids.tsv"
    conda:
        "../envs/linbench.yaml"
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_centroids.py"
