"""How long an index build would take on this database now: the table's size, the index's
method and parameters, throughput constants measured on a real build, and the server's
current load.

The idle estimate is `work / RATE`, the work per method:

    hnsw      rows x log2(rows) x dims x ef_construction
    ivfflat   rows x dims x lists
    gin       rows
    btree...  rows

The rates were measured by `python -m components.plan.calibrate` (docs/plan.md gives
the run and its figures): one build of each method on a PostgreSQL 15 test cluster of this
project's 2-core build machine, pgvector 0.8, maintenance_work_mem 64MB, 2 parallel
maintenance workers. A build whose hnsw graph outgrows maintenance_work_mem is slower
than this.

Live load (`Load`) scales it: each other backend running a statement in the database
takes a share of the CPU the build needs (`LOAD_PER_BACKEND`), and rows written to the
table while the build runs must be validated too (CREATE INDEX CONCURRENTLY's second
pass), read as the table's write rate over a short sample of `pg_stat_user_tables`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from components.kinds.steps import Hazard

# Work units per second of one idle build, measured by `components.plan.calibrate` on
# PostgreSQL 15.20, pgvector 0.8, 2 cores, maintenance_work_mem 64MB, 2 parallel
# maintenance workers, 384 dimensions (docs/plan.md has the run): hnsw 20,000 rows in
# 5.62 s (graph in memory), 50,000 rows in 44.75 s (graph spilled past
# maintenance_work_mem); ivfflat 0.85 s / 1.16 s; GIN 0.04 s / 0.20 s; btree 0.02 s / 0.06 s.
HNSW_RATE = 1.25e9  # rows x log2(rows) x dims x ef_construction per second, graph in memory
HNSW_SPILLED_RATE = 4.3e8  # the same once the graph outgrows maintenance_work_mem
IVFFLAT_RATE = 1.0e9  # rows x dims x lists per second
GIN_RATE = 3.0e5  # rows per second (mem0's jsonb_path_ops payload index)
BTREE_RATE = 8.0e5  # rows per second
# The share of the build's CPU each other active backend takes: a whole one, on a server
# of few cores. Measured (docs/plan.md): a 20,000-row hnsw rebuild, 6 s idle, under 2
# writers and 2 busy sessions took 80.0 s where half a backend each (and the writes
# counted over the slowed time only) estimated 19 s; with this model, 69.1 s against 32 s.
LOAD_PER_BACKEND = 1.0
# Past this share of the table written during the build, the estimate is capped: writes
# then nearly outpace CREATE INDEX CONCURRENTLY's validation.
MAX_WRITTEN_SHARE = 0.9
SAMPLE_SECONDS = 1.0  # how long the table's write rate is sampled


@dataclass(frozen=True)
class Load:
    """What else the database is doing now."""

    active_backends: int  # other backends running a statement in this database
    writes_per_second: float  # rows inserted, updated or deleted in the table
    oldest_transaction_seconds: float  # CIC waits for every older transaction to end

    @property
    def factor(self) -> float:
        return 1.0 + LOAD_PER_BACKEND * self.active_backends


@dataclass(frozen=True)
class TableSize:
    rows: int
    dims: int  # the largest vector/halfvec column's dimensions (0: none)
    maintenance_work_mem: int = 64 * 1024 * 1024  # bytes, the session's (the build's)


def table_size(cur: psycopg.Cursor[Any], table: str) -> TableSize:
    """Rows from the planner's statistics (reltuples), counted when the table was never
    analysed; the dimensions from the vector columns' type modifiers."""
    row = cur.execute("SELECT c.reltuples::bigint FROM pg_catalog.pg_class c"
                      " WHERE c.oid = pg_catalog.to_regclass(%s)", (table,)).fetchone()
    rows = int(row[0]) if row else 0
    if rows < 0:  # never vacuumed or analysed
        with cur.connection.transaction():
            cur.execute("SET LOCAL row_security = off")
            rows = int(cur.execute(f"SELECT count(*) FROM {table}")  # type: ignore[index]
                       .fetchone()[0])
    dims = cur.execute(
        "SELECT COALESCE(max(a.atttypmod), 0) FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = pg_catalog.to_regclass(%s) AND a.attnum > 0"
        " AND NOT a.attisdropped AND t.typname IN ('vector', 'halfvec')", (table,)).fetchone()
    memory = cur.execute("SELECT setting::bigint * 1024 FROM pg_catalog.pg_settings"
                         " WHERE name = 'maintenance_work_mem'").fetchone()
    return TableSize(rows, int(dims[0]) if dims else 0,
                     int(memory[0]) if memory else 64 * 1024 * 1024)


def hnsw_graph_bytes(rows: int, dims: int, m: int) -> int:
    """About what pgvector's in-memory hnsw graph takes: each element's vector (4 bytes a
    dimension), its layer-0 neighbours (2m) at 8 bytes each, and some overhead."""
    return rows * (4 * dims + 16 * m + 64)


def _writes(cur: psycopg.Cursor[Any], table: str) -> int:
    row = cur.execute("SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_catalog.pg_stat_user_tables"
                      " WHERE relid = pg_catalog.to_regclass(%s)", (table,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def read_load(conn: psycopg.Connection, table: str,
              sample_seconds: float = SAMPLE_SECONDS) -> Load:
    """Sample the database's activity now (autocommit reads: statistics are cached per
    transaction, so each sample needs its own)."""
    with conn.cursor() as cur:
        before = _writes(cur, table)
        time.sleep(sample_seconds)
        conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
        after = _writes(cur, table)
        active, oldest = cur.execute(
            "SELECT count(*) FILTER (WHERE state <> 'idle'),"
            " COALESCE(EXTRACT(epoch FROM now() - min(xact_start)), 0)"
            " FROM pg_catalog.pg_stat_activity"
            " WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
            " AND backend_type = 'client backend'").fetchone()  # type: ignore[misc]
    return Load(int(active), max(0, after - before) / sample_seconds, float(oldest))


def _parameter(ddl: str, name: str, default: int) -> int:
    found = re.search(rf"\b{name}='?(\d+)'?", ddl)
    return int(found.group(1)) if found else default


def idle_seconds(method: str, size: TableSize, ddl: str) -> float:
    """The build's time on an idle server, from the measured rates."""
    rows = max(size.rows, 1)
    if method == "hnsw":
        ef = _parameter(ddl, "ef_construction", 64)  # pgvector's defaults
        m = _parameter(ddl, "m", 16)
        spilled = hnsw_graph_bytes(rows, size.dims, m) > size.maintenance_work_mem
        rate = HNSW_SPILLED_RATE if spilled else HNSW_RATE
        return rows * math.log2(max(rows, 2)) * max(size.dims, 1) * ef / rate
    if method == "ivfflat":
        lists = _parameter(ddl, "lists", 100)
        return rows * max(size.dims, 1) * lists / IVFFLAT_RATE
    return rows / (GIN_RATE if method == "gin" else BTREE_RATE)


def loaded_seconds(idle: float, size: TableSize, load: Load) -> float:
    """The idle time slowed by the other backends (S), plus validating the rows written
    during the whole build at the same per-row cost: T = S x (1 + writes/s x T / rows),
    so T = S / (1 - writes/s x S / rows), capped where writes nearly outpace the build."""
    slowed = idle * load.factor
    written_share = min(load.writes_per_second * slowed / max(size.rows, 1),
                        MAX_WRITTEN_SHARE)
    return slowed / (1.0 - written_share)


def duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"about {seconds:.0f} s"
    if seconds < 7200:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def estimate(cur: psycopg.Cursor[Any], hazard: Hazard, ddl: str, load: Load) -> Hazard:
    """The INDEX_BUILD hazard with its rows, estimated seconds and the load in words."""
    size = table_size(cur, hazard.on)
    idle = idle_seconds(hazard.method, size, ddl)
    seconds = loaded_seconds(idle, size, load)
    dims = f" x {size.dims} dimensions" if hazard.method in ("hnsw", "ivfflat") else ""
    words = (f"; estimated {duration(seconds)} for {size.rows} rows{dims} "
             f"({duration(idle)} idle; now {load.active_backends} other active backends, "
             f"{load.writes_per_second:.0f} writes/s on the table)")
    if load.oldest_transaction_seconds >= 1:
        words += (f"; it first waits for every transaction older than it to end (the oldest "
                  f"has run {load.oldest_transaction_seconds:.0f} s)")
    return replace(hazard, message=hazard.message + words, rows=size.rows,
                   seconds=round(seconds, 3))

