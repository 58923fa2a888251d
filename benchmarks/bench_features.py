"""Benchmark the feature stage: Snakemake's sharded HOG extraction vs a plain skimage loop.

Reference: ``skimage.feature.hog(rgb2gray(image))`` (9 orientations, 8x8 cells, 2x2
blocks, L2-Hys) image by image in one process over all 60,000 CIFAR-10 images.
Ours: ``snakemake --cores 2`` building ``results/features/hog/*`` from prepared arrays:
every extract_features shard job and gather_features, plus Snakemake's own start-up.

Targets (issue 3): ours costs at most 0.6x the reference's wall time and at most 1.1x its
CPU time. Both are measured in the same run, interleaved, `--repeats` times; the ratios
of the medians are reported. CPU time of the Snakemake run is the children rusage of the
``snakemake`` process (it and every job it waited for).

Set-up (not timed): a scratch working directory (default ``benchmarks/out/features/``)
gets the prepared arrays from the workflow's own download + prepare rules, fed with the
local archive through a config overlay. Results go to
``benchmarks/out/bench_features.json``.

    .venv/bin/python benchmarks/bench_features.py               # ~2 min
    .venv/bin/python benchmarks/bench_features.py --repeats 5 --shards 2
    .venv/bin/python benchmarks/bench_features.py --mallopt     # keep_freed_memory, ~10 s

``--mallopt`` measures what :func:`linbench.features.keep_freed_memory` buys: one HOG
shard (11,250 prepared training images) extracted once per fresh process, as a shard
job does, with and without it, alternating, `--repeats` times each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
ARCHIVE = Path("/work/shared/cifar10/cifar-10-binary.tar.gz")
ARCHIVE_MD5 = "2ca047f7b434c6d258bd68f6d80661dc"
HOG_PARAMS = {
    "orientations": 9,
    "pixels_per_cell": (8, 8),
    "cells_per_block": (2, 2),
    "block_norm": "L2-Hys",
}


def snakemake(scratch: Path, overlay: Path, cores: int, targets: list[str]) -> None:
    """Run the workflow in `scratch`; raise with Snakemake's output if it fails."""
    cmd = [
        str(Path(sys.executable).with_name("snakemake")),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(scratch),
        "--configfile",
        str(overlay),
        "--quiet",
        "all",
        "--cores",  # after --quiet, which would take the targets as its values
        str(cores),
        *targets,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{done.stdout}\n{done.stderr}")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_pipeline(scratch: Path, overlay: Path, cores: int, targets: list[str]) -> dict:
    """Wall and CPU seconds of one from-scratch Snakemake run of the feature stage."""
    shutil.rmtree(scratch / "results/features", ignore_errors=True)
    cpu, wall = children_cpu(), time.perf_counter()
    snakemake(scratch, overlay, cores, targets)
    return {"wall": time.perf_counter() - wall, "cpu": children_cpu() - cpu}


def time_reference(images: list[np.ndarray]) -> dict:
    """Wall and CPU seconds of the plain per-image skimage loop over `images`."""
    from skimage.color import rgb2gray
    from skimage.feature import hog

    cpu, wall = time.process_time(), time.perf_counter()
    for split in images:
        out = np.empty((len(split), 324), dtype=np.float32)
        for i, image in enumerate(split):
            out[i] = hog(rgb2gray(image), **HOG_PARAMS)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


MALLOPT_PROBE = """
import sys, time
import numpy as np
from linbench.features import extract, keep_freed_memory
if sys.argv[1] == "on":
    keep_freed_memory()
images = np.load(sys.argv[2], mmap_mode="r")[:11250]
np.asarray(images).sum()  # page cache and memory map warm, as for a shard job
start = time.process_time()
extract(images, [{"block": "hog"}])
print(time.process_time() - start)
"""


def compare_mallopt(images: Path, repeats: int) -> None:
    """CPU seconds of one HOG shard in fresh processes, with and without the setting."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "OPENBLAS_NUM_THREADS": "1"}
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(repeats):
        for setting in times:
            done = subprocess.run(
                [sys.executable, "-c", MALLOPT_PROBE, setting, str(images)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            times[setting].append(float(done.stdout))
    for setting, values in times.items():
        median = statistics.median(values)
        print(
            f"keep_freed_memory {setting:>3}: {median:.3f} s CPU "
            f"({1e6 * median / 11250:.0f} us/image)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mallopt", action="store_true", help="only compare keep_freed_memory")
    parser.add_argument(
        "--images", type=Path, default=Path("/work/data/results/data/train_images.npy")
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--shards", type=int, default=None, help="features.shards (default: config)"
    )
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--md5", default=ARCHIVE_MD5)
    parser.add_argument("--scratch", type=Path, default=ROOT / "benchmarks/out/features")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/bench_features.json")
    args = parser.parse_args()
    if args.mallopt:
        compare_mallopt(args.images, args.repeats)
        return

    load_before = os.getloadavg()[0]  # other work on the machine inflates wall times
    scratch = args.scratch.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    overlay = scratch / "overlay.yaml"
    lines = [
        f"data: {{url: {json.dumps(str(args.archive))}, md5: {args.md5}}}",
        "grid: {sweep: {features: [hog]}, regimes: null}",
    ]
    if args.shards:
        lines.append(f"features: {{shards: {args.shards}}}")
    overlay.write_text("\n".join(lines) + "\n")

    # Prepared arrays, made by the workflow itself (not timed).
    snakemake(scratch, overlay, args.cores, ["results/data/splits.json"])
    images = [np.load(scratch / f"results/data/{s}_images.npy") for s in SPLITS]
    n_images = sum(len(x) for x in images)
    targets = [f"results/features/hog/{s}_X.npy" for s in SPLITS]

    ref_runs, our_runs = [], []
    for repeat in range(args.repeats):
        ref_runs.append(time_reference(images))
        our_runs.append(time_pipeline(scratch, overlay, args.cores, targets))
        ref, ours = ref_runs[-1], our_runs[-1]
        print(
            f"repeat {repeat + 1}/{args.repeats}: reference {ref['wall']:.2f} s wall "
            f"{ref['cpu']:.2f} s CPU; snakemake {ours['wall']:.2f} s wall {ours['cpu']:.2f} s "
            f"CPU; ratios {ours['wall'] / ref['wall']:.2f} wall {ours['cpu'] / ref['cpu']:.2f} CPU",
            flush=True,
        )

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    info = json.loads((scratch / "results/features/hog/info.json").read_text())
    result = {
        "images": n_images,
        "cores": args.cores,
        "shards": info["shards"],
        "repeats": args.repeats,
        "reference": {k: median(ref_runs, k) for k in ("wall", "cpu")},
        "snakemake": {k: median(our_runs, k) for k in ("wall", "cpu")},
        "extraction_cpu_seconds": info["extraction_cpu_seconds"],
        "load_average_before": load_before,
        "runs": {"reference": ref_runs, "snakemake": our_runs},
    }
    result["wall_ratio"] = result["snakemake"]["wall"] / result["reference"]["wall"]
    result["cpu_ratio"] = result["snakemake"]["cpu"] / result["reference"]["cpu"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    ref, ours = result["reference"], result["snakemake"]
    print(f"\n{n_images} images, --cores {args.cores}, {info['shards']} shards per split")
    print(
        f"reference loop: {ref['wall']:6.2f} s wall {ref['cpu']:6.2f} s CPU "
        f"({1e6 * ref['cpu'] / n_images:.0f} us/image)"
    )
    print(
        f"snakemake:      {ours['wall']:6.2f} s wall {ours['cpu']:6.2f} s CPU "
        f"(extraction itself {1e6 * info['extraction_cpu_seconds'] / n_images:.0f} us/image)"
    )
    print(
        f"wall ratio {result['wall_ratio']:.2f} (target <= 0.6), "
        f"CPU ratio {result['cpu_ratio']:.2f} (target <= 1.1)"
    )
    if load_before > 0.5:
        print(f"note: the machine was busy (load average {load_before:.1f}): wall times suffer")
    print(f"-> {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
