"""Tiny CIFAR-10 archives in the official binary layout, and a loopback HTTP server."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DIR = "cifar-10-batches-bin"


def make_records(labels: np.ndarray, rng: np.random.Generator) -> bytes:
    """Binary records: a label byte then 3,072 pixel bytes, with class-dependent images.

    Each class gets its own mean colour and stripe orientation, so a linear classifier on
    HOG or pixels can learn something in a few epochs.
    """
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i, c in enumerate(labels):
        angle = np.pi * c / 10
        stripes = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 0.8) * 60
        base = 60 + 15 * np.array([c % 3, (c // 3) % 3, c % 5])[:, None, None]
        noise = rng.normal(0, 25, size=(3, 32, 32))
        images[i] = np.clip(base + stripes[None] + noise, 0, 255).astype(np.uint8)
    records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(n, -1)], axis=1)
    return records.tobytes()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar_archive(
    path: str | Path,
    n_train_per_class: int = 20,
    n_test_per_class: int = 5,
    seed: int = 0,
    *,
    bad_label: bool = False,
    extra_members: list[tarfile.TarInfo] | None = None,
) -> str:
    """Write a CIFAR-10-binary-format ``.tar.gz`` and return its MD5.

    The training images are spread over five ``data_batch_*.bin`` files like the official
    archive; ``bad_label`` puts a label 10 into data_batch_3; ``extra_members`` are added
    as they are (for unsafe-member tests).
    """
    rng = np.random.default_rng(seed)
    train_labels = rng.permutation(np.repeat(np.arange(10), n_train_per_class))
    test_labels = rng.permutation(np.repeat(np.arange(10), n_test_per_class))
    batches = np.array_split(train_labels, 5)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        dir_info = tarfile.TarInfo(DIR)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        tar.addfile(dir_info)
        for i, labels in enumerate(batches, start=1):
            data = bytearray(make_records(labels, rng))
            if bad_label and i == 3:
                data[0] = 10
            _add(tar, f"{DIR}/data_batch_{i}.bin", bytes(data))
        _add(tar, f"{DIR}/test_batch.bin", make_records(test_labels, rng))
        _add(tar, f"{DIR}/batches.meta.txt", ("\n".join(CLASSES) + "\n\n").encode())
        for member in extra_members or []:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    Path(path).write_bytes(buf.getvalue())
    return hashlib.md5(buf.getvalue()).hexdigest()


@contextlib.contextmanager
def serve_directory(directory: str | Path) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 (a free port); yield the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
