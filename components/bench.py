"""`python -m components bench`: how a stack's schema performs under mem0's own SQL.

The bench builds the stack's tables, functions, triggers and indexes from the same model the
Pulumi program deploys (`build_model(settings, schema=scratch)`) in a throwaway schema
`mem0_bench_<8 hex>`, fills it with mem0-shaped rows generated inside the server, times
mem0's exact statements, and drops the schema again whatever happens (also on Ctrl-C).
Its figures are for issue notes and sizing; no test asserts a timing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from hashlib import md5
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql

from components.connection import connect, is_embedded
from components.identifiers import qualified, quote_ident
from components.model import (
    HISTORY_TABLE,
    NEIGHBOURS_FUNCTION,
    RELATIONSHIPS_TABLE,
    ObjectSpec,
    build_model,
)
from components.settings import ITERATIVE_SCANS, MAX_DIMENSIONS, MAX_INDEXED_DIMENSIONS, Settings
from components.stackfile import load_stack_settings

DSN_ENV = "MEM0_DATABASE_URL"
SCRATCH_PREFIX = "mem0_bench_"
APPLICATION = "mem0infra-bench"
EXIT_OK, EXIT_INTERRUPTED = 0, 130  # 130: the shell's code for a run ended by SIGINT
TOP_K = 10
# Untimed runs before each measurement: psycopg prepares a statement on its 6th execution
# (prepare_threshold=5), so the timed runs see what a long-lived mem0 pool connection sees.
WARMUP = 5
LOAD_BATCH = 5_000  # rows per INSERT ... SELECT: bounds the per-statement trigger queue
MAINTENANCE_WORK_MEM = "1GB"  # pgvector builds hnsw much faster while the graph fits in it
MIN_PGVECTOR = (0, 5, 0)  # hnsw indexes and the element-wise vector product
ITERATIVE_SCAN_PGVECTOR = (0, 8, 0)
BUILD_KINDS = ("table", "function", "trigger")  # before the load; indexes come after it
INDEX_KIND = "index"
MEASUREMENTS = ("insert", "search_user_top10", "search_unfiltered_top10", "get_by_id",
                "traverse_2hop")

# Synthetic embeddings. Uniform random high-dimensional vectors are a pathological worst
# case for approximate search (every point is nearly equidistant from every other); real
# embeddings are clustered. Each vector is unit(common + topic + user + noise), the parts
# Gaussian directions with these shares of the squared norm.
COMMON_SHARE, TOPIC_SHARE, USER_SHARE, NOISE_SHARE = 0.10, 0.25, 0.20, 0.45
QUERY_NOISE_SHARE = 0.15  # a query is an existing memory plus noise: cosine ~0.93 to it
TOPICS = 64
DATA_MODEL = (
    f"clustered: unit(common + topic + user + noise) with squared-norm shares "
    f"{COMMON_SHARE}/{TOPIC_SHARE}/{USER_SHARE}/{NOISE_SHARE} ({TOPICS} topics shared by all "
    "users, one centre per user, Gaussian noise); expected cosine: unrelated 0.10, same "
    "topic 0.35, same user 0.30, same user and topic 0.55. Queries: an existing memory of "
    f"the user plus Gaussian noise (share {QUERY_NOISE_SHARE}, cosine ~0.93 to it)")
WORDS = (
    "likes", "prefers", "hiking", "coffee", "tea", "meeting", "tuesday", "project", "deadline",
    "sister", "birthday", "allergic", "peanuts", "vegetarian", "python", "rust", "budget",
    "travel", "alps", "paris", "tokyo", "running", "marathon", "guitar", "jazz", "novel",
    "dentist", "appointment", "morning", "evening", "weekend", "dog", "cat", "garden",
    "recipe", "pasta", "sushi", "invoice", "client", "review", "launch", "flight", "hotel",
    "gym", "yoga", "podcast", "movie", "sci-fi", "thriller", "school", "daughter", "son",
    "manager", "promotion", "apartment", "rent", "bike", "car", "insurance", "doctor")


class BenchError(ValueError):
    """The bench could not run (exit code 2): bad arguments, no database, no pgvector."""


@dataclass(frozen=True)
class Options:
    rows: int
    users: int
    samples: int
    seed: float


@dataclass(frozen=True)
class Names:
    """Qualified SQL names in the scratch schema, and pgvector's type and operators."""

    scratch: str
    settings: Settings

    def obj(self, name: str) -> str:
        return qualified(self.scratch, name)

    @property
    def memories(self) -> str:
        return self.obj(self.settings.collection)

    @property
    def vector(self) -> str:
        return qualified(self.settings.extension_schema, "vector")

    def op(self, symbol: str) -> str:
        # The session's search_path is empty: pgvector's operators must be named with schema.
        return f"OPERATOR({quote_ident(self.settings.extension_schema)}.{symbol})"


@dataclass(frozen=True)
class Server:
    version: str
    version_num: int
    pgvector: str
    settings: dict[str, str]

    @property
    def pgvector_version(self) -> tuple[int, ...]:
        return _version(self.pgvector)


class Progress:
    """One line per step on stderr, only when a person is watching (a TTY)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            print(f"[bench {elapsed:7.1f}s] {message}", file=self.stream, flush=True)


# --- command line ---------------------------------------------------------------------------


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed; allowed: an integer from {low} to {high}")
        return value

    return parse


def _seed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 2.0
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; allowed: a number from -1 to 1 (PostgreSQL's setseed)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml (default: found from the cwd)")
    parser.add_argument("--dsn", default=None,
                        help=f"postgresql:// URL of a role that may create a schema "
                             f"(default: ${DSN_ENV}); the embedded server is never started")
    parser.add_argument("--rows", type=_bounded(1, 10_000_000), default=10_000,
                        help="memories to load (default 10000)")
    parser.add_argument("--users", type=_bounded(1, 1_000_000), default=100,
                        help="users the memories belong to (default 100)")
    parser.add_argument("--dims", type=_bounded(1, MAX_DIMENSIONS), default=None,
                        help="embedding dimensions (default: the stack's dimensions)")
    parser.add_argument("--samples", type=_bounded(1, 100_000), default=200,
                        help="timed runs per measurement (default 200)")
    parser.add_argument("--ef-search", type=_bounded(1, 1000), default=None,
                        help="hnsw.ef_search for the searches (default: the stack's)")
    parser.add_argument("--iterative-scan", choices=[s for s in ITERATIVE_SCANS if s != "auto"],
                        default=None,
                        help="iterative index scans (default: the stack's resolved value; "
                             "applied only on pgvector >= 0.8.0)")
    parser.add_argument("--seed", type=_seed, default=0.25,
                        help="seed of the generated data, -1..1 (default 0.25)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the text report")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="also write the JSON document to this file")


def command(args: argparse.Namespace) -> int:
    """Run the bench for parsed arguments; BenchError means it could not run."""
    dsn = bench_dsn(args.dsn)
    settings = bench_settings(args)
    options = bench_options(args)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        report = run_benchmark(dsn, settings, options, Progress(sys.stderr))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    document = json.dumps(report, indent=2) + "\n"
    if args.output:
        args.output.write_text(document, encoding="utf-8")
    sys.stdout.write(document if args.json else render_text(report))
    return EXIT_OK


def bench_dsn(given: str | None) -> str:
    dsn = given or os.environ.get(DSN_ENV, "")
    if not dsn:
        raise BenchError(
            f"no database to benchmark: pass --dsn postgresql://USER@HOST:PORT/DB or set "
            f"{DSN_ENV} (the bench never starts the embedded server)")
    if is_embedded(dsn):
        raise BenchError(
            "--dsn: an 'embedded:' spec is not allowed; allowed: a postgresql:// URL or a "
            "libpq conninfo (the bench never starts the embedded server)")
    return dsn


def bench_settings(args: argparse.Namespace) -> Settings:
    settings = load_stack_settings(args.stack, args.project_dir)
    if settings.client_profile != "python":
        raise BenchError(
            f"stack {args.stack!r} has clientProfile {settings.client_profile!r}; the bench "
            "measures mem0's Python SQL only (allowed: python)")
    changes: dict[str, Any] = {}
    if args.dims is not None:
        changes["dimensions"] = args.dims
    if args.ef_search is not None:
        changes["hnsw_ef_search"] = args.ef_search
    if args.iterative_scan is not None:
        changes["iterative_scan"] = args.iterative_scan
    settings = replace(settings, **changes)
    method = settings.vector_index.method
    if method in ("hnsw", "ivfflat") and settings.dimensions > MAX_INDEXED_DIMENSIONS:
        raise BenchError(
            f"--dims: {settings.dimensions} is not allowed with the stack's {method} index; "
            f"allowed: 1 to {MAX_INDEXED_DIMENSIONS} (pgvector indexes at most "
            f"{MAX_INDEXED_DIMENSIONS} dimensions), or a stack with vectorIndexMethod none")
    return settings


def bench_options(args: argparse.Namespace) -> Options:
    if args.users > args.rows:
        raise BenchError(f"--users: {args.users} is not allowed with --rows {args.rows}; "
                         f"allowed: 1 to {args.rows} (every user needs a memory)")
    return Options(rows=args.rows, users=args.users, samples=args.samples, seed=args.seed)


# --- the run --------------------------------------------------------------------------------


def run_benchmark(dsn: str, settings: Settings, options: Options,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    names = Names(SCRATCH_PREFIX + secrets.token_hex(4), settings)
    try:
        conn = connect(dsn, autocommit=True, application=APPLICATION)
    except psycopg.OperationalError as exc:
        raise BenchError(f"could not connect to the database of --dsn/{DSN_ENV}: {exc}"
                         ) from exc
    with conn:
        try:
            server = _server(conn, settings)
            try:
                return _run(conn, names, server, options, progress)
            finally:
                progress(f"dropping schema {names.scratch}")
                _drop_scratch(conn, dsn, names.scratch)
        except psycopg.Error as exc:
            raise BenchError(f"the bench failed: {exc}") from exc


def _run(conn: psycopg.Connection[Any], names: Names, server: Server, options: Options,
         progress: Callable[[str], None]) -> dict[str, Any]:
    conn.execute(f"CREATE SCHEMA {quote_ident(names.scratch)}")
    _set(conn, "statement_timeout", "0")  # a 100K-row load outlasts a server's default
    conn.execute("SELECT pg_catalog.setseed(%s)", (options.seed,))
    specs = build_model(names.settings, schema=names.scratch)
    progress(f"creating tables, functions and triggers in {names.scratch}")
    for spec in specs:
        if spec.kind in BUILD_KINDS:
            conn.execute(spec.ddl)
    load = _load(conn, names, options, progress)
    inserts = _stage_inserts(conn, names, options)
    conn.execute(f"DROP TABLE {names.obj('bench_pool')}")
    build = _build_indexes(conn, [s for s in specs if s.kind == INDEX_KIND], progress)
    build["vacuum_analyze_s"] = _vacuum_analyze(conn, names)
    sizes = _sizes(conn, names)
    session = _search_session(conn, names.settings, server)
    metrics, plans = _measure(conn, names, server, options, inserts, progress)
    skipped = sorted({s.kind for s in specs} - {*BUILD_KINDS, INDEX_KIND})
    return {
        "parameters": _parameters(names, server, options, session, skipped),
        "load": load, "index_build": build, "sizes": sizes, "metrics": metrics,
        "plans": plans,
    }


def _set(conn: psycopg.Connection[Any], name: str, value: str, local: bool = False) -> None:
    conn.execute("SELECT pg_catalog.set_config(%s, %s, %s)", (name, value, local))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


SERVER_SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "jit", "fsync",
                   "synchronous_commit", "max_parallel_workers",
                   "max_parallel_workers_per_gather", "random_page_cost")


def _server(conn: psycopg.Connection[Any], settings: Settings) -> Server:
    row = conn.execute(
        "SELECT e.extversion, n.nspname FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'vector'").fetchone()
    schema = settings.extension_schema
    if row is None:
        raise BenchError(
            f"pgvector is not installed in this database; install it first with "
            f"CREATE EXTENSION vector WITH SCHEMA {quote_ident(schema)} (the bench creates "
            "no extension)")
    if row[1] != schema:
        raise BenchError(
            f"pgvector is in schema {row[1]!r}, but stack {settings.stack!r} (target "
            f"{settings.target}) expects it in {schema!r}; allowed: a database whose pgvector "
            "is where the stack puts it")
    if _version(row[0]) < MIN_PGVECTOR:
        raise BenchError(f"pgvector {row[0]} is too old; allowed: 0.5.0 or later (hnsw)")
    values = conn.execute(
        "SELECT pg_catalog.current_setting(name) FROM pg_catalog.unnest(%s::text[]) AS name",
        (["server_version", "server_version_num", *SERVER_SETTINGS],)).fetchall()
    flat = [v[0] for v in values]
    return Server(version=flat[0], version_num=int(flat[1]), pgvector=row[0],
                  settings=dict(zip(SERVER_SETTINGS, flat[2:], strict=True)))


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    # A second Ctrl-C during the drop would leave the scratch schema behind.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drop_scratch(conn: psycopg.Connection[Any], dsn: str, scratch: str) -> None:
    statement = f"DROP SCHEMA IF EXISTS {quote_ident(scratch)} CASCADE"
    with _sigint_ignored():
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.execute(statement)
            return
        except psycopg.Error:
            pass  # the session is gone (server restart, broken link): try a new one
        try:
            with connect(dsn, autocommit=True, application=APPLICATION) as fresh:
                fresh.execute(statement)
        except psycopg.Error as exc:
            print(f"warning: could not drop the scratch schema {scratch} ({exc}); drop it "
                  f"with: {statement};", file=sys.stderr)


# --- data -----------------------------------------------------------------------------------


def _helper_functions(n: Names) -> list[str]:
    """Generators for the load, in the scratch schema (dropped with it)."""
    vec, mul, ext = n.vector, n.op("*"), quote_ident(n.settings.extension_schema)
    return [
        f"CREATE FUNCTION {n.obj('bench_direction')}(d integer, scale double precision)"
        f" RETURNS {vec} LANGUAGE sql VOLATILE AS $$"
        " WITH g AS (SELECT i, pg_catalog.sqrt(-2 * pg_catalog.ln(1 - pg_catalog.random()))"
        "   * pg_catalog.cos(2 * pg_catalog.pi() * pg_catalog.random()) AS x"
        "   FROM pg_catalog.generate_series(1, d) AS i)"
        f" SELECT pg_catalog.array_agg(g.x * scale / t.norm ORDER BY g.i)::{vec}"
        " FROM g, (SELECT pg_catalog.sqrt(pg_catalog.sum(x * x)) AS norm FROM g) AS t $$",
        f"CREATE FUNCTION {n.obj('bench_signs')}(d integer) RETURNS {vec} LANGUAGE sql"
        " VOLATILE AS $$ SELECT pg_catalog.array_agg(CASE WHEN pg_catalog.random() < 0.5"
        f" THEN -1::double precision ELSE 1::double precision END)::{vec}"
        " FROM pg_catalog.generate_series(1, d) $$",
        # pgvector has l2_normalize only from 0.7.0; this works from 0.5.0.
        f"CREATE FUNCTION {n.obj('bench_unit')}(v {vec}) RETURNS {vec} LANGUAGE sql"
        f" IMMUTABLE STRICT AS $$ SELECT v {mul} pg_catalog.array_fill("
        f"1 / {ext}.vector_norm(v), ARRAY[{ext}.vector_dims(v)])::{vec} $$",
        f"CREATE FUNCTION {n.obj('bench_text')}(k bigint, words text[]) RETURNS text"
        " LANGUAGE sql VOLATILE AS $$ SELECT pg_catalog.array_to_string(ARRAY("
        "SELECT words[1 + pg_catalog.floor(pg_catalog.random()"
        " * pg_catalog.cardinality(words))::integer]"
        " FROM pg_catalog.generate_series(1, 6 + pg_catalog.mod(k, 10)::integer)), ' ') $$",
    ]


def _fill_pool(conn: psycopg.Connection[Any], n: Names, users: int, pool: int) -> None:
    """The parts vectors are summed from: common, topics, users, noise and sign flips.

    A row's noise is noise[k mod P] * signs[k div P] (element-wise): P*P distinct,
    nearly uncorrelated noise vectors from 2P generated ones, so 100K rows cost 2*317
    Gaussian vectors instead of 100K.
    """
    table = n.obj("bench_pool")
    conn.execute(f"CREATE TABLE {table} (kind text NOT NULL, n integer NOT NULL,"
                 f" v {n.vector} NOT NULL, PRIMARY KEY (kind, n))")
    parts = (("common", 1, COMMON_SHARE), ("topic", TOPICS, TOPIC_SHARE),
             ("user", users, USER_SHARE), ("noise", pool, NOISE_SHARE))
    for kind, count, share in parts:
        conn.execute(
            f"INSERT INTO {table} (kind, n, v) SELECT %s, i,"
            f" {n.obj('bench_direction')}(%s::integer, %s::double precision)"
            " FROM pg_catalog.generate_series(0, %s::integer - 1) AS i",
            (kind, n.settings.dimensions, math.sqrt(share), count))
    conn.execute(f"INSERT INTO {table} (kind, n, v) SELECT 'sign', i,"
                 f" {n.obj('bench_signs')}(%s::integer)"
                 " FROM pg_catalog.generate_series(0, %s::integer - 1) AS i",
                 (n.settings.dimensions, pool))
    conn.execute(f"ANALYZE {table}")


def _generator_sql(n: Names) -> str:
    """Rows k in [lo, hi]: (k, user_id, body, at, vector). Parameters are named."""
    pool, plus, mul = n.obj("bench_pool"), n.op("+"), n.op("*")
    return (
        f"SELECT r.k, r.user_id, r.body, r.at,"
        f" {n.obj('bench_unit')}(c.v {plus} t.v {plus} u.v {plus} (e.v {mul} s.v)) AS vector"
        " FROM (SELECT k, pg_catalog.mod(k, %(users)s::bigint)::integer AS user_no,"
        "  pg_catalog.floor(pg_catalog.random() * %(topics)s::integer)::integer AS topic,"
        "  'user_' || pg_catalog.mod(k, %(users)s::bigint)::text AS user_id,"
        f"  {n.obj('bench_text')}(k, %(words)s::text[]) AS body,"
        "  pg_catalog.to_char((pg_catalog.now() - pg_catalog.random() * interval '365 days')"
        "   AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS at"
        "  FROM pg_catalog.generate_series(%(lo)s::bigint, %(hi)s::bigint) AS k) AS r"
        f" JOIN {pool} AS c ON c.kind = 'common' AND c.n = 0"
        f" JOIN {pool} AS t ON t.kind = 'topic' AND t.n = r.topic"
        f" JOIN {pool} AS u ON u.kind = 'user' AND u.n = r.user_no"
        f" JOIN {pool} AS e ON e.kind = 'noise' AND e.n = pg_catalog.mod(r.k, %(pool)s::bigint)"
        f" JOIN {pool} AS s ON s.kind = 'sign'"
        "  AND s.n = pg_catalog.mod(r.k / %(pool)s::bigint, %(pool)s::bigint)")


def _generator_params(options: Options, pool: int, lo: int, hi: int) -> dict[str, Any]:
    return {"users": options.users, "topics": TOPICS, "words": list(WORDS), "pool": pool,
            "lo": lo, "hi": hi}


def _pool_size(options: Options) -> int:
    return math.isqrt(options.rows + options.samples + WARMUP) + 1  # P*P covers every row


def _load(conn: psycopg.Connection[Any], n: Names, options: Options,
          progress: Callable[[str], None]) -> dict[str, Any]:
    for ddl in _helper_functions(n):
        conn.execute(ddl)
    pool = _pool_size(options)
    _fill_pool(conn, n, options.users, pool)
    statement = (
        f"INSERT INTO {n.memories} (id, vector, payload)"
        " SELECT pg_catalog.gen_random_uuid(), x.vector, pg_catalog.jsonb_build_object("
        "'data', x.body, 'hash', pg_catalog.md5(x.body), 'role', 'user', 'user_id', x.user_id,"
        " 'created_at', x.at, 'updated_at', x.at, 'text_lemmatized', x.body)"
        f" FROM ({_generator_sql(n)}) AS x")
    started = time.perf_counter()
    for lo in range(0, options.rows, LOAD_BATCH):
        hi = min(lo + LOAD_BATCH, options.rows) - 1
        progress(f"loading memories {hi + 1}/{options.rows}")
        conn.execute(statement, _generator_params(options, pool, lo, hi))
    seconds = time.perf_counter() - started
    progress("loading relationships")
    started = time.perf_counter()
    edges = _load_relationships(conn, n)
    edge_seconds = time.perf_counter() - started
    return {"rows": options.rows, "seconds": round(seconds, 3),
            "rows_per_second": round(options.rows / seconds, 1),
            "includes": "history trigger, primary key and relationship constraints; "
                        "no other index",
            "relationships": edges, "relationships_seconds": round(edge_seconds, 3)}


def _load_relationships(conn: psycopg.Connection[Any], n: Names) -> int:
    """2-3 edges per memory to other memories of the same user, strengths in (0, 1]."""
    rank = n.obj("bench_rank")
    conn.execute(
        f"CREATE TABLE {rank} AS SELECT id, payload ->> 'user_id' AS user_id,"
        " (pg_catalog.row_number() OVER (PARTITION BY payload ->> 'user_id' ORDER BY id)"
        " - 1)::integer AS rn,"
        " (pg_catalog.count(*) OVER (PARTITION BY payload ->> 'user_id'))::integer AS cnt"
        f" FROM {n.memories}")
    conn.execute(f"ANALYZE {rank}")
    edges = conn.execute(
        f"INSERT INTO {n.obj(RELATIONSHIPS_TABLE)}"
        " (source_memory_id, target_memory_id, relationship_type, strength, user_id)"
        " SELECT a.id, b.id, e.kind, 1 - pg_catalog.random(), a.user_id"
        f" FROM {rank} AS a CROSS JOIN LATERAL (VALUES"
        "  ('follows', pg_catalog.mod(a.rn + 1, a.cnt)),"
        "  ('related_to', pg_catalog.mod(a.rn + 2, a.cnt)),"
        "  ('mentions', CASE WHEN pg_catalog.random() < 0.5 THEN pg_catalog.mod(a.rn + 1"
        "   + pg_catalog.floor(pg_catalog.random() * (a.cnt - 1))::integer, a.cnt) END)"
        " ) AS e(kind, target_rn)"
        f" JOIN {rank} AS b ON b.user_id = a.user_id AND b.rn = e.target_rn"
        " WHERE b.id <> a.id").rowcount
    conn.execute(f"DROP TABLE {rank}")
    return edges


Mem0Row = tuple[str, list[float], str]  # id, vector, payload as mem0 sends them


def _parse_vector(text: str) -> list[float]:
    return [float(x) for x in text.strip("[]").split(",")]


def _stage_inserts(conn: psycopg.Connection[Any], n: Names, options: Options) -> list[Mem0Row]:
    """New memories for the insert measurement, from the same generator as the load."""
    lo = options.rows
    hi = lo + options.samples + WARMUP - 1
    rows = conn.execute(
        f"SELECT x.user_id, x.body, x.vector::text FROM ({_generator_sql(n)}) AS x ORDER BY x.k",
        _generator_params(options, _pool_size(options), lo, hi)).fetchall()
    return [_mem0_row(user_id, body, vector) for user_id, body, vector in rows]


def _mem0_row(user_id: str, body: str, vector: str) -> Mem0Row:
    # As mem0 2.x builds it: uuid4 id, the vector as a float list, the payload as JSON text.
    now = datetime.now(timezone.utc).isoformat()
    payload = {"data": body, "hash": md5(body.encode()).hexdigest(), "role": "user",
               "user_id": user_id, "created_at": now, "updated_at": now,
               "text_lemmatized": body}
    return str(uuid.uuid4()), _parse_vector(vector), json.dumps(payload)


# --- indexes, sizes, session ----------------------------------------------------------------


def _build_indexes(conn: psycopg.Connection[Any], specs: Sequence[ObjectSpec],
                   progress: Callable[[str], None]) -> dict[str, Any]:
    workers = conn.execute(
        "SELECT pg_catalog.current_setting('max_parallel_workers')").fetchone()
    _set(conn, "maintenance_work_mem", MAINTENANCE_WORK_MEM)
    _set(conn, "max_parallel_maintenance_workers", str(workers[0] if workers else 0))
    notices: list[str] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        # pgvector says so when the hnsw graph outgrows maintenance_work_mem.
        notices.append(diagnostic.message_primary or "")

    conn.add_notice_handler(keep)
    timings: dict[str, float] = {}
    try:
        for spec in specs:
            progress(f"building index {spec.name}")
            started = time.perf_counter()
            conn.execute(spec.ddl)
            timings[spec.name] = round(time.perf_counter() - started, 3)
    finally:
        conn.remove_notice_handler(keep)
    return {"seconds": round(sum(timings.values()), 3), "per_index_s": timings,
            "maintenance_work_mem": MAINTENANCE_WORK_MEM,
            "max_parallel_maintenance_workers": int(workers[0]) if workers else 0,
            "notices": notices}


def _tables(n: Names) -> dict[str, str]:
    collection = n.settings.collection
    return {collection: n.memories, HISTORY_TABLE: n.obj(HISTORY_TABLE),
            RELATIONSHIPS_TABLE: n.obj(RELATIONSHIPS_TABLE)}


def _vacuum_analyze(conn: psycopg.Connection[Any], n: Names) -> float:
    # Statistics as autovacuum would have them on a live table; also sets hint bits, so the
    # first timed searches do not pay for them.
    started = time.perf_counter()
    for table in _tables(n).values():
        conn.execute(f"VACUUM (ANALYZE) {table}")
    return round(time.perf_counter() - started, 3)


def _sizes(conn: psycopg.Connection[Any], n: Names) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for label, table in _tables(n).items():
        total, heap_toast, indexes = conn.execute(
            "SELECT pg_catalog.pg_total_relation_size(c), pg_catalog.pg_table_size(c),"
            " pg_catalog.pg_indexes_size(c) FROM (SELECT %s::regclass AS c) AS x",
            (table,)).fetchone() or (0, 0, 0)
        per_index = dict(conn.execute(
            "SELECT c.relname::text, pg_catalog.pg_relation_size(i.indexrelid)"
            " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass ORDER BY 2 DESC, 1", (table,)).fetchall())
        sizes[label] = {"total_bytes": total, "table_bytes": heap_toast,
                        "indexes_bytes": indexes, "per_index_bytes": per_index}
    return sizes


def _search_session(conn: psycopg.Connection[Any], settings: Settings,
                    server: Server) -> dict[str, str]:
    """The search settings the stack gives its app role, set for this session."""
    method = settings.vector_index.method
    applied: dict[str, str] = {}
    if method == "hnsw":
        applied["hnsw.ef_search"] = str(settings.hnsw_ef_search)
    scan = settings.iterative_scan
    if (method in ("hnsw", "ivfflat") and scan != "off"
            and server.pgvector_version >= ITERATIVE_SCAN_PGVECTOR):
        applied[f"{method}.iterative_scan"] = scan
    for name, value in applied.items():
        _set(conn, name, value)
    return applied


# --- measurements ---------------------------------------------------------------------------

Params = Sequence[Any]
Rows = list[tuple[Any, ...]]


def _runs(conn: psycopg.Connection[Any], statement: str,
          params: Sequence[Params]) -> tuple[list[float], list[Rows]]:
    """Client-observed latency (ms) of execute + fetch, one statement per run."""
    latencies: list[float] = []
    results: list[Rows] = []
    with conn.cursor() as cur:
        for values in params:
            started = time.perf_counter()
            cur.execute(statement, values)
            rows = cur.fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
            results.append(rows)
    return latencies, results


def _warm_then_time(conn: psycopg.Connection[Any], statement: str,
                    params: Sequence[Params]) -> tuple[list[float], list[Rows]]:
    _runs(conn, statement, params[:WARMUP])
    return _runs(conn, statement, params[WARMUP:])


def _percentile(ordered: Sequence[float], p: float) -> float:
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summary(latencies: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {"count": len(ordered), "mean_ms": round(sum(ordered) / len(ordered), 3),
            "p50_ms": round(_percentile(ordered, 50), 3),
            "p95_ms": round(_percentile(ordered, 95), 3),
            "p99_ms": round(_percentile(ordered, 99), 3),
            "min_ms": round(ordered[0], 3), "max_ms": round(ordered[-1], 3)}


def _search_sql(n: Names, user_scoped: bool) -> str:
    # mem0's statement (contract 3 and 8): the filter key and the limit are bound too.
    where = " WHERE payload->>%s = %s" if user_scoped else ""
    return (f"SELECT id, vector {n.op('<=>')} %s::{n.vector} AS distance, payload"
            f" FROM {n.memories}{where} ORDER BY distance LIMIT %s")


def _search_params(query: tuple[str, list[float]], user_scoped: bool) -> Params:
    user_id, vector = query
    return (vector, "user_id", user_id, TOP_K) if user_scoped else (vector, TOP_K)


@contextmanager
def _exact_plan(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A transaction whose plans cannot use an index: a sequential scan, exact distances."""
    with conn.transaction():
        for name in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan", "jit"):
            _set(conn, name, "off", local=True)
        yield


def _exact(conn: psycopg.Connection[Any], statement: str, params: Params) -> Rows:
    with _exact_plan(conn):
        # Not prepared: a cached generic plan ignores planner settings changed after it.
        return conn.execute(statement, params, prepare=False).fetchall()


def _recall(found: Rows, exact: Rows) -> float:
    truth = {row[0] for row in exact}
    return len(truth & {row[0] for row in found}) / len(truth) if truth else 1.0


def _sample(conn: psycopg.Connection[Any], statement: str, params: Params,
            count: int) -> Rows:
    """`count` rows of a statement that ends in LIMIT %s; again when the table has fewer."""
    rows: Rows = []
    while len(rows) < count:
        rows += conn.execute(statement, (*params, count - len(rows))).fetchall()
    return rows


def _query_vectors(conn: psycopg.Connection[Any], n: Names,
                   count: int) -> list[tuple[str, list[float]]]:
    rows = _sample(
        conn,
        f"SELECT m.payload ->> 'user_id', {n.obj('bench_unit')}(m.vector {n.op('+')}"
        f" {n.obj('bench_direction')}(%s::integer, %s::double precision))::text"
        f" FROM (SELECT payload, vector FROM {n.memories}"
        " ORDER BY pg_catalog.random() LIMIT %s::bigint) AS m",
        (n.settings.dimensions, math.sqrt(QUERY_NOISE_SHARE)), count)
    return [(user_id, _parse_vector(vector)) for user_id, vector in rows]


def _measure_search(conn: psycopg.Connection[Any], n: Names,
                    queries: Sequence[tuple[str, list[float]]],
                    user_scoped: bool) -> dict[str, Any]:
    statement = _search_sql(n, user_scoped)
    params = [_search_params(q, user_scoped) for q in queries]
    latencies, found = _warm_then_time(conn, statement, params)
    exact = [_exact(conn, statement, p) for p in params[WARMUP:]]
    recalls = [_recall(f, e) for f, e in zip(found, exact, strict=True)]
    short = sum(len(f) < len(e) for f, e in zip(found, exact, strict=True))
    return {**_summary(latencies),
            "recall_at_10_mean": round(sum(recalls) / len(recalls), 4),
            "recall_at_10_min": round(min(recalls), 4),
            "queries_recall_below_half": sum(r < 0.5 for r in recalls),
            "rows_returned_mean": round(sum(len(f) for f in found) / len(found), 2),
            "short_results": short}


def _random_ids(conn: psycopg.Connection[Any], n: Names, count: int) -> list[str]:
    rows = _sample(conn, f"SELECT id::text FROM {n.memories} ORDER BY pg_catalog.random()"
                         " LIMIT %s::bigint", (), count)
    return [row[0] for row in rows]


def _measure_get(conn: psycopg.Connection[Any], n: Names, ids: Sequence[str]) -> dict[str, Any]:
    latencies, _ = _warm_then_time(conn, f"SELECT id, payload FROM {n.memories} WHERE id = %s",
                                   [(i,) for i in ids])
    return _summary(latencies)


def _measure_traverse(conn: psycopg.Connection[Any], n: Names,
                      ids: Sequence[str]) -> dict[str, Any]:
    statement = f"SELECT * FROM {n.obj(NEIGHBOURS_FUNCTION)}(%s, 2)"
    latencies, found = _warm_then_time(conn, statement, [(i,) for i in ids])
    return {**_summary(latencies),
            "neighbours_mean": round(sum(len(f) for f in found) / len(found), 2)}


def _measure_insert(conn: psycopg.Connection[Any], n: Names,
                    rows: Sequence[Mem0Row]) -> dict[str, Any]:
    # mem0's INSERT, one transaction per memory; the float list reaches vector(N) through
    # pgvector's assignment cast, as mem0's does. Indexes and the history trigger are in place.
    statement = f"INSERT INTO {n.memories} (id, vector, payload) VALUES (%s, %s, %s)"
    latencies: list[float] = []
    for number, values in enumerate(rows):
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(statement, values)
        if number >= WARMUP:
            latencies.append((time.perf_counter() - started) * 1000)
    return _summary(latencies)


def _measure(conn: psycopg.Connection[Any], n: Names, server: Server, options: Options,
             inserts: Sequence[Mem0Row],
             progress: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    per_run = options.samples + WARMUP
    queries = _query_vectors(conn, n, 2 * per_run)
    metrics: dict[str, Any] = {}
    progress("measuring search_user_top10 (and its exact top 10)")
    metrics["search_user_top10"] = _measure_search(conn, n, queries[:per_run], True)
    progress("measuring search_unfiltered_top10 (and its exact top 10)")
    metrics["search_unfiltered_top10"] = _measure_search(conn, n, queries[per_run:], False)
    progress("measuring get_by_id and traverse_2hop")
    metrics["get_by_id"] = _measure_get(conn, n, _random_ids(conn, n, per_run))
    metrics["traverse_2hop"] = _measure_traverse(conn, n, _random_ids(conn, n, per_run))
    plans = _plans(conn, n, server, queries[0])
    progress("measuring insert")
    metrics["insert"] = _measure_insert(conn, n, inserts)
    return {name: metrics[name] for name in MEASUREMENTS}, plans


# --- plans ----------------------------------------------------------------------------------

_INDEX_IN_PLAN = re.compile(r"Index (?:Only )?Scan (?:Backward )?using (\S+)"
                            r"|Bitmap Index Scan on (\S+)")
_VECTOR_LITERAL = re.compile(r"'\[[^\]']*\]'")


def _indexes_in(plan: Sequence[str]) -> list[str]:
    found = (a or b for line in plan for a, b in _INDEX_IN_PLAN.findall(line))
    return sorted(set(found))


def _explain(conn: psycopg.Connection[Any], statement: str, params: Params,
             exact: bool = False) -> list[str]:
    with _exact_plan(conn) if exact else conn.transaction():
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params,
                            prepare=False).fetchall()
    # A folded query vector prints as thousands of digits.
    return [_VECTOR_LITERAL.sub("'[...]'", row[0]) for row in rows]


def _dollar(statement: str) -> str:
    numbers = itertools.count(1)
    return re.sub(r"%s", lambda _: f"${next(numbers)}", statement)


def _explain_generic(conn: psycopg.Connection[Any], statement: str,
                     params: Params) -> list[str]:
    """The plan a prepared statement switches to after five custom plans, if cheaper."""
    name = "mem0_bench_generic"
    conn.execute(f"PREPARE {name} AS {_dollar(statement)}")
    values = [_vector_text(p) if isinstance(p, list) else p for p in params]
    try:
        with conn.transaction():
            _set(conn, "plan_cache_mode", "force_generic_plan", local=True)
            rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE {}({})").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, values)))).fetchall()
    finally:
        conn.execute(f"DEALLOCATE {name}")
    return [_VECTOR_LITERAL.sub("'[...]'", row[0]) for row in rows]


def _vector_text(values: Sequence[float]) -> str:
    return "[" + ",".join(repr(v) for v in values) + "]"


def _prepared_plans(conn: psycopg.Connection[Any], server: Server,
                    statement: str) -> dict[str, int] | None:
    """How often the timed runs' prepared statement was planned generic vs custom."""
    if server.version_num < 140000:  # the counters are new in PostgreSQL 14
        return None
    row = conn.execute(
        "SELECT generic_plans, custom_plans FROM pg_catalog.pg_prepared_statements"
        " WHERE statement = %s", (_dollar(statement),)).fetchone()
    return {"generic_plans": row[0], "custom_plans": row[1]} if row else None


def _plans(conn: psycopg.Connection[Any], n: Names, server: Server,
           query: tuple[str, list[float]]) -> dict[str, Any]:
    plans: dict[str, Any] = {}
    for label, scoped in (("search_user_top10", True), ("search_unfiltered_top10", False)):
        statement, params = _search_sql(n, scoped), _search_params(query, scoped)
        custom = _explain(conn, statement, params)
        plans[label] = {"statement": statement, "custom_plan": custom,
                        "custom_plan_indexes": _indexes_in(custom),
                        "exact_plan_indexes": _indexes_in(_explain(conn, statement, params,
                                                                   exact=True)),
                        "timed_runs": _prepared_plans(conn, server, statement)}
    generic = _explain_generic(conn, _search_sql(n, True), _search_params(query, True))
    plans["search_user_top10"].update(generic_plan=generic,
                                      generic_plan_indexes=_indexes_in(generic))
    return plans


# --- report ---------------------------------------------------------------------------------


def _parameters(n: Names, server: Server, options: Options, session: dict[str, str],
                skipped: list[str]) -> dict[str, Any]:
    s, index = n.settings, n.settings.vector_index
    scan = next((v for k, v in session.items() if k.endswith(".iterative_scan")), "off")
    why = "" if scan != "off" or s.iterative_scan == "off" else \
        f" (the stack asks {s.iterative_scan}; pgvector {server.pgvector} has no iterative scans)"
    return {
        "stack": s.stack, "target": s.target, "collection": s.collection,
        "rows": options.rows, "users": options.users, "dims": s.dimensions,
        "samples": options.samples, "warmup_runs": WARMUP, "top_k": TOP_K, "seed": options.seed,
        "index": {"method": index.method, "measure": index.measure, "m": index.m,
                  "ef_construction": index.ef_construction, "lists": index.lists,
                  "reason": index.reason},
        "ef_search": s.hnsw_ef_search if index.method == "hnsw" else None,
        "iterative_scan": scan + why, "session_settings": session,
        "pgvector_version": server.pgvector, "server_version": server.version,
        "server_settings": server.settings, "data_model": DATA_MODEL,
        "scratch_schema": n.scratch, "model_kinds_skipped": skipped,
        "ground_truth": "the same statement in a transaction with enable_indexscan, "
                        "enable_bitmapscan, enable_indexonlyscan and jit off (not prepared)",
    }


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _text_header(report: dict[str, Any]) -> list[str]:
    p = report["parameters"]
    index = p["index"]
    params = f"m={index['m']} ef_construction={index['ef_construction']}" \
        if index["method"] == "hnsw" else f"lists={index['lists']}"
    server = ", ".join(f"{k}={v}" for k, v in p["server_settings"].items())
    return [
        f"mem0 bench: stack {p['stack']}, {p['rows']} memories over {p['users']} users, "
        f"{p['dims']} dims, {p['samples']} timed runs per measurement "
        f"(after {p['warmup_runs']} untimed)",
        f"server: PostgreSQL {p['server_version']}, pgvector {p['pgvector_version']}",
        f"  {server}",
        f"index: {index['method']} {params} ({index['measure']}); search session: "
        f"hnsw.ef_search={p['ef_search']}, iterative_scan={p['iterative_scan']}",
        f"data: {p['data_model']}",
        "latency: client-observed on one psycopg connection (parameter adaptation, round "
        "trip, fetch); the statement is prepared from its 6th run, as psycopg does for mem0",
        "",
    ]


def _text_build(report: dict[str, Any]) -> list[str]:
    load, build = report["load"], report["index_build"]
    slowest = max(build["per_index_s"].items(), key=lambda item: item[1], default=("-", 0))
    lines = [
        f"load:        {load['rows']} memories in {load['seconds']:.1f} s "
        f"({load['rows_per_second']:.0f} rows/s; {load['includes']})",
        f"             {load['relationships']} relationships in "
        f"{load['relationships_seconds']:.1f} s",
        f"index build: {len(build['per_index_s'])} indexes in {build['seconds']:.1f} s "
        f"(slowest {slowest[0]} {slowest[1]:.1f} s; maintenance_work_mem="
        f"{build['maintenance_work_mem']}, max_parallel_maintenance_workers="
        f"{build['max_parallel_maintenance_workers']}); vacuum analyze "
        f"{build['vacuum_analyze_s']:.1f} s",
    ]
    lines += [f"  notice: {notice}" for notice in build["notices"]]
    for table, size in report["sizes"].items():
        top = ", ".join(f"{name} {_mb(b)}" for name, b in list(size["per_index_bytes"].items())[:3])
        lines.append(f"size {table}: {_mb(size['total_bytes'])} total = table+toast "
                     f"{_mb(size['table_bytes'])} + indexes {_mb(size['indexes_bytes'])} "
                     f"({top})")
    return [*lines, ""]


def _text_metrics(report: dict[str, Any]) -> list[str]:
    lines = [f"{'measurement':<26}{'count':>6}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}"
             f"{'max':>9}  (ms)"]
    for name, m in report["metrics"].items():
        extra = ""
        if "recall_at_10_mean" in m:
            extra = (f"  recall@10 {m['recall_at_10_mean']:.4f} (min {m['recall_at_10_min']:.2f},"
                     f" {m['queries_recall_below_half']} below 0.5), rows "
                     f"{m['rows_returned_mean']:.1f}, short {m['short_results']}")
        elif "neighbours_mean" in m:
            extra = f"  neighbours {m['neighbours_mean']:.1f}"
        lines.append(f"{name:<26}{m['count']:>6}{m['mean_ms']:>9.3f}{m['p50_ms']:>9.3f}"
                     f"{m['p95_ms']:>9.3f}{m['p99_ms']:>9.3f}{m['max_ms']:>9.3f}{extra}")
    return [*lines, ""]


def _plan_counts(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "plan counts need PostgreSQL 14+"
    return f"{counts['custom_plans']} custom / {counts['generic_plans']} generic plans"


def _text_plans(report: dict[str, Any]) -> list[str]:
    user = report["plans"]["search_user_top10"]
    unfiltered = report["plans"]["search_unfiltered_top10"]
    lines = [f"user-scoped search: {user['statement']}",
             f"  indexes: custom plan {user['custom_plan_indexes'] or 'none'}, generic plan "
             f"{user['generic_plan_indexes'] or 'none'}, exact (ground truth) "
             f"{user['exact_plan_indexes'] or 'none'}; timed runs: "
             f"{_plan_counts(user['timed_runs'])}",
             "  EXPLAIN ANALYZE (custom plan, the parameters folded in):"]
    lines += [f"    {line}" for line in user["custom_plan"]]
    lines.append("  EXPLAIN ANALYZE (generic plan, which a prepared statement may switch to):")
    lines += [f"    {line}" for line in user["generic_plan"]]
    lines.append(f"unfiltered search: indexes: custom plan "
                 f"{unfiltered['custom_plan_indexes'] or 'none'}, exact "
                 f"{unfiltered['exact_plan_indexes'] or 'none'}; timed runs: "
                 f"{_plan_counts(unfiltered['timed_runs'])}")
    return lines


def render_text(report: dict[str, Any]) -> str:
    lines = [*_text_header(report), *_text_build(report), *_text_metrics(report),
             *_text_plans(report)]
    return "\n".join(lines) + "\n"
