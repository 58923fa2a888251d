import os
import sys
from pathlib import Path

# The package lives in workflow/linbench; rule scripts and jobs (also on a cluster
# node, where this file is read again) find it through PYTHONPATH.
LINBENCH_DIR = str(Path(workflow.basedir) / "workflow")
if LINBENCH_DIR not in sys.path:
    sys.path.insert(0, LINBENCH_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (LINBENCH_DIR, os.getenv("PYTHONPATH")) if p)
)

from linbench.config import validate_config
from linbench.errors import LinbenchError
from linbench.features import BLOCK_DEFAULTS, resolve_feature_sets
from linbench.grid import (
    CELL_PATTERN,
    INT_RE,
    NAME_RE,
    NUMBER_RE,
    RUNS_DIR,
    expand_grid,
)
from linbench.locks import clear_stale_snakemake_locks

# ----------------------------------------------------------------------------- config
# Validated once, before any job runs: a bad value stops here with one line naming the
# key, not a traceback.
try:
    config = validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
    # Block parameters are checked against the CIFAR-10 image size, too.
    FEATURE_SETS = resolve_feature_sets(config["features"]["sets"])
except (LinbenchError, ValueError) as err:
    message = str(err)
    sys.exit(
        f"linbench: {message if 'invalid config' in message else 'invalid config: ' + message}"
    )


# A run killed with SIGKILL leaves Snakemake's lock behind; when no other run is alive
# here, it is stale, so the same command resumes the run (see linbench/locks.py).
if workflow.is_main_process and clear_stale_snakemake_locks():
    print("linbench: removed the stale lock of an interrupted run", file=sys.stderr)


SPLITS = ["train", "val", "test"]
CELLS = expand_grid(config["grid"])
REPORTS = "results/reports"
FIGURES = f"{REPORTS}/figures"
SCRIPTS = str(Path(workflow.basedir) / "workflow/scripts")
# Shell rules run their scripts with the interpreter that runs Snakemake, like `script:`
# does, so an un-activated virtual environment works.
PYTHON = sys.executable


wildcard_constraints:
    split="train|val|test",
    shard=INT_RE,
    fset=NAME_RE,
    features=NAME_RE,
    loss="svm|softmax",
    reg="none|l1|l2|elastic_net|max_norm|dropout",
    strength=NUMBER_RE,
    batch=INT_RE,
    lr=NUMBER_RE,
    seed=INT_RE,


# ----------------------------------------------------------------------------- targets


def get_final_outputs():
    """Everything `snakemake` builds by default."""
    return [
        *get_cell_outputs("metrics.json"),
        *get_report_outputs(),
        *get_sanity_outputs(),
    ]


def get_report_outputs():
    """Tables, summary and figures of the report (every file `snakemake --report` shows)."""
    return [
        f"{REPORTS}/runs.csv",
        f"{REPORTS}/history.csv",
        f"{REPORTS}/summary.md",
        *ACCURACY_FIGURES.values(),
        *TRAINING_FIGURES.values(),
        f"{FIGURES}/hog_examples.png",
    ]


ACCURACY_FIGURES = {
    "heatmaps": f"{FIGURES}/val_heatmaps.png",
    "best_accuracy": f"{FIGURES}/best_accuracy.png",
    "time_accuracy": f"{FIGURES}/time_vs_accuracy.png",
    "confusion": f"{FIGURES}/confusion_matrix.png",
}
TRAINING_FIGURES = {
    "learning_curves": f"{FIGURES}/learning_curves.png",
    "weights": f"{FIGURES}/weights.png",
}


# ----------------------------------------------------------------------------- features


def get_feature_blocks(wildcards):
    """The blocks of feature set `fset`, validated and completed with their defaults."""
    return FEATURE_SETS[wildcards.fset]


def get_shard_outputs(wildcards):
    """Every shard's features and record of feature set `fset`, per split, in order."""
    shards = range(config["features"]["shards"])
    prefix = f"results/features/{wildcards.fset}/shards"
    return {
        f"{split}_{kind}": [f"{prefix}/{split}_{shard}.{ext}" for shard in shards]
        for split in SPLITS
        for kind, ext in (("features", "npy"), ("info", "json"))
    }


def get_hog_example_block():
    """(feature set, block) of the first HOG block, preferring the sets the grid uses."""
    for name in [*config["grid"]["features"], *FEATURE_SETS]:
        for block in FEATURE_SETS.get(name, []):
            if block["block"] == "hog":
                return name, block
    return "default", {"block": "hog", **BLOCK_DEFAULTS["hog"]}


# ----------------------------------------------------------------------------- grid


def get_grid_features():
    """The feature sets the grid trains on, each once."""
    return list(dict.fromkeys(config["grid"]["features"]))


def get_cell_outputs(filename):
    """`filename` in every grid cell's folder."""
    return [f"{cell.path}/{filename}" for cell in CELLS]


def get_train_settings(wildcards):
    """The fixed training settings (config `train`) as command-line options of a cell."""
    return " ".join(
        f"--{key.replace('_', '-')} {value}"
        for key, value in config["train"].items()
        if key != "threads"
    )


# ----------------------------------------------------------------------------- report


def get_curves_setting():
    """Learning curves show every learning rate of one setting: no regularizer (if in
    the grid) at the smallest batch size, whose noisy steps diverge first."""
    regs = config["grid"]["regularizer"]
    return {
        "regularizer": "none" if "none" in regs else regs[0],
        "batch_size": min(config["grid"]["batch_size"]),
    }


# ----------------------------------------------------------------------------- sanity checks

# Sanity checks (initial loss, gradient check) and learned templates: issue 7.
# Assumes common.smk (config, CELLS, REPORTS, FIGURES, LINBENCH_DIR, get_grid_features,
# get_report_outputs).
SANITY_TABLE = f"{REPORTS}/sanity.csv"
SANITY_MARKDOWN = f"{REPORTS}/sanity.md"
# Exists only when every check passed (rule sanity_gate).
SANITY_OK = f"{REPORTS}/sanity.ok"
TEMPLATE_FIGURE = f"{FIGURES}/templates_{{fset}}_{{loss}}.png"
# Blocks with a template picture (linbench.templates.DRAWABLE_BLOCKS; not imported here,
# it would load matplotlib for every `snakemake` call).
TEMPLATE_BLOCKS = ("pixels", "hog")


def get_sanity_outputs():
    """Sanity table (CSV, Markdown), template figures, and the all-checks-passed marker."""
    return [SANITY_TABLE, SANITY_MARKDOWN, *get_template_figures(), SANITY_OK]


def get_template_blocks(fset):
    """The kinds of the blocks of feature set `fset` that have a template picture."""
    blocks = config["features"]["sets"].get(fset, [])
    return [b["block"] for b in blocks if b["block"] in TEMPLATE_BLOCKS]


def get_template_figures():
    """One figure per loss and grid feature set with a pixels or HOG block."""
    return [
        TEMPLATE_FIGURE.format(fset=fset, loss=loss)
        for fset in get_grid_features()
        if get_template_blocks(fset)
        for loss in config["grid"]["loss"]
    ]


def get_template_weights(wildcards):
    """weights.npz of every cell of the figure's feature set and loss."""
    return [
        f"{cell.path}/weights.npz"
        for cell in CELLS
        if cell.features == wildcards.fset and cell.loss == wildcards.loss
    ]


def get_gate_inputs(wildcards):
    """The report's files (they need every grid cell) but the marker: the gate runs last, so
    a failed check cannot stop a run without --keep-going before its report is built."""
    files = dict.fromkeys([*get_report_outputs(), *get_sanity_outputs()])
    return [f for f in files if f not in (SANITY_OK, SANITY_TABLE)]
