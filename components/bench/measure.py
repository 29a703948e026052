"""The measurements: timed runs of mem0's statements, percentiles, recall@10, and their plans.

Each measurement returns its summary for the report and its raw latencies; the latencies stay
out of the JSON document (a run of 200 samples would add a thousand numbers to it) and are
kept only for `--plot`.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from components.bench.common import TOP_K, WARMUP, Names, Options, _set
from components.bench.data import QUERY_NOISE_SHARE, Mem0Row, _parse_vector
from components.bench.progress import Progress
from components.bench.server import Server
from components.model import NEIGHBOURS_FUNCTION
from components.plans import indexes_in

MEASUREMENTS = ("insert", "search_user_top10", "search_unfiltered_top10", "get_by_id",
                "traverse_1hop", "traverse_2hop")
HOPS = (1, 2)  # memory_neighbours(id, max_depth) allows 1 or 2


# --- measurements ---------------------------------------------------------------------------

Params = Sequence[Any]
Rows = list[tuple[Any, ...]]
Latencies = list[float]  # ms, one per timed run, in run order
Tick = Callable[[], None]  # called after each run: a progress bar's step


def _no_tick() -> None:
    pass


def _runs(conn: psycopg.Connection[Any], statement: str, params: Sequence[Params],
          tick: Tick = _no_tick) -> tuple[Latencies, list[Rows]]:
    """Client-observed latency (ms) of execute + fetch, one statement per run."""
    latencies: Latencies = []
    results: list[Rows] = []
    with conn.cursor() as cur:
        for values in params:
            started = time.perf_counter()
            cur.execute(statement, values)
            rows = cur.fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
            results.append(rows)
            tick()  # outside the timed span
    return latencies, results


def _warm_then_time(conn: psycopg.Connection[Any], statement: str, params: Sequence[Params],
                    tick: Tick = _no_tick) -> tuple[Latencies, list[Rows]]:
    _runs(conn, statement, params[:WARMUP], tick)
    return _runs(conn, statement, params[WARMUP:], tick)


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
                    queries: Sequence[tuple[str, list[float]]], user_scoped: bool,
                    tick: Tick = _no_tick) -> tuple[dict[str, Any], Latencies]:
    statement = _search_sql(n, user_scoped)
    params = [_search_params(q, user_scoped) for q in queries]
    latencies, found = _warm_then_time(conn, statement, params, tick)
    exact: list[Rows] = []
    for values in params[WARMUP:]:
        exact.append(_exact(conn, statement, values))
        tick()
    recalls = [_recall(f, e) for f, e in zip(found, exact, strict=True)]
    short = sum(len(f) < len(e) for f, e in zip(found, exact, strict=True))
    return {**_summary(latencies),
            "recall_at_10_mean": round(sum(recalls) / len(recalls), 4),
            "recall_at_10_min": round(min(recalls), 4),
            "queries_recall_below_half": sum(r < 0.5 for r in recalls),
            "rows_returned_mean": round(sum(len(f) for f in found) / len(found), 2),
            "short_results": short}, latencies


def _random_ids(conn: psycopg.Connection[Any], n: Names, count: int) -> list[str]:
    rows = _sample(conn, f"SELECT id::text FROM {n.memories} ORDER BY pg_catalog.random()"
                         " LIMIT %s::bigint", (), count)
    return [row[0] for row in rows]


def _measure_get(conn: psycopg.Connection[Any], n: Names, ids: Sequence[str],
                 tick: Tick = _no_tick) -> tuple[dict[str, Any], Latencies]:
    latencies, _ = _warm_then_time(conn, f"SELECT id, payload FROM {n.memories} WHERE id = %s",
                                   [(i,) for i in ids], tick)
    return _summary(latencies), latencies


def _measure_traverse(conn: psycopg.Connection[Any], n: Names, ids: Sequence[str], hops: int,
                      tick: Tick = _no_tick) -> tuple[dict[str, Any], Latencies]:
    statement = f"SELECT * FROM {n.obj(NEIGHBOURS_FUNCTION)}(%s, {hops:d})"
    latencies, found = _warm_then_time(conn, statement, [(i,) for i in ids], tick)
    return {**_summary(latencies),
            "neighbours_mean": round(sum(len(f) for f in found) / len(found), 2)}, latencies


def _measure_insert(conn: psycopg.Connection[Any], n: Names, rows: Sequence[Mem0Row],
                    tick: Tick = _no_tick) -> tuple[dict[str, Any], Latencies]:
    # mem0's INSERT, one transaction per memory; the float list reaches vector(N) through
    # pgvector's assignment cast, as mem0's does. Indexes and the history trigger are in place.
    statement = f"INSERT INTO {n.memories} (id, vector, payload) VALUES (%s, %s, %s)"
    latencies: Latencies = []
    for number, values in enumerate(rows):
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(statement, values)
        if number >= WARMUP:
            latencies.append((time.perf_counter() - started) * 1000)
        tick()
    return _summary(latencies), latencies


def _measure(conn: psycopg.Connection[Any], n: Names, server: Server, options: Options,
             inserts: Sequence[Mem0Row], progress: Progress
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Latencies]]:
    """Metrics and raw latencies in MEASUREMENTS order, and the searches' plans."""
    per_run = options.samples + WARMUP
    queries = _query_vectors(conn, n, 2 * per_run)
    timed: dict[str, tuple[dict[str, Any], Latencies]] = {}
    for name, scoped, chosen in (("search_user_top10", True, queries[:per_run]),
                                 ("search_unfiltered_top10", False, queries[per_run:])):
        # The bar counts the ground-truth searches too: on a large table they are the slow part.
        with progress.bar(f"measuring {name} (and its exact top 10)",
                          per_run + options.samples) as bar:
            timed[name] = _measure_search(conn, n, chosen, scoped, bar.advance)
    # Ids drawn in this order so the get and 2-hop samples of a seed stay what they were
    # before the 1-hop measurement was added.
    ids = {"get_by_id": _random_ids(conn, n, per_run),
           "traverse_2hop": _random_ids(conn, n, per_run),
           "traverse_1hop": _random_ids(conn, n, per_run)}
    with progress.bar("measuring get_by_id", per_run) as bar:
        timed["get_by_id"] = _measure_get(conn, n, ids["get_by_id"], bar.advance)
    for hops in HOPS:
        name = f"traverse_{hops}hop"
        with progress.bar(f"measuring {name}", per_run) as bar:
            timed[name] = _measure_traverse(conn, n, ids[name], hops, bar.advance)
    plans = _plans(conn, n, server, queries[0])
    with progress.bar("measuring insert", len(inserts)) as bar:
        timed["insert"] = _measure_insert(conn, n, inserts, bar.advance)
    return ({name: timed[name][0] for name in MEASUREMENTS}, plans,
            {name: timed[name][1] for name in MEASUREMENTS})


# --- plans ----------------------------------------------------------------------------------

_VECTOR_LITERAL = re.compile(r"'\[[^\]']*\]'")


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
                        "custom_plan_indexes": indexes_in(custom),
                        "exact_plan_indexes": indexes_in(_explain(conn, statement, params,
                                                                   exact=True)),
                        "timed_runs": _prepared_plans(conn, server, statement)}
    generic = _explain_generic(conn, _search_sql(n, True), _search_params(query, True))
    plans["search_user_top10"].update(generic_plan=generic,
                                      generic_plan_indexes=indexes_in(generic))
    return plans
