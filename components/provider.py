"""The SQL-object dynamic provider: one provider, per-kind apply and introspection.

Lives in an importable module so dill pickles it by reference (shared/reference/
pulumi-notes.md 1.4): refresh and destroy run the current code, and this module must stay
free of side effects at import. No connection is ever held on `self`.

Inputs of every SqlObject: kind, schema, name, table, database (where the object lives,
not secret), connection (secret), ddl (canonical, multi-line), drop_sql, allow_data_loss,
provider_version. Outputs: the inputs plus `adopted` (the object existed before this stack
and is left in place on delete).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime.rpc import UNKNOWN

from components.connection import connect, database_identity
from components.identifiers import MAX_IDENTIFIER_LENGTH, qualified
from components.introspect import live_ddl, relation_has_storage
from components.model import ObjectSpec
from components.settings import PROJECT
from components.table_changes import plan_table_change

# Bump when apply behaviour changes, so `diff` reports a change and the engine stores the
# new pickled provider (a no-change diff keeps the old one: pulumi/pulumi#6490).
PROVIDER_VERSION = "1"

IDENTITY_KEYS = ("kind", "schema", "name", "table", "database")
DEFINITION_KEYS = ("ddl", "drop_sql", "allow_data_loss", "provider_version")
# What `read` hands back as refreshed inputs. Not the connection: the dynamic-provider plugin
# serializes these without secret markers, and a DSN must never land in state as plaintext.
READ_INPUT_KEYS = IDENTITY_KEYS + DEFINITION_KEYS
REQUIRED_KEYS = ("kind", "schema", "name", "database", "connection", "ddl", "drop_sql")

LOCK_TIMEOUT = "10s"  # never queue behind a long transaction holding the table
DDL_TIMEOUT = "5min"  # in-transaction DDL on empty or small objects
INDEX_BUILD_TIMEOUT = "6h"  # CREATE INDEX CONCURRENTLY on a table with rows


class SqlObjectError(Exception):
    """A refusal or failure whose message tells the operator what to do."""


def object_inputs(spec: ObjectSpec, connection: Any, database: str,
                  allow_data_loss: bool) -> dict[str, Any]:
    """A SqlObject's inputs for one spec: what the program registers and tests call with."""
    return {"kind": spec.kind, "schema": spec.schema, "name": spec.name, "table": spec.table,
            "database": database, "connection": connection, "ddl": spec.ddl,
            "drop_sql": spec.drop_sql, "allow_data_loss": allow_data_loss,
            "provider_version": PROVIDER_VERSION}


def _differs(old: Any, new: Any) -> bool:
    return new == UNKNOWN or old != new


def _ddl_diff(expected: str, actual: str) -> str:
    return "\n".join(difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "declared", "live", lineterm="", n=1))


def _execute_in_transaction(conn: psycopg.Connection, statements: list[str],
                            props: dict[str, Any], timeout: str = DDL_TIMEOUT) -> None:
    """Run statements and check the result against the declared DDL before committing."""
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = '{timeout}'")
        for statement in statements:
            conn.execute(statement)
        _verify(conn, props)


def _live(conn: psycopg.Connection, props: dict[str, Any]) -> str | None:
    with conn.cursor() as cur:
        return live_ddl(cur, props["kind"], props["schema"], props["name"], props.get("table", ""))


def _verify(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    live = _live(conn, props)
    if live != props["ddl"]:
        raise SqlObjectError(
            f"{props['kind']} {qualified(props['schema'], props['name'])}: after applying, the "
            "catalog shows a different definition than declared (a model/introspection "
            f"mismatch; report it):\n{_ddl_diff(props['ddl'], live or '<missing>')}")


def _has_rows(conn: psycopg.Connection, schema: str, name: str) -> bool:
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
            query = f"SELECT EXISTS (SELECT 1 FROM {qualified(schema, name)})"
            row = conn.execute(query).fetchone()
    except pg_errors.InsufficientPrivilege as exc:
        raise SqlObjectError(
            f"cannot tell whether {qualified(schema, name)} holds rows: the deploying role is "
            f"subject to row-level security ({exc.diag.message_primary}); deploy as the owner "
            "with BYPASSRLS or as a superuser") from None
    return bool(row and row[0])


# --- per-kind behaviour -------------------------------------------------------------------

_INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON ")


def _index_ddl_named(ddl: str, new_name: str, concurrently: bool) -> str:
    match = _INDEX_HEAD.match(ddl)
    if match is None:
        raise SqlObjectError(f"not a canonical CREATE INDEX statement: {ddl[:80]!r}")
    unique = match.group(1) or ""
    keyword = "INDEX CONCURRENTLY" if concurrently else "INDEX"
    return f"CREATE {unique}{keyword} {new_name} ON " + ddl[match.end():].split("\n")[0]


def _build_index(conn: psycopg.Connection, props: dict[str, Any], build_name: str) -> None:
    """Build the declared index under `build_name` (unqualified: an index lives in its
    table's schema); CONCURRENTLY when the table has rows."""
    schema, table = props["schema"], props["table"]
    with conn.cursor() as cur:
        concurrent = relation_has_storage(cur, schema, table)
    statement = _index_ddl_named(props["ddl"], build_name, concurrent)
    if not concurrent:
        with conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = '{DDL_TIMEOUT}'")
            conn.execute(statement)
        return
    try:
        conn.execute(f"SET statement_timeout = '{INDEX_BUILD_TIMEOUT}'")
        conn.execute(statement)
    except psycopg.Error:
        # A failed concurrent build leaves an INVALID index behind: remove it.
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(schema, build_name)}")
        raise
    finally:
        conn.execute("RESET statement_timeout")


def _ensure_index(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    schema, name = props["schema"], props["name"]
    if live is None:
        _build_index(conn, props, name)
        with conn.transaction():
            _verify(conn, props)
        return
    # Build the new definition beside the old one, then swap: searches keep an index.
    temp = (name[: MAX_IDENTIFIER_LENGTH - 9] + "_mem0_new")
    conn.execute(f"DROP INDEX IF EXISTS {qualified(schema, temp)}")  # an earlier attempt's
    _build_index(conn, props, temp)
    _execute_in_transaction(conn, [
        f"DROP INDEX {qualified(schema, name)}",
        f"ALTER INDEX {qualified(schema, temp)} RENAME TO {name}",
    ], props)


def _ensure_table(conn: psycopg.Connection, props: dict[str, Any], live: str | None,
                  allow_data_loss: bool) -> None:
    if live is None:
        _execute_in_transaction(conn, [props["ddl"]], props)
        return
    steps = plan_table_change(live, props["ddl"])
    lossy = [s for s in steps if s.loses_data]
    has_rows = bool(lossy) and _has_rows(conn, props["schema"], props["name"])
    if has_rows and not allow_data_loss:
        reasons = "\n".join(f"  - {s.why}" for s in lossy)
        raise SqlObjectError(
            f"refusing to change table {qualified(props['schema'], props['name'])}: it holds "
            f"rows and the change would lose data:\n{reasons}\nBack the data up first; to "
            "proceed anyway set `allowDataLoss: true` in the stack and run again.")
    statements = [(s.lossy_sql or s.sql) if (has_rows and s.loses_data) else s.sql
                  for s in steps]
    _execute_in_transaction(conn, statements, props)


def _ensure_extension(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    if live is None:
        _execute_in_transaction(conn, [props["ddl"]], props)
        return
    # Only the schema can differ: the canonical text names nothing else.
    schema = props["ddl"].rstrip(";").rsplit(" ", 1)[1]
    _execute_in_transaction(conn, [f"ALTER EXTENSION {props['name']} SET SCHEMA {schema}"], props)


def _delete_table(conn: psycopg.Connection, props: dict[str, Any], allow_data_loss: bool) -> None:
    if _has_rows(conn, props["schema"], props["name"]) and not allow_data_loss:
        raise SqlObjectError(
            f"refusing to drop table {qualified(props['schema'], props['name'])}: it holds "
            "rows. Back them up first (pg_dump), then allow it with "
            "`pulumi config set allowDataLoss true` and destroy again.")
    with conn.transaction():
        conn.execute(props["drop_sql"])


def _delete_extension(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    if props.get("adopted"):
        return  # it was there before this stack: leave it
    try:
        with conn.transaction():
            conn.execute(props["drop_sql"])
    except pg_errors.DependentObjectsStillExist:
        # Objects this stack does not manage still use it (a table made by hand with a
        # vector column): keep the extension rather than break them.
        pass


# --- the provider --------------------------------------------------------------------------

class SqlObjectProvider(ResourceProvider):
    """Creates, reads, diffs, updates and deletes one SQL object per resource."""

    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        # The stack's current config beats what state froze at the last apply: rotated
        # credentials and a newly given allowDataLoss apply to refresh and destroy too.
        self._configured_url = req.config.get(f"{PROJECT}:databaseUrl") or None
        allow = req.config.get(f"{PROJECT}:allowDataLoss")
        self._configured_allow_data_loss = None if allow is None else str(allow).lower() == "true"

    def _connection(self, props: dict[str, Any]) -> str:
        url = getattr(self, "_configured_url", None)
        if url and database_identity(url) == props.get("database"):
            return url
        return str(props["connection"])

    def _allow_data_loss(self, props: dict[str, Any]) -> bool:
        configured = getattr(self, "_configured_allow_data_loss", None)
        return bool(props.get("allow_data_loss")) if configured is None else configured

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(k, f"{k} is required") for k in REQUIRED_KEYS
                    if news.get(k) in (None, "")]
        if news.get("kind") not in (UNKNOWN, "extension", "table", "index"):
            failures.append(CheckFailure("kind", f"unknown kind {news.get('kind')!r}; "
                                         "allowed: extension, table, index"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in IDENTITY_KEYS if _differs(olds.get(k), news.get(k))]
        changes = replaces + [k for k in DEFINITION_KEYS if _differs(olds.get(k), news.get(k))]
        same_name = not any(k in replaces for k in ("kind", "schema", "name"))
        return DiffResult(changes=bool(changes), replaces=replaces,
                          delete_before_replace=bool(replaces) and same_name)

    def _session(self, props: dict[str, Any]) -> psycopg.Connection:
        """An autocommit session for one object; DDL in it never queues for long."""
        conn = connect(self._connection(props), autocommit=True)
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        return conn

    def create(self, props: dict[str, Any]) -> CreateResult:
        with self._session(props) as conn:
            live = _live(conn, props)
            adopted = live is not None
            if live is None:
                self._ensure(conn, props, None)
            elif live != props["ddl"]:
                raise SqlObjectError(
                    f"{props['kind']} {qualified(props['schema'], props['name'])} already exists "
                    "with a different definition, so it cannot be adopted:\n"
                    f"{_ddl_diff(props['ddl'], live)}\nDrop or rename the existing object, or "
                    "change the stack settings to match it.")
        return CreateResult(_resource_id(props), {**props, "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self._session(props) as conn:
            live = _live(conn, props)
        if live is None:
            return ReadResult(None, {})
        outs = {**props, "ddl": live}
        return ReadResult(id_, outs, {k: outs[k] for k in READ_INPUT_KEYS if k in outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with self._session(news) as conn:
            live = _live(conn, news)
            if live != news["ddl"]:
                self._ensure(conn, news, live)
        return UpdateResult({**news, "adopted": bool(olds.get("adopted"))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with self._session(props) as conn:
            kind = props["kind"]
            if kind == "table":
                _delete_table(conn, props, self._allow_data_loss(props))
            elif kind == "extension":
                _delete_extension(conn, props)
            else:
                with conn.transaction():
                    conn.execute(props["drop_sql"])

    def _ensure(self, conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
        kind = props["kind"]
        if kind == "index":
            _ensure_index(conn, props, live)
        elif kind == "table":
            _ensure_table(conn, props, live, self._allow_data_loss(props))
        elif kind == "extension":
            _ensure_extension(conn, props, live)
        else:
            raise SqlObjectError(f"unknown kind {kind!r}")


def _resource_id(props: dict[str, Any]) -> str:
    return f"{props['kind']}:{props['schema']}.{props['name']}"
