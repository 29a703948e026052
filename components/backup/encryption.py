"""Encrypting a backup as it streams out and decrypting it as it streams back in:
AES-256-GCM in authenticated chunks, the key derived from a passphrase with scrypt
(docs/backup.md, "Encryption", says why this construction and this library).

An encrypted backup is an outer envelope around the unchanged gzip-compressed tar: a magic
line, a length-prefixed JSON header (algorithm, chunk size, the KDF's name, parameters and
salt, a key check; never a secret), then the chunks. Each chunk holds `chunk_bytes` of
plaintext (the last one fewer) plus its 16-byte tag; its nonce and associated data carry
the chunk's index and whether it is the last, and the data also the header's hash, so a
flipped byte, a reordered, dropped or appended chunk, a truncated file or an altered
header all fail to authenticate. Only authenticated plaintext is ever handed on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import struct
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from components.backup.common import BackupError, RestoreRefused
from components.backup.destinations import Sink

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["ALGORITHM", "MAGIC", "PASSPHRASE_ENV", "EncryptingWriter", "Passphrase",
           "envelope_header", "open_payload", "passphrase_from_env"]

MAGIC = b"mem0infra-backup-encrypted\n"
ENVELOPE = "mem0infra-backup-encryption"
ENVELOPE_VERSION = 1
ALGORITHM = "AES-256-GCM"
KDF = "scrypt"
PASSPHRASE_ENV = "MEM0_BACKUP_PASSPHRASE"
CHUNK_BYTES = 1024 * 1024
TAG_BYTES = 16
SALT_BYTES = 16
# scrypt's cost: 2**17 x 8 takes 128 MiB and about half a second once per backup, the
# interactive-login strength its authors recommend, for a passphrase a person chose.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 17, 8, 1
# What a header read from a file may ask for, so a hostile file cannot make restore spend
# gigabytes of memory deriving a key or holding one chunk.
MAX_HEADER_BYTES = 64 * 1024
MAX_SCRYPT_N, MAX_SCRYPT_R, MAX_SCRYPT_P = 2 ** 20, 16, 4
MAX_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Passphrase:
    """The secret, and where it came from (for messages; the secret is never printed)."""

    source: str  # the environment variable that held it
    secret: str = field(repr=False)


def passphrase_from_env(name: str | None) -> Passphrase | None:
    """The passphrase in environment variable `name` (or MEM0_BACKUP_PASSPHRASE when no
    name is given and it is set); BackupError when a named variable is unset or empty."""
    variable = name or PASSPHRASE_ENV
    value = os.environ.get(variable)
    if not value:
        if name is None:
            return None
        raise BackupError(f"--passphrase-env: environment variable {name} is "
                          f"{'empty' if value == '' else 'not set'}")
    return Passphrase(variable, value)


def _derive(passphrase: Passphrase, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, str]:
    """(the AES key, the key check the header stores): one scrypt, split in two halves."""
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(
        passphrase.secret.encode("utf-8"))
    check = hmac.new(material[32:], b"mem0infra key check", hashlib.sha256).hexdigest()
    return material[:32], check


def _nonce(index: int, final: bool) -> bytes:
    # The key is new for every file (a fresh salt), so a counter is a unique nonce.
    return struct.pack(">QI", index, 1 if final else 0)


def _aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return b"mem0infra-chunk" + header_hash + struct.pack(">QB", index, 1 if final else 0)


class EncryptingWriter(io.RawIOBase):
    """Writes the envelope to `sink`: the header at once, a chunk whenever more than a
    chunk's plaintext is buffered, the final chunk on `finish()` (which must be called
    after the last write; closing without it leaves a file restore refuses)."""

    def __init__(self, sink: Sink, passphrase: Passphrase) -> None:
        super().__init__()
        self._sink = sink
        salt = os.urandom(SALT_BYTES)
        key, check = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        self.header = {
            "format": ENVELOPE, "version": ENVELOPE_VERSION, "algorithm": ALGORITHM,
            "chunk_bytes": CHUNK_BYTES, "kdf": {
                "name": KDF, "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                "salt": base64.b64encode(salt).decode()},
            "key_check": check}
        encoded = json.dumps(self.header, sort_keys=True).encode()
        self._aead = AESGCM(key)
        self._hash = hashlib.sha256(encoded).digest()
        self._buffer = bytearray()
        self._index = 0
        self._finished = False
        sink.write(MAGIC + struct.pack(">I", len(encoded)) + encoded)

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self._finished:
            raise ValueError("write after finish()")
        view = memoryview(data)
        self._buffer += view
        # Strictly more than a chunk: the last chunk, written by finish(), is never empty
        # unless the whole payload is.
        while len(self._buffer) > CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        return view.nbytes

    def _seal(self, plaintext: bytes, final: bool) -> None:
        self._sink.write(self._aead.encrypt(_nonce(self._index, final), plaintext,
                                            _aad(self._hash, self._index, final)))
        self._index += 1

    def finish(self) -> None:
        """Seal the last chunk, marked final."""
        if not self._finished:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._finished = True


def _header_problem(header: Any) -> str | None:
    if not isinstance(header, dict) or header.get("format") != ENVELOPE:
        return "its header is not a mem0infra encryption header"
    if header.get("version") != ENVELOPE_VERSION:
        return f"its encryption header is version {header.get('version')!r}"
    if header.get("algorithm") != ALGORITHM:
        return f"it is encrypted with {header.get('algorithm')!r}, not {ALGORITHM}"
    kdf = header.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != KDF:
        return f"its key derivation is not {KDF}"
    limits = {"n": MAX_SCRYPT_N, "r": MAX_SCRYPT_R, "p": MAX_SCRYPT_P}
    for name, limit in limits.items():
        value = kdf.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            return f"its scrypt parameter {name} is {value!r} (at most {limit})"
    chunk = header.get("chunk_bytes")
    if not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK_BYTES:
        return f"its chunk size is {chunk!r}"
    if not isinstance(kdf.get("salt"), str) or not isinstance(header.get("key_check"), str):
        return "its header has no salt or key check"
    return None


class _DecryptingReader(io.RawIOBase):
    """The plaintext of an envelope whose header has been read; every chunk is
    authenticated before its bytes are returned, and the end must be a final chunk."""

    def __init__(self, source: IO[bytes], name: str, aead: AESGCM, header_hash: bytes,
                 chunk_bytes: int) -> None:
        super().__init__()
        self._source, self._name, self._aead = source, name, aead
        self._hash, self._sealed = header_hash, chunk_bytes + TAG_BYTES
        self._plain = b""
        self._offset = 0
        self._index = 0
        self._done = False
        self._ahead = b""

    def readable(self) -> bool:
        return True

    def _read_exactly(self, size: int) -> bytes:
        data = bytearray(self._ahead)
        self._ahead = b""
        while len(data) < size:
            more = self._source.read(size - len(data))
            if not more:
                break
            data += more
        return bytes(data)

    def _next_chunk(self) -> None:
        sealed = self._read_exactly(self._sealed)
        self._ahead = self._read_exactly(1) if len(sealed) == self._sealed else b""
        final = not self._ahead
        if len(sealed) < TAG_BYTES:
            raise RestoreRefused(f"{self._name} is truncated: its encrypted stream ends "
                                 f"inside chunk {self._index}")
        try:
            self._plain = self._aead.decrypt(_nonce(self._index, final), sealed,
                                             _aad(self._hash, self._index, final))
        except InvalidTag as exc:
            raise RestoreRefused(
                f"{self._name}: encrypted chunk {self._index} does not authenticate (the "
                "file was altered, truncated or reordered); nothing of it is used") from exc
        self._offset = 0
        self._index += 1
        self._done = final

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        while self._offset >= len(self._plain):
            if self._done:
                return 0
            self._next_chunk()
        size = min(len(target), len(self._plain) - self._offset)
        target[:size] = self._plain[self._offset:self._offset + size]
        self._offset += size
        return size


class _Prefixed(io.RawIOBase):
    """`source` with the bytes already read from its start put back in front."""

    def __init__(self, prefix: bytes, source: IO[bytes]) -> None:
        super().__init__()
        self._prefix, self._source = prefix, source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._prefix:
            size = min(len(target), len(self._prefix))
            target[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        data = self._source.read(len(target))
        target[:len(data)] = data
        return len(data)


def _read(source: IO[bytes], size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        more = source.read(size - len(data))
        if not more:
            break
        data += more
    return bytes(data)


def envelope_header(head: bytes) -> dict[str, Any] | None:
    """The header of an encrypted backup from its first bytes (at least the magic, the
    length and the header), or None when they are not an envelope's."""
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + 4:
        return None
    (length,) = struct.unpack(">I", head[len(MAGIC):len(MAGIC) + 4])
    encoded = head[len(MAGIC) + 4:len(MAGIC) + 4 + length]
    try:
        header = json.loads(encoded)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header if isinstance(header, dict) and _header_problem(header) is None else None


def open_payload(source: IO[bytes], name: str, passphrase: Passphrase | None
                 ) -> tuple[IO[bytes], dict[str, Any] | None]:
    """The backup's gzip stream read from `source`, decrypted when it is an envelope, and
    the envelope's header (None for a plain backup). Refuses a malformed envelope or a
    wrong passphrase; BackupError when the file is encrypted and no passphrase is set."""
    start = _read(source, len(MAGIC))
    if start != MAGIC:
        return io.BufferedReader(_Prefixed(start, source), CHUNK_BYTES), None
    (length,) = struct.unpack(">I", _read(source, 4).rjust(4, b"\xff"))
    if length > MAX_HEADER_BYTES:
        raise RestoreRefused(f"{name}: its encryption header claims {length} bytes")
    encoded = _read(source, length)
    try:
        header = json.loads(encoded)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RestoreRefused(f"{name}: its encryption header is not JSON ({exc})") from exc
    problem = _header_problem(header)
    if problem:
        raise RestoreRefused(f"{name} cannot be decrypted: {problem}")
    if passphrase is None:
        raise BackupError(f"{name} is encrypted ({ALGORITHM}, key from a passphrase by "
                          f"{KDF}): set {PASSPHRASE_ENV} or name the variable that holds the "
                          "passphrase with --passphrase-env")
    kdf = header["kdf"]
    try:
        salt = base64.b64decode(kdf["salt"], validate=True)
    except ValueError as exc:
        raise RestoreRefused(f"{name}: its encryption header's salt is not base64") from exc
    key, check = _derive(passphrase, salt, kdf["n"], kdf["r"], kdf["p"])
    if not hmac.compare_digest(check, header["key_check"]):
        raise RestoreRefused(f"{name}: the passphrase in {passphrase.source} is not the one "
                             "this backup was encrypted with (or its header was altered)")
    reader = _DecryptingReader(source, name, AESGCM(key), hashlib.sha256(encoded).digest(),
                               header["chunk_bytes"])
    return io.BufferedReader(reader, CHUNK_BYTES), header
