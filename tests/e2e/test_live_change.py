"""Changes under live mem0 traffic, through the real `pulumi` CLI.

One `pulumi up` rebuilds the vector index, adds an index, changes policies and grants
while two writers and two searchers run mem0's own `Memory` as the app role: no mem0
operation fails, the vector index is valid at every sample, and no session waits for a
lock longer than the stack's lock timeout. A change that cannot be made safely (new
dimensions on a table with rows) is refused by the preflight, before any object changes;
a DDL statement that cannot get its lock within `lockTimeout` fails instead of queueing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from components.timeouts import LOCK_TIMEOUT, lock_timeout_ms
from tests.conftest import TestDatabase
from tests.support.engine import Report
from tests.support.live_change import BASE, CHANGED, COLLECTION, run_live_change
from tests.support.testbed import PgServer

pytestmark = pytest.mark.e2e

ROWS, DIMS = 2_000, 32
# Sampling every 100 ms sees a wait up to one period late; the rest is slack for a busy box.
SAMPLE_SLACK_S = 1.0
HOLD_S = 3.0


def test_a_live_up_fails_no_mem0_operation(pg_server: PgServer) -> None:
    run = run_live_change(pg_server, ROWS, DIMS, quiet=3.0)
    assert run["up_error"] is None, run["up_error"]
    changed = {name for _op, name in run["up_operations"]}
    # The up did change each kind of object the test is about.
    assert any(n.endswith("memories_vector_idx") or "hnsw" in n for n in changed), changed
    assert any("fts" in n for n in changed), changed
    assert any(n.startswith("mem0-dev-policies") for n in changed), changed
    assert any(n.startswith("mem0-dev-grants") or "grant" in n for n in changed), changed

    figures = run["figures"]
    during = figures["during"]
    assert figures["all"]["failed"] == 0, figures["errors"]
    assert during["add"]["ops"] > 0 and during["search"]["ops"] > 0, during
    assert during["samples"] > 10, during
    # The index is swapped in one transaction: every sample sees a valid vector index.
    assert figures["all"]["samples_without_valid_index"] == 0, figures["all"]
    searches = [o for o in run["result"].ops if o.kind == "search"]
    assert all(o.index_valid for o in searches)
    bound = lock_timeout_ms(LOCK_TIMEOUT) / 1000 + SAMPLE_SLACK_S  # type: ignore[operator]
    waits = figures["all"]["longest_lock_wait_ms"]
    assert all(ms / 1000 <= bound for ms in waits.values()), waits


def test_new_dimensions_on_a_table_with_rows_are_refused_before_anything_changes(
        make_stack, database: TestDatabase) -> None:
    stack = make_stack(dimensions=8, **BASE)
    stack.up().raise_for_error()
    with database.connect() as conn:
        conn.execute(f"INSERT INTO public.{COLLECTION} (id, vector, payload) VALUES "
                     "(gen_random_uuid(), array_fill(0.5, ARRAY[8])::vector, "
                     "'{\"data\": \"kept\", \"user_id\": \"u\"}')")
    before = stack.state()

    refused = make_stack(dimensions=16, **BASE).up()

    assert refused.error is not None
    assert "data_safe" in refused.error and "dimensions" in refused.error, refused.error
    assert "collection" in refused.error and "allowDataLoss" in refused.error
    # Nothing but the preflight ran: every object is as it was, the row and its vector too.
    assert {op for o in refused.operations if "preflight" not in o["urn"]
            for op in [o["op"]] if op != "same"} == set(), refused.operations
    after = stack.state()
    assert {u: r["outputs"].get("ddl") for u, r in after.items()} == \
        {u: r["outputs"].get("ddl") for u, r in before.items()}
    with database.connect() as conn:
        row = conn.execute(f"SELECT vector_dims(vector), payload->>'data' FROM "
                           f"public.{COLLECTION}").fetchall()
    assert row == [(8, "kept")]


def test_ddl_that_cannot_get_its_lock_fails_within_the_lock_timeout(
        make_stack, database: TestDatabase) -> None:
    make_stack(dimensions=8, **BASE).up().raise_for_error()
    with database.connect() as conn:
        conn.execute(f"INSERT INTO public.{COLLECTION} (id, vector, payload) SELECT "
                     "gen_random_uuid(), array_fill(0.5, ARRAY[8])::vector, "
                     "'{\"data\": \"x\", \"user_id\": \"u\"}' FROM generate_series(1, 10)")
    # A transaction holding the table, as a slow report query would, until HOLD_S after the
    # deployment's DDL starts waiting for it: longer than the stack's 500ms, shorter than
    # the default 10s, so only the setting makes the up fail.
    blocked = held_while(database, lambda: make_stack(
        dimensions=8, lockTimeout="500ms",
        **{**BASE, "vectorIndexM": CHANGED["vectorIndexM"]}).up())
    assert blocked.error is not None
    assert "lock timeout" in blocked.error, blocked.error

    # The same change with the default lock timeout waits the holder out.
    held_while(database, lambda: make_stack(
        dimensions=8, **{**BASE, "vectorIndexM": CHANGED["vectorIndexM"]}).up()
    ).raise_for_error()


def held_while(database: TestDatabase, run: Callable[[], Report]) -> Report:
    """`run()` while a transaction reads the memories table; it ends HOLD_S after another
    session first waits for a lock (or after a minute)."""
    holder = psycopg.connect(database.dsn)
    holder.execute(f"SELECT count(*) FROM public.{COLLECTION}").fetchone()

    def release() -> None:
        with database.connect() as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()").fetchone()[0]:  # type: ignore[index]
                time.sleep(0.05)
        time.sleep(HOLD_S)
        holder.rollback()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        return run()
    finally:
        releaser.join()
        holder.close()


def test_an_invalid_lock_timeout_is_refused_naming_the_setting(make_stack) -> None:
    refused = make_stack(lockTimeout="forever").up()
    assert refused.error is not None
    assert "lockTimeout: 'forever' is not allowed" in refused.error, refused.error
    assert refused.ops("create") == {}
