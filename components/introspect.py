"""Read live objects back from the catalog in the model's canonical DDL form.

One introspection serves drift detection (the provider's `read`), adoption (`create`),
validation and the tests. Each kind's reader lives in its module of `components.kinds`;
this module finds it by kind. Connections must have an empty `search_path`
(`components.connection.connect` sets it) so the catalog schema-qualifies every
non-catalog name exactly as the model writes it.
"""

from __future__ import annotations

import difflib

import psycopg

from components.identifiers import qualified
from components.kinds import Kind, ObjectRef, kind_spec
from components.kinds.apply import relation_has_storage as relation_has_storage  # re-exported
from components.kinds.cron_job import INACTIVE_JOB_NOTE as INACTIVE_JOB_NOTE  # re-exported
from components.kinds.index import INVALID_INDEX_NOTE as INVALID_INDEX_NOTE  # re-exported
from components.kinds.trigger import (  # re-exported
    DISABLED_TRIGGER_NOTE as DISABLED_TRIGGER_NOTE,
)
from components.model import BACKUP_SCHEMA, ERASURE_SCHEMA, MIGRATION_SCHEMA

Cursor = psycopg.Cursor


def live_ddl(cur: Cursor, ref: ObjectRef) -> str | None:
    """The object's definition as the catalog has it now, or None when it does not exist."""
    return kind_spec(ref["kind"]).read(cur, ref)


def live_ddl_or_none(cur: Cursor, ref: ObjectRef) -> str | None:
    """`live_ddl` for a caller inside a transaction that must stay usable: before
    PostgreSQL 16, to_regprocedure() raises when an argument type or its schema does not
    exist (a function on pgvector's type with pgvector or its schema missing); then the
    object cannot exist either. A savepoint keeps the transaction usable."""
    try:
        with cur.connection.transaction():
            return live_ddl(cur, ref)
    except (psycopg.errors.UndefinedObject, psycopg.errors.InvalidSchemaName):
        return None


def short_diff(declared: str, live: str, max_lines: int = 20) -> str:
    """A unified diff of a declared and a live definition, cut to `max_lines` lines."""
    lines = list(difflib.unified_diff(declared.splitlines(), live.splitlines(),
                                      "declared", "live", n=1, lineterm=""))
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def catalog_snapshot(cur: Cursor,
                     schemas: tuple[str, ...] = ("public", "extensions", BACKUP_SCHEMA,
                                                ERASURE_SCHEMA, MIGRATION_SCHEMA)
                     ) -> dict[str, str]:
    """Every extension, table (with its ACL), index, trigger and function in `schemas`, as
    `kind:schema.name` -> live definition.

    Compares two databases object by object (a render applied with psql against a
    deployment) and shows what a database holds beyond what a stack declares.
    """
    found: dict[str, str] = {}
    for (name,) in cur.execute(
            "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'"
            " ORDER BY extname").fetchall():
        found[f"extension:{name}"] = live_ddl(cur, {"kind": Kind.EXTENSION, "name": name}) or ""
    rows = cur.execute(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'i', 'I')"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid"
        "                 AND d.deptype = 'e')"  # objects that belong to an extension
        " ORDER BY 1, 2", (list(schemas),)).fetchall()
    for schema, name, relkind in rows:
        kind = Kind.INDEX if relkind in ("i", "I") else Kind.TABLE
        found[f"{kind}:{schema}.{name}"] = live_ddl(
            cur, {"kind": kind, "schema": schema, "name": name}) or ""
        if kind == Kind.TABLE:
            # Sorted: grants applied in another order are the same ACL.
            found[f"acl:{schema}.{name}"] = str(cur.execute(
                "SELECT pg_catalog.array_to_string(ARRAY(SELECT a::text"
                " FROM pg_catalog.unnest(relacl) AS a ORDER BY 1), ' ')"
                " FROM pg_catalog.pg_class WHERE oid = %s::regclass",
                (qualified(schema, name),)).fetchone()[0])  # type: ignore[index]
    for schema, table, trigger in cur.execute(
            "SELECT n.nspname, c.relname, t.tgname FROM pg_catalog.pg_trigger t"
            " JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND NOT t.tgisinternal ORDER BY 1, 2, 3",
            (list(schemas),)).fetchall():
        found[f"trigger:{schema}.{trigger}"] = live_ddl(
            cur, {"kind": Kind.TRIGGER, "schema": schema, "name": trigger, "table": table}) or ""
    for signature, definition in cur.execute(
            "SELECT p.oid::regprocedure::text, pg_catalog.pg_get_functiondef(p.oid)"
            " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = ANY(%s) AND p.prokind = 'f'"
            " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = p.oid"
            "                 AND d.deptype = 'e') ORDER BY 2", (list(schemas),)).fetchall():
        found[f"function:{signature}"] = definition
    return found
