"""What the server says about its client connections: pg_stat_activity grouped, the
sessions idle in a transaction, the long-running statements, and the connection slots.

Client backends only (autovacuum, WAL senders and background workers have slots of their
own). Rows of other roles show state, query and client only to a superuser or a member of
pg_read_all_stats; elsewhere they read as hidden, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

QUERY_CHARS = 120  # query text may hold values: never more than this much of it
HIDDEN = "(hidden)"  # what a row shows without the privilege to read it


@dataclass(frozen=True)
class Group:
    """Connections sharing role, application, state, client address and database."""

    role: str
    application: str
    state: str
    client: str
    database: str
    count: int


@dataclass(frozen=True)
class Session:
    """One session worth naming: idle in a transaction, or running a long statement."""

    pid: int
    role: str
    application: str
    client: str
    state: str
    state_seconds: float  # idle in transaction: since its last statement ended
    xact_seconds: float | None  # since its transaction began
    query_seconds: float | None  # since its (last) statement began
    query: str  # at most QUERY_CHARS, on one line


@dataclass(frozen=True)
class Slots:
    """The server's connection slots and who uses them."""

    max_connections: int
    superuser_reserved: int
    reserved: int | None  # reserved_connections (PostgreSQL 16+); None before
    in_use: int  # client backends, this session included
    role_limits: dict[str, int]  # rolconnlimit of login roles that set one

    @property
    def for_non_superusers(self) -> int:
        """Slots a role without superuser (or pg_use_reserved_connections) may take."""
        return self.max_connections - self.superuser_reserved - (self.reserved or 0)


_CLIENT = ("CASE WHEN a.client_addr IS NOT NULL THEN pg_catalog.host(a.client_addr) "
           "WHEN a.client_port = -1 THEN 'local socket' ELSE %(hidden)s END")
_ACTIVITY = "pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend'"


def groups(conn: psycopg.Connection) -> list[Group]:
    """Every other client connection, counted by role, application, state, client and
    database (largest groups first)."""
    rows = conn.execute(
        f"SELECT coalesce(a.usename, ''), coalesce(a.application_name, ''), "
        f"coalesce(a.state, %(hidden)s), {_CLIENT}, coalesce(a.datname, ''), count(*) "
        f"FROM {_ACTIVITY} AND a.pid <> pg_catalog.pg_backend_pid() "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY 6 DESC, 1, 2, 3, 4, 5",
        {"hidden": HIDDEN}).fetchall()
    return [Group(*row) for row in rows]


def _sessions(conn: psycopg.Connection, where: str, params: dict[str, object]
              ) -> list[Session]:
    rows = conn.execute(
        f"SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), {_CLIENT}, "
        "a.state, extract(epoch FROM pg_catalog.now() - a.state_change)::float8, "
        "extract(epoch FROM pg_catalog.now() - a.xact_start)::float8, "
        "extract(epoch FROM pg_catalog.now() - a.query_start)::float8, "
        "pg_catalog.left(a.query, %(chars)s), pg_catalog.length(a.query) > %(chars)s "
        f"FROM {_ACTIVITY} AND a.pid <> pg_catalog.pg_backend_pid() AND {where} "
        "ORDER BY 6 DESC, a.pid",
        {"hidden": HIDDEN, "chars": QUERY_CHARS, **params}).fetchall()
    return [Session(pid, role, app, client, state, seconds or 0.0, xact, query_s,
                    _one_line(text or "", cut)) for
            pid, role, app, client, state, seconds, xact, query_s, text, cut in rows]


def _one_line(text: str, cut: bool) -> str:
    return " ".join(text.split()) + (" ..." if cut else "")


def idle_in_transaction(conn: psycopg.Connection) -> list[Session]:
    """Sessions holding a transaction open between statements, longest first: they hold
    their locks and their snapshot (vacuum cannot clean behind them) and, behind a
    transaction pooler, a server connection."""
    return _sessions(conn, "a.state IN ('idle in transaction', "
                           "'idle in transaction (aborted)')", {})


def long_running(conn: psycopg.Connection, seconds: float) -> list[Session]:
    """Statements running for more than `seconds`, longest first."""
    return _sessions(conn, "a.state = 'active' AND a.query_start < pg_catalog.now() - "
                           "pg_catalog.make_interval(secs => %(long)s)", {"long": seconds})


def slots(conn: psycopg.Connection) -> Slots:
    row = conn.execute(
        "SELECT pg_catalog.current_setting('max_connections')::int, "
        "pg_catalog.current_setting('superuser_reserved_connections')::int, "
        # absent before PostgreSQL 16: missing_ok gives NULL instead of an error
        "pg_catalog.current_setting('reserved_connections', true)::int, "
        f"(SELECT count(*) FROM {_ACTIVITY})::int").fetchone()
    assert row is not None
    limits = conn.execute(
        "SELECT rolname, rolconnlimit FROM pg_catalog.pg_roles "
        "WHERE rolcanlogin AND rolconnlimit >= 0 ORDER BY rolname").fetchall()
    return Slots(row[0], row[1], row[2], row[3], dict(limits))
