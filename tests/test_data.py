"""Acquisition: download (HTTP, file://, local path), archive safety, parsing, splits."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import make_cifar_archive, serve_directory

from linbench.data import (
    RECORD_BYTES,
    download_archive,
    make_splits,
    parse_batch,
    read_archive,
    stratified_split,
)
from linbench.errors import LinbenchError


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "src" / "cifar-10-binary.tar.gz"
    path.parent.mkdir()
    return path, make_cifar_archive(path, n_train_per_class=12, n_test_per_class=4)


def test_http_download_is_verified(archive, tmp_path):
    path, md5 = archive
    dest = tmp_path / "out" / "cifar.tar.gz"
    with serve_directory(path.parent) as base:
        download_archive(f"{base}/{path.name}", md5, dest)
    assert dest.read_bytes() == path.read_bytes()


def test_http_wrong_md5_leaves_nothing(archive, tmp_path):
    path, _ = archive
    dest = tmp_path / "out" / "cifar.tar.gz"
    with serve_directory(path.parent) as base, pytest.raises(LinbenchError, match=r"data\.md5"):
        download_archive(f"{base}/{path.name}", "0" * 32, dest, retries=0)
    assert list(dest.parent.iterdir()) == []


def test_http_missing_file_names_url(archive, tmp_path):
    path, md5 = archive
    with serve_directory(path.parent) as base, pytest.raises(LinbenchError, match=r"data\.url"):
        download_archive(f"{base}/nope.tar.gz", md5, tmp_path / "x.tar.gz", retries=1)


@pytest.mark.parametrize("form", ["file_url", "plain_path"])
def test_local_sources(archive, tmp_path, form):
    path, md5 = archive
    url = path.as_uri() if form == "file_url" else str(path)
    dest = tmp_path / "out" / "cifar.tar.gz"
    download_archive(url, md5.upper(), dest)
    assert dest.read_bytes() == path.read_bytes()


def test_local_wrong_md5_leaves_nothing(archive, tmp_path):
    path, _ = archive
    dest = tmp_path / "out" / "cifar.tar.gz"
    with pytest.raises(LinbenchError, match="checksum mismatch"):
        download_archive(str(path), "f" * 32, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_read_archive_decodes_layout(archive):
    path, _ = archive
    raw = read_archive(path)
    assert raw.train_images.shape == (120, 32, 32, 3) and raw.train_images.dtype == np.uint8
    assert raw.test_images.shape == (40, 32, 32, 3)
    assert np.bincount(raw.test_labels).tolist() == [4] * 10
    assert raw.classes[0] == "airplane" and len(raw.classes) == 10


def test_parse_batch_plane_order():
    # One record whose R plane is 1, G plane 2 and B plane 3: HWC pixels are (1, 2, 3).
    record = bytes([7]) + bytes([1] * 1024 + [2] * 1024 + [3] * 1024)
    images, labels = parse_batch(record, "x")
    assert labels.tolist() == [7]
    assert images[0, 5, 9].tolist() == [1, 2, 3]


def test_bad_label_is_named(tmp_path):
    path = tmp_path / "a.tar.gz"
    make_cifar_archive(path, 5, 2, bad_label=True)
    with pytest.raises(LinbenchError, match=r"data_batch_3.bin: record 0 has label 10"):
        read_archive(path)


def test_truncated_archive(archive, tmp_path):
    path, _ = archive
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LinbenchError, match="truncated or corrupt"):
        read_archive(cut)


def test_partial_record_is_refused():
    with pytest.raises(LinbenchError, match="whole number"):
        parse_batch(b"\x00" * (RECORD_BYTES + 5), "x")


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 3, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("/etc/evil"), "unsafe member path"),
        (_member("cifar-10-batches-bin/../../evil"), "unsafe member path"),
        (_member("cifar-10-batches-bin/readme.txt", tarfile.SYMTYPE, link="/etc/passwd"), "link"),
        (_member("cifar-10-batches-bin/hard", tarfile.LNKTYPE, link="x"), "link"),
        (_member("cifar-10-batches-bin/dev", tarfile.CHRTYPE), "device"),
        (_member("cifar-10-batches-bin/data_batch_1.py"), "unexpected member"),
        (_member("other/data_batch_1.bin"), "unexpected member"),
    ],
)
def test_unsafe_or_unexpected_members(tmp_path, member, message):
    path = tmp_path / "evil.tar.gz"
    make_cifar_archive(path, 2, 1, extra_members=[member])
    with pytest.raises(LinbenchError, match=message):
        read_archive(path)


def test_stratified_split_is_balanced_seeded_and_a_partition():
    labels = np.repeat(np.arange(10), 50)
    rest, picked = stratified_split(labels, 100, seed=3)
    assert np.bincount(labels[picked]).tolist() == [10] * 10
    assert sorted(np.concatenate([rest, picked]).tolist()) == list(range(500))
    again = stratified_split(labels, 100, seed=3)
    assert np.array_equal(again[1], picked)
    assert not np.array_equal(stratified_split(labels, 100, seed=4)[1], picked)


def test_stratified_split_uneven_classes_sums_exactly():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 13)
    _, picked = stratified_split(labels, 5, seed=0, num_classes=3)
    assert len(picked) == 5 and np.bincount(labels[picked], minlength=3).tolist() == [1, 1, 3]


def test_make_splits_subset_keeps_validation(archive):
    raw = read_archive(archive[0])
    full = make_splits(raw, val_size=20, seed=0, train_subset=None)
    sub = make_splits(raw, val_size=20, seed=0, train_subset=50)
    assert len(full.labels["train"]) == 100 and len(sub.labels["train"]) == 50
    assert np.array_equal(full.images["val"], sub.images["val"])
    assert np.bincount(sub.labels["train"]).tolist() == [5] * 10
    summary = sub.summary()
    assert summary["sizes"] == {"train": 50, "val": 20, "test": 40}
    assert summary["counts"]["test"]["truck"] == 4


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"val_size": 500}, "data.val_size"), ({"train_subset": 1000}, "data.train_subset")],
)
def test_make_splits_names_bad_key(archive, kwargs, key):
    raw = read_archive(archive[0])
    args = {"val_size": 20, "seed": 0, "train_subset": None, **kwargs}
    with pytest.raises(LinbenchError, match=key):
        make_splits(raw, **args)
