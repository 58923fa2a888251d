"""Test instrument: record the thread settings of every Python process that used numpy.

The SLURM end-to-end test puts this directory on PYTHONPATH and sets LINBENCH_PROBE_DIR, so
each process of a workflow run (also the grid cells inside SLURM job steps) writes one JSON
file at exit: its argv, the SLURM job id, the *_NUM_THREADS variables and the thread count
numpy's BLAS actually uses. Without LINBENCH_PROBE_DIR it does nothing.
"""

import atexit
import json
import os
import sys
import time

ENV_KEYS = (
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def _record(directory: str) -> None:
    # Only processes that did numeric work matter; importing numpy here would change nothing.
    if "numpy" not in sys.modules:
        return
    import threadpoolctl

    record = {
        "argv": sys.argv,
        "env": {key: os.environ.get(key) for key in ENV_KEYS},
        "blas_threads": [
            pool["num_threads"]
            for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"
        ],
    }
    path = os.path.join(directory, f"{os.getpid()}-{time.time_ns()}.json")
    with open(path, "w") as f:
        json.dump(record, f)


if os.environ.get("LINBENCH_PROBE_DIR"):
    atexit.register(_record, os.environ["LINBENCH_PROBE_DIR"])
