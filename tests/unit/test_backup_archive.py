"""The backup archive's container (daemon/backup/archive.py): what it refuses, beyond a flipped byte
(tests/e2e/test_backup.py covers that through `bastiond restore`)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest

from daemon.backup import archive
from daemon.backup.archive import ArchiveError

PASSPHRASE = "the archive's passphrase"


def _write(path: Path, data: bytes) -> None:
    writer = archive.ArchiveWriter(path, PASSPHRASE)
    writer.write(data)
    writer.close()


def _chunks(raw: bytes) -> tuple[bytes, list[bytes]]:
    """The archive's head (magic, header, MAC) and its sealed chunks, each with its length."""
    (length,) = struct.unpack(">I", raw[len(archive.MAGIC):len(archive.MAGIC) + 4])
    at = len(archive.MAGIC) + 4 + length + archive.DIGEST
    head, chunks = raw[:at], []
    while at < len(raw) - archive.DIGEST:
        (size,) = struct.unpack(">I", raw[at:at + 4])
        chunks.append(raw[at:at + 4 + size])
        at += 4 + size
    return head, chunks


def _with_checksum(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()  # as someone would who recomputed it after tampering


def test_a_large_stream_comes_back_whole_and_only_the_complete_file_appears(tmp_path: Path) -> None:
    data = os.urandom(3 * archive.CHUNK) + b"\n".join(b"line %d" % i for i in range(100_000))
    path = tmp_path / "a.backup"
    _write(path, data)
    assert [p.name for p in tmp_path.iterdir()] == ["a.backup"]  # no partial file left beside it
    assert path.stat().st_mode & 0o777 == 0o600
    archive.check(path)
    assert b"".join(archive.read(path, PASSPHRASE)) == data
    assert len(_chunks(path.read_bytes())[1]) >= 3


def test_chunks_dropped_or_reordered_are_refused_even_with_a_fresh_checksum(tmp_path: Path) -> None:
    path = tmp_path / "a.backup"
    _write(path, os.urandom(3 * archive.CHUNK))
    head, chunks = _chunks(path.read_bytes())
    for tampered in (chunks[:-1], [chunks[1], chunks[0], *chunks[2:]]):
        path.write_bytes(_with_checksum(head + b"".join(tampered)))
        archive.check(path)  # the checksum matches: only the chunks' own authentication can tell
        with pytest.raises(ArchiveError, match="does not authenticate"):
            b"".join(archive.read(path, PASSPHRASE))


def test_a_wrong_passphrase_is_told_apart_from_damage(tmp_path: Path) -> None:
    path = tmp_path / "a.backup"
    _write(path, b"data")
    with pytest.raises(ArchiveError, match=r"^wrong passphrase"):
        next(archive.read(path, "another passphrase"))
    (tmp_path / "other").write_bytes(b"not an archive at all" * 10)
    with pytest.raises(ArchiveError, match="is not a Bastion backup archive"):
        archive.check(tmp_path / "other")
