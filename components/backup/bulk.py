"""The restore's bulk path: into an empty table, write the rows first and index after.

An HNSW index takes its time for every row inserted into it: a restore of 100,000
memories of 1536 dimensions into an empty stack spent almost all of its 879.5 s there.
Building the index once over the written rows is many times faster. So when a table the
restore fills with vectors (the memories, the entities) is empty as the writes begin, its
vector indexes are dropped, the rows written as before, and each index created again from
the exact text `pg_get_indexdef` gave for it before the drop (same name, same DDL; the
same tablespace and comment too), so Pulumi sees no drift. The build gets more
`maintenance_work_mem` and the server's parallel workers. All of it happens inside the
restore's one transaction: a failure anywhere rolls the drop back with everything else.

Dropping and creating an index takes the table's owner, and the restore acts as the
service role, which has no DDL. The owner's steps therefore run as the owner (SET LOCAL
ROLE, which works when the login role is the owner, a member of it or a superuser, as the
deploying role is); the rows are still written as the service role. A table that holds
rows, a login role that cannot act as the owner or a drop that fails leaves the table on
the row-by-row path, and the result says which and why.

Only pgvector's index methods are dropped: with them gone, the btree and GIN indexes
cost a few per cent of the writes (measured: docs/backup.md), and the primary key and
unique constraints the upsert relies on are never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from components.backup.catalog import LiveTable
from components.backup.common import BackupError
from components.backup.indexprogress import watching
from components.bench.progress import Progress
from components.identifiers import qualified, quote_ident

# pgvector's index methods: the ones whose per-row inserts dominate a restore.
VECTOR_METHODS = ["hnsw", "ivfflat"]
# The build's memory when the server's own setting is lower: an HNSW graph of 100,000
# vectors of 1536 dimensions needs about 0.7 GB, and a graph that outgrows it is built on
# disk, many times slower. Lower it (--maintenance-work-mem) on a small server.
MAINTENANCE_WORK_MEM = "1GB"

_VECTOR_INDEXES = """
SELECT n.nspname, x.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
       pg_catalog.obj_description(i.indexrelid, 'pg_class'),
       COALESCE((SELECT s.spcname FROM pg_catalog.pg_tablespace s
                 WHERE s.oid = x.reltablespace), '')
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace
JOIN pg_catalog.pg_am a ON a.oid = x.relam
WHERE i.indrelid = pg_catalog.to_regclass(%s) AND a.amname::text = ANY(%s)
  AND NOT i.indisunique AND NOT i.indisexclusion
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY x.relname
"""
_BUILT = """
SELECT pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid AND i.indisready
FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass(%s)
"""


@dataclass(frozen=True)
class VectorIndex:
    """A vector index as it was before the drop: all it takes to create it again."""

    name: str  # schema-qualified, quoted
    definition: str  # pg_get_indexdef, with the session's empty search_path
    comment: str | None
    tablespace: str  # "" for the database's default


@dataclass
class WritePath:
    """How the restore writes one table: bulk (its vector indexes dropped, then built
    again after the rows are written) or row by row, and why."""

    table: str  # schema-qualified, quoted
    owner: str
    indexes: list[VectorIndex] = field(default_factory=list)
    reason: str = ""  # why row by row; "" on the bulk path
    seconds: float = 0.0  # building the indexes again
    note: str = ""  # what the build had to do otherwise than planned

    @property
    def bulk(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        """`bulk: index rebuilt after load, 12.3 s` or `row by row (why)`."""
        if not self.bulk:
            return f"row by row ({self.reason})"
        return (f"bulk: index rebuilt after load, {self.seconds:.1f} s"
                + (f" ({self.note})" if self.note else ""))


def _role(cur: psycopg.Cursor[Any], role: str) -> None:
    cur.execute(f"SET LOCAL ROLE {quote_ident(role)}")


def _exists(cur: psycopg.Cursor[Any], table: str) -> bool:
    row = cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
    return bool(row and row[0])


def table_owner(cur: psycopg.Cursor[Any], table: str) -> str:
    """The owner of `table` (schema-qualified, quoted); "" when there is no such table."""
    row = cur.execute("SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c"
                      " WHERE c.oid = pg_catalog.to_regclass(%s)", (table,)).fetchone()
    return str(row[0]) if row else ""


def vector_indexes(cur: psycopg.Cursor[Any], table: str) -> list[VectorIndex]:
    """`table`'s pgvector indexes (no constraint's), as pg_get_indexdef gives them."""
    return [VectorIndex(qualified(schema, name), definition, comment, tablespace)
            for schema, name, definition, comment, tablespace in cur.execute(
                _VECTOR_INDEXES, (table, VECTOR_METHODS)).fetchall()]


def has_rows(cur: psycopg.Cursor[Any], table: str) -> bool:
    return _exists(cur, table)


def _plan(cur: psycopg.Cursor[Any], table: LiveTable) -> WritePath | None:
    """The path `table` would take, before anything is dropped; None when the restore
    writes nothing into it. Runs as the service role, which sees every row."""
    if not _exists(cur, table.temp):
        return None
    path = WritePath(table.qualified, table_owner(cur, table.qualified))
    if _exists(cur, table.qualified):
        path.reason = "it held rows when the restore began"
        return path
    path.indexes = vector_indexes(cur, table.qualified)
    if not path.indexes:
        path.reason = "it has no vector index"
    return path


def drop_vector_indexes(cur: psycopg.Cursor[Any], tables: list[LiveTable],
                        service_role: str, login_role: str) -> list[WritePath]:
    """Choose each table's path and drop the vector indexes of those that take the bulk
    one, as their owner; returns the paths. Every table's attempt runs in a savepoint, so
    one that cannot be dropped leaves its table as it was, on the row-by-row path."""
    paths = [p for p in (_plan(cur, t) for t in tables) if p is not None]
    for path in paths:
        drop_indexes(cur, path, service_role, login_role)
    return paths


def drop_indexes(cur: psycopg.Cursor[Any], path: WritePath, service_role: str,
                 login_role: str) -> None:
    """Drop `path`'s vector indexes as its table's owner, in a savepoint: when the login
    role cannot act as the owner or a drop fails, nothing is dropped and `path.reason`
    says why (the row-by-row path). Acts as `service_role` again after."""
    if not path.bulk:
        return
    try:
        with cur.connection.transaction():
            try:
                _role(cur, path.owner)
            except psycopg.Error as exc:
                path.reason = (f"the login role {login_role} cannot act as the table's "
                               f"owner {path.owner}: {str(exc).strip()}")
                raise
            for index in path.indexes:
                cur.execute(f"DROP INDEX {index.name}")
    except psycopg.Error as exc:
        path.reason = path.reason or f"dropping its vector index failed: {str(exc).strip()}"
    finally:
        _role(cur, service_role)  # the rows are the service role's to write
    if not path.bulk:
        path.indexes = []


def _build_settings(cur: psycopg.Cursor[Any], maintenance_work_mem: str) -> int:
    """Raise maintenance_work_mem to `maintenance_work_mem` (never lower it) and allow the
    server's parallel workers, for the rest of the transaction; returns the workers."""
    cur.execute("SELECT pg_catalog.set_config('maintenance_work_mem', %s, true)"
                " WHERE pg_catalog.pg_size_bytes(%s) > pg_catalog.pg_size_bytes("
                "pg_catalog.current_setting('maintenance_work_mem'))",
                (maintenance_work_mem, maintenance_work_mem))
    row = cur.execute("SELECT pg_catalog.set_config('max_parallel_maintenance_workers',"
                      " pg_catalog.current_setting('max_parallel_workers'), true)").fetchone()
    return int(row[0]) if row else 0


def _serially(cur: psycopg.Cursor[Any]) -> None:
    cur.execute("SELECT pg_catalog.set_config('max_parallel_maintenance_workers', '0', true)")


def _create(cur: psycopg.Cursor[Any], index: VectorIndex, workers: int, rows: int,
            dsn: str, progress: Progress) -> str:
    """Create `index` again, exactly as it was; returns a note when the parallel build
    failed and it was built without workers instead."""
    cur.execute("SELECT pg_catalog.set_config('default_tablespace', %s, true)",
                (index.tablespace,))
    label = f"building {index.name}"
    pid = cur.connection.info.backend_pid
    note = ""
    try:
        with cur.connection.transaction(), watching(dsn, pid, progress, label, rows):
            cur.execute(index.definition)
    except psycopg.errors.QueryCanceled:
        raise
    except psycopg.Error as exc:
        if not workers:
            raise
        # A parallel build shares maintenance_work_mem through dynamic shared memory,
        # which a container's small /dev/shm may refuse; one process needs none.
        _serially(cur)
        note = f"the parallel build failed ({str(exc).strip()}); built without workers"
        with watching(dsn, pid, progress, label, rows):
            cur.execute(index.definition)
    if index.comment is not None:  # COMMENT takes no bound parameter: a quoted literal
        cur.execute(sql.SQL("COMMENT ON INDEX {} IS {}").format(
            sql.SQL(index.name), sql.Literal(index.comment)))
    row = cur.execute(_BUILT, (index.name,)).fetchone()
    if row is None or row[0] != index.definition or not row[1]:
        raise BackupError(f"{index.name} was built again as {row[0] if row else 'nothing'}"
                          f"{'' if row and row[1] else ' (not valid)'}, not as it was: "
                          f"{index.definition}; the restore is rolled back")
    return note


def rebuild_vector_indexes(cur: psycopg.Cursor[Any], paths: list[WritePath],
                           service_role: str, maintenance_work_mem: str, dsn: str,
                           progress: Progress) -> None:
    """After the writes: create every dropped index again as its table's owner, each
    checked to have exactly its old definition and to be valid. A bar shows each build
    on a terminal (watched from a second connection to `dsn`)."""
    workers: int | None = None
    for path in paths:
        if not path.bulk:
            continue
        started = time.monotonic()
        row = cur.execute(f"SELECT pg_catalog.count(*) FROM {path.table}").fetchone()
        rows = int(row[0]) if row else 0
        _role(cur, path.owner)
        if workers is None:
            workers = _build_settings(cur, maintenance_work_mem)
        notes = [_create(cur, index, workers, rows, dsn, progress) for index in path.indexes]
        if any(notes):
            workers = 0  # the server refused once; the next build goes straight to one
        path.note = "; ".join(n for n in notes if n)
        path.seconds = time.monotonic() - started
        _role(cur, service_role)
