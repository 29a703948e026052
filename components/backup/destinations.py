"""Where a backup file goes and comes from: a local path or an S3 (or S3-compatible)
object, behind one `Destination` protocol.

A destination names either one backup (a file, an object key) or a container of them (an
existing directory or a path ending in `/`; `s3://bucket/` or a prefix ending in `/`), in
which `backup` writes under a generated name (`backup_name`) that `backup-prune`
recognises. Writing is all or nothing: a local file is written under a temporary name and
renamed into place; an object is a multipart upload, streamed through a buffer of one part,
completed only after the last byte and aborted on any error, so a failed backup never
leaves a file or object under the name asked for.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from components.backup.common import BackupError, RestoreRefused

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["BACKUP_NAME", "CountingSink", "Destination", "LocalDestination", "S3Destination",
           "Sink", "Stored", "backup_name", "name_time", "parse_destination"]

S3_SCHEME = "s3://"
# An object-store part: S3 takes 5 MiB to 5 GiB for every part but the last; 8 MiB keeps
# the buffer small and a 1 TB backup under S3's 10,000 parts.
PART_BYTES = 8 * 1024 * 1024
# The object metadata `backup` sets and `backup-prune` requires (x-amz-meta-*).
META_FORMAT, META_TAKEN_AT, META_ENCRYPTED = "mem0infra-format", "mem0infra-taken-at", \
    "mem0infra-encrypted"
# mem0-backup-<stack>-<UTC time of the snapshot>.tar.gz, .enc when encrypted.
BACKUP_NAME = re.compile(r"mem0-backup-(?P<stack>[A-Za-z0-9_.-]+?)-"
                         r"(?P<time>[0-9]{8}T[0-9]{6}\.[0-9]{6}Z)\.tar\.gz(?P<enc>\.enc)?")
_TIME = "%Y%m%dT%H%M%S.%fZ"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def backup_name(stack: str, taken_at: datetime, encrypted: bool) -> str:
    return (f"mem0-backup-{stack}-{taken_at.astimezone(UTC).strftime(_TIME)}.tar.gz"
            + (".enc" if encrypted else ""))


def name_time(name: str) -> tuple[str, datetime] | None:
    """(stack, snapshot time) of a generated backup name; None for any other name."""
    match = BACKUP_NAME.fullmatch(name)
    if match is None:
        return None
    return match["stack"], datetime.strptime(match["time"], _TIME).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Stored:
    """One file or object in a container."""

    name: str  # relative to the container
    size: int
    modified: datetime


class Sink(Protocol):
    """Where an archive is written: a file, an upload, an encryption envelope."""

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...


class Destination(Protocol):
    """One backup, or a container of them, somewhere."""

    @property
    def location(self) -> str:
        """The path or URL, as the user would give it again."""

    @property
    def is_container(self) -> bool: ...

    def child(self, name: str) -> Destination:
        """The backup `name` in this container."""

    def writer(self, metadata: Mapping[str, str]) -> AbstractContextManager[Sink]:
        """A stream to write the backup to; it becomes the backup only when the block ends
        without an error, and leaves nothing otherwise."""

    def reader(self) -> AbstractContextManager[IO[bytes]]:
        """The backup's bytes, front to back."""

    def listing(self) -> list[Stored]:
        """The container's files or objects (not below sub-folders)."""

    def metadata(self, name: str) -> dict[str, str]:
        """What the container knows about one of its backups without reading it whole."""

    def remove(self, name: str) -> None: ...


class CountingSink:
    """A sink that counts the bytes that pass into it."""

    def __init__(self, sink: Sink) -> None:
        self.sink, self.size = sink, 0

    def write(self, data: bytes, /) -> int:
        self.sink.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()


@dataclass(frozen=True)
class LocalDestination:
    path: Path
    container: bool

    @property
    def location(self) -> str:
        return str(self.path) + ("/" if self.container else "")

    @property
    def is_container(self) -> bool:
        return self.container

    def child(self, name: str) -> LocalDestination:
        return LocalDestination(self.path / name, False)

    @contextmanager
    def writer(self, metadata: Mapping[str, str]) -> Iterator[Sink]:
        path = self.path
        if not path.parent.is_dir():
            raise BackupError(f"--output: directory {path.parent} does not exist")
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            # Readable by its owner only: the file holds every memory of the stack.
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as raw:
                yield raw
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot write {path}: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    @contextmanager
    def reader(self) -> Iterator[IO[bytes]]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise BackupError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        with raw:
            yield raw

    def listing(self) -> list[Stored]:
        try:
            entries = [e for e in os.scandir(self.path) if e.is_file(follow_symlinks=False)]
        except OSError as exc:
            raise BackupError(f"cannot list {self.path}: {exc.strerror or exc}") from exc
        return [Stored(e.name, e.stat().st_size,
                       datetime.fromtimestamp(e.stat().st_mtime, UTC)) for e in entries]

    def metadata(self, name: str) -> dict[str, str]:
        return {}

    def remove(self, name: str) -> None:
        try:
            (self.path / name).unlink()
        except OSError as exc:
            raise BackupError(f"cannot delete {self.path / name}: {exc}") from exc


def _client_error(action: str, location: str, exc: Exception) -> BackupError:
    text = str(exc).strip() or type(exc).__name__
    return BackupError(f"cannot {action} {location}: {text}")


def _sdk_errors() -> tuple[type[Exception], ...]:
    """What boto3 raises: a service's refusal or a client-side failure (no credentials,
    no connection)."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
    )

    return BotoCoreError, ClientError


class _MultipartWriter(io.RawIOBase):
    """A writable stream that uploads every full part as it fills; `complete()` sends the
    rest and completes the upload, `abort()` throws it away."""

    def __init__(self, client: Any, bucket: str, key: str, location: str,
                 metadata: Mapping[str, str], part_bytes: int) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._location, self._part_bytes = location, part_bytes
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self.size = 0
        self.peak_buffer = 0  # the most bytes ever held: the bound the tests check
        self._upload_id: str = client.create_multipart_upload(
            Bucket=bucket, Key=key, Metadata=dict(metadata),
            ContentType="application/octet-stream")["UploadId"]

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self._buffer += view
        self.size += view.nbytes
        self.peak_buffer = max(self.peak_buffer, len(self._buffer))
        while len(self._buffer) >= self._part_bytes:
            self._send(bytes(self._buffer[:self._part_bytes]))
            del self._buffer[:self._part_bytes]
        return view.nbytes

    def _send(self, body: bytes) -> None:
        number = len(self._parts) + 1
        answer = self._client.upload_part(Bucket=self._bucket, Key=self._key,
                                          UploadId=self._upload_id, PartNumber=number,
                                          Body=body)
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self) -> None:
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts})
        stored = self._client.head_object(Bucket=self._bucket, Key=self._key)
        if stored["ContentLength"] != self.size:
            self._client.delete_object(Bucket=self._bucket, Key=self._key)
            raise BackupError(f"{self._location} holds {stored['ContentLength']} bytes after "
                              f"the upload of {self.size}; deleted it")

    def abort(self) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key,
                                                UploadId=self._upload_id)
        except Exception:  # the upload failed already: that error is the one reported
            pass


class _Body(io.RawIOBase):
    """An object's streamed body as a readable raw stream."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        data: bytes = self._body.read(len(target))
        target[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


@dataclass(frozen=True)
class S3Destination:
    bucket: str
    key: str  # a prefix (empty or ending in "/") or one object's key
    endpoint_url: str | None = None
    part_bytes: int = PART_BYTES

    @property
    def location(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    @property
    def is_container(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def child(self, name: str) -> S3Destination:
        return S3Destination(self.bucket, self.key + name, self.endpoint_url, self.part_bytes)

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]  # loaded only for an s3:// destination

        caught: tuple[type[Exception], ...] = (*_sdk_errors(), ValueError)
        try:
            # endpoint_url None: boto3 reads AWS_ENDPOINT_URL (and the rest) itself.
            return boto3.client("s3", endpoint_url=self.endpoint_url)
        except caught as exc:
            raise _client_error("connect to", self.location, exc) from exc

    @contextmanager
    def writer(self, metadata: Mapping[str, str]) -> Iterator[Sink]:
        sdk_errors = _sdk_errors()
        client = self.client()
        try:
            upload = _MultipartWriter(client, self.bucket, self.key, self.location,
                                      metadata, self.part_bytes)
        except sdk_errors as exc:
            raise _client_error("start the upload to", self.location, exc) from exc
        try:
            yield upload
            upload.complete()
        except sdk_errors as exc:
            upload.abort()
            raise _client_error("upload", self.location, exc) from exc
        except BaseException:
            upload.abort()
            raise

    @contextmanager
    def reader(self) -> Iterator[IO[bytes]]:
        sdk_errors = _sdk_errors()
        client = self.client()
        try:
            answer = client.get_object(Bucket=self.bucket, Key=self.key)
        except sdk_errors as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise RestoreRefused(f"{self.location} does not exist (no complete backup "
                                     "was uploaded under that key)") from exc
            raise _client_error("read", self.location, exc) from exc
        with io.BufferedReader(_Body(answer["Body"]), PART_BYTES) as body:
            try:
                yield body
            except sdk_errors as exc:
                raise _client_error("read", self.location, exc) from exc

    def listing(self) -> list[Stored]:
        sdk_errors = _sdk_errors()
        stored = []
        try:
            pages = self.client().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key, Delimiter="/")
            for page in pages:
                for item in page.get("Contents", []):
                    stored.append(Stored(item["Key"][len(self.key):], item["Size"],
                                         item["LastModified"]))
        except sdk_errors as exc:
            raise _client_error("list", self.location, exc) from exc
        return stored

    def metadata(self, name: str) -> dict[str, str]:
        sdk_errors = _sdk_errors()
        try:
            answer = self.client().head_object(Bucket=self.bucket, Key=self.key + name)
        except sdk_errors as exc:
            raise _client_error("read the metadata of", self.location + name, exc) from exc
        return dict(answer.get("Metadata", {}))

    def remove(self, name: str) -> None:
        sdk_errors = _sdk_errors()
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self.key + name)
        except sdk_errors as exc:
            raise _client_error("delete", self.location + name, exc) from exc


def parse_destination(text: str | Path, endpoint_url: str | None = None,
                      argument: str = "--output") -> LocalDestination | S3Destination:
    """A destination from what the user typed: `s3://bucket[/prefix/ or /key]` or a path
    (a container when it is an existing directory or ends in a separator)."""
    raw = str(text)
    if raw.startswith(S3_SCHEME):
        bucket, _, key = raw[len(S3_SCHEME):].partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise BackupError(f"{argument}: {bucket!r} in {raw!r} is not an S3 bucket name "
                              "(3-63 lowercase letters, digits, dots and hyphens)")
        return S3Destination(bucket, key, endpoint_url)
    if "://" in raw:
        raise BackupError(f"{argument}: {raw!r} is neither a local path nor an s3:// URL")
    path = Path(raw).absolute()
    container = path.is_dir() or raw.endswith(os.sep)
    if container and not path.is_dir():
        raise BackupError(f"{argument}: directory {path} does not exist")
    return LocalDestination(path, container)
