"""Per-feature standardisation with the train split's statistics, independent of sharding.

Features arrive as several parts (the shards of a split, memory-mapped); the statistics
and the written result are bitwise the same however the rows are split into parts,
because every reduction runs over fixed blocks of rows of the concatenation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .io import atomic_path


def _row_blocks(parts: Sequence[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """Consecutive row blocks of the concatenation of `parts`, `rows` rows each (but the last).

    The blocks depend on the concatenated rows only, not on where the parts split them,
    which makes reductions over them independent of sharding.
    """
    pending: list[np.ndarray] = []
    have = 0
    for part in parts:
        start = 0
        while start < len(part):
            take = min(rows - have, len(part) - start)
            pending.append(part[start : start + take])
            have += take
            start += take
            if have == rows:
                yield np.concatenate(pending) if len(pending) > 1 else np.asarray(pending[0])
                pending, have = [], 0
    if pending:
        yield np.concatenate(pending) if len(pending) > 1 else np.asarray(pending[0])


@dataclass(frozen=True)
class Standardizer:
    """Per-feature standardisation ``(X - mean) / std``, fitted on the train split.

    mean : float64 (D,)
    std : float64 (D,), the divisor: the population standard deviation, or 1 for a
        feature that is constant on the train split (it then maps to 0 everywhere).
    constant : bool (D,), True where the train split's std is 0 or below float32
        resolution of the mean (a feature that only varies by rounding noise).
    """

    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray

    BLOCK_VALUES = 1 << 20  # values per block of rows: 8 MB float64 temporaries

    @classmethod
    def fit(cls, parts: Sequence[np.ndarray]) -> Standardizer:
        """Fit on the rows of `parts` (float32 (n_i, D) arrays, e.g. memory-mapped shards).

        Two passes (mean, then squared deviations) over fixed blocks of rows: numerically
        stable, and bitwise independent of how the rows are split into parts.
        """
        n = sum(len(p) for p in parts)
        if n == 0:
            raise ValueError("cannot fit a standardisation on an empty train split")
        rows = cls._rows(parts[0].shape[1])
        total = sum(b.sum(axis=0, dtype=np.float64) for b in _row_blocks(parts, rows))
        mean = total / n
        squares = sum(np.square(b - mean).sum(axis=0) for b in _row_blocks(parts, rows))
        raw_std = np.sqrt(squares / n)
        constant = raw_std <= np.finfo(np.float32).eps * np.abs(mean)
        return cls(mean=mean, std=np.where(constant, 1.0, raw_std), constant=constant)

    @classmethod
    def _rows(cls, dimension: int) -> int:
        # Depends on the dimension only, so the blocks (and sums) do not depend on shards.
        return max(1, cls.BLOCK_VALUES // max(dimension, 1))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of `features` (n, D)."""
        return ((features - self.mean) / self.std).astype(np.float32)

    def save_transformed(self, path: str | os.PathLike[str], parts: Sequence[np.ndarray]) -> None:
        """Write the standardised concatenation of `parts` to `path` (.npy, float32).

        Streams block by block into a memory-mapped temporary file that is renamed into
        place when complete, so memory stays bounded and no half-written file is visible.
        """
        n, dimension = sum(len(p) for p in parts), len(self.mean)
        with atomic_path(path, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dimension))
            start = 0
            for block in _row_blocks(parts, self._rows(dimension)):
                out[start : start + len(block)] = self.transform(block)
                start += len(block)
            out.flush()
            del out  # close the map before the rename
