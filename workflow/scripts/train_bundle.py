"""Rules train_*: one bundle of grid cells in one pass. A plain script (not `script:`), so a
job imports numpy and the numpy core only and starts fast.

Usage: train_bundle.py --features-dir DIR --settings JSON [--subset-seed N] [--progress] OUTPUT...
  --settings: the config `train` section; --subset-seed: config `data.seed`;
  OUTPUT: the files of the bundle's cells, whose folders name the cells (so the rule's
  params do not change when a bundle gains a cell).
"""

import argparse
import json
from pathlib import Path

from linbench.cell import run_bundle
from linbench.grid import parse_cell_path
from linbench.scripting import reuse_freed_memory, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features-dir", required=True)
    parser.add_argument("--settings", required=True, type=json.loads)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="record ~32 progress points")
    parser.add_argument("outputs", nargs="+")
    args = parser.parse_args()
    reuse_freed_memory()
    folders = dict.fromkeys(str(Path(path).parent) for path in args.outputs)
    cells = [parse_cell_path(folder) for folder in folders]
    run_bundle(
        cells,
        args.settings,
        args.features_dir,
        subset_seed=args.subset_seed,
        progress=args.progress,
    )


run(main, None, rule="train")
