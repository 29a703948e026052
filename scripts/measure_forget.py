"""Measure `forget`: erase one user with many memories from a large table.

Loads N synthetic memories (mem0-shaped payloads; scripts/measure_backup.py's loader: one
user per 100 memories, entities, edges, a tenth updated) plus M memories of one user,
`erase-me` (with its own entities, edges and updates, so the history holds its 'create'
and 'update' rows), builds the vector indexes, takes a snapshot (so the snapshot tables
hold a copy of everything), then times a dry run and the erasure itself. Prints seconds
and rows removed per table; no asserts.

    .venv/bin/python scripts/measure_forget.py --testbed [--memories 100000] \\
        [--user-memories 10000] [--dims 1536]
    .venv/bin/python scripts/measure_forget.py --stack NAME --dsn URL [...]

--dsn must reach a deployment of the stack as a superuser (the snapshot is taken as one,
as the stack's cron job is); the loaded rows stay there. --testbed deploys a test stack
on the test bed's server through the real Pulumi CLI and drops it afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' test bed

from components.backup.bulk import MAINTENANCE_WORK_MEM
from components.connection import connect
from components.erasure import PersonKind
from components.forget import ForgetRequest, run_forget
from components.identifiers import qualified
from components.model import BACKUP_SCHEMA, RELATIONSHIPS_TABLE, SNAPSHOT_FUNCTION
from components.settings import Settings
from components.stackfile import load_stack_settings
from tests.conftest import stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import start_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_backup import _VECTOR_INDEXES, BATCH, _vector_sql, load

USER = "erase-me"


def load_user(conn: psycopg.Connection[Any], settings: Settings, count: int, dims: int) -> None:
    """`count` memories of USER, a tenth of that in entities, an edge between every second
    memory and the next, a tenth updated (history 'update' rows)."""
    memories = qualified("public", settings.collection)
    payload = ("pg_catalog.jsonb_build_object('data', 'secret of erase-me ' || g.i, 'hash',"
               " pg_catalog.md5(g.i::text), 'user_id', %(user)s::text, 'created_at',"
               " pg_catalog.now()::text, 'role', 'user', 'text_lemmatized', 'erase-me ' || g.i)")
    for first in range(1, count + 1, BATCH):
        with conn.transaction():
            conn.execute(f"INSERT INTO {memories} (id, vector, payload) SELECT"
                         f" pg_catalog.gen_random_uuid(), {_vector_sql(settings)}, {payload}"
                         " FROM pg_catalog.generate_series(%(first)s::integer,"
                         " %(last)s::integer) AS g(i)",
                         {"dims": dims, "user": USER, "first": first,
                          "last": min(first + BATCH - 1, count)})
    with conn.transaction():
        conn.execute(f"INSERT INTO {qualified('public', f'{settings.collection}_entities')}"
                     f" (id, vector, payload) SELECT pg_catalog.gen_random_uuid(),"
                     f" {_vector_sql(settings)}, {payload}"
                     " FROM pg_catalog.generate_series(1, %(n)s::integer) AS g(i)",
                     {"dims": dims, "user": USER, "n": max(1, count // 10)})
        conn.execute(f"INSERT INTO {qualified('public', RELATIONSHIPS_TABLE)} (source_memory_id,"
                     " target_memory_id, relationship_type, strength, user_id)"
                     " SELECT id, next, 'related_to', 0.5, %s FROM"
                     " (SELECT id, pg_catalog.lead(id) OVER w AS next,"
                     "  pg_catalog.row_number() OVER w AS n"
                     f"  FROM {memories} WHERE user_id = %s WINDOW w AS (ORDER BY id)) AS m"
                     " WHERE next IS NOT NULL AND pg_catalog.mod(n, 2) = 0", (USER, USER))
        conn.execute(f"UPDATE {memories} SET payload = payload || '{{\"updated\": true}}'::jsonb"
                     " WHERE user_id = %s AND pg_catalog.random() < 0.1", (USER,))


def prepare(dsn: str, settings: Settings, memories: int, user_memories: int, dims: int) -> None:
    tables = [qualified("public", settings.collection),
              qualified("public", f"{settings.collection}_entities")]
    started = time.monotonic()
    with connect(dsn, autocommit=True) as conn:
        # Loaded without the vector indexes, built once after (as a restore into an empty
        # stack does): a row-by-row load into HNSW would take longer than all the rest.
        indexes = [(name, conn.execute("SELECT pg_catalog.pg_get_indexdef(%s::regclass)",
                                       (name,)).fetchone())
                   for (name,) in conn.execute(_VECTOR_INDEXES, (tables,)).fetchall()]
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        load(conn, settings, memories - user_memories, dims)
        load_user(conn, settings, user_memories, dims)
        print(f"  loaded ({time.monotonic() - started:.1f} s); building vector indexes",
              file=sys.stderr, flush=True)
        conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        for _, definition in indexes:
            assert definition is not None
            conn.execute(definition[0])
        conn.execute(f"SELECT {qualified(BACKUP_SCHEMA, SNAPSHOT_FUNCTION)}('7 days')")
        conn.execute("VACUUM ANALYZE")
    print(f"  prepared in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def table_rows(dsn: str) -> dict[str, int]:
    with connect(dsn, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c JOIN"
            " pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
            " AND n.nspname IN ('public', 'mem0_backup', 'mem0_erasure') ORDER BY 1").fetchall()]
        return {name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
                for name in names}


def measure(dsn: str, settings: Settings, memories: int, user_memories: int,
            dims: int) -> None:
    prepare(dsn, settings, memories, user_memories, dims)
    before = table_rows(dsn)
    dry = run_forget(dsn, settings, ForgetRequest(PersonKind.USER, USER, dry_run=True))
    real = run_forget(dsn, settings, ForgetRequest(PersonKind.USER, USER))
    after = table_rows(dsn)
    print(f"memories {before[qualified('public', settings.collection)]} "
          f"({user_memories} of the erased user), dimensions {dims}")
    print(f"dry run:  {dry.seconds:7.2f} s  {dry.total} rows counted, rolled back")
    print(f"forget:   {real.seconds:7.2f} s  {real.total} rows removed "
          f"({real.total / real.seconds:,.0f} rows/s)")
    width = max(len(t) for t in before)
    print(f"  {'table'.ljust(width)}  {'before':>8}  {'removed':>8}  {'after':>8}")
    for table, rows in before.items():
        print(f"  {table.ljust(width)}  {rows:8}  {real.removed.get(table, 0):8}  "
              f"{after[table]:8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default=None, help="required unless --testbed")
    parser.add_argument("--project-dir", type=Path, default=None)
    parser.add_argument("--dsn", default=None, help="the deployed database (a superuser)")
    parser.add_argument("--testbed", action="store_true",
                        help="deploy a test stack on the test bed's server instead")
    parser.add_argument("--memories", type=int, default=100_000,
                        help="memories in the table, the erased user's included")
    parser.add_argument("--user-memories", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=1536)
    args = parser.parse_args(argv)
    if args.user_memories >= args.memories:
        parser.error("--user-memories must be fewer than --memories")
    if args.testbed:
        server, stop = start_server()
        try:
            with tempfile.TemporaryDirectory() as state, \
                    deployed_stack(server, Path(state), "measure", dimensions=args.dims) as db:
                settings = stack_settings(db, "measure", dimensions=args.dims)
                measure(db.dsn, settings, args.memories, args.user_memories, args.dims)
        finally:
            stop()
        return 0
    if not (args.stack and args.dsn):
        parser.error("give --stack and --dsn, or --testbed")
    settings = load_stack_settings(args.stack, args.project_dir)
    measure(args.dsn, settings, args.memories, args.user_memories, args.dims)
    return 0


if __name__ == "__main__":
    sys.exit(main())
