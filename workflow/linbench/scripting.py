"""Shared plumbing for the thin rule scripts in ``workflow/scripts/``.

A rule script calls :func:`run` with its main function and its log file: log records go
to the rule's log (and stderr), and a :class:`LinbenchError` (bad input: a file, an archive
or a setting, named in its message) ends the job with one clear line instead of a
traceback. Every other exception is a bug, in our code or below it: it keeps its traceback,
in the log and on stderr, where a bug report needs it.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .errors import LinbenchError


def setup_logging(log_file: str | Path | None) -> logging.Logger:
    """Send INFO records to `log_file` (or to stderr if None), WARNING ones to stderr."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="w")
        handler.setFormatter(fmt)
        root.addHandler(handler)
    # Without a log file, stderr is the log (a shell rule redirects it there).
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING if log_file else logging.INFO)
    stderr.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(stderr)
    return logging.getLogger("linbench")


MALLOC_KEEP_BYTES = 32 * 1024 * 1024
"""Freed blocks up to this size stay in the process for reuse (glibc's largest allowed)."""


def reuse_freed_memory() -> bool:
    """Have glibc's allocator keep freed memory for reuse instead of returning it to the
    system at once. Returns whether it could (False off glibc: macOS, musl).

    A training step allocates a few arrays of 0.1-1 MB (the minibatch, the dropout bits,
    the loss's class planes) and frees them again. By default glibc serves each from a fresh
    ``mmap`` and hands it back on ``free``, so every 4 KB page faults on first touch again:
    about 50 faults a step, 3-5 % of a step on 324 features (``benchmarks/bench_limit.py``).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    # mmap only blocks above the threshold; keep up to 8x it free at the heap's top
    return bool(
        mallopt(M_MMAP_THRESHOLD, MALLOC_KEEP_BYTES)
        and mallopt(M_TRIM_THRESHOLD, 8 * MALLOC_KEEP_BYTES)
    )


def run(main: Callable[[], None], log_file: str | Path | None, rule: str = "") -> None:
    """Run `main`, turning a :class:`LinbenchError` into a one-line message and exit status 1."""
    log = setup_logging(log_file)
    start = time.perf_counter()
    try:
        main()
    except LinbenchError as err:
        log.error("linbench%s: error: %s", f" ({rule})" if rule else "", err)
        sys.exit(1)
    except Exception:
        log.info("unexpected error:\n%s", traceback.format_exc())
        raise
    log.info("done in %.2f s", time.perf_counter() - start)
