# The report jobs take seconds: run them on the submitting host, not as cluster jobs.
localrules:
    aggregate,
    plot_answer,
    plot_val_heatmaps,
    plot_best_accuracy,
    plot_time_vs_accuracy,
    plot_confusion_matrix,
    plot_accuracy_vs_size,
    plot_regularization_path,
    plot_gap_vs_size,
    plot_learning_curves,
    plot_weights,
    plot_templates,
    plot_steps_vs_images,
    plot_suboptimality,
    plot_best_rate,


rule aggregate:
    input:
        # Each cell's metrics.json, written last by its training job: the job's other files
        # (history.csv, progress.csv, test_predictions.npy) are read beside it. Declaring
        # them too would triple the files Snakemake matches to rules when it plans a run
        # (the default study's plan took 53 s instead of 17 s).
        metrics=get_cell_outputs("metrics.json"),
        # With each cell's test_predictions.npy (beside its metrics.json, written by the
        # same job): every regularizer against none, paired on the test images.
        test_labels="results/data/test_labels.npy",
        # The report's first page is the answer, then this description.
        description=REPORT_DESCRIPTION,
    output:
        # Neither in the HTML report: a row per cell (runs.csv, 1.6 MB in the default study)
        # or per cell and recorded epoch (history.csv) would push it past 10 MB; the
        # report holds comparisons.csv, the summary and the figures drawn from them.
        runs=f"{REPORTS}/runs.csv",
        history=f"{REPORTS}/history.csv",
        # Every run's progress records: the optimizer analysis reads them.
        progress=f"{REPORTS}/progress.csv",
        comparisons=report(
            f"{REPORTS}/comparisons.csv",
            caption="../report/comparisons.rst",
            category=get_category("comparisons"),
            labels={"table": "comparisons (each regularizer against none)"},
        ),
        summary=report(
            f"{REPORTS}/summary.md",
            caption="../report/summary.rst",
            category=get_category("summary"),
            labels={"table": "summary"},
        ),
        landing=REPORT_LANDING,
    log:
        "logs/report/aggregate.log",
    benchmark:
        "results/benchmarks/report/aggregate.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        # Which sub-grids hold each cell: every question is answered inside its own.
        grid=GRIDS,
        answer_figure=get_answer_figure(),
        answer_category=get_category("summary"),
        optimizer=config["optimizer"],
    message:
        f"Tables and summary of {len(CELLS)} cells: {{output.summary}}"
    script:
        "../scripts/aggregate.py"


rule plot_answer:
    input:
        comparisons=rules.aggregate.output.comparisons,
    output:
        report(
            REPORT_FIGURES["answer"],
            caption="../report/answer.rst",
            category=get_category("answer"),
            labels={"figure": "what each regularizer buys"},
        ),
    log:
        "logs/report/plot_answer.log",
    benchmark:
        "results/benchmarks/report/plot_answer.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="answer",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_val_heatmaps:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
    output:
        report(
            REPORT_FIGURES["val_heatmaps"],
            caption="../report/val_heatmaps.rst",
            category=get_category("val_heatmaps"),
            labels={"figure": "1 learning rate x batch size"},
        ),
    log:
        "logs/report/plot_val_heatmaps.log",
    benchmark:
        "results/benchmarks/report/plot_val_heatmaps.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="val_heatmaps",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_best_accuracy:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
    output:
        report(
            REPORT_FIGURES["best_accuracy"],
            caption="../report/best_accuracy.rst",
            category=get_category("best_accuracy"),
            labels={"figure": "2 best per loss and regularizer"},
        ),
    log:
        "logs/report/plot_best_accuracy.log",
    benchmark:
        "results/benchmarks/report/plot_best_accuracy.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="best_accuracy",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_time_vs_accuracy:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
    output:
        report(
            REPORT_FIGURES["time_vs_accuracy"],
            caption="../report/time_vs_accuracy.rst",
            category=get_category("time_vs_accuracy"),
            labels={"figure": "3 accuracy vs training time"},
        ),
    log:
        "logs/report/plot_time_vs_accuracy.log",
    benchmark:
        "results/benchmarks/report/plot_time_vs_accuracy.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="time_vs_accuracy",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_confusion_matrix:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
        # Only the best cell's metrics.json is read (from its folder, cell_dir in runs.csv,
        # which aggregate wrote from every cell's): which cell that is depends on results.
    output:
        report(
            REPORT_FIGURES["confusion_matrix"],
            caption="../report/confusion_matrix.rst",
            category=get_category("confusion_matrix"),
            labels={"figure": "4 confusion matrix of the best model"},
        ),
    log:
        "logs/report/plot_confusion_matrix.log",
    benchmark:
        "results/benchmarks/report/plot_confusion_matrix.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="confusion_matrix",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_accuracy_vs_size:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
    output:
        report(
            REPORT_FIGURES["accuracy_vs_size"],
            caption="../report/accuracy_vs_size.rst",
            category=get_category("accuracy_vs_size"),
            labels={"figure": "1 accuracy vs training-set size"},
        ),
    log:
        "logs/report/plot_accuracy_vs_size.log",
    benchmark:
        "results/benchmarks/report/plot_accuracy_vs_size.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="accuracy_vs_size",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_regularization_path:
    input:
        runs=rules.aggregate.output.runs,
        splits="results/data/splits.json",
    output:
        report(
            REPORT_FIGURES["regularization_path"],
            caption="../report/regularization_path.rst",
            category=get_category("regularization_path"),
            labels={"figure": "2 regularization path"},
        ),
    log:
        "logs/report/plot_regularization_path.log",
    benchmark:
        "results/benchmarks/report/plot_regularization_path.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="regularization_path",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_gap_vs_size:
    input:
        runs=rules.aggregate.output.runs,
    output:
        report(
            REPORT_FIGURES["gap_vs_size"],
            caption="../report/gap_vs_size.rst",
            category=get_category("gap_vs_size"),
            labels={"figure": "3 train - validation gap vs size"},
        ),
    log:
        "logs/report/plot_gap_vs_size.log",
    benchmark:
        "results/benchmarks/report/plot_gap_vs_size.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="gap_vs_size",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_learning_curves:
    input:
        runs=rules.aggregate.output.runs,
        history=rules.aggregate.output.history,
    output:
        report(
            REPORT_FIGURES["learning_curves"],
            caption="../report/learning_curves.rst",
            category=get_category("learning_curves"),
            labels={"figure": "learning curves"},
        ),
    log:
        "logs/report/plot_learning_curves.log",
    benchmark:
        "results/benchmarks/report/plot_learning_curves.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        **get_curves_setting(),
        figure="learning_curves",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_weights:
    input:
        runs=rules.aggregate.output.runs,
        # Only the chosen cells' weights.npz are loaded, from their folders (cell_dir in
        # runs.csv; the training job that wrote each metrics.json wrote its weights).
    output:
        report(
            REPORT_FIGURES["weights"],
            caption="../report/weights.rst",
            category=get_category("weights"),
            labels={"figure": "weight distributions"},
        ),
    log:
        "logs/report/plot_weights.log",
    benchmark:
        "results/benchmarks/report/plot_weights.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="weights",
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_templates:
    input:
        runs=rules.aggregate.output.runs,
        # Only the chosen cells' weights are read; which ones depends on results.
        weights=get_template_weights,
        info="results/features/{features}/info.json",
        splits="results/data/splits.json",
    output:
        report(
            TEMPLATE_FIGURE,
            caption="../report/templates.rst",
            category=get_category("templates"),
            labels={"features": "{features}", "loss": "{loss}"},
        ),
    log:
        "logs/report/plot_templates_{features}_{loss}.log",
    benchmark:
        "results/benchmarks/report/plot_templates_{features}_{loss}.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        blocks=lambda wildcards: get_template_blocks(wildcards.features),
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_templates.py"


rule plot_steps_vs_images:
    input:
        progress=rules.aggregate.output.progress,
    output:
        report(
            REPORT_FIGURES["steps_vs_images"],
            caption="../report/steps_vs_images.rst",
            category=get_category("steps_vs_images"),
            labels={"figure": "1 steps against images to each target"},
        ),
    log:
        "logs/report/plot_steps_vs_images.log",
    benchmark:
        "results/benchmarks/report/plot_steps_vs_images.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="steps_vs_images",
        targets=config["optimizer"]["targets"],
        subgrid=config["optimizer"]["subgrid"],
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_suboptimality:
    input:
        progress=rules.aggregate.output.progress,
    output:
        report(
            REPORT_FIGURES["suboptimality"],
            caption="../report/suboptimality.rst",
            category=get_category("suboptimality"),
            labels={"figure": "2 F - F* against work and time"},
        ),
    log:
        "logs/report/plot_suboptimality.log",
    benchmark:
        "results/benchmarks/report/plot_suboptimality.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="suboptimality",
        targets=config["optimizer"]["targets"],
        subgrid=config["optimizer"]["subgrid"],
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"


rule plot_best_rate:
    input:
        progress=rules.aggregate.output.progress,
    output:
        report(
            REPORT_FIGURES["best_rate"],
            caption="../report/best_rate.rst",
            category=get_category("best_rate"),
            labels={"figure": "3 best learning rate against batch size"},
        ),
    log:
        "logs/report/plot_best_rate.log",
    benchmark:
        "results/benchmarks/report/plot_best_rate.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        figure="best_rate",
        targets=config["optimizer"]["targets"],
        subgrid=config["optimizer"]["subgrid"],
    message:
        "Figure: {output}"
    script:
        "../scripts/plot_figure.py"
