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
