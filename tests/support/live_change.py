"""One live change, measured: `pulumi up` changes a deployed stack under mem0 traffic.

`run_live_change` deploys a stack (real CLI) on a fresh database, seeds it with `rows`
memories, starts `MemoryLoad` (writers and searchers through mem0's `Memory` as the app
role), and after a quiet `before` window runs one `pulumi up` that rebuilds the vector
index with another hnsw m, adds an index (the full-text one), and changes the tenancy to
org (every memory table's policies change, and the org tables and functions get grants),
then an `after` window. It returns the load's summary per window, the up's operations
and its wall time. tests/e2e/test_live_change.py asserts on it;
scripts/measure_live_change.py prints it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.bench.load import LoadResult, MemoryLoad, seed_memories
from tests.conftest import TestDatabase, stack_config
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer, create_database, drop_database

COLLECTION = "memories"
# What the first up deploys, and what the live up changes.
BASE = {"vectorIndexMethod": "hnsw", "vectorIndexM": 16, "vectorIndexEfConstruction": 64}
CHANGED = {"vectorIndexM": 24, "ftsLanguage": "english", "tenancy": "org"}


def run_live_change(server: PgServer, rows: int, dims: int, writers: int = 2,
                    searchers: int = 2, quiet: float = 5.0, lock_timeout: str | None = None,
                    say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    name = create_database(server, "live")
    try:
        database = TestDatabase(server, name, server.dsn_for(name))
        extra = {} if lock_timeout is None else {"lockTimeout": lock_timeout}
        with tempfile.TemporaryDirectory() as tmp:
            config = stack_config(database, dimensions=dims, **BASE, **extra)
            stack = PulumiStack("dev", Path(tmp) / "state.json", config)
            say("first up")
            report = stack.up().raise_for_error()
            for done in seed_memories(database.dsn, COLLECTION, dims, rows):
                say(f"seeded {done}/{rows}")
            load = MemoryLoad(report.outputs["mem0Config"]["vector_store"], dims,
                              admin_dsn=database.dsn, table=COLLECTION, writers=writers,
                              searchers=searchers)
            say("load running")
            with load:
                t0 = time.time()
                time.sleep(quiet)
                t1 = time.time()
                say("live up")
                stack.config = {**config, **CHANGED}
                started = time.perf_counter()
                try:
                    changed = stack.up()
                    up_error = changed.error
                    operations = changed.operations
                except subprocess.TimeoutExpired as exc:  # the load's figures still count
                    up_error, operations = f"pulumi up timed out after {exc.timeout} s", []
                up_seconds = time.perf_counter() - started
                t2 = time.time()
                time.sleep(quiet)
                t3 = time.time()
            result: LoadResult = load.result
            return {
                "rows": rows, "dims": dims, "writers": writers, "searchers": searchers,
                "up_seconds": round(up_seconds, 1), "up_error": up_error,
                "up_operations": sorted((o["op"], o["urn"].split("::")[-1])
                                        for o in operations if o["op"] != "same"),
                "figures": result.summary([("before", t0, t1), ("during", t1, t2),
                                           ("after", t2, t3)]),
                "result": result,
            }
    finally:
        drop_database(server, name)
