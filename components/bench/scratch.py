"""The scratch schema after the load: its indexes, vacuum, sizes, and dropping it (Ctrl-C safe)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from components.bench.common import APPLICATION, Names, set_setting
from components.bench.progress import Progress
from components.connection import connect
from components.identifiers import quote_ident
from components.model import HISTORY_TABLE, RELATIONSHIPS_TABLE

__all__ = ["MAINTENANCE_WORK_MEM", "build_indexes", "drop_leftover", "drop_scratch",
           "scratch_sizes", "table_sizes", "vacuum_analyze", "vacuum_scratch"]

MAINTENANCE_WORK_MEM = "1GB"  # pgvector builds hnsw much faster while the graph fits in it


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


def drop_leftover(conn: psycopg.Connection[Any], dsn: str, what: str,
                  drop: Callable[[psycopg.Connection[Any]], None], manual: str) -> None:
    """Drop something the bench made (also after Ctrl-C): on its own session, else on a
    fresh one; when both fail, say how to drop it by hand."""
    with _sigint_ignored():
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()  # also ends a SET LOCAL ROLE
            drop(conn)
            return
        except psycopg.Error:
            pass  # the session is gone (server restart, broken link): try a new one
        try:
            with connect(dsn, autocommit=True, application=APPLICATION) as fresh:
                drop(fresh)
        except psycopg.Error as exc:
            print(f"warning: could not drop {what} ({exc}); drop it with: {manual}",
                  file=sys.stderr)


def drop_scratch(conn: psycopg.Connection[Any], dsn: str, scratch: str) -> None:
    statement = f"DROP SCHEMA IF EXISTS {quote_ident(scratch)} CASCADE"

    def drop(c: psycopg.Connection[Any]) -> None:
        c.execute(statement)

    drop_leftover(conn, dsn, f"the scratch schema {scratch}", drop, f"{statement};")


def build_indexes(conn: psycopg.Connection[Any], indexes: Sequence[tuple[str, str]],
                   progress: Progress, label: str = "building indexes") -> dict[str, Any]:
    """Build each (name, DDL), timed one by one."""
    workers = conn.execute(
        "SELECT pg_catalog.current_setting('max_parallel_workers')").fetchone()
    set_setting(conn, "maintenance_work_mem", MAINTENANCE_WORK_MEM)
    set_setting(conn, "max_parallel_maintenance_workers", str(workers[0] if workers else 0))
    notices: list[str] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        # pgvector says so when the hnsw graph outgrows maintenance_work_mem.
        notices.append(diagnostic.message_primary or "")

    conn.add_notice_handler(keep)
    timings: dict[str, float] = {}
    # One step per index: a CREATE INDEX reports no progress to its own session (the vector
    # index, the slow one, is a single statement).
    try:
        with progress.bar(label, len(indexes)) as bar:
            for name, ddl in indexes:
                bar.relabel(f"{label} ({name})")
                started = time.perf_counter()
                conn.execute(ddl)
                timings[name] = round(time.perf_counter() - started, 3)
                bar.advance()
            bar.relabel(label)
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


def vacuum_scratch(conn: psycopg.Connection[Any], n: Names) -> float:
    return vacuum_analyze(conn, _tables(n).values())


def vacuum_analyze(conn: psycopg.Connection[Any], tables: Iterable[str]) -> float:
    """VACUUM (ANALYZE) each table; the seconds it took."""
    # Statistics as autovacuum would have them on a live table; also sets hint bits, so the
    # first timed searches do not pay for them.
    started = time.perf_counter()
    for table in tables:
        conn.execute(f"VACUUM (ANALYZE) {table}")
    return round(time.perf_counter() - started, 3)


def scratch_sizes(conn: psycopg.Connection[Any], n: Names) -> dict[str, Any]:
    return table_sizes(conn, _tables(n))


def table_sizes(conn: psycopg.Connection[Any], tables: dict[str, str]) -> dict[str, Any]:
    """Bytes of each table (label -> qualified name): total, heap + toast, indexes."""
    sizes: dict[str, Any] = {}
    for label, table in tables.items():
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
