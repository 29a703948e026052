"""The plumbing every kind's apply shares: sessions' timeouts, the checked transaction,
and whether a table holds rows (the project's apply lock is apply_lock.py's).

Every apply runs in an autocommit session of its own (`SqlObjectProvider._session`); a
kind's DDL runs in one transaction that compares the live definition with the declared
one before committing, so a model/introspection mismatch can never become a perpetual
diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from components.identifiers import qualified
from components.kinds.base import Change, Cursor, SqlObjectError

DDL_TIMEOUT = "5min"  # in-transaction DDL on empty or small objects
INDEX_BUILD_TIMEOUT = "6h"  # CREATE INDEX CONCURRENTLY on a table with rows

Statement = str | sql.SQL | sql.Composed


def set_timeout(conn: psycopg.Connection, setting: str, value: str, local: bool) -> None:
    """SET [LOCAL] of a timeout, the value bound."""
    conn.execute("SELECT pg_catalog.set_config(%s, %s, %s)", (setting, value, local))


def ddl_diff(expected: str, actual: str) -> str:
    return "\n".join(difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "declared", "live", lineterm="", n=1))


def verify(conn: psycopg.Connection, change: Change[Any]) -> None:
    """Refuse (and so roll back) when the catalog does not now show the declared text."""
    with conn.cursor() as cur:
        live = change.spec.read(cur, change.props)
    declared = change.props["ddl"]
    if live != declared:
        raise SqlObjectError(
            f"{change.label}: after applying, the catalog shows a different definition than "
            "declared (a model/introspection mismatch; report it):\n"
            f"{ddl_diff(declared, live or '<missing>')}")


@contextmanager
def checked_transaction(conn: psycopg.Connection, change: Change[Any],
                        timeout: str = DDL_TIMEOUT) -> Iterator[None]:
    """A transaction with a statement timeout that verifies the object before committing."""
    with conn.transaction():
        set_timeout(conn, "statement_timeout", timeout, local=True)
        yield
        verify(conn, change)


def execute_checked(conn: psycopg.Connection, statements: Sequence[Statement],
                    change: Change[Any], timeout: str = DDL_TIMEOUT) -> None:
    """Run statements and check the result against the declared DDL before committing."""
    with checked_transaction(conn, change, timeout):
        for statement in statements:
            conn.execute(statement)


def execute(conn: psycopg.Connection, statements: Sequence[Statement]) -> None:
    """Run statements in one transaction, unchecked (deletes)."""
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)


def relation_has_storage(cur: Cursor, schema: str, name: str) -> bool:
    """True when the table has any data pages: rows may exist (RLS cannot hide them here)."""
    row = cur.execute(
        "SELECT pg_catalog.pg_relation_size(c.oid) > 0 FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s", (schema, name)).fetchone()
    return bool(row and row[0])


def has_rows(conn: psycopg.Connection, schema: str, name: str) -> bool:
    """Whether the table holds any row, seen past row-level security.

    row_security=off makes PostgreSQL raise instead of silently filtering when the role
    is subject to RLS, so a deployer that cannot see every row is told so.
    """
    with conn.cursor() as cur:
        if not relation_has_storage(cur, schema, name):
            return False
    try:
        with conn.transaction():
            conn.execute("SET LOCAL row_security = off")
            row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
                sql.Identifier(schema, name))).fetchone()
    except pg_errors.InsufficientPrivilege as exc:
        raise SqlObjectError(
            f"cannot tell whether {qualified(schema, name)} holds rows: the deploying role is "
            f"subject to row-level security ({exc.diag.message_primary}); deploy as the owner "
            "with BYPASSRLS or as a superuser") from None
    return bool(row and row[0])


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                       (qualified(schema, table),)).fetchone()
    return bool(row and row[0])


def recreate_statements(change: Change[Any]) -> list[str]:
    """Create the object, or drop and create it in one transaction where no ALTER can
    change it (policies, triggers, statistics): what `ensure` runs and the plan shows."""
    props = change.props
    return [props["ddl"]] if change.live is None else [props["drop_sql"], props["ddl"]]


def delete_with_table(conn: psycopg.Connection, change: Change[Any]) -> None:
    """Drop what lives on a table (a policy, its RLS flags), unless the table went first
    and took it along."""
    props = change.props
    if table_exists(conn, props["schema"], props["table"]):
        with conn.transaction():
            conn.execute(props["drop_sql"])
