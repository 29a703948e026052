"""A fresh test database made to look like Supabase to this project, and PostgREST's way of
acting as one of its users.

`emulate_supabase` reproduces what a Supabase project holds before anyone deploys to it,
as Supabase's own init migrations define it (supabase/postgres `migrations/db/init-scripts`,
supabase/auth `migrations`): the API roles anon, authenticated and service_role, schema
`auth` with `auth.uid()` and `auth.jwt()` (USAGE for the API roles only, not for PUBLIC),
schema `extensions`, and the default privileges that hand every new table, function and
sequence in `public` to the API roles. The last part matters most: a stack deployed on the
emulation must revoke what Supabase gives away, and the tests prove that it does.

What is not emulated: GoTrue's tables, the `authenticator` login role, supabase_admin, and
`postgres` not being a superuser. The tests deploy as the test cluster's superuser, which
is named `postgres` like Supabase's deploying role; every role check runs after
`SET ROLE`, so the superuser's rights never leak into what a test observes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import TestDatabase, stack_config
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer, create_database, drop_database

# Roles are cluster-wide and shared by every test database: created once, never dropped
# (the databases' teardown only drops roles named after a database). A concurrent test may
# create the same role between the check and the CREATE, hence the exception handler.
_ROLES_SQL = """
DO $emulate$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
        CREATE ROLE postgres NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another test database created it first: the same definition
END
$emulate$;
"""

# Everything below is per database. auth.uid() and auth.jwt() have the bodies of
# supabase/auth's current migrations: the legacy per-claim setting first, then PostgREST's
# JSON claims; an empty string counts as no value.
_DATABASE_SQL = """
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;

CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $fn$
    SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                           (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')),
                  '')::uuid
$fn$;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $fn$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$fn$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
"""
# Default privileges belong to the role that creates the objects: on Supabase that is
# postgres, the deploying role. A test server whose superuser has another name deploys as
# that superuser, so it gets the same default privileges.
_DEFAULT_PRIVILEGES_SQL = """
ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
"""


def emulate_supabase(dsn: str) -> None:
    """Make the (fresh) database at `dsn` look like a new Supabase project. `dsn` must
    connect as a superuser, as the test server's admin URL does. Idempotent."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_ROLES_SQL)
        with conn.transaction():
            conn.execute(_DATABASE_SQL)
            row = conn.execute("SELECT current_user").fetchone()
            assert row is not None
            for role in dict.fromkeys(("postgres", row[0])):
                conn.execute(sql.SQL(_DEFAULT_PRIVILEGES_SQL).format(
                    role=sql.Identifier(role)))


def jwt_claims(user_id: str | None, role: str = "authenticated",
               **extra: object) -> dict[str, object]:
    """The claims of a Supabase access token as PostgREST passes them on: `sub` is the user's
    uuid (absent for anon), `role` the database role the request runs as."""
    claims: dict[str, object] = {"role": role, **extra}
    if user_id is not None:
        claims["sub"] = user_id
    return claims


def act_as(conn: psycopg.Connection, role: str,
           claims: Mapping[str, object] | None = None,
           settings: Mapping[str, str] | None = None) -> None:
    """Become `role` for the rest of the caller's open transaction, the way PostgREST runs
    each request: `SET LOCAL ROLE`, then the token's claims as `request.jwt.claims`, both
    local, so the transaction's end (a rollback in the tests) forgets them. `settings` are
    further transaction-local settings (mem0.user_id, mem0.run_id) for roles that name
    their user the way mem0's connection does."""
    if conn.autocommit:
        # SET LOCAL outside a transaction block only warns and changes nothing.
        raise RuntimeError("act_as needs a transaction: the connection is in autocommit")
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    if claims is not None:
        conn.execute("SELECT pg_catalog.set_config('request.jwt.claims', %s, true)",
                     (json.dumps(dict(claims)),))
    for name, value in (settings or {}).items():
        conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))


def act_as_user(conn: psycopg.Connection, user_id: str, **extra_claims: object) -> None:
    """An end user signed in to Supabase: role authenticated with a token for `user_id`."""
    act_as(conn, "authenticated", jwt_claims(user_id, **extra_claims))


def act_as_anon(conn: psycopg.Connection) -> None:
    """A request without a user token: role anon, as PostgREST runs it."""
    act_as(conn, "anon", jwt_claims(None, role="anon"))


@contextmanager
def deployed_stack(server: PgServer, state_dir: Path, stack: str = "dev",
                   before: Callable[[TestDatabase], None] | None = None,
                   **settings: object) -> Iterator[TestDatabase]:
    """A fresh database with a stack deployed on it through the Pulumi CLI (on target
    supabase, into the emulation), dropped afterwards together with the roles named after
    it. `before` prepares the database first (say, as an older server would have it).
    conftest's `database` and `make_stack` give one database per test; this gives one to
    share, so a module deploys each configuration once and runs many checks on it."""
    name = create_database(server)
    try:
        database = TestDatabase(server, name, server.dsn_for(name))
        if settings.get("target") == "supabase":
            emulate_supabase(database.dsn)
        if before is not None:
            before(database)
        config = stack_config(database, **settings)
        PulumiStack(stack, state_dir / f"state-{name}.json", config).up().raise_for_error()
        yield database
    finally:
        drop_database(server, name)
