"""The SQL-object dynamic provider: one provider, per-kind apply and introspection.

Lives in an importable module so dill pickles it by reference (shared/reference/
pulumi-notes.md 1.4): refresh and destroy run the current code, and this module must stay
free of side effects at import. No connection is ever held on `self`.

Inputs of every SqlObject: kind, schema, name, table, role, on, arguments (identity),
database (where the object lives, not secret), connection (secret), ddl (canonical,
multi-line), drop_sql, requires (server features checked before applying),
allow_data_loss, provider_version, and for roles a secret password. Outputs: the inputs
plus `adopted` (the object existed before this stack and is left in place on delete).
"""

from __future__ import annotations

import difflib
import re
import time
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
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

from components import cron
from components.connection import connect, database_identity
from components.identifiers import MAX_IDENTIFIER_LENGTH, qualified, quote_ident
from components.introspect import (
    declared_setting_names,
    granted,
    job_ddl,
    live_ddl,
    relation_has_storage,
    role_flags,
)
from components.model import (
    KINDS,
    ObjectSpec,
    Requirement,
    job_setting,
    parse_cron_job_ddl,
    revoke_all_sql,
)
from components.settings import PROJECT
from components.table_changes import plan_table_change

# Bump when apply behaviour changes, so `diff` reports a change and the engine stores the
# new pickled provider (a no-change diff keeps the old one: pulumi/pulumi#6490).
PROVIDER_VERSION = "4"

IDENTITY_KEYS = ("kind", "schema", "name", "table", "role", "on", "arguments", "database")
# Identity keys that version 1 of the provider did not store: absent means empty.
OPTIONAL_IDENTITY_KEYS = ("table", "role", "on", "arguments")
DEFINITION_KEYS = ("ddl", "drop_sql", "requires", "allow_data_loss", "provider_version",
                   "password", "notes")
# What `read` hands back as refreshed inputs: every input, the secret ones too. Left out,
# the engine reads them as removed and refresh reports `-connection` drift on every
# object. The plugin sends them unmarked, and the engine marks each one secret again
# because the old input of that key was (annotateSecrets, pkg/resource/plugin).
READ_INPUT_KEYS = ("connection", *IDENTITY_KEYS, *DEFINITION_KEYS)
REQUIRED_KEYS = ("kind", "name", "database", "connection", "ddl")
# Kinds whose live state is simply made to match on create: there is nothing to adopt or
# clobber (a grant or a table's RLS flags are exactly what the stack declares).
# A cron job is made to match too: one of this stack's name in this database is its own.
CONVERGE_ON_CREATE = ("grant", "row_security", "default_privileges", "cron_job")

# Pulumi applies independent resources in parallel, but two DDL statements that touch the
# same catalog row (two indexes or triggers on one table, two grants on one object) fail
# with "tuple concurrently updated". Every apply in a database takes this session-level
# advisory lock first, so this project's DDL runs one object at a time. Reads do not.
APPLY_LOCK_KEY = 0x6D656D30_696E6672  # "mem0infr"
LOCK_TIMEOUT = "10s"  # never queue behind a long transaction holding the table
DDL_TIMEOUT = "5min"  # in-transaction DDL on empty or small objects
INDEX_BUILD_TIMEOUT = "6h"  # CREATE INDEX CONCURRENTLY on a table with rows


class SqlObjectError(Exception):
    """A refusal or failure whose message tells the operator what to do."""


def object_inputs(spec: ObjectSpec, connection: Any, database: str,
                  allow_data_loss: bool, password: Any = None) -> dict[str, Any]:
    """A SqlObject's inputs for one spec: what the program registers and tests call with.
    `password` (secret) is for roles only."""
    inputs = {"kind": spec.kind, "schema": spec.schema, "name": spec.name, "table": spec.table,
              "role": spec.role, "on": spec.on, "arguments": spec.arguments,
              "database": database, "connection": connection, "ddl": spec.ddl,
              "drop_sql": spec.drop_sql,
              "requires": [{"extension": r.extension, "min_version": r.min_version,
                            "hint": r.hint} for r in spec.requires],
              "allow_data_loss": allow_data_loss, "provider_version": PROVIDER_VERSION}
    if spec.notes:
        inputs["notes"] = spec.notes
    if password is not None:
        inputs["password"] = password
    return inputs


def _differs(key: str, old: Any, new: Any) -> bool:
    if new == UNKNOWN:
        return True
    if key in OPTIONAL_IDENTITY_KEYS or key in ("requires", "notes"):
        return (old or None) != (new or None)
    return old != new


def _label(props: dict[str, Any]) -> str:
    """How messages name the object."""
    kind = props["kind"]
    if kind == "grant":
        return f"grant on {props['on']} to {props['role']}"
    if kind in ("role", "role_settings", "schema", "cron_job"):
        return f"{kind.replace('_', ' ')} {props['name']}"
    return f"{kind} {qualified(props['schema'], props['name'])}"


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
        return live_ddl(cur, props)


def _verify(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    live = _live(conn, props)
    if live != props["ddl"]:
        raise SqlObjectError(
            f"{_label(props)}: after applying, the catalog shows a different definition than "
            "declared (a model/introspection mismatch; report it):\n"
            f"{_ddl_diff(props['ddl'], live or '<missing>')}")


def _check_requirements(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Refuse before changing anything when the server lacks a feature the object needs."""
    for requirement in props.get("requires") or []:
        row = conn.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s",
                           (requirement["extension"],)).fetchone()
        have = row[0] if row else None
        if not Requirement(**requirement).met_by(have):
            found = f"version {have}" if have else "not installed"
            raise SqlObjectError(
                f"{_label(props)} needs extension {requirement['extension']} >= "
                f"{requirement['min_version']} ({found} on this server): {requirement['hint']}")


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
    # The statement ends at its semicolon; a note may follow on the next line.
    statement = ddl[match.end():].split(";\n", 1)[0].rstrip(";")
    return f"CREATE {unique}{keyword} {new_name} ON {statement};"


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
    statements = []
    for step in steps:
        if step.drop_indexes_on:
            statements += [f"DROP INDEX {qualified(props['schema'], index)}" for index in
                           _indexes_on(conn, props["schema"], props["name"],
                                       step.drop_indexes_on)]
        statements.append((step.lossy_sql or step.sql) if (has_rows and step.loses_data)
                          else step.sql)
    _execute_in_transaction(conn, statements, props)


def _indexes_on(conn: psycopg.Connection, schema: str, table: str, column: str) -> list[str]:
    """The indexes of a table that cover the column (its index resources rebuild them)."""
    rows = conn.execute(
        "SELECT i.relname FROM pg_catalog.pg_index x"
        " JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_catalog.pg_class t ON t.oid = x.indrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attname = %s"
        " WHERE n.nspname = %s AND t.relname = %s"
        "   AND a.attnum = ANY (x.indkey::pg_catalog.int2[]) ORDER BY 1",
        (column.strip('"'), schema, table)).fetchall()
    return [name for (name,) in rows]


def _ensure_extension(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    if live is None:
        _execute_in_transaction(conn, [props["ddl"]], props)
        return
    # Only the schema can differ: the canonical text names nothing else.
    schema = props["ddl"].rstrip(";").rsplit(" ", 1)[1]
    _execute_in_transaction(conn, [f"ALTER EXTENSION {props['name']} SET SCHEMA {schema}"], props)


def _ensure_role(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    role = quote_ident(props["name"])
    if live is None:
        statements = [props["ddl"]]
    else:
        # Name only the attributes that change: on Supabase, `postgres` may not even restate
        # NOSUPERUSER or NOREPLICATION in ALTER ROLE.
        wanted = props["ddl"].rstrip(";").split(" WITH ", 1)[1].split()
        with conn.cursor() as cur:
            have = role_flags(cur, props["name"]) or []
        changed = [w for w, h in zip(wanted, have, strict=True) if w != h]
        statements = [f"ALTER ROLE {role} WITH {' '.join(changed)}"]
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = '{DDL_TIMEOUT}'")
        for statement in statements:
            conn.execute(statement)
        _set_password(conn, props)
        _verify(conn, props)


def _set_password(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Set the role's password as a SCRAM verifier computed here, so the password itself
    never reaches the server, its logs or pg_stat_statements."""
    password = props.get("password")
    if not password:
        return
    verifier = conn.pgconn.encrypt_password(
        str(password).encode(), props["name"].encode(), b"scram-sha-256")
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(props["name"]), sql.Literal(verifier.decode())))


def _ensure_function(conn: psycopg.Connection, props: dict[str, Any], live: str | None,
                     olds: dict[str, Any] | None) -> None:
    try:
        _execute_in_transaction(conn, [props["ddl"]], props)
    except pg_errors.InvalidFunctionDefinition:
        # CREATE OR REPLACE cannot change a result type or a parameter name: drop the old
        # definition and create the new one in the same transaction (it fails, changing
        # nothing, while a trigger or policy still uses the function).
        drop = (olds or props)["drop_sql"]
        _execute_in_transaction(conn, [drop, props["ddl"]], props)


def _ensure_trigger(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    statements = [props["ddl"]] if live is None else [props["drop_sql"], props["ddl"]]
    _execute_in_transaction(conn, statements, props)


def _ensure_grant(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    # Revoke first: the grant declares exactly what the role holds, nothing more.
    _execute_in_transaction(conn, [revoke_all_sql(props["on"], props["role"]), props["ddl"]],
                            props)


def _ensure_policy(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    # ALTER POLICY cannot change the command: drop and create in one transaction.
    statements = [props["ddl"]] if live is None else [props["drop_sql"], props["ddl"]]
    _execute_in_transaction(conn, statements, props)


def _table_exists(conn: psycopg.Connection, props: dict[str, Any]) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                       (qualified(props["schema"], props["table"]),)).fetchone()
    return bool(row and row[0])


def _ensure_role_settings(conn: psycopg.Connection, props: dict[str, Any], live: str | None,
                          olds: dict[str, Any] | None) -> None:
    declared = set(declared_setting_names(props["ddl"]))
    dropped = [name for name in declared_setting_names((olds or {}).get("ddl") or "")
               if name not in declared]
    resets = [f"ALTER ROLE {quote_ident(props['role'])} RESET {name}" for name in dropped]
    _execute_in_transaction(conn, resets + props["ddl"].splitlines(), props)


def _ensure_schema(conn: psycopg.Connection, props: dict[str, Any], live: str | None) -> None:
    if live is None:
        _execute_in_transaction(conn, [props["ddl"]], props)
        return
    # Only the owner can differ: the canonical text names nothing else.
    owner = props["ddl"].rstrip(";").rsplit(" ", 1)[1]
    _execute_in_transaction(
        conn, [f"ALTER SCHEMA {quote_ident(props['name'])} OWNER TO {owner}"], props)


def _cron_unavailable(props: dict[str, Any], why: cron.CronUnavailable) -> SqlObjectError:
    return SqlObjectError(f"{_label(props)}: {why}; install pg_cron, or turn the job off "
                          f"(set {job_setting(props['name'])} to empty)")


def _ensure_cron_job(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Unschedule what runs under this name in this database, schedule the declared job,
    and check it, in one transaction of pg_cron's database."""
    name, when, command = parse_cron_job_ddl(props["ddl"])
    database = cron.current_database(conn)
    try:
        with cron.cron_session(conn) as cron_conn, cron_conn.transaction():
            user = cron_conn.execute("SELECT current_user::text").fetchone()[0]  # type: ignore[index]
            for job in cron.jobs_named(cron_conn, name):
                if job.database != database:
                    if job.username != user:
                        continue  # another role's job elsewhere: pg_cron keeps them apart
                    # pg_cron keys jobs by name and user: scheduling would take it over.
                    # Another stack's, or this one's moved by hand: only a person can say.
                    raise SqlObjectError(
                        f"{_label(props)}: {user} already has a job of this name that runs "
                        f"in database {job.database!r} (jobid {job.jobid}), not "
                        f"{database!r}; another stack's? Unschedule it, or deploy this "
                        "stack under another stack name or collection")
                cron.unschedule(cron_conn, job)
            cron.schedule(cron_conn, name, when, command, database)
            live = job_ddl(name, cron.find_job(cron_conn, name, database))
            if live != props["ddl"]:
                raise SqlObjectError(
                    f"{_label(props)}: after scheduling, cron.job shows a different job than "
                    f"declared:\n{_ddl_diff(props['ddl'], live or '<missing>')}")
    except cron.CronUnavailable as exc:
        raise _cron_unavailable(props, exc) from None


def _delete_cron_job(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    database = cron.current_database(conn)
    try:
        with cron.cron_session(conn) as cron_conn, cron_conn.transaction():
            for job in cron.jobs_named(cron_conn, props["name"]):
                if job.database == database:
                    cron.unschedule(cron_conn, job)
    except cron.CronUnavailable:
        pass  # no pg_cron: no job to remove


def _delete_role(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    if props.get("adopted"):
        return  # it was there before this stack: leave it
    try:
        with conn.transaction():
            conn.execute(props["drop_sql"])
    except pg_errors.DependentObjectsStillExist as exc:
        raise SqlObjectError(
            f"cannot drop role {props['name']}: {exc.diag.message_primary}; "
            f"{exc.diag.message_detail or ''} Revoke what it still holds (REASSIGN OWNED BY / "
            "DROP OWNED BY in each database) and destroy again.") from None


def _delete_grant(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    if not props.get("drop_sql"):
        return  # a declared absence of privileges: nothing to undo
    with conn.cursor() as cur:
        if granted(cur, props["on"], props["role"]) is None:
            return  # the object or the role is gone, and the grant with it
    with conn.transaction():
        conn.execute(props["drop_sql"])


def _delete_role_settings(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    with conn.cursor() as cur:
        if role_flags(cur, props["role"]) is None:
            return
    with conn.transaction():
        for statement in props["drop_sql"].splitlines():
            conn.execute(statement)


def _delete_table(conn: psycopg.Connection, props: dict[str, Any], allow_data_loss: bool) -> None:
    if _has_rows(conn, props["schema"], props["name"]) and not allow_data_loss:
        raise SqlObjectError(
            f"refusing to drop table {qualified(props['schema'], props['name'])}: it holds "
            "rows. Back them up first (pg_dump), then allow it with "
            "`pulumi config set allowDataLoss true` and `pulumi destroy --run-program` (the "
            "engine hands the provider the stack's current config only when it runs the "
            "program).")
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

def current_connection(configured_url: str | None, props: dict[str, Any]) -> str:
    """The stack's configured databaseUrl when it reaches the resource's database (rotated
    credentials apply to refresh and destroy too), else the connection state froze."""
    if configured_url and database_identity(configured_url) == props.get("database"):
        return configured_url
    return str(props["connection"])


def _wait_for_apply_lock(conn: psycopg.Connection) -> None:
    """Take the project's apply lock (session level), polling rather than blocking.

    A session blocked in pg_advisory_lock() holds a snapshot for as long as it waits, and
    CREATE INDEX CONCURRENTLY in the session holding the lock waits for every older
    snapshot to end: two resources applied at once would deadlock. Each try is a short
    transaction that ends at once."""
    delay = 0.02
    while not conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)",
                           (APPLY_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


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
        return current_connection(getattr(self, "_configured_url", None), props)

    def _allow_data_loss(self, props: dict[str, Any]) -> bool:
        configured = getattr(self, "_configured_allow_data_loss", None)
        return bool(props.get("allow_data_loss")) if configured is None else configured

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(k, f"{k} is required") for k in REQUIRED_KEYS
                    if news.get(k) in (None, "")]
        if news.get("kind") not in (UNKNOWN, *KINDS):
            failures.append(CheckFailure("kind", f"unknown kind {news.get('kind')!r}; "
                                         f"allowed: {', '.join(KINDS)}"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in IDENTITY_KEYS if _differs(k, olds.get(k), news.get(k))]
        changes = replaces + [k for k in DEFINITION_KEYS
                              if _differs(k, olds.get(k), news.get(k))]
        same_name = not any(k in replaces for k in ("kind", "schema", "name"))
        return DiffResult(changes=bool(changes), replaces=replaces,
                          delete_before_replace=bool(replaces) and same_name)

    def _session(self, props: dict[str, Any], apply: bool = True) -> psycopg.Connection:
        """An autocommit session for one object; DDL in it never queues for long.

        An `apply` session first waits for the project's apply lock (no timeout: another
        apply of this stack is running), then sets the lock timeout for its DDL."""
        conn = connect(self._connection(props), autocommit=True)
        if apply:
            _wait_for_apply_lock(conn)
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        return conn

    def create(self, props: dict[str, Any]) -> CreateResult:
        with self._session(props) as conn:
            live = _live(conn, props)
            adopted = live is not None
            if live is None:
                _check_requirements(conn, props)
                self._ensure(conn, props, None)
            elif props["kind"] in CONVERGE_ON_CREATE:
                _check_requirements(conn, props)
                self._ensure(conn, props, live)
            elif live == props["ddl"]:
                if props["kind"] == "role":
                    with conn.transaction():
                        _set_password(conn, props)  # the stack publishes this credential
            else:
                raise SqlObjectError(
                    f"{_label(props)} already exists "
                    "with a different definition, so it cannot be adopted:\n"
                    f"{_ddl_diff(props['ddl'], live)}\nDrop or rename the existing object, or "
                    "change the stack settings to match it.")
        return CreateResult(_resource_id(props), {**props, "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self._session(props, apply=False) as conn:
            live = _live(conn, props)
        if live is None:
            return ReadResult(None, {})
        outs = {**props, "ddl": live}
        return ReadResult(id_, outs, {k: outs[k] for k in READ_INPUT_KEYS if k in outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with self._session(news) as conn:
            live = _live(conn, news)
            if live != news["ddl"]:
                _check_requirements(conn, news)
                self._ensure(conn, news, live, olds)
            elif news["kind"] == "role" and news.get("password") != olds.get("password"):
                with conn.transaction():
                    _set_password(conn, news)
        return UpdateResult({**news, "adopted": bool(olds.get("adopted"))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with self._session(props) as conn:
            kind = props["kind"]
            if kind == "table":
                _delete_table(conn, props, self._allow_data_loss(props))
            elif kind == "extension":
                _delete_extension(conn, props)
            elif kind == "role":
                _delete_role(conn, props)
            elif kind == "grant":
                _delete_grant(conn, props)
            elif kind == "role_settings":
                _delete_role_settings(conn, props)
            elif kind == "cron_job":
                _delete_cron_job(conn, props)
            elif kind in ("policy", "row_security"):
                if _table_exists(conn, props):  # else it went with its table
                    with conn.transaction():
                        conn.execute(props["drop_sql"])
            elif kind == "default_privileges":
                with conn.cursor() as cur:
                    if role_flags(cur, props["role"]) is not None:
                        with conn.transaction():
                            conn.execute(props["drop_sql"])
            else:
                with conn.transaction():
                    conn.execute(props["drop_sql"])

    def _ensure(self, conn: psycopg.Connection, props: dict[str, Any], live: str | None,
                olds: dict[str, Any] | None = None) -> None:
        kind = props["kind"]
        if kind == "index":
            _ensure_index(conn, props, live)
        elif kind == "table":
            _ensure_table(conn, props, live, self._allow_data_loss(props))
        elif kind == "extension":
            _ensure_extension(conn, props, live)
        elif kind == "role":
            _ensure_role(conn, props, live)
        elif kind == "function":
            _ensure_function(conn, props, live, olds)
        elif kind == "trigger":
            _ensure_trigger(conn, props, live)
        elif kind == "grant":
            _ensure_grant(conn, props, live)
        elif kind == "role_settings":
            _ensure_role_settings(conn, props, live, olds)
        elif kind == "policy":
            _ensure_policy(conn, props, live)
        elif kind == "schema":
            _ensure_schema(conn, props, live)
        elif kind == "cron_job":
            _ensure_cron_job(conn, props)
        elif kind in ("row_security", "default_privileges"):
            _execute_in_transaction(conn, [props["ddl"]], props)
        elif kind == "statistics":  # no ALTER changes what it covers: drop and create
            _execute_in_transaction(conn, [props["drop_sql"], props["ddl"]] if live else
                                    [props["ddl"]], props)
        else:
            raise SqlObjectError(f"unknown kind {kind!r}")


def _resource_id(props: dict[str, Any]) -> str:
    schema = props.get("schema")
    return f"{props['kind']}:{schema}.{props['name']}" if schema else \
        f"{props['kind']}:{props['name']}"
