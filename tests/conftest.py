"""Shared fixtures: a real PostgreSQL with pgvector (and pg_cron where the server has it).

The server comes from MEM0_TEST_DSN, else testcontainers when a Docker engine answers, else
a temporary cluster from the machine's PostgreSQL binaries (tests/support/testbed.py).
Every test that touches a database gets its own fresh one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from components.settings import PROJECT_ROLE_KEYS, Settings, parse_settings
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer, create_database, drop_database, start_server


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # not a test class, despite the name

    server: PgServer
    name: str
    dsn: str

    def connect(self, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]

    def scalar(self, sql: str, params: tuple[object, ...] = ()) -> object:
        with self.connect() as conn:
            row = conn.execute(sql, params or None).fetchone()
        return None if row is None else row[0]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server, stop = start_server()
    try:
        yield server
    finally:
        stop()


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[TestDatabase]:
    name = create_database(pg_server)
    try:
        yield TestDatabase(pg_server, name, pg_server.dsn_for(name))
    finally:
        drop_database(pg_server, name)


APP_PASSWORD = "app-password-for-tests"


def app_role_for(database: TestDatabase) -> str:
    """The test's app role: named after its database, so the database's teardown drops it."""
    return f"app_{database.name}"


def project_roles_for(database: TestDatabase) -> dict[str, str]:
    """Role settings of a postgres-target test stack: every role named after the test's
    database (roles are cluster-wide; the database's teardown drops them)."""
    return {"appRole": app_role_for(database), "appRolePassword": APP_PASSWORD,
            "ownerRole": f"owner_{database.name}",
            "readonlyRole": f"readonly_{database.name}", "readonlyRolePassword": APP_PASSWORD,
            "serviceRole": f"service_{database.name}", "serviceRolePassword": APP_PASSWORD}


def stack_config(database: TestDatabase, **settings: object) -> dict[str, object]:
    """A test stack's config: target postgres on the test database with the test's roles,
    unless `settings` say otherwise (on supabase, Supabase's own roles serve)."""
    config: dict[str, object] = {"target": "postgres", "databaseUrl": database.dsn,
                                 **project_roles_for(database)}
    config.update(settings)
    if config["target"] == "supabase":
        for key in PROJECT_ROLE_KEYS:
            config.pop(key, None)
            config.pop(f"{key}Password", None)
    return config


def stack_settings(database: TestDatabase, stack: str = "t", **raw: object) -> Settings:
    """Settings of a test stack, as make_stack deploys it."""
    return parse_settings(stack_config(database, **raw), stack)


@pytest.fixture
def make_stack(database: TestDatabase, tmp_path: Path):
    """A stack deployed through the real Pulumi CLI, pointed at the test database unless
    told otherwise."""

    def make(stack: str = "dev", **settings: object) -> PulumiStack:
        # Roles are cluster-wide: each test database gets its own app role.
        config = stack_config(database, **settings)
        return PulumiStack(stack, tmp_path / f"state-{stack}.json", config)

    return make


@pytest.fixture(autouse=True, scope="session")
def _offline_environment() -> None:
    # Nothing the tests run may phone home.
    os.environ.setdefault("MEM0_TELEMETRY", "False")
