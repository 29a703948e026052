"""The apply lock after a deployment was killed: real sessions in real processes, SIGKILLed.

Each holder is a separate Python process that opens an apply session as the provider does
and takes the project's apply lock; the test kills its whole process group, as CI does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from components.connection import connect
from components.kinds.apply_lock import (
    APPLY_LOCK_KEY,
    ApplySession,
    apply_session_name,
    lock_holder,
    wait_for_apply_lock,
)
from components.provider import SqlObjectProvider
from tests.conftest import TestDatabase
from tests.integration.test_provider import live, props, specs

HOLDER = """
import sys, psycopg
from components.kinds.apply_lock import APPLY_LOCK_KEY, apply_session_name, \\
    check_client_connection
conn = psycopg.connect(sys.argv[1], autocommit=True, application_name=apply_session_name())
if sys.argv[2] == "watched":
    assert check_client_connection(conn)
conn.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
print(conn.info.backend_pid, flush=True)
conn.execute("SELECT pg_sleep(%s)", (float(sys.argv[3]),))
conn.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
print("finished", flush=True)
"""


@contextmanager
def holder_process(dsn: str, watched: bool, seconds: float
                   ) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A process holding the apply lock in a statement of `seconds`; yields it and its
    backend's pid once the lock is held."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-c", HOLDER, dsn,
                              "watched" if watched else "unwatched", str(seconds)],
                             stdout=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
    try:
        assert child.stdout is not None
        backend = int(child.stdout.readline())
        # Killed before its statement reached the server, the backend would see the closed
        # socket at once: wait until the statement runs.
        wait_until(lambda: statement_running(dsn, backend), timeout=10)
        yield child, backend
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def statement_running(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND "
                            "state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
                            (pid,)).fetchone() == (1,)


def backend_alive(database: TestDatabase, pid: int) -> bool:
    return bool(database.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                (pid,)))


def wait_until(condition, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_the_server_ends_a_killed_clients_statement_when_watched(
        database: TestDatabase) -> None:
    with holder_process(database.dsn, watched=True, seconds=600) as (child, backend):
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        # client_connection_check_interval (1s) cancels the statement; the lock goes with it
        wait_until(lambda: not backend_alive(database, backend), timeout=5)
    with connect(database.dsn, autocommit=True) as conn:
        assert lock_holder(conn) is None


def test_an_orphaned_apply_session_is_terminated_by_the_next_apply(
        database: TestDatabase) -> None:
    # Unwatched: a server that cannot check its clients, or a session of an older provider.
    with holder_process(database.dsn, watched=False, seconds=600) as (child, backend):
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        time.sleep(2)
        assert backend_alive(database, backend), "unwatched, the killed statement runs on"
        lines: list[str] = []
        with connect(database.dsn, autocommit=True) as conn:
            started = time.monotonic()
            wait_for_apply_lock(conn, log=lines.append)
            waited = time.monotonic() - started
            holder = lock_holder(conn)
            assert holder is not None and holder.pid == conn.info.backend_pid
        assert waited < 10
        assert not backend_alive(database, backend)
        assert len(lines) == 1 and f"backend {backend} " in lines[0], lines
        assert "whose deployment process is gone" in lines[0]


def test_a_live_apply_of_another_deployment_is_waited_for(database: TestDatabase) -> None:
    lines: list[str] = []
    with holder_process(database.dsn, watched=True, seconds=6) as (child, backend), \
            connect(database.dsn, autocommit=True) as conn:
        started = time.monotonic()
        wait_for_apply_lock(conn, log=lines.append)
        waited = time.monotonic() - started
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "finished", "its statement was not cut"
        assert child.wait() == 0
    assert waited > 4
    assert len(lines) == 1 and lines[0].startswith("waiting for the apply lock, held by "
                                                   f"backend {backend} "), lines


def test_a_holder_from_another_machine_is_never_terminated(database: TestDatabase) -> None:
    # A pid that exists nowhere, under another machine's origin: nothing here can know
    # whether its client is alive, so it is waited for.
    other = ApplySession("0123456789ab", 2**22 + 17, 1)
    assert ApplySession.parse(other.name) == other
    assert not other.client_gone()
    mine = ApplySession.parse(apply_session_name())
    assert mine is not None and not mine.client_gone()
    with psycopg.connect(database.dsn, autocommit=True, application_name=other.name) as held:
        held.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        lines: list[str] = []
        with connect(database.dsn, autocommit=True) as conn:
            waiter = threading.Thread(target=wait_for_apply_lock, args=(conn, lines.append))
            waiter.start()
            time.sleep(3)
            assert waiter.is_alive()
            assert held.execute("SELECT 1").fetchone() == (1,), "the holder was not touched"
            held.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
            waiter.join(timeout=5)
            assert not waiter.is_alive()
            assert lock_holder(conn) is not None
    assert not any("terminating" in line for line in lines), lines


def test_the_same_pid_with_another_start_time_is_gone() -> None:
    mine = ApplySession.parse(apply_session_name())
    assert mine is not None
    assert ApplySession(mine.origin, mine.pid, mine.start + 1).client_gone()
    assert ApplySession.parse("mem0infra apply") is None
    assert ApplySession.parse("mem0infra apply abc 12 x") is None


@pytest.mark.parametrize("leftover", ["final", "temporary"])
def test_an_interrupted_builds_invalid_index_is_rebuilt(database: TestDatabase,
                                                        leftover: str) -> None:
    provider = SqlObjectProvider()
    declared = specs(database, dimensions=3)
    for kind in ("extension", "table"):
        provider.create(props(database, declared[kind]))
    index = declared["index"]
    with database.connect() as conn:
        conn.execute("INSERT INTO public.memories SELECT gen_random_uuid(), "
                     "ARRAY[random(), random(), random()]::vector, '{}' "
                     "FROM generate_series(1, 200)")
        name = index.name if leftover == "final" else f"{index.name}_mem0_new"
        conn.execute(f"CREATE INDEX {name} ON public.memories (id)")
        conn.execute("UPDATE pg_index SET indisvalid = false "
                     f"WHERE indexrelid = 'public.{name}'::regclass")
    if leftover == "final":
        # A first build that was interrupted: create rebuilds it, and never adopts it.
        outs = provider.create(props(database, index)).outs
        assert outs["adopted"] is False
    else:
        outs = provider.create(props(database, index)).outs
        changed = specs(database, dimensions=3, vectorIndexM=24)["index"]
        outs = provider.update("i", outs, props(database, changed)).outs
    assert database.scalar("SELECT count(*) FROM pg_index i JOIN pg_class c "
                           "ON c.oid = i.indexrelid WHERE NOT i.indisvalid") == 0
    assert database.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'memories' "
                           "AND indexname LIKE 'memories_vector_idx%'") == 1
    assert live(database, "index", index.name) == outs["ddl"]
