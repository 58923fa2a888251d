"""Rule scripts: a user error is one line; a bug keeps its traceback."""

from __future__ import annotations

import pytest

from linbench.errors import LinbenchError
from linbench.scripting import run


def test_a_user_error_ends_the_job_with_one_line(tmp_path, capsys):
    def main():
        raise LinbenchError("data.url: cannot reach the archive")

    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_info:
        run(main, log, rule="download")
    assert exit_info.value.code == 1
    text = log.read_text()
    assert "linbench (download): error: data.url: cannot reach the archive" in text
    assert "Traceback" not in text + capsys.readouterr().err


def test_any_other_exception_keeps_its_traceback(tmp_path):
    def main():
        raise ValueError("operands could not be broadcast together")  # a bug, not bad input

    log = tmp_path / "job.log"
    with pytest.raises(ValueError, match="broadcast"):
        run(main, log, rule="train")
    assert "Traceback" in log.read_text() and "broadcast" in log.read_text()


FAULTS_OF_TEMPORARIES = """
import resource, sys
import numpy as np
from linbench.scripting import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
def step():  # a training step's temporaries (minibatch, dropout bits, class planes): 4 MB
    return [np.ones(1 << 18, dtype=np.float32) for _ in range(4)]
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()  # allocated, written, freed
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_training_job_reuses_freed_memory_instead_of_faulting_it_in_again():
    """By default glibc returns a step's freed temporaries to the system (mmap, or trimming
    the heap's top), and every page faults in again the next step (4 MB: 1,024 faults);
    after reuse_freed_memory() they are reused. Each case in a process of its own: the
    setting is the process's."""
    import ctypes
    import subprocess
    import sys

    try:
        ctypes.CDLL(None).mallopt  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc: no mallopt to set")
    faults = {
        case: int(
            subprocess.run(
                [sys.executable, "-c", FAULTS_OF_TEMPORARIES, case],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for case in ("default", "reuse")
    }
    assert faults["default"] > 50 * 500  # the default: most pages fault in again
    assert faults["reuse"] < 100
