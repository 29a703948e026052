"""The one transaction every `rls` sub-command works in, always rolled back.

`debug_session` connects as the deployer (--dsn), opens a transaction (READ ONLY unless
`explain` must attempt writes), bounds every statement with statement_timeout and
lock_timeout, and rolls back on the way out whatever happened. Inside it, `act_as` switches
to a role with SET LOCAL ROLE and `back_to_deployer` returns; `set_identity` sets the
identity settings LOCAL, so nothing outlives the transaction either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from components.connection import open_session
from components.errors import ExitCode, Mem0InfraError
from components.identifiers import identifier_problem

# What Connection.execute takes with parameters.
Query = str | bytes | sql.SQL | sql.Composed

__all__ = ["DebugSession", "Deployer", "RlsDebugError", "StatementRefused", "debug_session"]

APPLICATION = "mem0infra-rls"


class RlsDebugError(Mem0InfraError):
    """The command could not run: bad arguments, no database, a role it cannot act as."""

    exit_code = ExitCode.UNUSABLE


class StatementRefused(Mem0InfraError):
    """The database refused the statement `as-user` was given (the command ran)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Deployer:
    """Who the --dsn connection is, and whether row-level security binds it."""

    session_user: str
    superuser: bool
    bypass_rls: bool

    @property
    def sees_every_row(self) -> bool:
        return self.superuser or self.bypass_rls


class DebugSession:
    """A connection inside its one rolled-back transaction."""

    def __init__(self, conn: psycopg.Connection, deployer: Deployer) -> None:
        self.conn = conn
        self.deployer = deployer
        self.role: str | None = None  # the role SET LOCAL ROLE switched to

    def rows(self, query: Query, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params or None).fetchall()

    def value(self, query: Query, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(query, params or None).fetchone()
        return None if row is None else row[0]

    def act_as(self, role: str) -> None:
        """SET LOCAL ROLE: the deployer must be a member of `role` (or a superuser)."""
        problem = identifier_problem(role)
        if problem is not None:
            raise RlsDebugError(f"--role {role!r}: {problem}")
        with self.savepoint():
            try:
                self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise RlsDebugError(
                    f"--role {role}: the deployer {self.deployer.session_user} cannot act as "
                    f"it (SET ROLE needs membership in {role}): {str(exc).strip()}") from exc
        self.role = role

    def back_to_deployer(self) -> None:
        self.conn.execute("RESET ROLE")
        self.role = None

    @contextmanager
    def savepoint(self, name: str = "rls_debug") -> Iterator[None]:
        """A savepoint rolled back on error (the error propagates) and released otherwise."""
        savepoint = sql.Identifier(name)
        self.conn.execute(sql.SQL("SAVEPOINT {}").format(savepoint))
        try:
            yield
        except BaseException:
            self.conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(savepoint))
            raise
        self.conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))

    @contextmanager
    def undone(self, name: str = "rls_attempt") -> Iterator[None]:
        """A savepoint always rolled back: what ran inside leaves nothing behind."""
        savepoint = sql.Identifier(name)
        self.conn.execute(sql.SQL("SAVEPOINT {}").format(savepoint))
        try:
            yield
        finally:
            self.conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(savepoint))


def _deployer(conn: psycopg.Connection) -> Deployer:
    row = conn.execute(
        "SELECT session_user::text, r.rolsuper, r.rolbypassrls FROM pg_catalog.pg_roles r"
        " WHERE r.rolname = session_user").fetchone()
    assert row is not None
    return Deployer(row[0], bool(row[1]), bool(row[2]))


@contextmanager
def debug_session(dsn: str, timeout_s: float, read_only: bool = True
                  ) -> Iterator[DebugSession]:
    """Connect as the deployer and open the transaction; it is rolled back on exit."""
    conn = open_session(dsn, APPLICATION, RlsDebugError)  # autocommit: BEGIN is ours
    try:
        mode = "READ ONLY" if read_only else "READ WRITE"
        conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ, {mode}")
        milliseconds = str(max(1, int(timeout_s * 1000)))
        for setting in ("statement_timeout", "lock_timeout"):
            conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (setting, milliseconds))
        yield DebugSession(conn, _deployer(conn))
    finally:
        try:
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
