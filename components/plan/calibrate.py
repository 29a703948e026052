"""Measure the index build rates `components.plan.estimate` uses, on a real server:
`python -m components.plan.calibrate --dsn URL [--rows N] [--dims D]`.

Builds a scratch table `mem0_calibrate_<hex>.memories` (mem0's layout: random unit
vectors, a payload with a user id), times one build of each method as the plan's estimate
counts its work (hnsw m 16 ef_construction 64, ivfflat 100 lists, GIN jsonb_path_ops on
the payload, btree on the user id expression), prints the rates and drops the schema.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from collections.abc import Sequence

from components.connection import connect


def _timed(conn: object, statement: str) -> float:
    started = time.perf_counter()
    conn.execute(statement)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def calibrate(dsn: str, rows: int, dims: int) -> dict[str, float]:
    schema = f"mem0_calibrate_{secrets.token_hex(4)}"
    table = f"{schema}.memories"
    with connect(dsn, autocommit=True, application="mem0infra-calibrate") as conn:
        vector = conn.execute("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN"
                              " pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
                              " WHERE e.extname = 'vector'").fetchone()
        if vector is None:
            raise SystemExit("error: pgvector is not installed in this database")
        vec = f"{vector[0]}.vector"
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                    for name in ("server_version", "maintenance_work_mem",
                                 "max_parallel_maintenance_workers")}
        print("server: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY DEFAULT"
                         f" pg_catalog.gen_random_uuid(), vector {vec}({dims}), payload jsonb)")
            conn.execute(
                f"INSERT INTO {table} (vector, payload) SELECT"
                f" ARRAY(SELECT pg_catalog.random() - 0.5"
                f" FROM pg_catalog.generate_series(1, {dims}) WHERE g > 0)::{vec},"
                f" pg_catalog.jsonb_build_object('user_id', 'u' || (g % 1000),"
                f" 'data', 'memory ' || g) FROM pg_catalog.generate_series(1, {rows}) g")
            conn.execute(f"VACUUM ANALYZE {table}")
            ops = f"{vector[0]}.vector_cosine_ops"
            builds = {
                "hnsw": (f"CREATE INDEX ON {table} USING hnsw (vector {ops})"
                         " WITH (m = 16, ef_construction = 64)",
                         rows * math.log2(rows) * dims * 64),
                "ivfflat": (f"CREATE INDEX ON {table} USING ivfflat (vector {ops})"
                            " WITH (lists = 100)", rows * dims * 100),
                "gin": (f"CREATE INDEX ON {table} USING gin (payload jsonb_path_ops)", rows),
                "btree": (f"CREATE INDEX ON {table} ((payload ->> 'user_id'))", rows),
            }
            rates = {}
            for method, (statement, work) in builds.items():
                seconds = _timed(conn, statement)
                rates[method] = work / seconds
                print(f"{method:8} {rows} rows x {dims} dims: {seconds:.2f} s -> "
                      f"rate {rates[method]:.3g} work units/s")
            return rates
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.plan.calibrate",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", required=True, help="postgresql:// URL of a role that may "
                        "create a schema")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dims", type=int, default=384)
    args = parser.parse_args(argv)
    calibrate(args.dsn, args.rows, args.dims)
    return 0


if __name__ == "__main__":
    sys.exit(main())
