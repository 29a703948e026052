"""Plans: EXPLAIN ANALYZE of mem0's statements (custom and generic), and what they do in words.

A plan is kept as EXPLAIN's text lines (a folded query vector shortened to '[...]') with the
indexes it scans, and summed up in one line a reader can compare across size classes, for
example `hnsw memories_vector_idx (ef_search 100, iterative scan relaxed_order), filter
removed 312 rows` for a large user and `btree memories_user_id_idx + sort` for a small one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector import Vector
from psycopg import sql

from components.bench.common import set_setting
from components.bench.server import Server

__all__ = ["Params", "describe", "exact_plan", "explain_analyze", "explain_generic",
           "index_methods", "prepared_plans", "used_plan"]

Params = Sequence[Any]

_VECTOR_LITERAL = re.compile(r"'\[[^\]']*\]'")
# A scan node and the index it reads, if any: "Index Scan using x on t", "Seq Scan on t".
_SCAN = re.compile(r"^\s*(?:->\s+)?((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan"
                   r"|Bitmap Index Scan|Bitmap Heap Scan))(?: Backward)?"
                   r"(?: using (\S+)| on (\S+))?")
_SORT = re.compile(r"^\s*(?:->\s+)?(?:Incremental )?Sort\s+\(")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


@contextmanager
def exact_plan(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A transaction whose plans cannot use an index: a sequential scan, exact distances."""
    with conn.transaction():
        for name in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan", "jit"):
            set_setting(conn, name, "off", local=True)
        yield


def _shorten(rows: Sequence[tuple[Any, ...]]) -> list[str]:
    # A folded query vector prints as thousands of digits.
    return [_VECTOR_LITERAL.sub("'[...]'", row[0]) for row in rows]


def explain_analyze(conn: psycopg.Connection[Any], statement: str, params: Params,
             exact: bool = False) -> list[str]:
    """The custom plan: EXPLAIN (ANALYZE, BUFFERS) with the parameters folded in."""
    with exact_plan(conn) if exact else conn.transaction():
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params,
                            prepare=False).fetchall()
    return _shorten(rows)


def _dollar(statement: str) -> str:
    numbers = itertools.count(1)
    return re.sub(r"%s", lambda _: f"${next(numbers)}", statement)


def explain_generic(conn: psycopg.Connection[Any], statement: str,
                     params: Params) -> list[str]:
    """The plan a prepared statement switches to after five custom plans, if cheaper."""
    name = "mem0_bench_generic"
    conn.execute(f"PREPARE {name} AS {_dollar(statement)}")
    # EXECUTE takes literals: a vector as pgvector's text form.
    values = [Vector(p).to_text() if isinstance(p, list) else p for p in params]
    try:
        with conn.transaction():
            set_setting(conn, "plan_cache_mode", "force_generic_plan", local=True)
            rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE {}({})").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, values)))).fetchall()
    finally:
        conn.execute(f"DEALLOCATE {name}")
    return _shorten(rows)


def prepared_plans(conn: psycopg.Connection[Any], server: Server,
                    statement: str) -> dict[str, int] | None:
    """How often the timed runs' prepared statement was planned generic vs custom."""
    if server.version_num < 140000:  # the counters are new in PostgreSQL 14
        return None
    row = conn.execute(
        "SELECT generic_plans, custom_plans FROM pg_catalog.pg_prepared_statements"
        " WHERE statement = %s", (_dollar(statement),)).fetchone()
    return {"generic_plans": row[0], "custom_plans": row[1]} if row else None


def used_plan(counts: Mapping[str, int] | None) -> str:
    """Which plan the timed runs mostly ran: generic or custom."""
    return "generic" if counts and counts["generic_plans"] > counts["custom_plans"] \
        else "custom"


# --- in words -------------------------------------------------------------------------------

def index_methods(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> dict[str, str]:
    """Index name -> access method (btree, hnsw, gin ...) of the indexes in `schemas`."""
    rows = conn.execute(
        "SELECT c.relname::text, a.amname::text FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_am a ON a.oid = c.relam"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE c.relkind = 'i' AND s.nspname = ANY(%s::text[])", (list(schemas),)).fetchall()
    return dict(rows)


def describe(plan: Sequence[str], methods: Mapping[str, str],
             settings: Mapping[str, str]) -> str:
    """One line: each scan (by index method and name), a sort, what a filter removed.

    `settings` are the session's (hnsw.ef_search, hnsw.iterative_scan): an hnsw scan's
    result depends on them, so they are named with it."""
    parts: list[str] = []
    for line in plan:
        match = _SCAN.match(line)
        if not match:
            continue
        kind, using, on = match.groups()
        index = using or (on if kind.endswith("Bitmap Index Scan") else None)
        if index is None:
            if kind.endswith("Seq Scan"):
                parts.append(kind.lower())
            continue  # a bitmap heap scan: its bitmap index scan names the index
        method = methods.get(index.strip('"'), "index")
        words = f"{method} {index}"
        if method in ("hnsw", "ivfflat"):
            knobs = [f"{key.split('.')[1]} {value}"
                     for key, value in sorted(settings.items())
                     if key.startswith(method + ".") and key.split(".")[1] in
                     ("ef_search", "iterative_scan", "probes")]
            words += f" ({', '.join(knobs)})" if knobs else ""
        parts.append(words)
    summary = " + ".join(dict.fromkeys(parts)) or "no scan"
    if any(_SORT.match(line) for line in plan):
        summary += " + sort"
    removed = sum(int(x) for line in plan for x in _REMOVED.findall(line))
    if removed:
        summary += f", filter removed {removed} rows"
    if any("InitPlan" in line for line in plan):
        summary += "; InitPlan (the policy's identity, once per statement)"
    return summary
