"""Let a run killed with SIGKILL be resumed by the same command.

Snakemake locks its working directory with files in ``.snakemake/locks`` and removes
them when it exits; a killed Snakemake cannot, and the next run stops with
"Directory cannot be locked" until the user runs ``snakemake --unlock``. We cannot tell
from those files whether their owner is alive, so every linbench run also holds an OS
lock (``flock``) on ``.snakemake/linbench.lock`` for its lifetime: the kernel releases it
when the process dies, however it dies. A run that obtains that lock therefore knows no
other run is alive in this directory, and that lock files it finds are stale.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

_held: list[IO[str]] = []  # open lock files: closing one would release its lock


def clear_stale_snakemake_locks(workdir: str | os.PathLike[str] = ".") -> bool:
    """Remove Snakemake's lock files if no other linbench run holds this directory.

    Returns True when stale locks were found and removed. The OS lock stays held until
    this process exits.
    """
    state = Path(workdir) / ".snakemake"
    state.mkdir(exist_ok=True)
    handle = open(state / "linbench.lock", "a+")  # held open for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False  # another run is alive: its locks are real
    _held.append(handle)
    locks = state / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        shutil.rmtree(locks)
        return True
    return False
