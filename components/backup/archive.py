"""The backup file: a gzip-compressed tar whose first member is `manifest.json`, followed
by one member per table.

Written through a destination's writer (destinations.py), which makes it the file or
object only when complete, so a failed or interrupted backup never leaves a truncated one
under the name asked for, and through an encryption envelope when a key is set. Every
header field that could vary (times, owners, modes) is fixed, and the gzip header carries
the backup's time instead of the clock, so the same rows at the same snapshot give the same
bytes.

Read as a stream, front to back, in one pass: restore loads each member while it hashes
it, so even a large file is read once and never unpacked to disk. Every way a file can fail
to read (not gzip, bad tar headers, a CRC error, bytes missing at the end) is a refusal.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from components.backup.common import MANIFEST_MEMBER, BackupError, RestoreRefused
from components.backup.destinations import Sink, parse_destination
from components.backup.encryption import Passphrase, open_payload

# Level 6 (gzip's default): random float vectors barely compress at any level, and 9 costs
# far more time than it saves bytes on the JSON payloads.
COMPRESS_LEVEL = 6
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
CHUNK = 1024 * 1024
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(sink: Sink, manifest: bytes, members: Sequence[tuple[str, Path]],
                  mtime: int) -> None:
    """Write the backup file's bytes to `sink` (a destination's writer or an encryption
    envelope, which make it the file)."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=COMPRESS_LEVEL,
                       mtime=mtime) as compressed, \
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(MANIFEST_MEMBER, len(manifest), mtime), io.BytesIO(manifest))
        for name, spooled in members:
            with spooled.open("rb") as data:
                tar.addfile(_info(name, spooled.stat().st_size, mtime), data)
    sink.flush()


@contextmanager
def open_archive(location: str | Path, endpoint_url: str | None,
                 passphrase: Passphrase | None) -> Iterator[ArchiveReader]:
    """The backup at a path or s3:// URL, decrypted when it is encrypted, ready to read."""
    destination = parse_destination(location, endpoint_url, argument="restore")
    if destination.is_container:
        raise BackupError(f"restore: {destination.location} is a directory or prefix; name "
                          "one backup file or object in it")
    with destination.reader() as raw:
        stream, header = open_payload(raw, destination.location, passphrase)
        with ArchiveReader(destination.location, stream, header) as archive:
            yield archive


class ArchiveReader:
    """`with ArchiveReader(path) as archive:` then `manifest_bytes()`, `members()`,
    `finish()`, in that order."""

    def __init__(self, name: str, stream: IO[bytes],
                 envelope: dict[str, Any] | None = None) -> None:
        self.path = name  # for messages: the path or URL
        self.envelope = envelope  # the encryption header, None for a plain backup
        self._raw: IO[bytes] | None = stream
        self._tar: tarfile.TarFile | None = None
        self._gzip: gzip.GzipFile | None = None

    def __enter__(self) -> ArchiveReader:
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="rb")
        with self.refusing():
            self._tar = tarfile.open(fileobj=self._gzip, mode="r|")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for closable in (self._tar, self._gzip, self._raw):
            if closable is not None:
                try:
                    closable.close()
                except _READ_ERRORS:
                    pass  # already refused, or about to be

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """Turn every way the file fails to read into a refusal that names it."""
        try:
            yield
        except _READ_ERRORS as exc:
            raise RestoreRefused(f"{self.path} is not a readable backup (corrupt, truncated, "
                                 f"or not a gzip-compressed tar): {exc}") from exc

    def manifest_bytes(self) -> bytes:
        assert self._tar is not None
        with self.refusing():
            first = self._tar.next()
            if first is None or first.name != MANIFEST_MEMBER or not first.isreg():
                raise RestoreRefused(
                    f"{self.path} is not a backup: its first member is "
                    f"{first.name if first else 'missing'}, not {MANIFEST_MEMBER}")
            if first.size > MAX_MANIFEST_BYTES:
                raise RestoreRefused(f"{self.path} is not a backup: its {MANIFEST_MEMBER} "
                                     f"is {first.size} bytes")
            data = self._tar.extractfile(first)
            assert data is not None
            return data.read()

    def members(self) -> Iterator[tuple[str, int, IO[bytes]]]:
        """(name, size, stream) of each member after the manifest; read each stream to its
        end before asking for the next."""
        assert self._tar is not None
        while True:
            with self.refusing():
                info = self._tar.next()
                if info is None:
                    return
                if not info.isreg():
                    raise RestoreRefused(f"{self.path}: member {info.name} is not a file")
                stream = self._tar.extractfile(info)
                assert stream is not None
            yield info.name, info.size, stream

    def finish(self) -> None:
        """Read to the end of the compressed stream, so its CRC and length are checked."""
        assert self._gzip is not None
        with self.refusing():
            while self._gzip.read(CHUNK):
                pass
