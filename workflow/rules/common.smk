import os
import sys
from pathlib import Path


# The package lives in workflow/linbench; rule scripts and jobs (also on a cluster
# node, where this file is read again) find it through PYTHONPATH.
LINBENCH_DIR = str(Path(workflow.basedir) / "workflow")
if LINBENCH_DIR not in sys.path:
    sys.path.insert(0, LINBENCH_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (LINBENCH_DIR, os.environ.get("PYTHONPATH")) if p
)

from linbench.config import validate_config
from linbench.errors import LinbenchError
from linbench.grid import CELL_PATTERN, INT_RE, NAME_RE, NUMBER_RE, RUNS_DIR, expand_grid


try:
    config = validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
except LinbenchError as err:
    # One clear line, not a traceback: the message names the key to fix.
    sys.exit(f"linbench: {err}")


SPLITS = ["train", "val", "test"]
CELLS = expand_grid(config["grid"])
SCRIPTS = str(Path(workflow.basedir) / "workflow/scripts")


wildcard_constraints:
    split="train|val|test",
    fset=NAME_RE,
    features=NAME_RE,
    loss="svm|softmax",
    reg="none|l1|l2|elastic_net|max_norm|dropout",
    strength=NUMBER_RE,
    batch=INT_RE,
    lr=NUMBER_RE,
    seed=INT_RE,


def get_cell_outputs(filename):
    """`filename` in every grid cell's folder."""
    return [f"{cell.path}/{filename}" for cell in CELLS]


def get_grid_features():
    """The feature sets the grid trains on."""
    return list(dict.fromkeys(config["grid"]["features"]))


def get_final_outputs():
    """Everything `snakemake` builds by default."""
    return [
        *get_cell_outputs("metrics.json"),
        *get_report_outputs(),
    ]


def get_train_settings(wildcards):
    """The fixed training settings (config `train`) as command-line options of a cell."""
    return " ".join(
        f"--{key.replace('_', '-')} {value}"
        for key, value in config["train"].items()
        if key != "threads"
    )
