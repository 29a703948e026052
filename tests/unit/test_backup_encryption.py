"""The encryption envelope on its own: a round trip over many chunks, and every way of
altering one refused (flipped, dropped, swapped, appended chunks, truncation at and
between chunk boundaries, an altered header, a wrong or missing passphrase)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest

from components.backup import encryption
from components.backup.common import BackupError, RestoreRefused
from components.backup.encryption import (
    MAGIC,
    TAG_BYTES,
    EncryptingWriter,
    Passphrase,
    envelope_header,
    open_payload,
)

KEY = Passphrase("TEST", "a passphrase")
CHUNK = 64  # small chunks, so a few hundred bytes make many


def seal(plaintext: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, int]:
    """The envelope of `plaintext` and where its first chunk starts."""
    monkeypatch.setattr(encryption, "CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(encryption, "SCRYPT_N", 2 ** 10)  # quick; the header records it
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, KEY)
    for start in range(0, len(plaintext), 50):  # writes that straddle chunk boundaries
        writer.write(plaintext[start:start + 50])
    writer.finish()
    data = sink.getvalue()
    (length,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    return data, len(MAGIC) + 4 + length


def unseal(data: bytes, key: Passphrase | None = KEY) -> bytes:
    stream, header = open_payload(io.BytesIO(data), "f", key)
    assert header is not None
    return stream.read()


PLAIN = bytes(range(256)) * 3  # 768 bytes: 12 chunks of 64
SEALED = CHUNK + TAG_BYTES


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, len(PLAIN)])
def test_a_round_trip_of_any_length(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = seal(PLAIN[:size], monkeypatch)
    assert unseal(data) == PLAIN[:size]
    assert envelope_header(data) is not None
    assert size < 16 or PLAIN[:16] not in data


EDITS: dict[str, Callable[[bytes, int], bytes]] = {
    "flip a byte": lambda d, s: d[:s + 70] + bytes([d[s + 70] ^ 1]) + d[s + 71:],
    "flip the header": lambda d, s: d[:s - 3] + bytes([d[s - 3] ^ 1]) + d[s - 2:],
    "drop a chunk": lambda d, s: d[:s + SEALED] + d[s + 2 * SEALED:],
    "swap two chunks": lambda d, s: (d[:s] + d[s + SEALED:s + 2 * SEALED] + d[s:s + SEALED]
                                     + d[s + 2 * SEALED:]),
    "cut at a chunk boundary": lambda d, s: d[:s + 3 * SEALED],
    "cut inside a chunk": lambda d, s: d[:s + 3 * SEALED + 10],
    "cut the last byte": lambda d, s: d[:-1],
    "append a chunk": lambda d, s: d + d[s:s + SEALED],
    "append a byte": lambda d, s: d + b"\0",
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_altered_envelope_is_refused(edit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data, start = seal(PLAIN, monkeypatch)
    with pytest.raises(RestoreRefused):
        unseal(EDITS[edit](data, start))


def test_a_wrong_or_missing_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = seal(PLAIN, monkeypatch)
    with pytest.raises(RestoreRefused, match="passphrase in OTHER is not the one"):
        unseal(data, Passphrase("OTHER", "not it"))
    with pytest.raises(BackupError, match="set MEM0_BACKUP_PASSPHRASE"):
        unseal(data, None)


def test_a_hostile_header_cannot_ask_for_a_huge_key_derivation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, start = seal(PLAIN, monkeypatch)
    text = data[len(MAGIC) + 4:start].replace(b'"n": 1024', b'"n": 1073741824')
    hostile = MAGIC + struct.pack(">I", len(text)) + text + data[start:]
    with pytest.raises(RestoreRefused, match="scrypt parameter n"):
        unseal(hostile)


def test_a_plain_stream_passes_through_unchanged() -> None:
    stream, header = open_payload(io.BytesIO(b"\x1f\x8b plain gzip"), "f", KEY)
    assert header is None and stream.read() == b"\x1f\x8b plain gzip"
