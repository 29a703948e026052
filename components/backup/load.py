"""Landing a backup's rows in temporary tables, and checking them there.

Each table's rows go first to `pg_temp.<table>`, shaped exactly like the target's written
columns (`CREATE TEMP TABLE ... AS SELECT <columns> ... WITH NO DATA` keeps vector(N) and
leaves out generated columns, constraints and triggers). A member streams from the archive
into `COPY ... FROM STDIN (FORMAT binary)` while it is hashed and its rows counted; the
sha256, the row count and the size must all agree with the manifest. Nothing outside
pg_temp is written until every member has landed and passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import IO, Any

import psycopg

from components.backup.archive import CHUNK, ArchiveReader
from components.backup.catalog import LiveTable
from components.backup.common import CommandProgress, RestoreRefused
from components.backup.copystream import CopyFormatError, RowCounter
from components.backup.manifest import Manifest, TableEntry
from components.backup.tables import Part
from components.bench.progress import Bar
from components.identifiers import qualified, quote_ident

# The landing tables' own column: rows numbered as they land (in primary-key order, as
# the backup wrote them), so the upsert can write them in batches and show its progress.
ROW_NUMBER = "mem0_restore_row"


def create_landing(cur: psycopg.Cursor[Any], table: LiveTable) -> None:
    cur.execute(f"CREATE TEMP TABLE {quote_ident(table.name)} ON COMMIT DROP AS "
                f"SELECT {table.column_list()} FROM {table.qualified} WITH NO DATA")
    cur.execute(f"ALTER TABLE {table.temp} ADD COLUMN {ROW_NUMBER} bigint "
                "GENERATED ALWAYS AS IDENTITY")


def _copy_in(cur: psycopg.Cursor[Any], archive: ArchiveReader, table: LiveTable,
             stream: IO[bytes], bar: Bar) -> tuple[str, int | None, Exception | None]:
    """Stream one member into its landing table: (sha256 of the bytes read, rows when the
    stream was a complete COPY, what went wrong if anything)."""
    digest, counter = hashlib.sha256(), RowCounter()
    problem: Exception | None = None
    complete = False
    try:
        with cur.copy(f"COPY {table.temp} ({table.column_list()}) FROM STDIN "
                      "(FORMAT binary)") as copy:
            with archive.refusing():
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    copy.write(chunk)
                    if problem is None:
                        try:
                            bar.advance(counter.feed(chunk))
                        except CopyFormatError as exc:
                            problem = exc  # the checksum says more; keep reading
                complete = True  # every byte read (COPY may still fail as it ends)
    except psycopg.Error as exc:
        problem = exc
    rows = counter.rows if counter.finished else None
    return (digest.hexdigest() if complete else ""), rows, problem


def _check_member(name: str, entry: TableEntry, digest: str, rows: int | None,
                  loaded: int, problem: Exception | None) -> None:
    if digest and digest != entry.sha256:
        raise RestoreRefused(f"member {name}: its sha256 is {digest}, the manifest says "
                             f"{entry.sha256} (the file is corrupt or was altered)")
    if problem is not None:
        raise RestoreRefused(f"member {name} does not load as rows of {entry.table} "
                             f"(corrupt?): {str(problem).strip()}")
    if rows != entry.rows or loaded != entry.rows:
        raise RestoreRefused(f"member {name} holds {rows} rows (COPY loaded {loaded}); the "
                             f"manifest says {entry.rows}")


def load_archive(cur: psycopg.Cursor[Any], archive: ArchiveReader, manifest: Manifest,
                 targets: Mapping[str, LiveTable], progress: CommandProgress) -> None:
    """Land every member of the archive, checked against the manifest; then read the
    archive to its end (the gzip CRC)."""
    entries = {e.member: e for e in manifest.tables}
    seen: set[str] = set()
    source = str(archive.path)
    with progress.bar("loading", sum(e.rows for e in manifest.tables)) as bar:
        for name, size, stream in archive.members():
            entry = entries.get(name)
            if entry is None or name in seen:
                raise RestoreRefused(f"{source}: member {name} is "
                                     + ("there twice" if name in seen else
                                        "not in its manifest"))
            if size != entry.bytes:
                raise RestoreRefused(f"{source}: member {name} is {size} bytes, the manifest "
                                     f"says {entry.bytes} (truncated or altered)")
            table = targets[entry.table]
            bar.relabel(f"loading {table.name}")
            create_landing(cur, table)
            digest, rows, problem = _copy_in(cur, archive, table, stream, bar)
            _check_member(name, entry, digest, rows, cur.rowcount, problem)
            seen.add(name)
    missing = [name for name in entries if name not in seen]
    if missing:
        raise RestoreRefused(f"{source} lacks member(s) {', '.join(missing)} that its "
                             "manifest lists (truncated?)")
    archive.finish()
    for entry in manifest.tables:
        _check_keys(cur, targets[entry.table], entry.member)
        cur.execute(f"ANALYZE {targets[entry.table].temp}")  # the upsert's joins plan on it


def _check_keys(cur: psycopg.Cursor[Any], table: LiveTable, member: str) -> None:
    """A table's rows have distinct keys; a member that repeats one was not written by
    `backup` (and would make the upsert's counts lie)."""
    row = cur.execute(f"SELECT {table.key_list()} FROM {table.temp} GROUP BY "
                      f"{table.key_list()} HAVING pg_catalog.count(*) > 1 LIMIT 1").fetchone()
    if row is not None:
        raise RestoreRefused(f"member {member} holds the key ({', '.join(map(str, row))}) "
                             f"of {table.qualified} more than once (altered?)")


def keep_only_user(cur: psycopg.Cursor[Any], parts: list[Part], user_id: str) -> None:
    """--user-id: drop every other user's rows from the landing tables."""
    for part in parts:
        cur.execute(f"DELETE FROM {qualified('pg_temp', part.table)} "
                    f"WHERE {part.user_sql} IS DISTINCT FROM %s", (user_id,))
