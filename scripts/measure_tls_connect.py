"""Measure what TLS costs a fresh connection: connect, `SELECT 1`, close.

Starts two throwaway clusters with the test bed's helpers (tests/support/testbed.py): one
serving TLS (a certificate signed by a CA made at start), one with ssl = off. Times N
fresh connections of each kind, interleaved round by round so that load on the machine
falls on every kind alike: sslmode=require and verify-full over TCP to the TLS cluster,
sslmode=disable over TCP to the plain one, and the TLS cluster's Unix socket (no TLS).
Then, on one open connection of each kind, QUERIES round trips of `SELECT 1` (what TLS
costs a query once connected). Prints p50, p95 and mean in ms; no asserts.

    .venv/bin/python scripts/measure_tls_connect.py [--connections 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' test bed

from tests.support.testbed import start_local_cluster

WARM_UP = 10


def _once(url: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchone()
    return (time.perf_counter() - started) * 1000


def _print(times: dict[str, list[float]]) -> None:
    for name, values in times.items():
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        print(f"  {name:<32} p50 {statistics.median(values):6.3f} ms   p95 {p95:6.3f} ms"
              f"   mean {statistics.mean(values):6.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    tls = start_local_cluster(tls=True)
    plain = start_local_cluster(tls=False)
    try:
        server = tls.server
        port = conninfo_to_dict(server.admin_dsn)["port"]
        kinds = {
            "TCP, sslmode=require": server.admin_dsn + "?sslmode=require",
            "TCP, sslmode=verify-full": server.admin_dsn.replace("127.0.0.1", "localhost")
            + f"?sslmode=verify-full&sslrootcert={server.root_cert}",
            "TCP, sslmode=disable (ssl=off)": plain.server.admin_dsn + "?sslmode=disable",
            "Unix socket (no TLS)": f"postgresql://postgres@/postgres?host={tls.root}"
                                    f"&port={port}",
        }
        for url in kinds.values():
            for _ in range(WARM_UP):
                _once(url)
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.connections):
            for name, url in kinds.items():
                times[name].append(_once(url))
        with psycopg.connect(kinds["TCP, sslmode=require"]) as conn:
            version, cipher = conn.execute(
                "SELECT version, cipher FROM pg_catalog.pg_stat_ssl"
                " WHERE pid = pg_catalog.pg_backend_pid()").fetchone() or ("?", "?")
        print(f"fresh connection + SELECT 1 + close, {args.connections} each, interleaved; "
              f"TLS: {version} {cipher}; libpq {psycopg.pq.version()}")
        _print(times)
        queries: dict[str, list[float]] = {name: [] for name in kinds}
        conns = {name: psycopg.connect(url, autocommit=True) for name, url in kinds.items()}
        try:
            for _ in range(args.queries):
                for name, conn in conns.items():
                    started = time.perf_counter()
                    conn.execute("SELECT 1").fetchone()
                    queries[name].append((time.perf_counter() - started) * 1000)
        finally:
            for conn in conns.values():
                conn.close()
        print(f"SELECT 1 on an open connection, {args.queries} each, interleaved")
        _print(queries)
    finally:
        tls.stop()
        plain.stop()


if __name__ == "__main__":
    main()
