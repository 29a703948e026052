"""Where pg_cron keeps its jobs, and how this project reads and writes them.

pg_cron lives in one database of a server (`cron.database_name`, `postgres` by default) and
runs jobs in any database of it. On Supabase that database is the project's own; on a
self-hosted server it is often another one, so a stack's jobs are read and written through
a second connection to the cron database, made from the first one's parameters. Jobs are
found by name (the model makes names unique per stack and collection) and by the database
they run in, so another stack's job of the same name is never taken for this one's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

DATABASE_SETTING = "cron.database_name"


class CronUnavailable(Exception):
    """pg_cron is not loaded or not installed where it keeps its jobs."""


@dataclass(frozen=True)
class Job:
    jobid: int
    schedule: str
    command: str
    database: str
    username: str
    active: bool


def cron_database(conn: psycopg.Connection) -> str | None:
    """The database pg_cron keeps its jobs in, or None when pg_cron is not loaded
    (its setting exists only once shared_preload_libraries has loaded it).

    Only superusers and pg_read_all_settings may read that setting. Anyone else is told
    the current database when pg_cron's tables are in it (Supabase's shape); otherwise
    nobody can say where the jobs live, and CronUnavailable says what to grant."""
    try:
        with conn.transaction():  # a savepoint: the caller's transaction stays usable
            row = conn.execute("SELECT pg_catalog.current_setting(%s, true)",
                               (DATABASE_SETTING,)).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        if _installed(conn):
            return current_database(conn)
        user = conn.execute("SELECT current_user::text").fetchone()[0]  # type: ignore[index]
        raise CronUnavailable(
            f"{user} may not read {DATABASE_SETTING}, and pg_cron is not installed in this "
            f"database, so where its jobs live is unknown (GRANT pg_read_all_settings TO "
            f"{user}, or deploy as a superuser)") from None
    return row[0] if row and row[0] else None


def current_database(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT pg_catalog.current_database()").fetchone()
    assert row is not None
    return str(row[0])


@contextmanager
def cron_session(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A connection to pg_cron's database: `conn` itself when it is there already, else a
    new autocommit one as the same role (closed afterwards). Raises CronUnavailable when
    pg_cron is not loaded or its extension is not installed there."""
    database = cron_database(conn)
    if database is None:
        raise CronUnavailable("pg_cron is not loaded on this server (it must be in "
                              "shared_preload_libraries)")
    if database == current_database(conn):
        _require_extension(conn, database)
        yield conn
        return
    params = conn.info.get_parameters()
    params["dbname"] = database
    params.setdefault("connect_timeout", "15")
    if conn.info.password:
        params["password"] = conn.info.password
    try:
        other = psycopg.connect(**params, autocommit=True)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise CronUnavailable(f"cannot connect to pg_cron's database {database!r} as "
                              f"{params.get('user')}: {str(exc).strip()}") from exc
    with other:
        _require_extension(other, database)
        yield other


def _installed(conn: psycopg.Connection) -> bool:
    # The catalog, not to_regclass('cron.job'): that errs without USAGE on schema cron.
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension"
                       " WHERE extname = 'pg_cron')").fetchone()
    return bool(row and row[0])


def _require_extension(conn: psycopg.Connection, database: str) -> None:
    if not _installed(conn):
        raise CronUnavailable(f"the pg_cron extension is not installed in database "
                              f"{database!r} (CREATE EXTENSION pg_cron there; Supabase: "
                              "enable pg_cron under Database, Extensions)")


def jobs_named(cron: psycopg.Connection, name: str) -> list[Job]:
    """Every job of that name the role can see (pg_cron shows a role its own jobs, a
    superuser all of them), oldest first."""
    rows = cron.execute(
        "SELECT jobid, schedule, command, database, username, active FROM cron.job"
        " WHERE jobname = %s ORDER BY jobid", (name,)).fetchall()
    return [Job(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bool(r[5]))
            for r in rows]


def find_job(cron: psycopg.Connection, name: str, database: str) -> Job | None:
    """The job of that name that runs in `database`, or None."""
    return next((job for job in jobs_named(cron, name) if job.database == database), None)


def schedule(cron: psycopg.Connection, name: str, when: str, command: str,
             database: str) -> int:
    """Schedule a job to run in `database`; returns its id. Plain cron.schedule where
    pg_cron lives in that database (all Supabase allows), else cron.schedule_in_database
    (a superuser's, or granted)."""
    if database == current_database(cron):
        row = cron.execute("SELECT cron.schedule(%s, %s, %s)", (name, when, command)).fetchone()
    else:
        row = cron.execute("SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                           (name, when, command, database)).fetchone()
    assert row is not None
    return int(row[0])


def unschedule(cron: psycopg.Connection, job: Job) -> None:
    # By id: cron.unschedule(name) takes a `name`, which cuts long job names at 63 bytes.
    cron.execute("SELECT cron.unschedule(%s::bigint)", (job.jobid,))
