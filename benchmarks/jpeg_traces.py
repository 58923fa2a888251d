"""Traces of JPEG compression in a prepared CIFAR-10 split: 8x8 blocks and halved chroma.

The shared development copy of CIFAR-10 was rebuilt from a JPEG re-encoding. JPEG codes
8x8 blocks separately, so neighbouring pixels differ more across a block boundary than
inside a block; and it usually stores colour (chroma) at half resolution, so the two
pixels of each horizontal pair share their colour and differ less than pixels of
neighbouring pairs. On the original CIFAR-10 both ratios are close to 1. Learned features
of fine 6x6 colour patches suffer more from this than HOG does.

    python benchmarks/jpeg_traces.py [--data /work/data/results/data] [--images 5000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def column_steps(channel: np.ndarray) -> np.ndarray:
    """Mean |x[:, :, j + 1] - x[:, :, j]| over images and rows, per column j."""
    return np.abs(np.diff(channel, axis=2)).mean(axis=(0, 1))


def traces(images: np.ndarray) -> dict[str, float]:
    x = images.astype(np.float64)
    luma = x @ np.array([0.299, 0.587, 0.114])
    chroma = x @ np.array([-0.1687, -0.3313, 0.5])  # Cb
    boundary = np.arange(7, images.shape[2] - 1, 8)  # steps from column 8k+7 to 8k+8
    inside = np.setdiff1d(np.arange(images.shape[2] - 1), boundary)
    luma_steps, chroma_steps = column_steps(luma), column_steps(chroma)
    return {
        "luma_block_boundary_ratio": luma_steps[boundary].mean() / luma_steps[inside].mean(),
        "chroma_block_boundary_ratio": chroma_steps[boundary].mean() / chroma_steps[inside].mean(),
        # Steps between pairs (2k+1 -> 2k+2) against steps within pairs (2k -> 2k+1).
        "chroma_pair_ratio": chroma_steps[1::2].mean() / chroma_steps[0::2].mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/results/data"))
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    images = np.load(args.data / "train_images.npy", mmap_mode="r")[: args.images]
    result = {k: round(float(v), 3) for k, v in traces(np.asarray(images)).items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
