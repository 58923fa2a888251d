"""The SLURM profile (workflow/profiles/slurm) without a cluster.

What a user relies on: bundles of grid cells (one training job each) are grouped into SLURM
jobs, and each SLURM job asks for what one bundle job needs (its threads and memory) for as
long as its bundle jobs take one after another. tests/slurm/test_slurm_e2e.py runs the same
profile on a real cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_utils import ROOT, SNAKEFILE

from linbench.grid import expand_grid, make_bundles

pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")

PROFILE = ROOT / "workflow/profiles/slurm"
SETTINGS = yaml.safe_load((PROFILE / "config.yaml").read_text())
GROUP_SIZE = SETTINGS["group-components"]["cells"]
BUNDLE_SIZE = 4

# 2 x 2 x 5 x 6 = 120 cells in bundles of 4 (2 learning rates x 2 regularizers): 30 bundle
# jobs, in grouped SLURM jobs of GROUP_SIZE.
SWEEP = {
    "features": ["hog"],
    "train_size": ["all"],
    "loss": ["svm", "softmax"],
    "regularizer": ["none", "l2"],
    "strength": {"none": [0], "l2": [1.0e-3]},
    "batch_size": [16, 32, 64, 128, 256],
    "learning_rate": [1.0e-4, 1.0e-3, 1.0e-2, 0.1, 1.0, 10.0],
    "seed": [0],
}
GRID = {"sweep": SWEEP, "optimizer": None, "regimes": None}
CELLS = [cell.path for cell in expand_grid(GRID)]
BUNDLES = make_bundles(expand_grid(GRID), BUNDLE_SIZE)
GROUP_SIZES = [min(GROUP_SIZE, len(BUNDLES) - i) for i in range(0, len(BUNDLES), GROUP_SIZE)]
# Per bundle job, from workflow/rules/common.smk: 300 MB + 1.2 x the (empty) features; the
# runtime of a 4-cell bundle of 20 epochs is the 2-minute minimum.
BUNDLE_MEM_MB, BUNDLE_RUNTIME = 300, 2

# Stand-ins for the SLURM commands the executor plugin calls: sbatch records its command line
# and "queues" the job, sacct reports every job as running (and knows no accounts), so
# Snakemake submits whatever it may and nothing ever runs.
FAKE_COMMANDS = {
    "sbatch": 'printf "%s\\n" "$*" >> "$FAKE_SBATCH_LOG"; wc -l < "$FAKE_SBATCH_LOG"',
    "sacct": 'case "$*" in *Account*) exit 1;; esac; '
    'seq "$(wc -l < "$FAKE_SBATCH_LOG")" | sed "s/$/|RUNNING/"',
    "sinfo": 'printf "PARTITION\\ndebug*\\n"',
    "sacctmgr": "exit 1",
    "scontrol": "exit 1",
    "scancel": "exit 0",
}


def run_snakemake(workdir: Path, *args: str, threads: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(workdir, threads, *args), capture_output=True, text=True, timeout=300
    )


def snakemake_cmd(workdir: Path, threads: int, *args: str) -> list[str]:
    overlay = workdir / "overlay.yaml"
    train = {"threads": threads, "bundle_size": BUNDLE_SIZE}
    overlay.write_text(yaml.safe_dump({"grid": GRID, "train": train}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]
    return [*cmd, "--configfile", str(overlay), "--workflow-profile", str(PROFILE), *args]


def submit_to_fake_slurm(workdir: Path, threads: int) -> list[str]:
    """Start the grid with fake SLURM commands; return the sbatch command lines once every
    grouped job is queued (or after 60 s), then stop Snakemake."""
    # Features in place (empty files: no job reads them), so only grid cells are due.
    features = workdir / "results/features/hog"
    features.mkdir(parents=True)
    for split in ("train", "val", "test"):
        for kind in ("X", "y"):
            (features / f"{split}_{kind}.npy").touch()
    fake_bin = workdir / "bin"
    fake_bin.mkdir()
    for name, body in FAKE_COMMANDS.items():
        (fake_bin / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake_bin / name).chmod(0o755)
    log = workdir / "sbatch.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "FAKE_SBATCH_LOG": str(log),
    }
    targets = [f"{cell}/metrics.json" for cell in CELLS]
    cmd = snakemake_cmd(
        workdir, threads, *targets, "--slurm-init-seconds-before-status-checks", "1"
    )
    with open(workdir / "snakemake.out", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(log.read_text().splitlines()) >= len(GROUP_SIZES):
                time.sleep(1)  # would it submit more?
                break
            time.sleep(0.2)
    finally:
        # Nothing to clean up on a fake cluster; SIGTERM would wait for job cancellation.
        proc.kill()
        proc.wait()
    calls = log.read_text().splitlines()
    assert calls, (workdir / "snakemake.out").read_text()[-3000:]
    return calls


def test_dry_run_plans_bundles_in_groups(tmp_path):
    run = run_snakemake(tmp_path, "--dry-run")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    # Snakemake's job statistics: one line per rule (train_<sub-grids>) and its jobs.
    stats = output.split("Job stats:")[1].split("total")[0]
    jobs = sum(int(n) for n in re.findall(r"^train_\w+\s+(\d+)$", stats, re.M))
    assert jobs == len(BUNDLES) == 30
    assert output.count("Group job cells") == len(GROUP_SIZES)


@pytest.mark.parametrize("threads", [1, 2])
def test_grouped_jobs_are_queued_together_each_sized_for_one_bundle(tmp_path, threads):
    calls = submit_to_fake_slurm(tmp_path, threads)
    # All groups queued at once (`cell_slots` is per group, not a global limit) ...
    assert len(calls) == len(GROUP_SIZES) < len(BUNDLES)
    sizes = []
    for call in calls:
        bundles = len(re.findall(r"'train_\w+:", call))
        sizes.append(bundles)
        # ... each asking for one bundle job's CPUs and memory, for all its bundles' runtimes
        # (sbatch -t is in minutes): a group runs its bundle jobs one after another.
        assert f"--cpus-per-task={threads} " in call, call
        assert re.search(rf"--mem {BUNDLE_MEM_MB}\b", call), call
        assert re.search(rf" -t {bundles * BUNDLE_RUNTIME}\b", call), call
    assert sorted(sizes) == sorted(GROUP_SIZES)
