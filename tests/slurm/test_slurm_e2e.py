"""The grid on a real SLURM cluster, end to end (issue 8).

Starts a throwaway single-node cluster (tests/slurm/cluster.sh), runs a tiny grid with
``--profile workflow/profiles/slurm`` (plus the test-only settings of tests/slurm/profile),
runs the same grid locally, and checks that

- every cell's outputs exist in both runs,
- the cells ran in bundle jobs inside SLURM jobs, grouped: fewer SLURM jobs than bundles, each
  sized for one bundle job,
- numpy's BLAS inside the SLURM job steps used the rule's `threads` (not all the node's CPUs),
- the SLURM results equal the local ones exactly.

Needs root and Debian's slurm-wlm and munge, so it only runs when LINBENCH_SLURM_E2E=1:
``bash tests/slurm/run.sh`` (CI step 2) installs what is missing and sets it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import make_cifar_archive

from linbench.grid import RUNS_DIR, expand_grid, make_bundles
from linbench.names import CELL_FILES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SNAKEFILE = ROOT / "Snakefile"
CLUSTER = HERE / "cluster.sh"
SITE_PROFILE = ROOT / "workflow/profiles/slurm"
TEST_PROFILE = HERE / "profile"
PROBE = HERE / "probe"


def read_profile(directory: Path) -> dict:
    return yaml.safe_load((directory / "config.yaml").read_text())


GROUP_SIZE = read_profile(TEST_PROFILE)["group-components"]["cells"]
BUNDLE_SIZE = 2  # train.bundle_size: 8 cells in 4 bundle jobs (2 rates x 2 regularizers)
# What a bundle job asks for (workflow/rules/common.smk): 300 MB + 1.2 x its features (tiny
# here: 300-301 MB), and the 2-minute minimum runtime.
BUNDLE_MEM_MB, BUNDLE_RUNTIME = (300, 301), 2
THREADS = 1  # train.threads; the machine has more CPUs, so BLAS would use more if not pinned
TIMEOUT = 900  # seconds per Snakemake run; a hung run fails instead of blocking CI

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("LINBENCH_SLURM_E2E") != "1",
        reason="starts a SLURM cluster as root; run `bash tests/slurm/run.sh`",
    ),
]


def overlay_config(url: str, md5: str) -> dict:
    """1 loss x 2 regularizers x 2 batch sizes x 2 learning rates = 8 cells on tiny data."""
    return {
        "data": {"url": url, "md5": md5, "val_size": 40, "train_subset": 120},
        "features": {"shards": 2},
        "grid": {
            "sweep": {
                "features": ["hog"],
                "train_size": ["all"],
                "loss": ["svm"],
                "regularizer": ["none", "l2"],
                "strength": {"none": [0], "l2": [1.0e-3]},
                "batch_size": [16, 32],
                "learning_rate": [0.01, 0.1],
                "seed": [0],
            },
            "optimizer": None,
            "regimes": None,
        },
        "train": {
            "epochs": 3,
            "threads": THREADS,
            "bundle_size": BUNDLE_SIZE,
            "min_images_seen": 0,
        },
    }


@dataclass
class Run:
    workdir: Path
    probe_dir: Path
    output: str
    seconds: float


@dataclass
class Runs:
    slurm: Run
    local: Run
    cells: list[str]  # cell folders, relative to a run's workdir
    bundles: int  # bundle jobs


@pytest.fixture(scope="module")
def cluster():
    """A running cluster; stopped again however the tests end (also on SIGTERM)."""
    if os.geteuid() != 0:
        pytest.fail("the SLURM end-to-end test starts daemons and writes /etc/slurm: run as root")

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        if subprocess.run(["bash", str(CLUSTER), "start"], timeout=180).returncode != 0:
            pytest.fail("the test cluster did not start; see the [cluster] lines above")
        yield
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], check=False, timeout=120)
        signal.signal(signal.SIGTERM, previous)


def start_snakemake(workdir: Path, overlay: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """Start the workflow in `workdir` (output to workdir/snakemake.out); probe every process."""
    workdir.mkdir(parents=True)
    probe_dir = workdir / "probe"
    probe_dir.mkdir()
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "LINBENCH_PROBE_DIR": str(probe_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--configfile",
        str(overlay),
        *args,
    ]
    with open(workdir / "snakemake.out", "w") as out:
        # Own session, so stop_process_group() reaches the run's every process.
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, probe_dir


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM a run's process group (Snakemake then cancels its SLURM jobs), SIGKILL after
    30 s. Its group id is the pid of the Snakemake we started."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def finish(proc: subprocess.Popen, workdir: Path, probe_dir: Path, started: float) -> Run:
    try:
        proc.wait(timeout=max(1.0, TIMEOUT - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
    seconds = time.monotonic() - started
    output = (workdir / "snakemake.out").read_text()
    if proc.returncode != 0:
        slurm_logs = "\n".join(
            f"--- {log}\n{log.read_text()[-2000:]}"
            for log in sorted((workdir / ".snakemake/slurm_logs").rglob("*.log"))
        )
        pytest.fail(
            f"snakemake in {workdir} exited with {proc.returncode} after {seconds:.0f} s:\n"
            f"{output[-4000:]}\n{slurm_logs[-6000:]}"
        )
    return Run(workdir, probe_dir, output, seconds)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> Runs:
    """The grid through SLURM and, at the same time, locally with --cores 2."""
    scratch = tmp_path_factory.mktemp("slurm_e2e")
    archive = scratch / "cifar-10-binary.tar.gz"
    md5 = make_cifar_archive(archive, n_train_per_class=20, n_test_per_class=5, seed=0)
    config = overlay_config(archive.as_uri(), md5)
    overlay = scratch / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(config))

    started = time.monotonic()
    procs = []
    try:
        slurm_proc, slurm_probe = start_snakemake(
            scratch / "slurm",
            overlay,
            "--profile",
            str(SITE_PROFILE),
            "--workflow-profile",
            str(TEST_PROFILE),
        )
        procs.append(slurm_proc)
        local_proc, local_probe = start_snakemake(
            scratch / "local", overlay, "--workflow-profile", "none", "--cores", "2"
        )
        procs.append(local_proc)
        local = finish(local_proc, scratch / "local", local_probe, started)
        slurm = finish(slurm_proc, scratch / "slurm", slurm_probe, started)
    finally:
        # Interrupted or failed: no Snakemake may outlive the test (or the cluster).
        for proc in procs:
            stop_process_group(proc)
    cells = [cell.path for cell in expand_grid(config["grid"])]
    bundles = len(make_bundles(expand_grid(config["grid"]), BUNDLE_SIZE))
    assert len(cells) == 8 and bundles == 4
    # For the CI log: the numbers issue 8 asks to record.
    print(
        f"\n[slurm e2e] SLURM run {slurm.seconds:.0f} s, local run {local.seconds:.0f} s "
        f"(side by side); {len(cells)} cells in {bundles} bundle jobs in "
        f"{len(set().union(*cell_jobs(slurm, cells).values()))} grouped SLURM jobs, "
        f"{len(submitted_jobs(slurm))} SLURM jobs in all"
    )
    return Runs(slurm, local, cells, bundles)


# ------------------------------------------------------------------------------- helpers


def cell_jobs(run: Run, cells: list[str]) -> dict[str, set[str]]:
    """Cell folder -> ids of the grouped SLURM jobs whose logs train its group folder.

    A training job's log names its group folder in the rule's message (``Train 2 cells in one
    pass -> results/runs/.../seed~0/``); a group split into two bundles may name one folder
    in two jobs, so a cell maps to a set (the probe says which of them trained it)."""
    jobs: dict[str, set[str]] = {cell: set() for cell in cells}
    for log in sorted((run.workdir / ".snakemake/slurm_logs").glob("group_cells_*/**/*.log")):
        for group in set(
            re.findall(r"cells in one pass -> (results/runs/\S+?)/? ", log.read_text())
        ):
            for cell in cells:
                if cell.startswith(group.rstrip("/") + "/"):
                    jobs[cell].add(log.stem)
    return jobs


def submitted_jobs(run: Run) -> list[str]:
    """SLURM job ids of every job Snakemake submitted."""
    return re.findall(r"submitted with SLURM jobid (\d+)", run.output)


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def cell_processes(run: Run) -> dict[str, dict]:
    """Cell folder -> probe record of the process that trained it (the one whose command
    line names the cell's files: train_bundle.py ... OUTPUT...)."""
    records = {}
    for path in run.probe_dir.glob("*.json"):
        record = json.loads(path.read_text())
        for arg in record["argv"]:
            if arg.startswith(f"{RUNS_DIR}/") and arg.endswith("/metrics.json"):
                cell = str(Path(arg).parent)
                assert cell not in records, f"two processes trained {cell}"
                records[cell] = record
    return records


def read_history(path: Path) -> list[dict]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.pop("seconds")  # wall time, the one column that may differ
    return rows


# --------------------------------------------------------------------------------- tests


def test_every_cell_has_its_outputs(runs):
    for run in (runs.slurm, runs.local):
        missing = [
            f"{cell}/{name}"
            for cell in runs.cells
            for name in CELL_FILES
            if not (run.workdir / cell / name).is_file()
        ]
        assert not missing, f"{run.workdir}: missing {missing}"
    assert (runs.slurm.workdir / "results/reports/runs.csv").is_file()


def test_cells_ran_grouped_in_slurm_jobs(runs):
    jobs = cell_jobs(runs.slurm, runs.cells)
    assert all(jobs.values()), f"every cell's group must appear in a grouped job's log: {jobs}"
    group_jobs = set().union(*jobs.values())
    assert len(group_jobs) == math.ceil(runs.bundles / GROUP_SIZE) < runs.bundles
    assert group_jobs <= set(submitted_jobs(runs.slurm))
    # The local run submitted nothing.
    assert not submitted_jobs(runs.local)


def test_grouped_jobs_request_one_bundle_at_a_time(runs):
    """A group runs its bundle jobs one after another, so it asks for one bundle job's CPUs
    and memory and for the sum of their runtimes (the `cell_slots` resource of the profile)."""
    for job_id in set().union(*cell_jobs(runs.slurm, runs.cells).values()):
        job = scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", job
        assert job["NumCPUs"] == str(THREADS), job
        assert job["MinMemoryNode"] in {f"{mb}M" for mb in BUNDLE_MEM_MB}, job
        assert job["TimeLimit"] == time.strftime(
            "%H:%M:%S", time.gmtime(GROUP_SIZE * BUNDLE_RUNTIME * 60)
        ), job


def test_blas_threads_follow_snakemake_threads(runs):
    """Snakemake exports OMP/OPENBLAS/MKL_NUM_THREADS=threads; inside SLURM job steps too."""
    jobs = cell_jobs(runs.slurm, runs.cells)
    for run, on_slurm in ((runs.slurm, True), (runs.local, False)):
        processes = cell_processes(run)
        assert sorted(processes) == sorted(runs.cells), f"{run.workdir}: cells without a probe"
        for cell, record in processes.items():
            env = record["env"]
            if on_slurm:
                assert env["SLURM_JOB_ID"] in jobs[cell], (cell, env, jobs[cell])
            else:
                assert env["SLURM_JOB_ID"] is None, (cell, env)
            for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                assert env[key] == str(THREADS), (cell, env)
            assert record["blas_threads"] == [THREADS], (cell, record)


def test_slurm_results_equal_local_results(runs):
    keys = ("train_acc", "val_acc", "test_acc", "final_loss", "epochs_run", "status")
    for cell in runs.cells:
        slurm_dir, local_dir = runs.slurm.workdir / cell, runs.local.workdir / cell
        slurm = json.loads((slurm_dir / "metrics.json").read_text())
        local = json.loads((local_dir / "metrics.json").read_text())
        assert {k: slurm[k] for k in keys} == {k: local[k] for k in keys}, cell
        assert slurm["test_confusion"] == local["test_confusion"], cell
        with np.load(slurm_dir / "weights.npz") as a, np.load(local_dir / "weights.npz") as b:
            assert np.array_equal(a["W"], b["W"]) and np.array_equal(a["b"], b["b"]), cell
        assert read_history(slurm_dir / "history.csv") == read_history(local_dir / "history.csv")
