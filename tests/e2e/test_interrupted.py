"""`pulumi up` killed with SIGKILL (its process group and every plugin below it, which
Pulumi starts in process groups of their own),
then the README's steps (`pulumi cancel`, `pulumi refresh --clear-pending-creates`,
`pulumi up`): the stack converges with nothing lost and no INVALID index left.

Two moments: in the middle of a vector index rebuild on a table with rows (the build of
`..._mem0_new`), and in the middle of the first `up` once some tables exist but not all.
Each test prints its figures (`FIGURE ...` lines, `pytest -s` shows them):
docs/interrupted.md quotes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components.kinds.base import Kind
from components.model import build_model
from tests.conftest import TestDatabase, stack_settings
from tests.support.engine import PulumiStack

pytestmark = pytest.mark.e2e

DIMS = 384
ROWS = 20_000
BUILD = "memories_vector_idx_mem0_new"
KILL_WAIT = 600  # seconds to wait for the moment to kill


def figure(name: str, value: object) -> None:
    print(f"FIGURE {name}: {value}", flush=True)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: Pulumi starts each plugin in a process group of its own."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_all(process: subprocess.Popen[bytes]) -> float:
    """SIGKILL `pulumi up`'s process group and every plugin below it (a runner or a
    container that dies takes them all); the moment it happened."""
    below = descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    return time.monotonic()


def poll(conn: psycopg.Connection, query: str, process: subprocess.Popen[bytes],
         output: Path) -> Any:
    """The first non-null row of `query`, polled while `up` runs."""
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
        if row is not None and row[0] is not None:
            return row
        assert process.poll() is None, f"up ended first:\n{output.read_text()[-3000:]}"
        time.sleep(0.02)
    raise AssertionError(f"the moment never came:\n{output.read_text()[-3000:]}")


def invalid_indexes(database: TestDatabase) -> list[str]:
    with database.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE NOT i.indisvalid").fetchall()]


def recover(stack: PulumiStack, killed_at: float, database: TestDatabase) -> dict[str, float]:
    """The README's steps after an interrupted deployment, each timed; the last `up` must
    converge."""
    times: dict[str, float] = {}
    # A kill between the checkpoint and its attributes file leaves the latter empty.
    figure("empty .attrs files removed", [p.name for p in stack.remove_empty_attributes()])
    # Without `pulumi cancel` the file backend refuses: the killed up's lock file stays.
    locked = stack.up()
    assert locked.error and "the stack is currently locked" in locked.output, locked.output
    started = time.monotonic()
    stack.cancel()
    times["cancel_s"] = time.monotonic() - started
    figure("pending operations after the kill", stack.pending_operations())
    started = time.monotonic()
    stack.clear_pending_creates().raise_for_error()
    times["refresh_clear_pending_creates_s"] = time.monotonic() - started
    assert stack.pending_operations() == []
    started = time.monotonic()
    up = stack.up().raise_for_error()
    times["up_s"] = time.monotonic() - started
    times["kill_to_converged_s"] = time.monotonic() - killed_at
    assert "waiting for the apply lock" not in up.output, up.output
    assert stack.refresh().raise_for_error().drift == []
    assert invalid_indexes(database) == []
    return times


def load_rows(database: TestDatabase, rows: int) -> None:
    with database.connect() as conn:
        conn.execute(
            "INSERT INTO public.memories (id, vector, payload)"
            " SELECT gen_random_uuid(),"
            "  (SELECT array_agg(random())::real[] FROM generate_series(1, %s) WHERE g > 0)"
            "  ::public.vector, jsonb_build_object('user_id', 'u' || g %% 100, 'data', 'm' || g)"
            " FROM generate_series(1, %s) g", (DIMS, rows))


def test_up_killed_in_an_index_rebuild_recovers(make_stack, database: TestDatabase,
                                                tmp_path: Path) -> None:
    settings = {"dimensions": DIMS, "vectorIndexMethod": "hnsw", "vectorIndexM": 16,
                "vectorIndexEfConstruction": 64}
    make_stack(**settings).up().raise_for_error()
    load_rows(database, ROWS)

    stack = make_stack(**{**settings, "vectorIndexM": 24})
    output = tmp_path / "killed-up.txt"
    process = stack.start_up(output)
    with database.connect() as conn:
        backend, phase = poll(conn, (
            "SELECT p.pid, p.phase FROM pg_stat_progress_create_index p"
            " JOIN pg_class c ON c.oid = p.index_relid"
            f" WHERE c.relname = '{BUILD}' AND p.phase LIKE 'building index%'"), process, output)
        killed_at = kill_all(process)
        figure("killed in phase", phase)
        # The provider's session asked the server to watch its client: the build ends.
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                           (backend,)).fetchone():
            assert time.monotonic() - killed_at < 60, "the killed build runs on"
            time.sleep(0.02)
        figure("killed build's backend ended after (s)", round(time.monotonic() - killed_at, 2))
    figure("indexes after kill", database.scalar(
        "SELECT string_agg(c.relname || ' ' || i.indisvalid, ', ') FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'memories_vector%'"))
    assert invalid_indexes(database) == [BUILD], "the cancelled build left its INVALID index"

    times = recover(stack, killed_at, database)
    for name, seconds in times.items():
        figure(name, round(seconds, 1))
    with database.connect() as conn:
        definition = conn.execute("SELECT pg_get_indexdef('public.memories_vector_idx'"
                                  "::regclass)").fetchone()[0]  # type: ignore[index]
        assert "m='24'" in definition, definition
        assert conn.execute("SELECT count(*) FROM public.memories").fetchone() == (ROWS,)
        assert conn.execute("SELECT to_regclass(%s)", (f"public.{BUILD}",)).fetchone() == (None,)


def declared_tables(database: TestDatabase) -> set[tuple[str, str]]:
    return {(s.schema, s.name) for s in build_model(stack_settings(database, dimensions=8))
            if s.kind == Kind.TABLE}


def test_first_up_killed_while_creating_tables_recovers(make_stack, database: TestDatabase,
                                                        tmp_path: Path) -> None:
    tables = declared_tables(database)
    listed = ", ".join(f"('{schema}', '{name}')" for schema, name in sorted(tables))
    stack = make_stack(dimensions=8)
    output = tmp_path / "killed-up.txt"
    process = stack.start_up(output)
    with database.connect() as conn:
        (made,) = poll(conn, (
            "SELECT NULLIF(count(*), 0) FROM pg_tables"
            f" WHERE (schemaname, tablename) IN ({listed}) HAVING count(*) < {len(tables)}"),
            process, output)
        killed_at = kill_all(process)
        present = {r[0] for r in conn.execute(
            f"SELECT tablename::text FROM pg_tables WHERE (schemaname, tablename) IN ({listed})"
        ).fetchall()}
    figure("tables when killed", f"{made} of {len(tables)}")
    time.sleep(2)
    with database.connect() as conn:
        after = conn.execute("SELECT count(*) FROM pg_tables"
                             f" WHERE (schemaname, tablename) IN ({listed})").fetchone()[0]
    figure("tables 2 s after the kill", after)
    assert after == made, "something went on creating after the kill"
    with database.connect() as conn:
        # A memory written while the stack is half made, if mem0's table is there already.
        kept = 0
        if conn.execute("SELECT to_regclass('public.memories')").fetchone() != (None,):
            conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES"
                         " (gen_random_uuid(), '[1,2,3,4,5,6,7,8]', '{\"user_id\": \"alice\"}')")
            kept = 1

    times = recover(stack, killed_at, database)
    for name, seconds in times.items():
        figure(name, round(seconds, 1))
    state = stack.state()
    sql_objects = [r for r in state.values() if r["type"].endswith("mem0:SqlObject")]
    adopted = sorted(r["outputs"]["name"] for r in sql_objects if r["outputs"].get("adopted")
                     and r["outputs"]["kind"] == Kind.TABLE)
    figure("tables adopted by the recovering up", adopted)
    # Only what the killed run made can be there to adopt; nothing else is taken over.
    assert set(adopted) <= present
    with database.connect() as conn:
        live = {tuple(r) for r in conn.execute(
            "SELECT schemaname::text, tablename::text FROM pg_tables").fetchall()}
        assert tables <= live
        assert conn.execute("SELECT count(*) FROM public.memories").fetchone() == (kept,)
    # Every declared object is in the state exactly once.
    urns = [r["urn"] for r in sql_objects]
    assert len(urns) == len(set(urns))
