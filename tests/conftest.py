"""Shared test set-up: make the `linbench` package importable without installing it, and run
numpy in the test process on one BLAS thread."""

import sys
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """Tests compare numbers with references to float rounding, and a BLAS with several
    threads splits its sums differently from one: numpy in this process uses one thread,
    as a workflow job with `threads: 1` does. Subprocesses (Snakemake and its jobs) keep
    their own settings, so the tests of thread pinning still see Snakemake's."""
    with threadpool_limits(limits=1):
        yield
