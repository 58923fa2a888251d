"""CIFAR-10 acquisition: download, safe archive reading, record parsing, stratified splits.

Only the *binary* CIFAR-10 archive is used: its records are plain bytes parsed by numpy,
so nothing downloaded is ever unpickled. The archive is read in memory, member by member;
nothing is extracted to disk, and members that are not the expected regular files are
refused before anything is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from .errors import LinbenchError
from .io import atomic_path
from .names import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES

log = logging.getLogger(__name__)

_HEIGHT, _WIDTH, _CHANNELS = IMAGE_SHAPE
RECORD_BYTES = 1 + _HEIGHT * _WIDTH * _CHANNELS  # a label byte, then the R, G and B planes
ARCHIVE_DIR = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META_FILE = "batches.meta.txt"
# Files the official archive (and faithful mirrors) may carry besides the batches.
OPTIONAL_FILES = (META_FILE, "readme.html", "readme.txt")


# --------------------------------------------------------------------------- download


class _LogProgress:
    """A pooch progress bar that writes a line to the log every 10 %."""

    def __init__(self) -> None:
        self.total = 0
        self._done = 0
        self._next_tenth = 1

    def update(self, n: int) -> None:
        self._done += n
        if self.total and self._done * 10 >= self._next_tenth * self.total:
            pct = min(100, 100 * self._done // self.total)
            log.info("downloaded %d %% (%.1f of %.1f MB)", pct, self._done / 1e6, self.total / 1e6)
            self._next_tenth = self._done * 10 // self.total + 1

    def reset(self) -> None:
        self._done = 0

    def close(self) -> None:
        pass


def md5sum(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _local_source(url: str) -> Path | None:
    """The local file a `file://` URL or plain path names, or None for remote URLs."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(url).expanduser()
    return None


def download_archive(url: str, md5: str, dest: str | os.PathLike[str], retries: int = 3) -> Path:
    """Fetch the archive at `url` to `dest`, verified against `md5`, atomically.

    `url` may be http(s)/ftp (fetched with pooch, retried with back-off on network
    errors), a `file://` URL or a plain local path (copied). Either way the bytes land in
    a temporary file beside `dest` and are renamed onto it only once the checksum matches.

    Raises:
        LinbenchError: the source is missing or unreachable, or its checksum differs.
    """
    dest = Path(dest)
    md5 = md5.lower()
    source = _local_source(url)
    if source is not None:
        if not source.is_file():
            raise LinbenchError(f"data.url: local archive {str(source)!r} does not exist")
        log.info("copying %s (%.1f MB)", source, source.stat().st_size / 1e6)
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
            _check_md5(tmp, md5, url)
        return dest

    import pooch  # imported here: only remote downloads need it (and requests)

    pooch.get_logger().setLevel(logging.INFO)
    fetcher = pooch.create(
        path=dest.parent,
        base_url="",
        registry={dest.name: f"md5:{md5}"},
        urls={dest.name: url},
        retry_if_failed=retries,
        allow_updates=True,
    )
    downloader = pooch.HTTPDownloader(progressbar=_LogProgress(), timeout=60, chunk_size=1 << 16)
    try:
        fetcher.fetch(dest.name, downloader=downloader)
    except ValueError as err:  # pooch's hash mismatch
        raise LinbenchError(
            f"data.md5: checksum mismatch for {url}: {err}. Check data.url and data.md5."
        ) from None
    except Exception as err:  # requests' network errors, after pooch's retries
        raise LinbenchError(
            f"data.url: could not download {url} after {retries + 1} attempts: {err}. "
            "Without internet access, point data.url at a local copy of the archive and give "
            "its checksum: --config 'data={url: /path/to/cifar-10-binary.tar.gz, md5: <md5>}' "
            "(a file:// URL works too)"
        ) from None
    dest.chmod(0o644)  # pooch's temporary file was private
    return dest


def _check_md5(path: Path, expected: str, url: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise LinbenchError(
            f"data.md5: checksum mismatch for {url}: expected {expected}, got {actual}. "
            "The file is corrupt or truncated, or data.md5 names another file."
        )


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True)
class RawCifar:
    """Decoded CIFAR-10 records: images (N, 32, 32, 3) uint8 HWC RGB, labels (N,) int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def _check_member(member: tarfile.TarInfo, archive: str) -> str | None:
    """Return the file name of a wanted member, None for its directory; raise otherwise."""
    name = member.name
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise LinbenchError(f"{archive}: unsafe member path {name!r} (absolute or '..')")
    if member.issym() or member.islnk():
        raise LinbenchError(f"{archive}: unsafe member {name!r} is a link")
    if member.isdev() or member.isfifo():
        raise LinbenchError(f"{archive}: unsafe member {name!r} is a device or FIFO")
    clean = "/".join(p for p in parts if p != ".")
    if member.isdir():
        if clean == ARCHIVE_DIR:
            return None
        raise LinbenchError(f"{archive}: unexpected directory {name!r}")
    if not member.isfile():
        raise LinbenchError(f"{archive}: unexpected member {name!r} (not a regular file)")
    folder, _, base = clean.rpartition("/")
    if folder != ARCHIVE_DIR or base not in (*TRAIN_BATCHES, TEST_BATCH, *OPTIONAL_FILES):
        raise LinbenchError(
            f"{archive}: unexpected member {name!r}; a CIFAR-10 binary archive holds "
            f"{ARCHIVE_DIR}/data_batch_1..5.bin, {TEST_BATCH} and {META_FILE}"
        )
    return base


def parse_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode binary records into images (N, 32, 32, 3) uint8 and labels (N,) int64.

    Raises:
        LinbenchError: the byte count is not a whole number of records, or a label is
            outside 0..9 (naming `source` and the first bad record).
    """
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise LinbenchError(
            f"{source}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte "
            "records (truncated or not a CIFAR-10 batch)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise LinbenchError(
            f"{source}: record {bad[0]} has label {labels[bad[0]]}, outside 0..9 "
            f"({bad.size} bad record(s))"
        )
    # Records store planes (R, G, B) of 32x32 row-major pixels; images are HWC.
    images = records[:, 1:].reshape(-1, _CHANNELS, _HEIGHT, _WIDTH).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_archive(path: str | os.PathLike[str]) -> RawCifar:
    """Read and validate a CIFAR-10 binary archive (``cifar-10-binary.tar.gz``) in memory.

    Raises:
        LinbenchError: the archive is truncated or corrupt, has unsafe or unexpected
            members, lacks a batch, or holds invalid records.
    """
    name = Path(path).name
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = _check_member(member, name)
                if base is None:
                    continue
                fh = tar.extractfile(member)
                assert fh is not None  # regular files always have a file object
                files[base] = fh.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise LinbenchError(f"{name}: truncated or corrupt archive ({err})") from None

    missing = [f for f in (*TRAIN_BATCHES, TEST_BATCH) if f not in files]
    if missing:
        raise LinbenchError(f"{name}: archive lacks {', '.join(missing)}")

    train = [parse_batch(files[f], f"{name}:{f}") for f in TRAIN_BATCHES]
    test_images, test_labels = parse_batch(files[TEST_BATCH], f"{name}:{TEST_BATCH}")
    classes = CLASS_NAMES
    if META_FILE in files:
        names = [n.strip() for n in files[META_FILE].decode("utf-8", "replace").splitlines()]
        names = [n for n in names if n]
        if len(names) == NUM_CLASSES:
            classes = tuple(names)
    return RawCifar(
        train_images=np.concatenate([imgs for imgs, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        classes=classes,
    )


# --------------------------------------------------------------------------- splits


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `counts` (largest remainder)."""
    exact = counts * total / counts.sum()
    alloc = np.floor(exact).astype(np.int64)
    # Ties go to the lower class index, so the allocation is deterministic.
    order = np.lexsort((np.arange(len(counts)), -(exact - alloc)))
    alloc[order[: total - alloc.sum()]] += 1
    return alloc


def stratified_split(
    labels: np.ndarray, size: int, seed: int, num_classes: int = NUM_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Pick `size` indices with class proportions kept, the rest in the other part.

    Returns (rest, picked): two sorted index arrays that partition ``range(len(labels))``.
    The same labels, size and seed always give the same split.
    """
    if not 0 < size < len(labels):
        raise ValueError(f"split size {size} must be between 1 and {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=num_classes)
    per_class = _allocate(counts, size)
    picked = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        picked.append(rng.permutation(members)[: per_class[c]])
    picked_idx = np.sort(np.concatenate(picked))
    mask = np.ones(len(labels), dtype=bool)
    mask[picked_idx] = False
    return np.flatnonzero(mask), picked_idx


@dataclass(frozen=True)
class Splits:
    """Images and labels of the three splits, ready to be written."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    classes: tuple[str, ...]

    def summary(self) -> dict:
        """Counts per class and split, for ``splits.json``."""
        counts = {
            split: {
                name: int(n)
                for name, n in zip(
                    self.classes, np.bincount(y, minlength=len(self.classes)), strict=True
                )
            }
            for split, y in self.labels.items()
        }
        return {
            "classes": list(self.classes),
            "sizes": {split: len(y) for split, y in self.labels.items()},
            "counts": counts,
            "image_shape": list(IMAGE_SHAPE),
        }


def make_splits(raw: RawCifar, val_size: int, seed: int, train_subset: int | None) -> Splits:
    """Hold out a stratified validation set; optionally keep a stratified training subset.

    Raises:
        LinbenchError: naming ``data.val_size`` or ``data.train_subset`` when they do not
            fit the archive.
    """
    n = len(raw.train_labels)
    if not 0 < val_size < n:
        raise LinbenchError(
            f"data.val_size: {val_size} must be between 1 and {n - 1} "
            f"(the archive has {n} training images)"
        )
    train_idx, val_idx = stratified_split(raw.train_labels, val_size, seed)
    if train_subset is not None:
        if not 0 < train_subset <= len(train_idx):
            raise LinbenchError(
                f"data.train_subset: {train_subset} must be between 1 and {len(train_idx)} "
                f"(training images left after the validation split)"
            )
        if train_subset < len(train_idx):
            # A different stream from the validation split's, so changing train_subset
            # never changes which images are held out.
            _, keep = stratified_split(raw.train_labels[train_idx], train_subset, seed + 1)
            train_idx = train_idx[keep]
    return Splits(
        images={
            "train": raw.train_images[train_idx],
            "val": raw.train_images[val_idx],
            "test": raw.test_images,
        },
        labels={
            "train": raw.train_labels[train_idx],
            "val": raw.train_labels[val_idx],
            "test": raw.test_labels,
        },
        classes=raw.classes,
    )
