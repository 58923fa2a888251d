import json
import math
import os
import re
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
from linbench.features import (
    dictionary_params,
    learned_block,
    resolve_block,
    resolve_feature_sets,
)
from linbench.grid import (
    INT_RE,
    NAME_RE,
    NUMBER_RE,
    expand_grid,
    make_bundles,
    progress_groups,
    training_rules,
)
from linbench.names import (
    ALL_IMAGES,
    BUNDLE_KEYS,
    CELL_FILES,
    DRAWABLE_BLOCKS,
    LOSSES,
    REGULARIZERS,
    RUNS_DIR,
    SPLITS,
    TRAIN_DEFAULTS,
)

# ----------------------------------------------------------------------------- config
# Validated once, before any job runs: a bad value stops here with one line naming the
# key, not a traceback.
try:
    config = validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
    # Block parameters are checked against the CIFAR-10 image size, too.
    FEATURE_SETS = resolve_feature_sets(config["features"]["sets"])
except LinbenchError as err:
    message = str(err)
    sys.exit(
        f"linbench: {message if 'invalid config' in message else 'invalid config: ' + message}"
    )


CELLS = expand_grid(config["grid"])
# The enabled sub-grids (a sub-grid set to null is switched off).
GRIDS = {name: grid for name, grid in config["grid"].items() if grid is not None}
REPORTS = "results/reports"
FIGURES = f"{REPORTS}/figures"
SCRIPTS = str(Path(workflow.basedir) / "workflow/scripts")
# Shell rules run their scripts with the interpreter that runs Snakemake, like `script:`
# does, so an un-activated virtual environment works.
PYTHON = sys.executable


wildcard_constraints:
    split="train|val|test",
    shard=INT_RE,
    features=NAME_RE,
    loss="|".join(LOSSES),
    regularizer="|".join(REGULARIZERS),
    strength=NUMBER_RE,
    batch_size=f"{INT_RE}|{ALL_IMAGES}",
    learning_rate=NUMBER_RE,
    seed=INT_RE,


# ----------------------------------------------------------------------------- grid values


def get_grid_values(key):
    """Every value of `key` (a sub-grid key such as "loss") over the enabled sub-grids,
    each once, in config order."""
    return list(dict.fromkeys(v for grid in GRIDS.values() for v in grid[key]))


def get_grid_strengths():
    """Each regularizer of the study -> its strengths over the enabled sub-grids."""
    return {
        reg: list(
            dict.fromkeys(
                s
                for grid in GRIDS.values()
                if reg in grid["regularizer"]
                for s in grid["strength"][reg]
            )
        )
        for reg in get_grid_values("regularizer")
    }


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
        f"{REPORTS}/comparisons.csv",
        f"{REPORTS}/summary.md",
        *REPORT_FIGURES.values(),
        *get_feature_figures(),
    ]


# The report's categories, the one place that says what the report shows where. Snakemake
# lists categories by name, hence the numbers; the report opens on the first, the answer.
# Each entry: category -> the report items it holds (a figure's name, or a table's).
REPORT_CATEGORIES = {
    "1 The answer": ["summary", "answer"],
    "2 Regimes": ["accuracy_vs_size", "regularization_path", "gap_vs_size"],
    "3 Batch size and learning rate": ["steps_vs_images", "suboptimality", "best_rate"],
    "4 Accuracy": [
        "val_heatmaps",
        "best_accuracy",
        "time_vs_accuracy",
        "confusion_matrix",
    ],
    "5 Training": ["learning_curves"],
    "6 Weights": ["weights"],
    "7 Templates": ["templates"],
    "8 Features": ["hog_examples", "centroids"],
    "9 Sanity checks": ["sanity"],
    "10 Tables": ["comparisons"],
}


# The report opens on the workflow's description: aggregate writes the answer before it.
REPORT_DESCRIPTION = f"{workflow.basedir}/workflow/report/workflow.rst"
REPORT_LANDING = f"{REPORTS}/report.rst"


def get_report_text():
    """The report's first page: the answer and the description once aggregate wrote them."""
    landing = Path(REPORT_LANDING)
    return str(landing.resolve()) if landing.exists() else REPORT_DESCRIPTION


def get_answer_figure():
    """The file name of the figure in the answer's category (the summary's category)."""
    category = get_category("summary")
    figures = [
        REPORT_FIGURES[i] for i in REPORT_CATEGORIES[category] if i in REPORT_FIGURES
    ]
    return Path(figures[0]).name if figures else "summary.md"


def get_category(item):
    """The report category of item `item` (see REPORT_CATEGORIES)."""
    for category, items in REPORT_CATEGORIES.items():
        if item in items:
            return category
    raise ValueError(f"report item {item!r} is in no category of REPORT_CATEGORIES")


# Each figure has its own job in report.smk (plot_<name> draws figures/<name>.png).
REPORT_FIGURES = {
    name: f"{FIGURES}/{name}.png"
    for name in (
        "answer",
        "val_heatmaps",
        "best_accuracy",
        "time_vs_accuracy",
        "confusion_matrix",
        "accuracy_vs_size",
        "regularization_path",
        "gap_vs_size",
        "learning_curves",
        "weights",
        "steps_vs_images",
        "suboptimality",
        "best_rate",
    )
}


def get_closing_note():
    """The last lines of a successful run: where the answer, the figures and the report
    are (those that exist: a run may have built only some of them)."""
    summary, runs = f"{REPORTS}/summary.md", f"{REPORTS}/runs.csv"
    figures = sorted(Path(FIGURES).glob("*.png")) if Path(FIGURES).is_dir() else []
    lines = ["", "linbench: done."]
    if Path(summary).exists():
        lines.append(f"  the answer   {summary} (its first table)")
    if Path(runs).exists():
        lines.append(f"  every cell   {runs} (one row per cell)")
    if figures:
        lines.append(f"  figures      {FIGURES}/ ({len(figures)} PNG files)")
    if Path(summary).exists():
        lines.append(
            "  the report   snakemake --report results/report.html"
            " (then open results/report.html in a browser)"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- features


def get_feature_blocks(wildcards):
    """The blocks of feature set `features`, validated and completed with their defaults."""
    return FEATURE_SETS[wildcards.features]


def get_dictionary(wildcards):
    """The fitted dictionary of feature set `features`, if it has a learned (kmeans) block."""
    if learned_block(FEATURE_SETS[wildcards.features]) is None:
        return []
    return f"results/features/{wildcards.features}/dictionary.npz"


def get_learned_block(wildcards):
    """The kmeans block of feature set `features` without its encoding-only options, so
    changing those re-extracts the features but never refits the dictionary."""
    block = dictionary_params(FEATURE_SETS[wildcards.features])
    if block is None:
        raise ValueError(f"feature set {wildcards.features!r} has no kmeans block")
    return block


def get_shard_outputs(wildcards):
    """Every shard's features and record of feature set `features`, per split, in order."""
    shards = range(config["features"]["shards"])
    prefix = f"results/features/{wildcards.features}/shards"
    return {
        f"{split}_{kind}": [f"{prefix}/{split}_{shard}.{ext}" for shard in shards]
        for split in SPLITS
        for kind, ext in (("features", "npy"), ("info", "json"))
    }


def get_hog_example_block():
    """(feature set, block) of the first HOG block, preferring the sets the grid uses."""
    for name in [*get_grid_values("features"), *FEATURE_SETS]:
        for block in FEATURE_SETS.get(name, []):
            if block["block"] == "hog":
                return name, block
    return "default", resolve_block({"block": "hog"})


def get_learned_sets():
    """The grid's feature sets with a kmeans block: each has a dictionary and its figure."""
    return [
        name
        for name in get_grid_values("features")
        if learned_block(FEATURE_SETS[name]) is not None
    ]


def get_feature_figures():
    """The Features category of the report: HOG pictures, and the centroids of each
    learned set the grid trains on."""
    return [
        f"{FIGURES}/hog_examples.png",
        *(f"{FIGURES}/centroids_{name}.png" for name in get_learned_sets()),
    ]


# ----------------------------------------------------------------------------- grid


def get_grid_features():
    """The feature sets the grid trains on, each once."""
    return get_grid_values("features")


def get_cell_outputs(filename):
    """`filename` in every grid cell's folder."""
    return [f"{cell.path}/{filename}" for cell in CELLS]


# Bundles of cells trained together, one job each, in a few rules (train.smk).
BUNDLES = make_bundles(CELLS, config["train"]["bundle_size"])
TRAINING_RULES = training_rules(BUNDLES, config["grid"])
PROGRESS_BUNDLES = progress_groups(BUNDLES, config["grid"])


def get_training_outputs(training):
    """Every file of every cell a job of `training` writes, under its {group} folder."""
    return [
        f"{RUNS_DIR}/{{group}}/{model}/{name}"
        for model in training.models
        for name in CELL_FILES
    ]


def get_group_regex(training):
    """The {group} folders of the bundles of `training`, and no other: a group's other
    bundles train other models, in other rules."""
    return "|".join(re.escape(bundle.group) for bundle in training.bundles)


def get_progress_flag(training):
    """`--progress` for the bundles of `training` that record ~32 progress points."""

    def flag(wildcards):
        bundle = training.bundle(wildcards.group)
        return "--progress" if bundle.path in PROGRESS_BUNDLES else ""

    return flag


def get_bundle_features(wildcards):
    """The features of every split that the bundle in {group} trains and evaluates on."""
    features = parse_group(wildcards.group)["features"]
    return {
        f"{split}_{kind}": f"results/features/{features}/{split}_{kind}.npy"
        for split in SPLITS
        for kind in ("X", "y")
    }


def parse_group(group):
    """features~hog/n~all/... -> {"features": "hog", "train_size": "all", ...}."""
    return dict(zip(BUNDLE_KEYS, (part.split("~", 1)[1] for part in group.split("/"))))


def get_train_settings():
    """The fixed training settings (config `train`) as JSON, for the training script."""
    return json.dumps({k: v for k, v in config["train"].items() if k in TRAIN_DEFAULTS})


def get_training_code():
    """The numpy core a training job runs: editing it reruns the training jobs (Snakemake
    compares these files' times with the cells', as with any input)."""
    modules = (
        "losses",
        "regularizers",
        "train",
        "bundle",
        "outcome",
        "subsets",
        "cell",
    )
    return [f"{LINBENCH_DIR}/linbench/{module}.py" for module in modules]


def get_bundle_mem_mb(wildcards, input):
    """Memory of a bundle job: the features are memory-mapped, but the pages it reads count;
    plus the per-bundle arrays (scores of 8192 rows x K*C, weights) and Python/numpy."""
    arrays = [input[f"{split}_{kind}"] for split in SPLITS for kind in ("X", "y")]
    feature_mb = sum(os.path.getsize(f) for f in arrays if os.path.exists(f)) / 2**20
    return 300 + math.ceil(1.2 * feature_mb)


def get_bundle_runtime(training):
    """Minutes for a bundle job (SLURM --time), as a function of its input: generous, as a
    cluster kills late jobs. A model costs ~0.01 s per epoch of 45,000 HOG images (58 MB of
    features) in a bundle (benchmarks/bench_train.py), so ~0.2 us per image seen; the cost
    grows with the feature file, and a run sees at least `train.min_images_seen` images.
    """
    train = config["train"]
    images = max(train["min_images_seen"], 45_000 * train["epochs"])

    def runtime(wildcards, input):
        feature_mb = (
            os.path.getsize(input.train_X) / 1e6 if os.path.exists(input.train_X) else 0
        )
        seconds = 0.2e-6 * images * len(training.models) * max(feature_mb, 58) / 58
        return max(2, math.ceil(10 * seconds / 60))

    return runtime


# ----------------------------------------------------------------------------- report


def get_curves_setting():
    """Learning curves show every learning rate of one setting: no regularizer (if in
    the grid) at the smallest batch size, whose noisy steps diverge first."""
    regs = get_grid_values("regularizer")
    return {
        "regularizer": "none" if "none" in regs else regs[0],
        "batch_size": min(b for b in get_grid_values("batch_size") if b != ALL_IMAGES),
    }


# ----------------------------------------------------------------------------- sanity checks

SANITY_TABLE = f"{REPORTS}/sanity.csv"
SANITY_MARKDOWN = f"{REPORTS}/sanity.md"
# Exists only when every check passed (rule sanity_gate).
SANITY_OK = f"{REPORTS}/sanity.ok"
TEMPLATE_FIGURE = f"{FIGURES}/templates_{{features}}_{{loss}}.png"


def get_sanity_code():
    """The code the sanity checks test: editing it reruns them."""
    package = Path(LINBENCH_DIR) / "linbench"
    core = [
        package / f"{module}.py"
        for module in ("losses", "regularizers", "train", "names")
    ]
    return [str(p) for p in [*core, *sorted((package / "sanity").glob("*.py"))]]


def get_sanity_outputs():
    """Sanity table (CSV, Markdown), template figures, and the all-checks-passed marker."""
    return [SANITY_TABLE, SANITY_MARKDOWN, *get_template_figures(), SANITY_OK]


def get_template_blocks(features):
    """The kinds of the blocks of feature set `features` that have a template picture."""
    blocks = config["features"]["sets"].get(features, [])
    return [b["block"] for b in blocks if b["block"] in DRAWABLE_BLOCKS]


def get_template_figures():
    """One figure per loss and grid feature set with a pixels or HOG block."""
    return [
        TEMPLATE_FIGURE.format(features=features, loss=loss)
        for features in get_grid_features()
        if get_template_blocks(features)
        for loss in get_grid_values("loss")
    ]


def get_template_weights(wildcards):
    """weights.npz of every cell of the figure's feature set and loss."""
    return [
        f"{cell.path}/weights.npz"
        for cell in CELLS
        if cell.features == wildcards.features and cell.loss == wildcards.loss
    ]


def get_gate_inputs(wildcards):
    """The report's files (they need every grid cell) but the marker: the gate runs last, so
    a failed check cannot stop a run without --keep-going before its report is built."""
    files = dict.fromkeys([*get_report_outputs(), *get_sanity_outputs()])
    return [f for f in files if f not in (SANITY_OK, SANITY_TABLE)]
