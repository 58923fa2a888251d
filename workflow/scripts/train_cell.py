"""Rule train: one grid cell. Run as a plain script (not `script:`) to start fast.

Usage: train_cell.py --features-dir DIR --out-dir DIR --features hog --loss svm ...
"""

import argparse
from dataclasses import MISSING, fields

from linbench.cell import CellSpec, run_cell
from linbench.scripting import run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features-dir", required=True)
    parser.add_argument("--out-dir", required=True)
    for field in fields(CellSpec):
        kind = {"str": str, "int": int, "float": float}[str(field.type)]
        flag = "--" + field.name.replace("_", "-")
        if field.default is MISSING:
            parser.add_argument(flag, type=kind, required=True, dest=field.name)
        else:
            parser.add_argument(flag, type=kind, default=field.default, dest=field.name)
    return parser.parse_args()


def main() -> None:
    args = vars(parse_args())
    features_dir, out_dir = args.pop("features_dir"), args.pop("out_dir")
    run_cell(CellSpec(**args), features_dir, out_dir)


run(main, None, rule="train")
