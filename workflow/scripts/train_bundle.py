"""Rules train_*: one bundle of grid cells in one pass. A plain script (not `script:`), so a
job imports numpy and the numpy core only and starts fast.

Usage: train_bundle.py --features-dir DIR --settings JSON --cells JSON
  --settings: the config `train` section; --cells: a list of cells (`Cell` fields).
"""

import argparse
import json

from linbench.cell import run_bundle
from linbench.names import Cell
from linbench.scripting import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features-dir", required=True)
    parser.add_argument("--settings", required=True, type=json.loads)
    parser.add_argument("--cells", required=True, type=json.loads)
    args = parser.parse_args()
    run_bundle([Cell(**cell) for cell in args.cells], args.settings, args.features_dir)


run(main, None, rule="train")
