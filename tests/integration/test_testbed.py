"""Integration tests for the PostgreSQL test bed itself, against a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from components.model import version_tuple
from tests.support import testbed
from tests.support.testbed import PgServer, create_database, drop_database, start_server

MIN_PGVECTOR = (0, 8)


@pytest.fixture
def server(pg_server: PgServer) -> PgServer:
    """The session's server (tests/conftest.py); test_stop... starts its own."""
    return pg_server


@pytest.fixture
def new_database(server: PgServer) -> Iterator[Callable[[], str]]:
    """Factory for scratch databases that are dropped after the test."""
    created: list[str] = []

    def make() -> str:
        created.append(create_database(server, prefix="testbed"))
        return created[-1]

    yield make
    for name in created:
        drop_database(server, name)


def _database_exists(server: PgServer, name: str) -> bool:
    with psycopg.connect(server.admin_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return row == (1,)


def test_server_answers_queries(server: PgServer) -> None:
    with psycopg.connect(server.admin_dsn) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int, 6 * 7").fetchone()
    assert row == (server.server_version, 42)
    assert server.source in {"env", "testcontainers", "local-cluster"}
    assert server.server_version >= 150000


def test_local_cluster_preloads_pg_cron(server: PgServer) -> None:
    if server.source != "local-cluster":
        pytest.skip("only the local cluster is guaranteed to preload pg_cron")
    assert server.has_pg_cron
    assert server.cron_database == "postgres"


def test_created_database_supports_pgvector(
    server: PgServer, new_database: Callable[[], str]
) -> None:
    name = new_database()
    with psycopg.connect(server.dsn_for(name)) as conn:
        conn.execute("CREATE EXTENSION vector")
        version_row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        distance_row = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector").fetchone()
    assert version_row is not None
    assert version_tuple(version_row[0]) >= MIN_PGVECTOR
    assert distance_row == (2.0,)


def test_pg_cron_creatable_in_cron_database(server: PgServer) -> None:
    if not server.has_pg_cron:
        pytest.skip(f"pg_cron not preloaded on the {server.source} server")
    with psycopg.connect(server.dsn_for(server.cron_database), autocommit=True) as conn:
        existed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'").fetchone()
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        job = conn.execute("SELECT cron.schedule('testbed-probe', '0 0 1 1 *', 'SELECT 1')")
        job_id = job.fetchone()
        unscheduled = conn.execute("SELECT cron.unschedule('testbed-probe')").fetchone()
        # Leave a shared (MEM0_TEST_DSN) server as we found it.
        if existed is None:
            conn.execute("DROP EXTENSION pg_cron")
    assert job_id is not None and job_id[0] > 0
    assert unscheduled == (True,)


def test_databases_are_isolated(server: PgServer, new_database: Callable[[], str]) -> None:
    first, second = new_database(), new_database()
    assert first != second
    assert first.startswith("testbed_")
    with psycopg.connect(server.dsn_for(first)) as conn:
        conn.execute("CREATE TABLE only_in_first (id int)")
    with psycopg.connect(server.dsn_for(first)) as conn:
        in_first = conn.execute("SELECT to_regclass('public.only_in_first')").fetchone()
    with psycopg.connect(server.dsn_for(second)) as conn:
        in_second = conn.execute("SELECT to_regclass('public.only_in_first')").fetchone()
    assert in_first == ("only_in_first",)
    assert in_second == (None,)


def test_drop_database_with_open_connection(server: PgServer) -> None:
    name = create_database(server, prefix="dropme")
    holder = psycopg.connect(server.dsn_for(name), autocommit=True)
    try:
        assert holder.execute("SELECT current_database()").fetchone() == (name,)
        drop_database(server, name)
        assert not _database_exists(server, name)
        # The held session must have been terminated, not merely left dangling.
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    finally:
        holder.close()


def test_dsn_for_other_role_does_not_reuse_admin_password(server: PgServer) -> None:
    dsn = server.dsn_for("somedb", user="app_user")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    admin = psycopg.conninfo.conninfo_to_dict(server.admin_dsn)
    assert params["dbname"] == "somedb"
    assert params["user"] == "app_user"
    assert "password" not in params
    assert params.get("host") == admin.get("host")
    assert params.get("port") == admin.get("port")
    with_password = psycopg.conninfo.conninfo_to_dict(server.dsn_for("x", "u", "s3 cr'et"))
    assert with_password["password"] == "s3 cr'et"


def test_stop_is_idempotent_and_cleans_up() -> None:
    pg, stop = start_server()
    with psycopg.connect(pg.admin_dsn) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    data_dir = Path(row[0])
    stop()
    stop()
    if pg.source == "env":
        # Not ours to stop: the shared server must still answer.
        with psycopg.connect(pg.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        return
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.admin_dsn, connect_timeout=3)
    if pg.source == "local-cluster":
        assert not data_dir.parent.exists()


def test_missing_binaries_point_to_setup_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Force the local-cluster path and aim it at an empty bin dir.
    monkeypatch.delenv(testbed.ENV_DSN, raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setattr(testbed, "PG_BIN", tmp_path)
    with pytest.raises(RuntimeError, match=r"scripts/setup-postgres\.sh"):
        start_server()


def test_the_local_cluster_serves_tls_and_admits_tcp_only_over_it(server: PgServer) -> None:
    if server.source != "local-cluster":
        pytest.skip(f"the server comes from {server.source}, not this test bed's cluster")
    verified = f"{server.admin_dsn}?sslmode=verify-full&sslrootcert={server.root_cert}"
    with psycopg.connect(verified) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl"
                           " WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None and row[0] is True and row[1].startswith("TLSv1.")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f"{server.admin_dsn}?sslmode=disable")
