# The report jobs take seconds: run them on the submitting host, not as cluster jobs.
localrules:
    aggregate,
    plot_accuracy,
    plot_training,


rule aggregate:
    input:
        metrics=get_cell_outputs("metrics.json"),
        history=get_cell_outputs("history.csv"),
    output:
        runs=report(
            f"{REPORTS}/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
            labels={"table": "runs (one row per cell)"},
        ),
        history=report(
            f"{REPORTS}/history.csv",
            caption="../report/history.rst",
            category="Tables",
            labels={"table": "history (one row per cell and epoch)"},
        ),
        summary=report(
            f"{REPORTS}/summary.md",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary"},
        ),
    log:
        "logs/report/aggregate.log",
    benchmark:
        "results/benchmarks/report/aggregate.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    script:
        "../scripts/aggregate.py"


rule plot_accuracy:
    input:
        runs=rules.aggregate.output.runs,
        # Only the best cell's test_confusion is read; which cell that is depends on results.
        metrics=get_cell_outputs("metrics.json"),
        splits="results/data/splits.json",
    output:
        heatmaps=report(
            ACCURACY_FIGURES["heatmaps"],
            caption="../report/val_heatmaps.rst",
            category="Accuracy",
            labels={"figure": "1 learning rate x batch size"},
        ),
        best_accuracy=report(
            ACCURACY_FIGURES["best_accuracy"],
            caption="../report/best_accuracy.rst",
            category="Accuracy",
            labels={"figure": "2 best per loss and regularizer"},
        ),
        time_accuracy=report(
            ACCURACY_FIGURES["time_accuracy"],
            caption="../report/time_vs_accuracy.rst",
            category="Accuracy",
            labels={"figure": "3 accuracy vs training time"},
        ),
        confusion=report(
            ACCURACY_FIGURES["confusion"],
            caption="../report/confusion_matrix.rst",
            category="Accuracy",
            labels={"figure": "4 confusion matrix of the best model"},
        ),
    log:
        "logs/report/plot_accuracy.log",
    benchmark:
        "results/benchmarks/report/plot_accuracy.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    script:
        "../scripts/plot_accuracy.py"


rule plot_training:
    input:
        runs=rules.aggregate.output.runs,
        history=rules.aggregate.output.history,
        # Only the chosen cells' weights are loaded; which ones depends on results.
        weights=get_cell_outputs("weights.npz"),
    output:
        learning_curves=report(
            TRAINING_FIGURES["learning_curves"],
            caption="../report/learning_curves.rst",
            category="Training",
            labels={"figure": "learning curves"},
        ),
        weights=report(
            TRAINING_FIGURES["weights"],
            caption="../report/weights.rst",
            category="Weights",
            labels={"figure": "weight distributions"},
        ),
    log:
        "logs/report/plot_training.log",
    benchmark:
        "results/benchmarks/report/plot_training.tsv"
    conda:
        "../envs/linbench.yaml"
    resources:
        mem_mb=1000,
    params:
        **get_curves_setting(),
    script:
        "../scripts/plot_training.py"
