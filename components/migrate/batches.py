"""Applying one batch: a run's staged records in one seq range into the stack's memories
table, in ONE transaction as the service role, with the batch's checkpoint row.

In order: the run row is locked (batches of one run never interleave, and a rollback waits
for them); the existing rows of the batch are locked; their pre-images are kept (the first
per id per run), with `existed = false` for ids about to be inserted; one set-based UPDATE
for the rows that differ, one INSERT for the new ones (rows identical to the source are left
alone: `unchanged`); the memory_history rows this transaction caused are marked; the
checkpoint row is written. A crash anywhere before COMMIT loses the whole batch, checkpoint
included, so a resume does it again: every record is written exactly once.

Times: an inserted row takes created_at/updated_at from the payload's times when present; an
updated one too, the touch trigger keeping them because the transaction sets
mem0_migration.keep_times (sql/touch_function.sql). Without a time in the payload, an update
keeps the row's created_at and takes now() as updated_at, as mem0's own update would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components.migrate.records import MigrationError
from components.migrate.store import Names, RunState, as_service, load_run
from components.settings import Settings

__all__ = ["BatchResult", "apply_batch", "caused_history"]


@dataclass(frozen=True)
class BatchResult:
    batch: int
    first_seq: int
    last_seq: int
    inserted: int
    updated: int
    unchanged: int


def history_top(cur: psycopg.Cursor[Any], names: Names) -> int:
    """The highest history id committed so far: every row this transaction's writes cause
    gets a higher one (the identity sequence only grows)."""
    row = cur.execute(f"SELECT COALESCE(max(id), 0) FROM {names.history}").fetchone()
    assert row is not None
    return int(row[0])


def caused_history(cur: psycopg.Cursor[Any], names: Names, run_id: str, after: int,
                   kind: str) -> int:
    """Mark the history rows the current transaction wrote: above `after` (the top before
    its writes) and created by this very transaction (xmin), so no concurrent writer's row
    is taken. Returns how many."""
    cur.execute(f"INSERT INTO {names.marks} (run_id, history_id, kind) SELECT %s, h.id, %s"
                f" FROM {names.history} h WHERE h.id > %s"
                " AND h.xmin = (pg_catalog.pg_current_xact_id())::xid", (run_id, kind, after))
    return cur.rowcount


def apply_batch(conn: psycopg.Connection[Any], settings: Settings, run_id: str,
                batch: int) -> BatchResult | None:
    """Apply batch `batch` of the run; None when it was applied already (by a concurrent
    resume)."""
    names = Names.of(settings)
    with as_service(conn, settings, keep_times=True) as cur:
        run = load_run(cur, names, run_id, lock=True)
        if run.state == RunState.ROLLED_BACK:
            raise MigrationError(f"run {run_id} was rolled back meanwhile; stopping")
        if cur.execute(f"SELECT 1 FROM {names.batches} WHERE run_id = %s AND batch = %s",
                       (run_id, batch)).fetchone():
            return None
        first, last = run.batch_range(batch)
        params = {"run": run_id, "first": first, "last": last}
        in_batch = "s.run_id = %(run)s AND s.seq BETWEEN %(first)s AND %(last)s"
        differs = (f"({names.vectors_differ('m.vector', 's.vector')}"
                   " OR m.payload IS DISTINCT FROM s.payload)")
        top = history_top(cur, names)
        cur.execute(f"SELECT m.id FROM {names.memories} m JOIN {names.staged} s ON m.id = s.id"
                    f" WHERE {in_batch} ORDER BY m.id FOR UPDATE OF m", params)
        cur.execute(
            f"INSERT INTO {names.preimages} (run_id, id, seq, existed, vector, payload,"
            " created_at, updated_at) SELECT s.run_id, s.id, s.seq, m.id IS NOT NULL,"
            " m.vector, m.payload,"
            f" m.created_at, m.updated_at FROM {names.staged} s LEFT JOIN {names.memories} m"
            f" ON m.id = s.id WHERE {in_batch} AND (m.id IS NULL OR {differs})"
            " ON CONFLICT (run_id, id) DO NOTHING", params)
        cur.execute(
            f"UPDATE {names.memories} m SET vector = s.vector, payload = s.payload,"
            " created_at = COALESCE(s.created_at, m.created_at),"
            " updated_at = COALESCE(s.updated_at, s.created_at, pg_catalog.now())"
            f" FROM {names.staged} s WHERE {in_batch} AND m.id = s.id AND {differs}", params)
        updated = cur.rowcount
        # No ON CONFLICT: an id someone else inserted since the lock above fails the batch
        # (nothing of it is kept); the resume then sees the row and updates it instead.
        cur.execute(
            f"INSERT INTO {names.memories} (id, vector, payload, created_at, updated_at)"
            " SELECT s.id, s.vector, s.payload, COALESCE(s.created_at, pg_catalog.now()),"
            " COALESCE(s.updated_at, s.created_at, pg_catalog.now())"
            f" FROM {names.staged} s WHERE {in_batch} AND NOT EXISTS"
            f" (SELECT 1 FROM {names.memories} m WHERE m.id = s.id) ORDER BY s.seq", params)
        inserted = cur.rowcount
        row = cur.execute(f"SELECT count(*) FROM {names.staged} s WHERE {in_batch}",
                          params).fetchone()
        assert row is not None
        unchanged = int(row[0]) - inserted - updated
        caused_history(cur, names, run_id, top, "caused")
        cur.execute(f"INSERT INTO {names.batches} (run_id, batch, first_seq, last_seq, "
                    "inserted, updated, unchanged) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (run_id, batch, first, last, inserted, updated, unchanged))
    return BatchResult(batch, first, last, inserted, updated, unchanged)
