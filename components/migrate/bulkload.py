"""The import's bulk path: into an empty memories table, drop its vector indexes before the
batches and build them again after, the way restore does (components/backup/bulk.py).

The dropped indexes' exact definitions are written into the run row (`dropped_indexes`) in
the transaction that drops them, and cleared in the one that builds them again: a run
killed in between keeps them, and `migrate resume` (after its batches) or `migrate
rollback` (after its deletes) builds them from that record. Meanwhile searches scan the
table without the index (docs/migration.md).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from components.backup.bulk import (
    MAINTENANCE_WORK_MEM,
    VectorIndex,
    WritePath,
    drop_indexes,
    has_rows,
    rebuild_vector_indexes,
    table_owner,
    vector_indexes,
)
from components.bench.progress import Progress
from components.migrate.store import Names, as_service, load_run
from components.settings import Settings

__all__ = ["drop_for_bulk", "rebuild_dropped"]


def _record(index: VectorIndex) -> dict[str, Any]:
    return {"name": index.name, "definition": index.definition, "comment": index.comment,
            "tablespace": index.tablespace}


def _index(entry: dict[str, Any]) -> VectorIndex:
    return VectorIndex(str(entry["name"]), str(entry["definition"]), entry.get("comment"),
                       str(entry.get("tablespace") or ""))


def drop_for_bulk(conn: psycopg.Connection[Any], settings: Settings, run_id: str
                  ) -> WritePath:
    """When the memories table is empty, drop its vector indexes as its owner and record
    them in run `run_id`, in one transaction; the path says bulk, or row by row and why."""
    names = Names.of(settings)
    with as_service(conn, settings) as cur:
        load_run(cur, names, run_id, lock=True)
        path = WritePath(names.memories, table_owner(cur, names.memories))
        if has_rows(cur, names.memories):
            path.reason = "the table held rows when the import began"
            return path
        path.indexes = vector_indexes(cur, names.memories)
        if not path.indexes:
            path.reason = "the table has no vector index"
            return path
        drop_indexes(cur, path, settings.service_role, conn.info.user)
        if path.bulk:
            cur.execute(f"UPDATE {names.runs} SET dropped_indexes = %s WHERE id = %s",
                        (Jsonb([_record(i) for i in path.indexes]), run_id))
    return path


def rebuild_dropped(cur: psycopg.Cursor[Any], settings: Settings, run_id: str, dsn: str,
                    progress: Progress) -> WritePath | None:
    """In the caller's transaction (acting as the service role, the run row locked): build
    the indexes run `run_id` dropped again, from its record, as the table's owner, with
    restore's maintenance_work_mem, and clear the record. None when it dropped none."""
    names = Names.of(settings)
    run = load_run(cur, names, run_id)
    if not run.dropped_indexes:
        return None
    # One that exists again (a `pulumi up` in between recreated it) is left as it is.
    missing = [i for i in map(_index, run.dropped_indexes) if cur.execute(
        "SELECT pg_catalog.to_regclass(%s) IS NULL", (i.name,)).fetchone() == (True,)]
    path = WritePath(names.memories, table_owner(cur, names.memories), missing)
    if missing:
        rebuild_vector_indexes(cur, [path], settings.service_role, MAINTENANCE_WORK_MEM,
                               dsn, progress)
    cur.execute(f"UPDATE {names.runs} SET dropped_indexes = NULL WHERE id = %s", (run_id,))
    return path
