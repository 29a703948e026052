"""`python -m components connections` against the real test PostgreSQL and a real PgBouncer.

One stack is deployed for the module; each test opens real client connections as the
stack's app role (with an application name the test chose): ten idle ones, one idle in a
transaction, one running pg_sleep. The report must count them by role, application and
state, name the idle-in-transaction pid and the long statement, fail past --idle-limit,
flip its verdict to over when --processes (or the app role's connection limit) makes
mem0's budget exceed the slots left, show PgBouncer's pools through a login in its
stats_users, report a refused console without failing, and refuse bad arguments.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from components import mem0
from components.cli import main
from components.connection import role_url
from tests.conftest import APP_PASSWORD, TestDatabase, app_role_for, stack_config
from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

REPO = Path(__file__).resolve().parents[2]
STACK = "dev"
APP_NAME = "mem0-conn-test"
IDLE_APP = "mem0-conn-idle-xact"
SLEEP_APP = "mem0-conn-sleeper"
Document = dict[str, Any]


@pytest.fixture(scope="module")
def stack(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK,
                        dimensions=8) as database:
        yield database


def project(tmp_path: Path, database: TestDatabase, **settings: object) -> Path:
    """A project directory whose stack file is the deployed stack's (plus `settings`)."""
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    config = {f"mem0infra:{k}": v for k, v in
              stack_config(database, dimensions=8, **settings).items()}
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}))
    return directory


def app_dsn(database: TestDatabase) -> str:
    return role_url(database.dsn, app_role_for(database), APP_PASSWORD)


def report(capsys: pytest.CaptureFixture[str], directory: Path, database: TestDatabase,
           *extra: str) -> tuple[int, Document]:
    code = main(["connections", "--stack", STACK, "--project-dir", str(directory),
                 "--dsn", database.dsn, "--json", *extra])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return code, json.loads(out.out)


def text_report(capsys: pytest.CaptureFixture[str], directory: Path, database: TestDatabase,
                *extra: str) -> tuple[int, str]:
    code = main(["connections", "--stack", STACK, "--project-dir", str(directory),
                 "--dsn", database.dsn, *extra])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return code, out.out


@contextlib.contextmanager
def app_clients(dsn: str, count: int, application: str = APP_NAME
                ) -> Iterator[list[psycopg.Connection]]:
    conns: list[psycopg.Connection] = []
    try:
        for _ in range(count):
            conns.append(psycopg.connect(dsn, autocommit=True, application_name=application))
        for conn in conns:
            conn.execute("SELECT 1")
        yield conns
    finally:
        for conn in conns:
            conn.close()


@contextlib.contextmanager
def idle_in_transaction(dsn: str) -> Iterator[int]:
    """A session that began a transaction, ran a statement and waits: its pid."""
    with psycopg.connect(dsn, application_name=IDLE_APP) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()  # opens the transaction
        assert row is not None
        yield int(row[0])
        conn.rollback()


@contextlib.contextmanager
def sleeping(dsn: str, seconds: float = 60) -> Iterator[int]:
    """A session running pg_sleep in a thread: its pid; cancelled on exit."""
    conn = psycopg.connect(dsn, autocommit=True, application_name=SLEEP_APP)
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None

    def run() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(%s)", (seconds,))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield int(row[0])
    finally:
        conn.cancel_safe()
        thread.join(10)
        conn.close()


def groups_of(document: Document, role: str) -> dict[tuple[str, str], int]:
    return {(g["application"], g["state"]): g["count"] for g in document["groups"]
            if g["role"] == role}


# --- what the report shows ------------------------------------------------------------------


def test_the_report_shows_real_clients_by_role_app_and_state(
        stack: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, stack)
    role, dsn = app_role_for(stack), app_dsn(stack)
    with app_clients(dsn, 10), idle_in_transaction(dsn) as idle_pid, \
            sleeping(dsn) as sleep_pid:
        time.sleep(1.2)  # both past --long 1, the idle one past --idle-limit 1
        code, document = report(capsys, directory, stack, "--long", "1")
        markdown = tmp_path / "connections.md"
        failing, text = text_report(capsys, directory, stack, "--long", "1",
                                    "--idle-limit", "1", "--markdown", str(markdown))

    mine = groups_of(document, role)
    assert mine[(APP_NAME, "idle")] == 10
    assert mine[(IDLE_APP, "idle in transaction")] == 1
    assert mine[(SLEEP_APP, "active")] == 1
    assert {g["is"] for g in document["groups"] if g["role"] == role} == {"app"}
    assert document["roles"][role] == "app"
    assert [s["pid"] for s in document["idle_in_transaction"]] == [idle_pid]
    assert document["idle_in_transaction"][0]["state_seconds"] >= 1
    long = [s for s in document["long_running"] if s["pid"] == sleep_pid]
    assert len(long) == 1 and "pg_sleep" in long[0]["query"]
    assert long[0]["query_seconds"] >= 1
    assert idle_pid not in [s["pid"] for s in document["long_running"]]
    # The budget counts the app's 12 connections as its own, not as others'.
    assert document["budget"]["app_now"] == 12
    slots = document["slots"]
    assert slots["max_connections"] == 100 and slots["reserved"] is None  # PostgreSQL 15
    assert slots["in_use"] >= 13  # the 12 and this session
    assert document["budget"]["verdict"] == "ok" and document["pooler"] is None
    assert code == 0 and document["problems"] == []  # idle for less than 60 s: fine

    # Past --idle-limit the command fails, naming the pid; the text shows the same facts.
    assert failing == 1
    assert f"pid {idle_pid} ({role}) idle in transaction" in text
    assert "idle in transaction (fails over 1 s): 1" in text
    assert "statements running over 1 s: 1" in text
    assert "app (mem0)" in text and "pg_sleep" in text
    assert "verdict: ok" in text
    written = markdown.read_text()
    assert "## Idle in transaction" in written and f"| {idle_pid} |" in written
    assert APP_PASSWORD not in text + written + json.dumps(document)

    # Once they are gone, so are they from the report.
    _, after = report(capsys, directory, stack, "--long", "1")
    assert groups_of(after, role) == {}
    assert after["idle_in_transaction"] == [] and after["budget"]["app_now"] == 0


def test_the_verdict_is_over_when_the_processes_exceed_the_slots_left(
        stack: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, stack)
    code, one = report(capsys, directory, stack)
    budget = one["budget"]
    assert (code, budget["verdict"], budget["basis"]) == (0, "ok", "direct")
    per = mem0.connections_per_memory()
    assert budget["per_process"] == per == 11 and budget["need"] == per
    assert budget["available"] == budget["slots"] - budget["others"]
    assert budget["slots"] == one["slots"]["for_non_superusers"] == 100 - 3

    fits = budget["available"] // per
    code, tight = report(capsys, directory, stack, "--processes", str(fits))
    assert code == 0 and tight["budget"]["verdict"] == "tight"  # fits, but above 80 %
    code, over = report(capsys, directory, stack, "--processes", str(fits + 1))
    assert code == 1 and over["budget"]["verdict"] == "over"
    assert over["budget"]["need"] == (fits + 1) * per > over["budget"]["available"]
    assert over["problems"] == [f"mem0's budget is over: {(fits + 1) * per} connections "
                                f"needed, {over['budget']['available']} available"]
    # Smaller pools fit where the default ones did not.
    code, small = report(capsys, directory, stack, "--processes", str(fits + 1),
                         "--maxconn", "2", "--no-telemetry")
    assert code == 0 and small["budget"]["need"] == (fits + 1) * 4


def test_the_app_roles_connection_limit_bounds_the_budget(
        stack: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, stack)
    role = app_role_for(stack)
    with stack.connect() as conn:
        conn.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 8')
    try:
        code, document = report(capsys, directory, stack)
    finally:
        with stack.connect() as conn:
            conn.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
    assert document["slots"]["role_limits"][role] == 8
    assert document["budget"]["role_limit"] == 8 and document["budget"]["limit"] == 8
    assert (code, document["budget"]["verdict"]) == (1, "over")  # 11 > 8


# --- mem0's own pools -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mem0_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """tests.support.mem0_client, imported only now (mem0 reads MEM0_TELEMETRY at import)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
        env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        yield importlib.import_module("tests.support.mem0_client")


def app_connections(database: TestDatabase) -> int:
    return int(str(database.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
        (app_role_for(database),))))


def test_a_memory_holds_two_pools_of_maxconn_as_the_budget_counts(
        stack: TestDatabase, mem0_client: ModuleType) -> None:
    """The budget's factor, from mem0's own objects: a Memory's main and entity stores are
    two pools, each capped at maxconn (telemetry off here: mem0 must not phone home)."""
    maxconn = 3
    vector_store = {"provider": "pgvector", "config": {
        "connection_string": app_dsn(stack), "collection_name": "memories",
        "embedding_model_dims": 8, "minconn": 1, "maxconn": maxconn}}
    memory = mem0_client.memory(vector_store, 8)
    held: list[tuple[Any, Any]] = []
    try:
        memory.add("the budget counts this", user_id="conn-test", infer=False)
        assert memory.get_all(filters={"user_id": "conn-test"})["results"]
        pools = [memory.vector_store.connection_pool, memory.entity_store.connection_pool]
        for pool in pools:
            for _ in range(maxconn):
                held.append((pool, pool.getconn(timeout=10)))
            with pytest.raises(PoolTimeout):
                pool.getconn(timeout=0.5)  # the cap: maxconn per pool
        assert app_connections(stack) == 2 * maxconn == \
            mem0.connections_per_memory(1, maxconn, telemetry=False)
    finally:
        for pool, conn in held:
            pool.putconn(conn)
        memory.delete_all(user_id="conn-test")
        mem0_client.close(memory)


# --- the pooler -----------------------------------------------------------------------------


def _bouncer(pg_server: PgServer, database: TestDatabase, **settings: str | int
             ) -> contextlib.AbstractContextManager[PgBouncer]:
    server = conninfo_to_dict(pg_server.admin_dsn)
    admin = str(server.get("user") or "postgres")
    return running_pgbouncer(str(server.get("host") or "127.0.0.1"),
                             str(server.get("port") or 5432),
                             {app_role_for(database): APP_PASSWORD, admin: None},
                             "transaction", admin_user=admin, **settings)


def test_pgbouncers_pools_show_the_clients_through_it(
        pg_server: PgServer, stack: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    role = app_role_for(stack)
    with _bouncer(pg_server, stack, stats_users=role, default_pool_size=6) as bouncer:
        url = bouncer.url(stack.name, role, APP_PASSWORD)
        directory = project(tmp_path, stack, poolerUrl=url)
        with app_clients(url, 4, APP_NAME) as clients:
            with clients[0].transaction():
                clients[0].execute("SELECT 1")  # one server connection per transaction
                code, document = report(capsys, directory, stack)
            _, text = text_report(capsys, directory, stack)

    pooler = document["pooler"]
    assert pooler["available"] is True and pooler["pool_mode"] == "transaction"
    assert APP_PASSWORD not in pooler["url"] and pooler["url"].endswith(f"/{stack.name}")
    pool = next(p for p in pooler["pools"] if p["database"] == stack.name
                and p["user"] == role)
    assert pool["cl_active"] + pool["cl_waiting"] == 4  # the test's four clients
    assert pool["sv_active"] >= 1  # the open transaction holds a server connection
    assert any(s["database"] == stack.name for s in pooler["stats"])
    # Behind a transaction pooler the server holds the pool, not mem0's clients.
    budget = document["budget"]
    assert (budget["basis"], budget["need"], pooler["pool_size"]) == \
        ("transaction pooler", 6, 6)
    assert code == 0 and budget["verdict"] == "ok"
    assert "transaction mode, pool size 6" in text and "SHOW POOLS" in text
    assert APP_PASSWORD not in text


def test_a_refused_console_is_reported_and_not_fatal(
        pg_server: PgServer, stack: TestDatabase, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    role = app_role_for(stack)
    with _bouncer(pg_server, stack) as bouncer:  # the app role is no admin or stats user
        directory = project(tmp_path, stack, poolerUrl=bouncer.url(stack.name, role,
                                                                   APP_PASSWORD))
        code, text = text_report(capsys, directory, stack)
        _, document = report(capsys, directory, stack)
    assert code == 0
    assert "pooler view unavailable: " in text and "not allowed" in text
    assert document["pooler"]["available"] is False
    assert document["budget"]["basis"] == "direct"  # the mode is unknown: count directly
    assert APP_PASSWORD not in text


# --- arguments and --watch ------------------------------------------------------------------


@pytest.mark.parametrize(("arguments", "named"), [
    (["--watch", "0"], "--watch 0: must be a number of seconds above 0"),
    (["--processes", "0"], "--processes 0: must be a whole number of at least 1"),
    (["--long", "-1"], "--long -1"),
    (["--minconn", "6"], "--minconn 6: must be between 0 and --maxconn (5)"),
])
def test_bad_arguments_are_refused_naming_the_argument(
        stack: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        arguments: list[str], named: str) -> None:
    directory = project(tmp_path, stack)
    assert main(["connections", "--stack", STACK, "--project-dir", str(directory),
                 "--dsn", stack.dsn, *arguments]) == 2
    out = capsys.readouterr()
    assert named in out.err and out.out == ""


def test_an_unknown_stack_is_refused(stack: TestDatabase, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, stack)
    assert main(["connections", "--stack", "nope", "--project-dir", str(directory),
                 "--dsn", stack.dsn]) == 2
    err = capsys.readouterr().err
    assert "stack 'nope'" in err and f"stacks with a file: {STACK}" in err


def test_watch_prints_one_json_object_per_round_until_interrupted(
        stack: TestDatabase, tmp_path: Path) -> None:
    directory = project(tmp_path, stack)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "components", "connections", "--stack", STACK, "--project-dir",
         str(directory), "--dsn", stack.dsn, "--json", "--watch", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    documents = [json.loads(line) for line in lines]
    assert len({d["taken_at"] for d in documents}) == 3  # three separate readings
    assert all(d["budget"]["verdict"] == "ok" for d in documents)
    assert code == 0, process.stderr.read() if process.stderr else ""
