"""Run the real workflow with Snakemake in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"


@dataclass
class Run:
    returncode: int
    output: str


def plan(workdir: Path, *args: str, config: dict | None = None) -> dict[str, list[str]]:
    """What a run with `args` would (re)build: rule -> its outputs that are due.

    Read from ``snakemake --summary``, Snakemake's documented tab-separated table (one row
    per output: file, date, rule, log, status, plan), not from its printed job statistics.
    The summary does not look at the markers of jobs an interrupted run left unfinished.
    """
    run = snakemake(workdir, "--summary", *args, config=config)
    assert run.returncode == 0, run.output[-3000:]
    due: dict[str, list[str]] = {}
    lines = iter(run.output.splitlines())
    for line in lines:
        if line.startswith("output_file\t"):
            break
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 6 and fields[5] == "update pending":
            due.setdefault(fields[2], []).append(fields[0])
    return due


def snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: int = 300) -> Run:
    """Run the workflow in `workdir` with an optional config overlay file."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]
    if config is not None:
        overlay = workdir / "overlay.yaml"
        overlay.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(overlay)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)
