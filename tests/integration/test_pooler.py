"""The pooler check against a real PgBouncer 1.18 in front of the real test PostgreSQL.

One stack is deployed for the module (8 dimensions), with a PgBouncer in transaction mode
and one in session mode in front of the test server; the pooler URL connects as the
stack's app role, as the application does. mem0's own `Memory` runs through the
transaction pooler with prepared statements off, the check passes there and reports the
mode, fails with the prepared-statement fix when they are on (also when a leftover
prepared statement of the same name hides the breakage), passes in session mode and
directly with them on, names poolerUrl without its password when nothing listens, catches
a search_path that does not resolve mem0's names, and never leaves a row or a connection
behind.
"""

from __future__ import annotations

import importlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from components.checks.core import FAIL, PASS, SKIP, Context, Outcome
from components.checks.pooler import check_pooler, redacted
from components.connection import connect
from components.model import build_model
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for, stack_settings
from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

DIMS = 8
STACK = "dev"

# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK,
                        dimensions=DIMS) as database:
        yield database


def _pgbouncer(pg_server: PgServer, database: TestDatabase, pool_mode: str
               ) -> Iterator[PgBouncer]:
    with running_pgbouncer(*_server_address(pg_server), _users(pg_server, database),
                           pool_mode, admin_user=_admin_user(pg_server)) as bouncer:
        yield bouncer


def _server_address(pg_server: PgServer) -> tuple[str, str]:
    server = conninfo_to_dict(pg_server.admin_dsn)
    return str(server.get("host") or "127.0.0.1"), str(server.get("port") or 5432)


def _admin_user(pg_server: PgServer) -> str:
    return str(conninfo_to_dict(pg_server.admin_dsn).get("user") or "postgres")


def _users(pg_server: PgServer, database: TestDatabase) -> dict[str, str | None]:
    """The app role, and the server's admin (for the admin console)."""
    admin_password = conninfo_to_dict(pg_server.admin_dsn).get("password")
    return {app_role_for(database): APP_PASSWORD,
            _admin_user(pg_server): str(admin_password) if admin_password else None}


@pytest.fixture(scope="module")
def transaction_pooler(pg_server: PgServer, stack: TestDatabase) -> Iterator[PgBouncer]:
    yield from _pgbouncer(pg_server, stack, "transaction")


@pytest.fixture
def fresh_transaction_pooler(pg_server: PgServer, stack: TestDatabase) -> Iterator[PgBouncer]:
    """A transaction pooler of the test's own: its server connections hold no prepared
    statement another test left (see the leftover test below)."""
    yield from _pgbouncer(pg_server, stack, "transaction")


@pytest.fixture(scope="module")
def session_pooler(pg_server: PgServer, stack: TestDatabase) -> Iterator[PgBouncer]:
    yield from _pgbouncer(pg_server, stack, "session")


@pytest.fixture(scope="module")
def mem0_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """tests.support.mem0_client, imported only now (mem0 reads MEM0_TELEMETRY and MEM0_DIR
    once, at import)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
        env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        yield importlib.import_module("tests.support.mem0_client")


def app_url(bouncer: PgBouncer, database: TestDatabase) -> str:
    """The app role's URL through `bouncer`, password included, as the application has it."""
    return bouncer.url(database.name, app_role_for(database), APP_PASSWORD)


def settings_for(database: TestDatabase, pooler_url: str | None, prepared: bool = False
                 ) -> Settings:
    return stack_settings(database, STACK, dimensions=DIMS, poolerUrl=pooler_url or "",
                          poolerPreparedStatements=prepared)


def run_check(database: TestDatabase, settings: Settings) -> Outcome:
    """check_pooler as the checks run it: the deployer's session (empty search_path), in a
    transaction that is rolled back."""
    with connect(database.dsn) as conn:
        ctx = Context(conn, settings, tuple(build_model(settings)), database.dsn)
        with conn.transaction(force_rollback=True):
            return check_pooler(ctx)


def row_counts(database: TestDatabase) -> tuple[int, int]:
    """Rows of the memories table and of its history (a surviving insert leaves both)."""
    with database.connect() as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM public.memories),"
                           " (SELECT count(*) FROM public.memory_history)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def check_leaving_nothing(database: TestDatabase, settings: Settings,
                          bouncer: PgBouncer | None = None) -> Outcome:
    """Run the check; assert that it left no row, and no client connected to `bouncer`
    (or, without one, no session of its own on the server)."""
    before, sessions = row_counts(database), set(_check_sessions(database))
    outcome = run_check(database, settings)
    assert row_counts(database) == before, "the pooler check left rows behind"
    if bouncer is not None:
        assert _eventually(lambda: not _bouncer_clients(bouncer)), _bouncer_clients(bouncer)
    else:  # the server connections PgBouncers keep idle may carry the check's name
        assert _eventually(lambda: set(_check_sessions(database)) <= sessions), \
            set(_check_sessions(database)) - sessions
    return outcome


def _eventually(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    """Closed sockets reach PgBouncer and backends exit a moment after close()."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _bouncer_clients(bouncer: PgBouncer) -> list[dict[str, Any]]:
    return [c for c in bouncer.show("CLIENTS") if c["database"] != "pgbouncer"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_sessions(database: TestDatabase) -> list[Any]:
    with database.connect() as conn:
        return conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s"
                            " AND application_name = 'mem0infra-pooler-check'",
                            (database.name,)).fetchall()


# --- tests ------------------------------------------------------------------------------------


def test_mem0_through_a_transaction_pooler_and_the_check_passes(
        stack: TestDatabase, transaction_pooler: PgBouncer, mem0_client: ModuleType) -> None:
    from psycopg_pool import ConnectionPool

    url = app_url(transaction_pooler, stack)
    before = row_counts(stack)
    # mem0's real Memory, given a pool without prepared statements (mem0.CONNECTION_GUIDANCE).
    pool = ConnectionPool(conninfo=url, kwargs={"prepare_threshold": None}, open=False,
                          min_size=2, max_size=4)
    pool.open(wait=True, timeout=10)
    config = mem0_client.offline_config(
        {"provider": "pgvector", "config": {"collection_name": "memories",
                                            "embedding_model_dims": DIMS}}, DIMS)
    config["vector_store"]["config"]["connection_pool"] = pool
    memory = mem0_client.Memory.from_config(config)
    memory.embedding_model = mem0_client.HashEmbedder(DIMS)
    try:
        assert memory.vector_store.connection_pool is pool
        texts = [f"pooled memory number {i}" for i in range(10)]
        ids = []
        for text in texts:  # more adds and searches than psycopg's prepare threshold
            [item] = memory.add(text, user_id="pooled-alice", infer=False)["results"]
            ids.append(item["id"])
            found = memory.search(text, filters={"user_id": "pooled-alice"})["results"]
            assert found and found[0]["id"] == item["id"] and found[0]["memory"] == text
        assert memory.get(ids[0])["memory"] == texts[0]
        listed = memory.get_all(filters={"user_id": "pooled-alice"})["results"]
        assert sorted(m["id"] for m in listed) == sorted(ids)
        with pool.connection() as conn:  # the pool's sessions went through PgBouncer
            assert conn.info.port == transaction_pooler.port
    finally:
        mem0_client.close(memory)
    assert row_counts(stack)[0] == before[0] + len(texts)

    outcome = check_leaving_nothing(stack, settings_for(stack, url), transaction_pooler)
    assert outcome.status == PASS, outcome
    assert outcome.detail.startswith(f"through {redacted(url)}: transaction mode")
    assert "prepared statements off (prepare_threshold=None)" in outcome.detail
    # Eight rounds: the insert 8 times, get and search twice per round.
    assert "insert 8x" in outcome.detail and "get by id 16x" in outcome.detail
    assert "user-filtered search 16x" in outcome.detail
    assert re.search(r"ran on [2-9] server connections", outcome.detail)
    assert APP_PASSWORD not in outcome.detail


def test_prepared_statements_through_a_transaction_pooler_fail_with_the_fix(
        stack: TestDatabase, fresh_transaction_pooler: PgBouncer) -> None:
    url = app_url(fresh_transaction_pooler, stack)
    outcome = check_leaving_nothing(stack, settings_for(stack, url, prepared=True),
                                    fresh_transaction_pooler)
    assert outcome.status == FAIL, outcome
    assert "prepared statements break through poolerUrl" in outcome.detail
    assert "in transaction mode" in outcome.detail
    # PgBouncer 1.18 passes the Bind of psycopg's _pg3_N to a server connection that never
    # saw its Parse: 26000 (or 42P05 when another client prepared the same name there).
    assert re.search(r'prepared statement "_pg3_\d+" (does not exist|already exists)',
                     outcome.detail), outcome.detail
    # psycopg prepares mem0's executemany insert at once: its second execution, on the
    # other server connection, is the first to fail (get and search would at their 7th).
    assert re.search(r"mem0's (insert failed at its 2nd|(get by id|user-filtered search) "
                     r"failed at its 7th) execution", outcome.detail), outcome.detail
    assert "poolerPreparedStatements to false" in outcome.hint
    assert "prepare_threshold': None" in outcome.hint and "session-mode pooler" in outcome.hint
    assert APP_PASSWORD not in outcome.detail + outcome.hint


def test_a_leftover_prepared_statement_of_the_same_name_is_caught(
        pg_server: PgServer, stack: TestDatabase) -> None:
    """Prepared statements can seem to work through a transaction pooler: when the server
    connection a prepared statement moves to holds another client's `_pg3_0` with the same
    number of parameters, the Bind runs that one, without an error. Two server connections
    only; a client leaves `SELECT $1, $2, $3` as `_pg3_0` on the one the check's client
    reaches second (PgBouncer hands out the most recently used server connection first)."""
    with running_pgbouncer(*_server_address(pg_server), _users(pg_server, stack),
                           "transaction", admin_user=_admin_user(pg_server),
                           default_pool_size=2) as bouncer:
        url = app_url(bouncer, stack)
        with psycopg.connect(url) as first, psycopg.connect(url) as second:
            first.execute("SELECT 1")  # both in a transaction: two server connections
            second.execute("SELECT %s, %s, %s", ("a", "b", "c"), prepare=True)
            second.commit()  # commit keeps _pg3_0 there (a rollback would deallocate it)
            first.commit()  # most recently used: where the check starts
        outcome = check_leaving_nothing(stack, settings_for(stack, url, prepared=True),
                                        bouncer)
    assert outcome.status == FAIL, outcome
    assert "mem0's insert, prepared on server connection" in outcome.detail
    assert "which does not hold it, and did not fail" in outcome.detail
    assert "leftover prepared statement" in outcome.detail
    assert "poolerPreparedStatements to false" in outcome.hint


@pytest.mark.parametrize("route", ["session pooler", "direct"])
def test_session_mode_and_a_direct_connection_pass_with_prepared_statements(
        stack: TestDatabase, session_pooler: PgBouncer, route: str) -> None:
    url = (app_url(session_pooler, stack) if route == "session pooler" else
           stack.server.dsn_for(stack.name, user=app_role_for(stack), password=APP_PASSWORD))
    outcome = check_leaving_nothing(stack, settings_for(stack, url, prepared=True),
                                    session_pooler if route == "session pooler" else None)
    assert outcome.status == PASS, outcome
    assert "session mode (or a direct connection)" in outcome.detail
    assert "all ran on one server connection" in outcome.detail
    assert "while a second client held a transaction open in 4 of 8 rounds" in outcome.detail
    assert "prepared statements on" in outcome.detail


def test_nothing_listening_fails_naming_pooler_url_without_the_password(
        stack: TestDatabase) -> None:
    secret = "s3cret-pooler-pw"
    url = f"postgresql://{app_role_for(stack)}:{secret}@127.0.0.1:{free_port()}/{stack.name}"
    outcome = check_leaving_nothing(stack, settings_for(stack, url))
    assert outcome.status == FAIL, outcome
    assert "could not connect to poolerUrl" in outcome.detail
    assert "poolerUrl" in outcome.hint and "port" in outcome.hint
    assert secret not in outcome.detail + outcome.hint
    assert f"postgresql://{app_role_for(stack)}@127.0.0.1:" in outcome.detail


def test_a_pooler_url_to_another_database_fails(
        stack: TestDatabase, transaction_pooler: PgBouncer) -> None:
    url = transaction_pooler.url("postgres", app_role_for(stack), APP_PASSWORD)
    outcome = run_check(stack, settings_for(stack, url))
    assert outcome.status == FAIL, outcome
    assert "not to the stack's database" in outcome.detail
    assert "poolerUrl" in outcome.hint


def test_mem0s_unqualified_names_must_resolve_through_the_pooler_url(
        stack: TestDatabase) -> None:
    """mem0 names `"memories"` and `vector` unqualified: a user whose search_path lacks
    public reaches neither, and the check says so before driving a statement."""
    role = f"nopath_{stack.name}"  # dropped with the database (tests.support.testbed)
    with stack.connect() as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{APP_PASSWORD}'")
        admin.execute(f"ALTER ROLE {role} SET search_path = pg_catalog")
    url = stack.server.dsn_for(stack.name, user=role, password=APP_PASSWORD)
    outcome = check_leaving_nothing(stack, settings_for(stack, url))
    assert outcome.status == FAIL, outcome
    assert f"(as {role}, search_path pg_catalog)" in outcome.detail
    assert 'type vector: not found, table "memories": not found' in outcome.detail
    assert "search_path" in outcome.hint and app_role_for(stack) in outcome.hint
    assert APP_PASSWORD not in outcome.detail + outcome.hint


def test_no_pooler_url_is_not_applicable(stack: TestDatabase) -> None:
    outcome = run_check(stack, settings_for(stack, None))
    assert outcome.status == SKIP and not outcome.blocks
    assert outcome.detail.startswith("no poolerUrl")


def test_redacted_drops_the_password_and_the_query() -> None:
    assert redacted("postgresql://app:pw%40x@pooler.example:6543/postgres?password=pw"
                    ) == "postgresql://app@pooler.example:6543/postgres"
    assert redacted("not a url") == "<not a URL>"


def test_the_pgbouncer_helper_takes_psycopg_and_pools_by_transaction(
        transaction_pooler: PgBouncer, stack: TestDatabase) -> None:
    """The helper's PgBouncer takes what psycopg sends (extra_float_digits, options) and
    is in the mode asked for: two clients' transactions share a server connection."""
    url = app_url(transaction_pooler, stack)
    with psycopg.connect(url, autocommit=True, options="-c work_mem=8MB") as a, \
            psycopg.connect(url, autocommit=True) as b:
        pids = {a.execute("SELECT pg_backend_pid()").fetchone()[0],  # type: ignore[index]
                b.execute("SELECT pg_backend_pid()").fetchone()[0]}  # type: ignore[index]
    assert len(pids) == 1
    assert transaction_pooler.pool_mode == "transaction"
    assert "PgBouncer 1." in (transaction_pooler.directory / "pgbouncer.log").read_text()
    assert transaction_pooler.show("CONFIG")  # the admin console answers
