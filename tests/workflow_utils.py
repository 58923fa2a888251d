"""Run the real workflow with Snakemake in a scratch directory."""

from __future__ import annotations

import os
import re
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

    @property
    def job_counts(self) -> dict[str, int]:
        """The 'Job stats' table Snakemake prints before it runs (or plans) jobs."""
        match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", self.output, re.S)
        if not match:
            return {}
        counts = {}
        for line in match.group(1).splitlines():
            name, count = line.split()
            counts[name] = int(count)
        return counts


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
