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
    .venv/bin/python scripts/measure_backup.py --testbed [--memories N] [--dims D] \\
        [--row-by-row-too] [--s3 [--s3-url s3://BUCKET/PREFIX/ --endpoint-url URL]]

Both URLs must reach deployments of the stack (the restore's must be empty) as a role that
may act as the stack's service role; --dims must equal the stack's dimensions. The loaded
rows stay in the source database. The restore's lines say which path its writes took
(bulk into an empty stack: the vector indexes built after the rows).

--s3 also measures backups to and restores from an S3-compatible server, unencrypted and
encrypted (a passphrase; AES-256-GCM): moto's server mode started on a free local port
(the tests' server), or the store at --endpoint-url / AWS_ENDPOINT_URL with --s3-url
s3://bucket/prefix/. Before each of those restores the target's data tables are emptied
(TRUNCATE, so its role must own them or be a superuser: --testbed's is), so each one
takes the same path as the first restore. Prints rows/s and MB/s (of the stored file).

--testbed needs no stack of yours: it deploys a test stack (the test bed's server,
MEM0_TEST_DSN or a temporary local cluster; target postgres, --dims dimensions) through
the real Pulumi CLI, copies it twice (the source and the empty target) and drops
everything afterwards. It restores as the server's superuser, so the bulk path can act as
the tables' owner; its source has no vector index (a backup does not read it), which
saves the time a row-by-row load into HNSW takes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' test bed

from components.backup import (
    BackupRequest,
    BackupResult,
    Passphrase,
    RestoreRequest,
    run_backup,
    run_restore,
)
from components.backup.common import CommandProgress
from components.backup.tables import data_parts
from components.connection import connect
from components.identifiers import qualified, quote_ident
from components.model import RELATIONSHIPS_TABLE
from components.settings import Settings
from components.stackfile import load_stack_settings
from tests.conftest import stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer, create_database, drop_database, start_server

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


_VECTOR_INDEXES = ("SELECT c.oid::pg_catalog.regclass::text"
                   " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c"
                   " ON c.oid = i.indexrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam"
                   " WHERE i.indrelid = ANY(%s::pg_catalog.regclass[])"
                   " AND a.amname IN ('hnsw', 'ivfflat')")


def load_unindexed(dsn: str, settings: Settings, memories: int, dims: int) -> None:
    """`load` into tables without their vector indexes (dropped as their owner or a
    superuser): a backup never reads them, and a row-by-row load into HNSW takes as long
    as the restore this script measures."""
    tables = [qualified("public", settings.collection),
              qualified("public", f"{settings.collection}_entities")]
    with connect(dsn, autocommit=True) as conn:
        for (name,) in conn.execute(_VECTOR_INDEXES, (tables,)).fetchall():
            conn.execute(f"DROP INDEX {name}")
        load(conn, settings, memories, dims)


def _copy(server: PgServer, template: str) -> str:
    """A new database copied from `template` (which must have no connection open)."""
    name = create_database(server, prefix="measure")
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {quote_ident(name)}")
        admin.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(template)}")
    return name


@contextmanager
def testbed(stack: str, dims: int) -> Iterator[tuple[Settings, str, str, str]]:
    """The stack deployed on the test bed's server, three times: (settings, source, empty
    target, another empty target as the stack's service role, which cannot act as the
    tables' owner), the first two as the server's superuser; all dropped afterwards."""
    server, stop = start_server()
    copies: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as state, \
                deployed_stack(server, Path(state), stack, dimensions=dims) as template:
            settings = stack_settings(template, stack, dimensions=dims)
            try:
                copies += [_copy(server, template.name) for _ in range(3)]
                yield (settings, server.dsn_for(copies[0]), server.dsn_for(copies[1]),
                       server.dsn_for(copies[2], user=settings.service_role,
                                      password=settings.service_role_password))
            finally:
                for name in copies:
                    drop_database(server, name)
    finally:
        stop()


def _empty(dsn: str, settings: Settings) -> bool:
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM "
                           f"{qualified('public', settings.collection)})").fetchone()
    return bool(row and row[0])


@contextmanager
def s3_store(url: str | None, endpoint: str | None) -> Iterator[tuple[str, str | None]]:
    """(s3://bucket/prefix/, endpoint URL): the one given, or a moto server started here
    with a bucket and fake credentials, stopped afterwards."""
    if url is not None:
        yield url, endpoint
        return
    import logging
    import os
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    for name, value in (("AWS_ACCESS_KEY_ID", "measure"), ("AWS_SECRET_ACCESS_KEY", "measure"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        local = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=local).create_bucket(Bucket="measure")
        yield "s3://measure/backups/", local
    finally:
        server.stop()


def _truncate(dsn: str, settings: Settings) -> None:
    tables = ", ".join(qualified("public", p.table) for p in data_parts(settings))
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def measure_s3(settings: Settings, source: str, target: str, url: str,
               endpoint: str | None) -> None:
    """Backup to the store and restore from it, plain and encrypted; print figures."""
    key = Passphrase("measure", "a passphrase for the measurement only")
    for label, passphrase in (("s3", None), ("s3 encrypted", key)):
        backup: BackupResult = run_backup(
            source, settings, BackupRequest(url, endpoint_url=endpoint, passphrase=passphrase),
            CommandProgress(sys.stderr, "backup"))
        rows = sum(t.rows for t in backup.manifest.tables)
        _truncate(target, settings)
        restored = run_restore(target, settings, RestoreRequest(
            file=backup.location, endpoint_url=endpoint, passphrase=passphrase),
            CommandProgress(sys.stderr, "restore"))
        mb = backup.size / 1e6
        print(f"{label + ' backup:':<24} {backup.seconds:8.2f} s  "
              f"{rows / backup.seconds:10,.0f} rows/s  {mb / backup.seconds:8.1f} MB/s  "
              f"({mb:.1f} MB to {backup.location})")
        print(f"{label + ' restore:':<24} {restored.seconds:8.2f} s  "
              f"{rows / restored.seconds:10,.0f} rows/s  {mb / restored.seconds:8.1f} MB/s  "
              f"({restored.path})")


def measure(settings: Settings, source: str, target: str, memories: int, dims: int,
            output: Path | None, source_unindexed: bool, rows_target: str | None = None,
            s3: tuple[str, str | None] | None = None) -> None:
    """Load the source, back it up, restore into the empty target twice (and once into
    `rows_target`, an empty target where the restore writes row by row); print figures."""
    if not _empty(target, settings):
        raise SystemExit("--restore-dsn: its memories table is not empty")
    print(f"loading {memories} memories of {dims} dimensions", file=sys.stderr)
    if source_unindexed:
        load_unindexed(source, settings, memories, dims)
    else:
        with connect(source, autocommit=True) as conn:
            load(conn, settings, memories, dims)
    with tempfile.TemporaryDirectory() as scratch:
        path = output or Path(scratch) / "measure.tar.gz"
        backup = run_backup(source, settings, BackupRequest(path),
                            CommandProgress(sys.stderr, "backup"))
        rows = sum(t.rows for t in backup.manifest.tables)
        restored = run_restore(target, settings, RestoreRequest(file=path),
                               CommandProgress(sys.stderr, "restore"))
        again = run_restore(target, settings, RestoreRequest(file=path),
                            CommandProgress(sys.stderr, "restore"))
        runs = [("restore:", restored), ("restore again:", again)]
        if rows_target is not None:
            runs.append(("row by row:", run_restore(rows_target, settings,
                                                    RestoreRequest(file=path),
                                                    CommandProgress(sys.stderr, "restore"))))
    memories = backup.manifest.tables[0].rows
    print(f"memories {memories}, dimensions {settings.dimensions}; rows per table: "
          + ", ".join(f"{t.table} {t.rows}" for t in backup.manifest.tables))
    print(f"backup:         {backup.seconds:8.2f} s  {rows / backup.seconds:10,.0f} rows/s")
    print(f"file:           {backup.size / 1e6:8.2f} MB  "
          f"{backup.size / memories * 1000 / 1e6:10.2f} MB per 1K memories")
    for label, run in runs:
        changed = sum(o.inserted + o.updated for o in run.outcomes)
        print(f"{label:<15} {run.seconds:8.2f} s  {rows / run.seconds:10,.0f} rows/s"
              f"  ({changed} rows written; {run.path})")
    if s3 is not None:
        measure_s3(settings, source, target, *s3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default=None, help="required unless --testbed")
    parser.add_argument("--project-dir", type=Path, default=None)
    parser.add_argument("--dsn", default=None, help="the deployed source database")
    parser.add_argument("--restore-dsn", default=None, help="an empty deployment")
    parser.add_argument("--testbed", action="store_true",
                        help="deploy a test stack on the test bed's server instead")
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--output", type=Path, default=None,
                        help="the backup file (default: a temporary file, removed)")
    parser.add_argument("--row-by-row-too", action="store_true",
                        help="--testbed: also restore into another empty copy as the "
                             "service role, which writes row by row, for comparison")
    parser.add_argument("--s3", action="store_true",
                        help="also to and from an S3-compatible store, plain and encrypted")
    parser.add_argument("--s3-url", default=None, metavar="s3://BUCKET/PREFIX/",
                        help="--s3: this store instead of a local moto server")
    parser.add_argument("--endpoint-url", default=None,
                        help="--s3-url: an S3-compatible store's endpoint")
    args = parser.parse_args(argv)
    if args.testbed:
        with testbed(args.stack or "measure", args.dims) as (settings, source, target, rows), \
                s3_store(args.s3_url, args.endpoint_url) as store:
            measure(settings, source, target, args.memories, args.dims, args.output, True,
                    rows if args.row_by_row_too else None, store if args.s3 else None)
        return 0
    if not (args.stack and args.dsn and args.restore_dsn):
        parser.error("give --stack, --dsn and --restore-dsn, or --testbed")
    settings = load_stack_settings(args.stack, args.project_dir)
    if args.dims != settings.dimensions:
        parser.error(f"--dims {args.dims} differs from stack {args.stack!r}'s dimensions "
                     f"{settings.dimensions}")
    with s3_store(args.s3_url, args.endpoint_url) as store:
        measure(settings, args.dsn, args.restore_dsn, args.memories, args.dims, args.output,
                False, s3=store if args.s3 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
