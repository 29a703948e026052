"""The SQL-object dynamic provider: one provider, per-kind apply and introspection.

Lives in an importable module so dill pickles it by reference (shared/reference/
pulumi-notes.md 1.4): refresh and destroy run the current code, and this module must stay
free of side effects at import. No connection is ever held on `self`.

Inputs of every SqlObject: kind, schema, name, table, role, on, arguments (identity),
database (where the object lives, not secret), connection (secret), ddl (canonical,
multi-line), drop_sql, fields (the kind's structured fields as JSON, which apply reads
instead of parsing the ddl), requires (server features checked before applying),
allow_data_loss, provider_version, and for roles a secret password. Outputs: the inputs
plus `adopted` (the object existed before this stack and is left in place on delete).

What each kind does lives in `components.kinds`; this module looks the kind up in the
registry and never branches on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
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

from components.connection import connect, database_identity, is_embedded, tls_url
from components.kinds import Change, Kind, KindSpec, SqlObjectError, kind_spec
from components.kinds.apply import ddl_diff, set_timeout
from components.kinds.apply_lock import (
    apply_session_name,
    check_client_connection,
    wait_for_apply_lock,
)
from components.model import ObjectSpec, Requirement
from components.settings import PROJECT, SslMode
from components.timeouts import LOCK_TIMEOUT, lock_timeout_problem

__all__ = ["PROVIDER_VERSION", "ConfiguredTls", "SqlObjectError", "SqlObjectProvider",
           "current_connection", "object_inputs"]

# Bump when apply behaviour changes, so `diff` reports a change and the engine stores the
# new pickled provider (a no-change diff keeps the old one: pulumi/pulumi#6490).
# 5: inputs carry the kind's `fields`, which apply reads instead of parsing the ddl.
PROVIDER_VERSION = "5"

IDENTITY_KEYS = ("kind", "schema", "name", "table", "role", "on", "arguments", "database")
# Identity keys that version 1 of the provider did not store: absent means empty.
OPTIONAL_IDENTITY_KEYS = ("table", "role", "on", "arguments")
# `fields` is a definition key, never an identity one: state written before it existed
# (provider version 4) lacks it, and that must update in place, never replace.
DEFINITION_KEYS = ("ddl", "drop_sql", "fields", "requires", "allow_data_loss",
                   "provider_version", "password", "notes")
# Definition keys that older state or a spec may lack: absent means empty.
OPTIONAL_DEFINITION_KEYS = ("fields", "requires", "notes")
# What `read` hands back as refreshed inputs: every input, the secret ones too. Left out,
# the engine reads them as removed and refresh reports `-connection` drift on every
# object. The plugin sends them unmarked, and the engine marks each one secret again
# because the old input of that key was (annotateSecrets, pkg/resource/plugin).
READ_INPUT_KEYS = ("connection", *IDENTITY_KEYS, *DEFINITION_KEYS)
REQUIRED_KEYS = ("kind", "name", "database", "connection", "ddl")


def object_inputs(spec: ObjectSpec, connection: Any, database: str,
                  allow_data_loss: bool, password: Any = None) -> dict[str, Any]:
    """A SqlObject's inputs for one spec: what the program registers and tests call with.
    `password` (secret) is for roles only."""
    inputs = {"kind": spec.kind, "schema": spec.schema, "name": spec.name, "table": spec.table,
              "role": spec.role, "on": spec.on, "arguments": spec.arguments,
              "database": database, "connection": connection, "ddl": spec.ddl,
              "drop_sql": spec.drop_sql,
              **({"fields": kind_spec(spec.kind).input_fields(spec.fields)}
                 if spec.fields is not None else {}),
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
    if key in OPTIONAL_IDENTITY_KEYS or key in OPTIONAL_DEFINITION_KEYS:
        return bool((old or None) != (new or None))
    return bool(old != new)


class ConfiguredTls:
    """The stack config's sslMode and sslRootCert, as a provider reads them in `configure`
    (refresh and destroy run without the program, so without its parsed settings)."""

    def __init__(self, get: Callable[[str], Any] | None = None) -> None:
        get = get or (lambda _key: None)
        mode = str(get(f"{PROJECT}:sslMode") or SslMode.AUTO)
        # A connection that is not the embedded one belongs to target postgres or supabase,
        # where auto means require (the program's settings refused anything weaker).
        self.mode = SslMode.REQUIRE if mode in (SslMode.AUTO, "") else mode
        self.root_cert = str(get(f"{PROJECT}:sslRootCert") or "")

    def url(self, connection: str, source: str = "databaseUrl") -> str:
        if is_embedded(connection) or self.mode not in SslMode.values():
            return connection
        return tls_url(connection, self.mode, self.root_cert, source)


def current_connection(configured_url: str | None, props: dict[str, Any],
                       tls: ConfiguredTls | None = None) -> str:
    """The stack's configured databaseUrl when it reaches the resource's database (rotated
    credentials apply to refresh and destroy too), else the connection state froze; with
    the configured sslMode (`tls_url`), as the program's connections have it."""
    tls = tls or ConfiguredTls()
    if configured_url and database_identity(configured_url) == props.get("database"):
        return tls.url(configured_url)
    return tls.url(str(props["connection"]))


class SqlObjectProvider(ResourceProvider):
    """Creates, reads, diffs, updates and deletes one SQL object per resource."""

    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        # The stack's current config beats what state froze at the last apply: rotated
        # credentials and a newly given allowDataLoss apply to refresh and destroy too.
        self._configured_url = req.config.get(f"{PROJECT}:databaseUrl") or None
        self._tls = ConfiguredTls(req.config.get)
        allow = req.config.get(f"{PROJECT}:allowDataLoss")
        self._configured_allow_data_loss = None if allow is None else str(allow).lower() == "true"
        # lockTimeout reaches the sessions through the stack's config, not as an input: a
        # new input would show every object as changed in previews.
        lock_timeout = req.config.get(f"{PROJECT}:lockTimeout") or LOCK_TIMEOUT
        if why := lock_timeout_problem(lock_timeout):
            raise SqlObjectError(why)
        self._lock_timeout = str(lock_timeout).strip()

    def _connection(self, props: dict[str, Any]) -> str:
        return current_connection(getattr(self, "_configured_url", None), props,
                                  getattr(self, "_tls", None))

    def _allow_data_loss(self, props: dict[str, Any]) -> bool:
        configured = getattr(self, "_configured_allow_data_loss", None)
        return bool(props.get("allow_data_loss")) if configured is None else configured

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(k, f"{k} is required") for k in REQUIRED_KEYS
                    if news.get(k) in (None, "")]
        if news.get("kind") not in (UNKNOWN, *Kind):
            failures.append(CheckFailure("kind", f"unknown kind {news.get('kind')!r}; "
                                         f"allowed: {', '.join(Kind)}"))
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

        An `apply` session is named after this process and asks the server to cancel its
        statement if this process dies; it waits for the project's apply lock (no timeout:
        another apply of this stack is running; one whose deployment was killed is
        terminated: kinds/apply_lock.py), then sets the lock timeout for its DDL."""
        if not apply:
            conn = connect(self._connection(props), autocommit=True)
        else:
            conn = connect(self._connection(props), autocommit=True,
                           application=apply_session_name())
            check_client_connection(conn)
            wait_for_apply_lock(conn)
        set_timeout(conn, "lock_timeout", getattr(self, "_lock_timeout", LOCK_TIMEOUT),
                    local=False)
        return conn

    def _change(self, props: dict[str, Any], live: str | None = None,
                olds: dict[str, Any] | None = None) -> Change[Any]:
        return kind_spec(props["kind"]).change(props, live, olds, self._allow_data_loss(props))

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = kind_spec(props["kind"])
        with self._session(props) as conn:
            live = _live(conn, spec, props)
            adopted = live is not None and not spec.is_leftover(live)
            if live is None or spec.converge_on_create or not adopted:
                _check_requirements(conn, spec, props)
                spec.ensure(conn, self._change(props, live))
            elif live == props["ddl"]:
                if spec.unchanged is not None:
                    spec.unchanged(conn, self._change(props, live))
            else:
                raise SqlObjectError(
                    f"{spec.label(props)} already exists "
                    "with a different definition, so it cannot be adopted:\n"
                    f"{ddl_diff(props['ddl'], live)}\nDrop or rename the existing object, or "
                    "change the stack settings to match it.")
        return CreateResult(_resource_id(props), {**props, "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self._session(props, apply=False) as conn:
            live = _live(conn, kind_spec(props["kind"]), props)
        if live is None:
            return ReadResult(None, {})
        outs = {**props, "ddl": live}
        return ReadResult(id_, outs, {k: outs[k] for k in READ_INPUT_KEYS if k in outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        spec = kind_spec(news["kind"])
        with self._session(news) as conn:
            live = _live(conn, spec, news)
            if live != news["ddl"]:
                _check_requirements(conn, spec, news)
                spec.ensure(conn, self._change(news, live, olds))
            elif spec.unchanged is not None:
                spec.unchanged(conn, self._change(news, live, olds))
        return UpdateResult({**news, "adopted": bool(olds.get("adopted"))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # `props` may come from state an older provider wrote: deletes read no fields.
        with self._session(props) as conn:
            kind_spec(props["kind"]).delete(conn, self._change(props))


def _live(conn: psycopg.Connection, spec: KindSpec[Any], props: dict[str, Any]) -> str | None:
    with conn.cursor() as cur:
        return spec.read(cur, props)


def _check_requirements(conn: psycopg.Connection, spec: KindSpec[Any],
                        props: dict[str, Any]) -> None:
    """Refuse before changing anything when the server lacks a feature the object needs."""
    for requirement in props.get("requires") or []:
        row = conn.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s",
                           (requirement["extension"],)).fetchone()
        have = row[0] if row else None
        if not Requirement(**requirement).met_by(have):
            found = f"version {have}" if have else "not installed"
            raise SqlObjectError(
                f"{spec.label(props)} needs extension {requirement['extension']} >= "
                f"{requirement['min_version']} ({found} on this server): {requirement['hint']}")


def _resource_id(props: dict[str, Any]) -> str:
    schema = props.get("schema")
    return f"{props['kind']}:{schema}.{props['name']}" if schema else \
        f"{props['kind']}:{props['name']}"
