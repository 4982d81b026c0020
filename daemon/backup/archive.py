"""The backup archive: a stream of bytes, compressed, encrypted under a passphrase, with a checksum.

Why not age (pyrage): its Python binding encrypts a whole bytes object in memory, and an archive of
100,000 vectors is hundreds of megabytes. This is the same construction, streamed, from `cryptography`:

    MAGIC | header length (4 bytes) | header (JSON: scrypt's parameters and salt, the nonce prefix)
    | HMAC-SHA256(mac key, MAGIC + header)            -- tells a wrong passphrase from anything else
    | chunks: length (4 bytes) | AES-256-GCM(plaintext of at most CHUNK bytes)
    | SHA-256 of every byte before it                 -- a damaged archive is refused before any is read

scrypt turns the passphrase into a 32-byte encryption key and a 32-byte MAC key. Each chunk's nonce is
the header's random prefix, the chunk's number and a flag set only on the last chunk (as age's STREAM
does), and the header is bound in as associated data: chunks cannot be reordered, dropped, repeated or
cut off at the end without the reader noticing. Inside, the plaintext is deflate-coded (Huffman only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"BASTION-BACKUP\x00\x01"
CHUNK = 1 << 20
SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}  # about 0.1 s and 32 MiB: cheap for us, dear for a guesser
NONCE_PREFIX = 7
DIGEST = 32


class ArchiveError(Exception):
    """The archive cannot be read: damaged, not an archive, or the passphrase is wrong (the message says)."""


def _keys(passphrase: str, salt: bytes, params: dict[str, int]) -> tuple[bytes, bytes]:
    material = Scrypt(salt=salt, length=64, **params).derive(passphrase.encode())
    return material[:32], material[32:]


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I?", counter, last)


class ArchiveWriter:
    """Write plaintext with `write`; `close` seals the last chunk and appends the checksum. The file appears
    at `path` only once it is complete (written to a private temporary file, then renamed)."""

    def __init__(self, path: Path, passphrase: str) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(f".{self.path.name}.{os.urandom(4).hex()}.partial")
        fd = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        salt, self._prefix = os.urandom(16), os.urandom(NONCE_PREFIX)
        header = json.dumps({"kdf": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode(),
                             "nonce_prefix": base64.b64encode(self._prefix).decode()}).encode()
        key, mac_key = _keys(passphrase, salt, SCRYPT)
        self._aead = AESGCM(key)
        self._aad = MAGIC + header
        self._raw(MAGIC + struct.pack(">I", len(header)) + header)
        self._raw(hmac.new(mac_key, self._aad, hashlib.sha256).digest())
        # Huffman coding alone: most of an archive is base64 of float32 vectors, where searching for repeats
        # (deflate's LZ77) finds none and cost 2.5x the time for the same size (31 MB of 41 MB either way).
        self._compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_HUFFMAN_ONLY)
        self._pending = bytearray()
        self._counter = 0
        self.size = 0  # plaintext bytes written

    def _raw(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), plain, self._aad)
        self._raw(struct.pack(">I", len(sealed)) + sealed)
        self._counter += 1

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += self._compressor.compress(data)
        while len(self._pending) > CHUNK:
            self._seal(bytes(self._pending[:CHUNK]), last=False)
            del self._pending[:CHUNK]

    def close(self) -> None:
        self._pending += self._compressor.flush()
        while len(self._pending) > CHUNK:
            self._seal(bytes(self._pending[:CHUNK]), last=False)
            del self._pending[:CHUNK]
        self._seal(bytes(self._pending), last=True)
        self._file.write(self._digest.digest())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.path)

    def abort(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)


def _read_exactly(handle: BinaryIO, size: int, what: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise ArchiveError(f"the archive is damaged: it ends inside {what}")
    return data


def check(path: Path) -> None:
    """Refuse an archive whose checksum does not match its bytes, before anything is decrypted."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                raise ArchiveError(f"{path} is not a Bastion backup archive")
            handle.seek(0)
            digest = hashlib.sha256()
            remaining = size - DIGEST
            while remaining > 0:
                block = handle.read(min(remaining, 1 << 20))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
            if remaining != 0 or not hmac.compare_digest(digest.digest(), handle.read(DIGEST)):
                raise ArchiveError(f"{path} is damaged: its checksum does not match its contents")
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None


def read(path: Path, passphrase: str) -> Iterator[bytes]:
    """The plaintext of the archive at `path`, in pieces; `check` it first. Raises ArchiveError for a wrong
    passphrase before yielding anything."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        magic = _read_exactly(handle, len(MAGIC), "its header")
        (length,) = struct.unpack(">I", _read_exactly(handle, 4, "its header"))
        header_bytes = _read_exactly(handle, length, "its header")
        try:
            header = json.loads(header_bytes)
            salt = base64.b64decode(header["salt"])
            prefix = base64.b64decode(header["nonce_prefix"])
            params = {k: int(header[k]) for k in ("n", "r", "p")}
        except (ValueError, KeyError, TypeError):
            raise ArchiveError(f"{path} is damaged: its header is unreadable") from None
        key, mac_key = _keys(passphrase, salt, params)
        aad = magic + header_bytes
        if not hmac.compare_digest(hmac.new(mac_key, aad, hashlib.sha256).digest(), _read_exactly(handle, DIGEST, "its header")):
            raise ArchiveError("wrong passphrase (BASTION_BACKUP_PASSPHRASE) for this archive")
        aead = AESGCM(key)
        decompressor = zlib.decompressobj()
        counter, end = 0, size - DIGEST
        while handle.tell() < end:
            (length,) = struct.unpack(">I", _read_exactly(handle, 4, "a chunk"))
            sealed = _read_exactly(handle, length, "a chunk")
            last = handle.tell() == end
            try:
                plain = aead.decrypt(_nonce(prefix, counter, last), sealed, aad)
            except InvalidTag:
                raise ArchiveError(f"{path} is damaged: chunk {counter} does not authenticate") from None
            counter += 1
            yield decompressor.decompress(plain)
        if counter == 0:
            raise ArchiveError(f"{path} is damaged: it holds no data")
        yield decompressor.flush()


def lines(path: Path, passphrase: str) -> Iterator[bytes]:
    """The archive's plaintext split into lines (without their newlines)."""
    rest = b""
    for piece in read(path, passphrase):
        rest += piece
        *complete, rest = rest.split(b"\n")
        yield from complete
    if rest:
        yield rest
