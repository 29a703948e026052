"""`--compare mem0-default`: the same rows in the table mem0 makes for itself, timed alongside.

When mem0 2.2.1's pgvector provider finds no table it creates its own (mem0-contract.md 2;
`create_col` in mem0/vector_stores/pgvector.py): three columns, its hnsw index with
pgvector's defaults (m 16, ef_construction 64, cosine) and a GIN index for its keyword
search, nothing else: no user_id index, no trigger, no row-level security. The bench builds
exactly that in a second scratch schema `<scratch>_mem0`, copies the stack copy's rows into
it (same ids, vectors and payloads), builds the indexes after the copy (as the stack's are
built after the load), and times the same queries there as the connecting role with
pgvector's built-in settings (hnsw.ef_search 40, no iterative scan): what mem0 sees on a
database nobody prepared for it. The two are interleaved per query (stack, mem0, stack,
mem0 ...) so that noise on the machine hits both alike. The schema is dropped with the
stack copy's, whatever happens.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from components.bench.common import BenchError, Names
from components.bench.progress import Progress
from components.bench.scratch import build_indexes, table_sizes, vacuum_analyze
from components.identifiers import qualified, quote_ident
from components.settings import MAX_INDEXED_DIMENSIONS, Settings

__all__ = ["CHOICES", "MEM0_VERSION", "SUFFIX", "build_mem0_table", "check_compare",
           "compare_names", "index_ddl", "table_ddl"]

CHOICES = ("mem0-default",)
SUFFIX = "_mem0"
MEM0_VERSION = "2.2.1"


def compare_names(n: Names) -> Names:
    """The mem0 table's schema: the scratch schema's name and suffix (dropped like it)."""
    return Names(n.scratch + SUFFIX, n.settings)


def check_compare(settings: Settings) -> None:
    """mem0 creates an hnsw index, which pgvector refuses over 2000 dimensions."""
    if settings.dimensions > MAX_INDEXED_DIMENSIONS:
        raise BenchError(
            f"--compare: mem0-default is not allowed with {settings.dimensions} dimensions; "
            f"allowed: 1 to {MAX_INDEXED_DIMENSIONS} (mem0 {MEM0_VERSION} creates an hnsw "
            "index, which pgvector refuses over that)")


def table_ddl(c: Names) -> str:
    """mem0's CREATE TABLE, with pgvector's type named by schema (the session's
    search_path is empty)."""
    return (f"CREATE TABLE {c.memories} (id uuid PRIMARY KEY,"
            f" vector {c.vector}({c.settings.dimensions:d}), payload jsonb)")


def index_ddl(c: Names) -> list[tuple[str, str]]:
    """mem0's two indexes, named as it names them."""
    collection = c.settings.collection
    hnsw, text = f"{collection}_hnsw_idx", f"{collection}_text_lemmatized_idx"
    opclass = qualified(c.settings.extension_schema, "vector_cosine_ops")
    return [
        (hnsw, f"CREATE INDEX {quote_ident(hnsw)} ON {c.memories}"
               f" USING hnsw (vector {opclass})"),
        (text, f"CREATE INDEX {quote_ident(text)} ON {c.memories}"
               " USING gin (pg_catalog.to_tsvector('simple'::regconfig,"
               " payload ->> 'text_lemmatized'))"),
    ]


def build_mem0_table(conn: psycopg.Connection[Any], n: Names,
                     progress: Progress) -> dict[str, Any]:
    """mem0's table with the stack copy's rows, its indexes, statistics; what it took."""
    c = compare_names(n)
    progress(f"creating mem0's own table in {c.scratch}")
    conn.execute(f"CREATE SCHEMA {quote_ident(c.scratch)}")
    conn.execute(table_ddl(c))
    started = time.perf_counter()
    copied = conn.execute(f"INSERT INTO {c.memories} (id, vector, payload)"
                          f" SELECT id, vector, payload FROM {n.memories}").rowcount
    copy_s = round(time.perf_counter() - started, 3)
    build = build_indexes(conn, index_ddl(c), progress, "building mem0's indexes")
    build["vacuum_analyze_s"] = vacuum_analyze(conn, [c.memories])
    return {
        "against": "mem0-default",
        "schema": c.scratch,
        "table": c.memories,
        "ddl": [table_ddl(c), *(ddl for _name, ddl in index_ddl(c))],
        "made_as": f"mem0 {MEM0_VERSION}'s pgvector provider creates it (create_col): id, "
                   "vector, payload; its hnsw index with pgvector's defaults and its GIN "
                   "keyword index; no other index, trigger or row-level security",
        "rows_copied": copied, "copy_s": copy_s, "index_build": build,
        "sizes": table_sizes(conn, {c.settings.collection: c.memories}),
    }
