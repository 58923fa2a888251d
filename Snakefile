# linbench: linear SVM and softmax classifiers on CIFAR-10 HOG features.
# Read this file as a table of contents; every rule lives in workflow/rules/.


# Defaults live beside this file, so the workflow also runs with --directory elsewhere;
# --configfile and --config are deep-merged into them.
configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sanity.smk"


# The HTML report (snakemake --report) opens on the answer, then describes the workflow.
report: get_report_text()


rule all:
    default_target: True
    input:
        get_final_outputs(),
    message:
        "Every output of the study is up to date"


# The end of a run says where the answer is (Snakemake prints its own error report).
onsuccess:
    print(get_closing_note())
