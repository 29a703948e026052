"""Synthetic mem0 data: clustered embeddings and memories generated in the server, and loaded."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from pgvector import Vector

from components import mem0
from components.bench.common import WARMUP, Names, Options
from components.bench.progress import Progress
from components.bench.realdata import load_texts
from components.bench.users import USERS_TABLE, create_users_table, stride
from components.identifiers import quote_ident
from components.model import RELATIONSHIPS_TABLE

__all__ = ["COMMON_SHARE", "DATA_MODEL", "LOAD_BATCH", "NOISE_SHARE", "QUERY_NOISE_SHARE",
           "TOPICS", "TOPIC_SHARE", "USER_SHARE", "WORDS", "Mem0Row", "load_memories",
           "stage_inserts"]

LOAD_BATCH = 5_000  # rows per INSERT ... SELECT: bounds the per-statement trigger queue


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
    """Rows k in [lo, hi]: (k, user_id, body, at, vector). Parameters are named.

    Row k belongs to the user whose range in `bench_users` holds position
    (k * stride) mod rows: a permutation, so a user's rows are spread over the table."""
    pool, plus, mul = n.obj("bench_pool"), n.op("+"), n.op("*")
    return (
        f"SELECT r.k, w.user_id, r.body, r.at,"
        f" {n.obj('bench_unit')}(c.v {plus} t.v {plus} u.v {plus} (e.v {mul} s.v)) AS vector"
        " FROM (SELECT k,"
        "  pg_catalog.floor(pg_catalog.random() * %(topics)s::integer)::integer AS topic,"
        f"  {n.obj('bench_text')}(k, %(words)s::text[]) AS body,"
        "  pg_catalog.to_char((pg_catalog.now() - pg_catalog.random() * interval '365 days')"
        "   AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS at"
        "  FROM pg_catalog.generate_series(%(lo)s::bigint, %(hi)s::bigint) AS k) AS r"
        " CROSS JOIN LATERAL (SELECT b.user_no, b.user_id"
        f"  FROM {n.obj(USERS_TABLE)} AS b WHERE b.first_row <= pg_catalog.mod("
        "   r.k * %(stride)s::bigint, %(rows)s::bigint)"
        "  ORDER BY b.first_row DESC LIMIT 1) AS w"
        f" JOIN {pool} AS c ON c.kind = 'common' AND c.n = 0"
        f" JOIN {pool} AS t ON t.kind = 'topic' AND t.n = r.topic"
        f" JOIN {pool} AS u ON u.kind = 'user' AND u.n = w.user_no"
        f" JOIN {pool} AS e ON e.kind = 'noise' AND e.n = pg_catalog.mod(r.k, %(pool)s::bigint)"
        f" JOIN {pool} AS s ON s.kind = 'sign'"
        "  AND s.n = pg_catalog.mod(r.k / %(pool)s::bigint, %(pool)s::bigint)")


def _generator_params(options: Options, pool: int, lo: int, hi: int) -> dict[str, Any]:
    return {"topics": TOPICS, "words": list(WORDS), "pool": pool, "lo": lo, "hi": hi,
            "stride": stride(options.rows), "rows": options.rows}


def _pool_size(options: Options) -> int:
    return math.isqrt(options.rows + options.samples + WARMUP) + 1  # P*P covers every row


def load_memories(conn: psycopg.Connection[Any], n: Names, options: Options, counts: Sequence[int],
          progress: Progress) -> dict[str, Any]:
    """The memories (`counts[u]` for user u) and their relationships, timed."""
    for ddl in _helper_functions(n):
        conn.execute(ddl)
    create_users_table(conn, n, counts, options.uuid_user_ids)
    pool = _pool_size(options)
    _fill_pool(conn, n, options.users, pool)  # also the inserts' rows, on either path
    if options.embedder == "minilm":
        load = load_texts(conn, n, counts, options.uuid_user_ids, options.seed, progress)
        return {**load, **_relationships(conn, n, progress)}
    # mem0.payload()'s keys and values, built in the server for speed.
    statement = (
        f"INSERT INTO {n.memories} (id, vector, payload)"
        " SELECT pg_catalog.gen_random_uuid(), x.vector, pg_catalog.jsonb_build_object("
        "'data', x.body, 'hash', pg_catalog.md5(x.body), 'role', 'user', 'user_id', x.user_id,"
        " 'created_at', x.at, 'updated_at', x.at, 'text_lemmatized', x.body)"
        f" FROM ({_generator_sql(n)}) AS x")
    started = time.perf_counter()
    with progress.bar("loading memories", options.rows) as bar:
        for lo in range(0, options.rows, LOAD_BATCH):
            hi = min(lo + LOAD_BATCH, options.rows) - 1
            conn.execute(statement, _generator_params(options, pool, lo, hi))
            bar.advance(hi + 1 - lo)
    seconds = time.perf_counter() - started
    return {"rows": options.rows, "seconds": round(seconds, 3),
            "rows_per_second": round(options.rows / seconds, 1),
            "includes": "history trigger, primary key and relationship constraints; "
                        "no other index", **_relationships(conn, n, progress)}


def _relationships(conn: psycopg.Connection[Any], n: Names,
                   progress: Progress) -> dict[str, Any]:
    progress("loading relationships")
    started = time.perf_counter()
    edges = _load_relationships(conn, n)
    return {"relationships": edges,
            "relationships_seconds": round(time.perf_counter() - started, 3)}


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


def stage_inserts(conn: psycopg.Connection[Any], n: Names, options: Options) -> list[Mem0Row]:
    """New memories for the insert measurement, from the same generator as the load."""
    lo = options.rows
    hi = lo + options.samples + WARMUP - 1
    generator = _generator_sql(n)
    rows = conn.execute(
        f"SELECT x.user_id, x.body, x.vector::text FROM ({generator}) AS x ORDER BY x.k",
        _generator_params(options, _pool_size(options), lo, hi)).fetchall()
    return [_mem0_row(user_id, body, vector) for user_id, body, vector in rows]


def _mem0_row(user_id: str, body: str, vector: str) -> Mem0Row:
    # As mem0 2.x builds it: uuid4 id, the vector as a float list (bound as mem0 binds it),
    # the payload as JSON text.
    now = mem0.timestamp()
    return (str(uuid.uuid4()), Vector.from_text(vector).to_list(),
            mem0.payload_json(body, user_id=user_id, created_at=now, updated_at=now))
