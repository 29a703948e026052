"""`backup`: the stack's data tables, read in one snapshot, into one file.

One REPEATABLE READ READ ONLY transaction as the service role (with `row_security` off,
so a table that would filter rows raises instead), whose `now()` is the backup's
`taken_at`. Each table goes out as binary COPY of its written columns ordered by primary
key, spooled to a temporary file while it is hashed and its rows counted, because the
manifest, which carries the checksums, must be the archive's first member. The archive
then streams to its destination (destinations.py), through an encryption envelope when a
passphrase is set (encryption.py).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from components.backup.archive import write_archive
from components.backup.catalog import LiveTable, ServerFacts, server_facts
from components.backup.common import (
    APPLICATION,
    FORMAT,
    FORMAT_VERSION,
    MEMBER_SUFFIX,
    BackupError,
    CommandProgress,
)
from components.backup.copystream import RowCounter
from components.backup.destinations import (
    META_ENCRYPTED,
    META_FORMAT,
    META_TAKEN_AT,
    S3_SCHEME,
    CountingSink,
    Destination,
    LocalDestination,
    backup_name,
    parse_destination,
)
from components.backup.encryption import EncryptingWriter, Passphrase
from components.backup.manifest import Manifest, TableEntry, fingerprint, read_manifest
from components.backup.session import act_as_service_role
from components.backup.tables import Part, data_parts, deployed_tables
from components.bench.progress import Bar
from components.connection import database_identity, open_session
from components.identifiers import quote_ident
from components.settings import Settings

# The filters' values travel as transaction-local settings set with bound parameters:
# COPY takes no parameters, and no value is ever formatted into SQL.
USER_SETTING, SINCE_SETTING, UNTIL_SETTING = (
    "mem0_backup.user_id", "mem0_backup.since", "mem0_backup.until")


@dataclass(frozen=True)
class BackupRequest:
    output: Path | str  # a path or an s3:// URL; a directory or prefix gets a generated name
    user_id: str | None = None
    since: datetime | None = None  # the window's start (--from), aware
    until: datetime | None = None  # the window's end (--to), exclusive, aware
    endpoint_url: str | None = None  # an S3-compatible store's (else AWS_ENDPOINT_URL)
    passphrase: Passphrase | None = None  # set: the file is encrypted

    @property
    def kind(self) -> str:
        windowed = self.since is not None or self.until is not None
        return "incremental" if windowed else "user" if self.user_id else "full"


@dataclass(frozen=True)
class BackupResult:
    location: str  # the file's path or the object's s3:// URL
    manifest: Manifest
    size: int  # bytes stored
    seconds: float
    warnings: tuple[str, ...]
    encryption: dict[str, Any] | None = None  # the envelope's header; None: not encrypted

    @property
    def encrypted(self) -> bool:
        return self.encryption is not None

    @property
    def path(self) -> Path:
        """The file of a backup written to a local path."""
        if self.location.startswith(S3_SCHEME):
            raise BackupError(f"{self.location} is an object, not a local file")
        return Path(self.location)


def _window(column: str, request: BackupRequest) -> str:
    bounds = []
    if request.since is not None:
        bounds.append(f"{quote_ident(column)} >= "
                      f"pg_catalog.current_setting('{SINCE_SETTING}')::timestamptz")
    if request.until is not None:
        bounds.append(f"{quote_ident(column)} < "
                      f"pg_catalog.current_setting('{UNTIL_SETTING}')::timestamptz")
    return " AND ".join(bounds)


def _where(part: Part, request: BackupRequest) -> str:
    conditions = []
    if request.user_id is not None:
        conditions.append(
            f"{part.user_sql} = pg_catalog.current_setting('{USER_SETTING}')")
    if request.since is not None or request.until is not None:
        changed = _window(part.since_column, request)
        # Created in the window but changed again after its end: still in the window.
        # (With no end, a row created since the start was also changed since then.)
        if request.until is not None and part.created_column is not None:
            changed = f"(({changed}) OR ({_window(part.created_column, request)}))"
        conditions.append(changed)
    return " AND ".join(conditions) or "true"


def _select(table: LiveTable, where: str) -> str:
    return (f"SELECT {table.column_list()} FROM {table.qualified} WHERE {where} "
            f"ORDER BY {table.key_list()}")


def _dump(cur: psycopg.Cursor[Any], table: LiveTable, where: str, path: Path,
          bar: Bar) -> TableEntry:
    digest, counter, size = hashlib.sha256(), RowCounter(), 0
    statement = f"COPY ({_select(table, where)}) TO STDOUT (FORMAT binary)"
    with path.open("wb") as spool, cur.copy(statement) as copy:
        for block in copy:
            spool.write(block)
            digest.update(block)
            size += len(block)
            bar.advance(counter.feed(block))
    if not counter.finished or counter.rows != cur.rowcount:
        raise BackupError(f"the COPY stream of {table.qualified} is incomplete: "
                          f"{counter.rows} rows read, COPY reported {cur.rowcount}")
    return TableEntry(table.name, path.name, [[c.name, c.type] for c in table.columns],
                      counter.rows, digest.hexdigest(), size)


def _read(cur: psycopg.Cursor[Any], settings: Settings, request: BackupRequest,
          spool: Path, progress: CommandProgress
          ) -> tuple[ServerFacts, list[LiveTable], list[TableEntry]]:
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    act_as_service_role(cur, settings.service_role, BackupError)
    # Belt and braces: should any table still filter rows, the read fails instead.
    cur.execute("SET LOCAL row_security = off")
    facts = server_facts(cur)
    parts = data_parts(settings)
    tables = list(deployed_tables(cur, parts).values())
    if request.since is not None or request.until is not None:
        for part, table in zip(parts, tables, strict=True):
            if part.since_column not in table.names:
                raise BackupError(f"{table.qualified} has no column {part.since_column}, "
                                  "which an incremental backup selects by: deploy the "
                                  "current version of the stack")
    cur.execute("SELECT pg_catalog.set_config(%s, %s, true), "
                "pg_catalog.set_config(%s, %s, true), pg_catalog.set_config(%s, %s, true)",
                (USER_SETTING, request.user_id or "", SINCE_SETTING,
                 request.since.isoformat() if request.since else "", UNTIL_SETTING,
                 request.until.isoformat() if request.until else ""))
    wheres = [_where(part, request) for part in parts]
    total = 0
    if progress.enabled:  # the bar's total; costs a count per table, so only on a terminal
        for table, where in zip(tables, wheres, strict=True):
            row = cur.execute(f"SELECT pg_catalog.count(*) FROM {table.qualified} "
                              f"WHERE {where}").fetchone()
            total += int(row[0]) if row else 0
    entries = []
    with progress.bar("backing up", total) as bar:
        for table, where in zip(tables, wheres, strict=True):
            bar.relabel(f"backing up {table.name}")
            entries.append(_dump(cur, table, where, spool / f"{table.name}{MEMBER_SUFFIX}",
                                 bar))
    return facts, tables, entries


def _manifest(dsn: str, settings: Settings, request: BackupRequest, facts: ServerFacts,
              dimensions: int | None, entries: list[TableEntry]) -> Manifest:
    return Manifest(
        format=FORMAT, version=FORMAT_VERSION, taken_at=facts.taken_at, kind=request.kind,
        user_id=request.user_id, since=request.since.isoformat() if request.since else None,
        until=request.until.isoformat() if request.until else None,
        stack=settings.stack, database=database_identity(dsn),
        server_version=facts.server_version, pgvector_version=facts.pgvector_version,
        pgvector_schema=facts.pgvector_schema,
        settings={"dimensions": dimensions, "collection": settings.collection,
                  "tenancy": settings.tenancy, "clientProfile": settings.client_profile,
                  "historyIncludesVectors": settings.history_includes_vectors},
        layout_fingerprint=fingerprint([(e.table, e.columns) for e in entries],
                                       facts.pgvector_schema),
        tables=entries)


def _spool_directory(destination: Destination) -> Path | None:
    """Where the tables are spooled before the archive is written: beside a local file
    (the same disk must hold both), the system's temporary directory for an object."""
    if not isinstance(destination, LocalDestination):
        return None
    directory = destination.path if destination.is_container else destination.path.parent
    if not directory.is_dir():
        raise BackupError(f"--output: directory {directory} does not exist")
    return directory


def _write(target: Destination, request: BackupRequest, manifest: Manifest, spool: Path,
           taken_at_epoch: int) -> tuple[int, dict[str, Any] | None]:
    """The archive to its destination: (bytes stored, the encryption header or None)."""
    metadata = {META_FORMAT: FORMAT, META_TAKEN_AT: manifest.taken_at,
                META_ENCRYPTED: "true" if request.passphrase else "false"}
    members = [(e.member, spool / e.member) for e in manifest.tables]
    with target.writer(metadata) as sink:
        counted = CountingSink(sink)
        if request.passphrase is None:
            write_archive(counted, manifest.to_json(), members, taken_at_epoch)
            return counted.size, None
        envelope = EncryptingWriter(counted, request.passphrase)
        write_archive(envelope, manifest.to_json(), members, taken_at_epoch)
        envelope.finish()
        counted.flush()
    return counted.size, envelope.header


def run_backup(dsn: str, settings: Settings, request: BackupRequest,
               progress: CommandProgress) -> BackupResult:
    started = time.monotonic()
    data_parts(settings)  # the profile and the tables, before connecting
    destination = parse_destination(request.output, request.endpoint_url)
    try:
        spool_dir = tempfile.TemporaryDirectory(prefix=".mem0-backup-",
                                                dir=_spool_directory(destination))
    except OSError as exc:
        raise BackupError(f"cannot write the spool for {destination.location}: {exc}") \
            from exc
    with spool_dir as spool, open_session(dsn, APPLICATION, BackupError) as conn:
        try:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                facts, tables, entries = _read(cur, settings, request, Path(spool), progress)
        except psycopg.Error as exc:
            raise BackupError(f"the backup failed: {str(exc).strip()}") from exc
        memories = next(t for t in tables if t.name == settings.collection)
        dimensions = memories.dimensions()
        warnings = [] if dimensions == settings.dimensions else [
            f"{memories.qualified} holds vector({dimensions}), but stack {settings.stack!r} "
            f"says dimensions {settings.dimensions}; the manifest records the table's"]
        manifest = _manifest(dsn, settings, request, facts, dimensions, entries)
        # The manifest restore will read, checked as restore checks it before any upload.
        read_manifest(manifest.to_json(), "the manifest this backup wrote")
        target = destination
        if destination.is_container:
            target = destination.child(backup_name(
                settings.stack, datetime.fromisoformat(facts.taken_at),
                request.passphrase is not None))
        progress(f"writing {target.location}")
        size, header = _write(target, request, manifest, Path(spool), facts.taken_at_epoch)
    return BackupResult(target.location, manifest, size, time.monotonic() - started,
                        tuple(warnings), header)
