"""Measure `backup` and `restore` at a given size.

Loads N synthetic memories of D dimensions (random vectors, mem0-shaped payloads, one
user per 100 memories) into a deployed stack, with entities (one per 10 memories), an edge
between every second memory and the next of the same user, and history (the trigger's
'create' per memory plus an 'update' per 10 memories); then times a full backup of it and
a restore of that file into a second, empty deployment of the same stack, and a second
restore of the same file (nothing left to change). Prints rows/s for each and the file
size per 1K memories.

    .venv/bin/python scripts/measure_backup.py --stack prod --dsn "$SOURCE_URL" \\
        --restore-dsn "$EMPTY_URL" [--memories 100000] [--dims 1536] [--output FILE]

Both URLs must reach deployments of the stack (the restore's must be empty) as a role that
may act as the stack's service role; --dims must equal the stack's dimensions. The loaded
rows stay in the source database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from components.backup import BackupRequest, RestoreRequest, run_backup, run_restore
from components.backup.common import CommandProgress
from components.connection import connect
from components.identifiers import qualified
from components.model import RELATIONSHIPS_TABLE
from components.settings import Settings
from components.stackfile import load_stack_settings

BATCH = 2_000  # memories per INSERT: bounds each statement's trigger queue
MEMORIES_PER_USER = 100


def _vector_sql(settings: Settings) -> str:
    # Correlated with the outer row (g.i), so every row draws its own vector.
    vector = qualified(settings.extension_schema, "vector")
    return (f"(SELECT pg_catalog.array_agg(pg_catalog.random() - 0.5)::{vector}"
            " FROM pg_catalog.generate_series(1, %(dims)s::integer) AS d WHERE g.i > 0)")


# mem0's payload keys (mem0-contract.md 7); the text is %(kind)s and the row's number.
PAYLOAD_SQL = ("pg_catalog.jsonb_build_object('data', %(kind)s || ' ' || g.i,"
               " 'hash', pg_catalog.md5(g.i::text),"
               " 'user_id', 'user-' || pg_catalog.mod(g.i, %(users)s::integer),"
               " 'created_at', pg_catalog.now()::text, 'role', 'user',"
               " 'text_lemmatized', %(kind)s || ' ' || g.i)")


def load(conn: psycopg.Connection[Any], settings: Settings, memories: int, dims: int) -> None:
    memories_table = qualified("public", settings.collection)
    entities_table = qualified("public", f"{settings.collection}_entities")
    edges = qualified("public", RELATIONSHIPS_TABLE)
    users = max(1, memories // MEMORIES_PER_USER)
    started = time.monotonic()
    for first in range(1, memories + 1, BATCH):
        last = min(first + BATCH - 1, memories)
        with conn.transaction():
            conn.execute(f"INSERT INTO {memories_table} (id, vector, payload) SELECT"
                         f" pg_catalog.gen_random_uuid(), {_vector_sql(settings)},"
                         f" {PAYLOAD_SQL}"
                         " FROM pg_catalog.generate_series(%(first)s::integer,"
                         " %(last)s::integer) AS g(i)",
                         {"dims": dims, "users": users, "first": first, "last": last,
                          "kind": "memory"})
        print(f"  loaded {last} memories ({time.monotonic() - started:.1f} s)",
              file=sys.stderr, flush=True)
    with conn.transaction():
        conn.execute(f"INSERT INTO {entities_table} (id, vector, payload) SELECT"
                     f" pg_catalog.gen_random_uuid(), {_vector_sql(settings)},"
                     f" {PAYLOAD_SQL}"
                     " FROM pg_catalog.generate_series(1, %(count)s::integer) AS g(i)",
                     {"dims": dims, "users": users, "count": max(1, memories // 10),
                      "kind": "entity"})
        conn.execute(f"INSERT INTO {edges} (source_memory_id, target_memory_id,"
                     " relationship_type, strength, user_id)"
                     " SELECT id, next, 'related_to', pg_catalog.random(), user_id FROM"
                     " (SELECT id, user_id, pg_catalog.lead(id) OVER w AS next,"
                     "  pg_catalog.row_number() OVER w AS n"
                     f"  FROM {memories_table} WINDOW w AS (PARTITION BY user_id ORDER BY id))"
                     " AS m WHERE next IS NOT NULL AND pg_catalog.mod(n, 2) = 0")
        conn.execute(f"UPDATE {memories_table} SET payload = payload ||"
                     " '{\"updated\": true}'::jsonb WHERE pg_catalog.random() < 0.1")
    print(f"  loaded entities, edges and updates ({time.monotonic() - started:.1f} s)",
          file=sys.stderr, flush=True)


def _empty(dsn: str, settings: Settings) -> bool:
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM "
                           f"{qualified('public', settings.collection)})").fetchone()
    return bool(row and row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project-dir", type=Path, default=None)
    parser.add_argument("--dsn", required=True, help="the deployed source database")
    parser.add_argument("--restore-dsn", required=True, help="an empty deployment")
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--output", type=Path, default=None,
                        help="the backup file (default: a temporary file, removed)")
    args = parser.parse_args(argv)
    settings = load_stack_settings(args.stack, args.project_dir)
    if args.dims != settings.dimensions:
        parser.error(f"--dims {args.dims} differs from stack {args.stack!r}'s dimensions "
                     f"{settings.dimensions}")
    if not _empty(args.restore_dsn, settings):
        parser.error("--restore-dsn: its memories table is not empty")
    print(f"loading {args.memories} memories of {args.dims} dimensions", file=sys.stderr)
    with connect(args.dsn, autocommit=True) as conn:
        load(conn, settings, args.memories, args.dims)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.output or Path(scratch) / "measure.tar.gz"
        backup = run_backup(args.dsn, settings, BackupRequest(path),
                            CommandProgress(sys.stderr, "backup"))
        rows = sum(t.rows for t in backup.manifest.tables)
        restored = run_restore(args.restore_dsn, settings, RestoreRequest(file=path),
                               CommandProgress(sys.stderr, "restore"))
        again = run_restore(args.restore_dsn, settings, RestoreRequest(file=path),
                            CommandProgress(sys.stderr, "restore"))
    memories = backup.manifest.tables[0].rows
    print(f"memories {memories}, dimensions {settings.dimensions}; rows per table: "
          + ", ".join(f"{t.table} {t.rows}" for t in backup.manifest.tables))
    print(f"backup:         {backup.seconds:8.2f} s  {rows / backup.seconds:10,.0f} rows/s")
    print(f"file:           {backup.size / 1e6:8.2f} MB  "
          f"{backup.size / memories * 1000 / 1e6:10.2f} MB per 1K memories")
    for label, run in (("restore:", restored), ("restore again:", again)):
        changed = sum(o.inserted + o.updated for o in run.outcomes)
        print(f"{label:<15} {run.seconds:8.2f} s  {rows / run.seconds:10,.0f} rows/s"
              f"  ({changed} rows written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
