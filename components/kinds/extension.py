"""Kind `extension`: pgvector, in the schema the target keeps extensions in.

Apply creates it, or moves it to the declared schema; delete leaves an adopted extension
alone and keeps one that objects outside the stack still use.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from components.identifiers import quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef, named_label
from components.kinds.steps import PlanStep, plain_steps


@dataclass(frozen=True)
class ExtensionFields:
    name: str
    schema: str

    def ddl(self) -> str:
        return (f"CREATE EXTENSION IF NOT EXISTS {quote_ident(self.name)} "
                f"WITH SCHEMA {quote_ident(self.schema)};")

    def drop_sql(self) -> str:
        return f"DROP EXTENSION IF EXISTS {quote_ident(self.name)};"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT n.nspname FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %s",
        (ref["name"],),
    ).fetchone()
    return None if row is None else ExtensionFields(ref["name"], row[0]).ddl()


def apply_statements(change: Change[ExtensionFields]) -> list[str]:
    """Create it, or move it: only the schema can differ, the canonical text names nothing
    else."""
    if change.live is None:
        return [change.props["ddl"]]
    fields = change.need_fields()
    return [f"ALTER EXTENSION {quote_ident(fields.name)} SET SCHEMA "
            f"{quote_ident(fields.schema)};"]


def ensure(conn: psycopg.Connection, change: Change[ExtensionFields]) -> None:
    execute_checked(conn, apply_statements(change), change)


def plan(_cur: Cursor, change: Change[ExtensionFields]) -> list[PlanStep]:
    return plain_steps(apply_statements(change))


def delete(conn: psycopg.Connection, change: Change[ExtensionFields]) -> None:
    if change.props.get("adopted"):
        return  # it was there before this stack: leave it
    try:
        with conn.transaction():
            conn.execute(change.props["drop_sql"])
    except pg_errors.DependentObjectsStillExist:
        # Objects this stack does not manage still use it (a table made by hand with a
        # vector column): keep the extension rather than break them.
        pass


def _legacy(props: ObjectRef) -> ExtensionFields:
    # The identity keys say it all: an extension's schema is its `schema`.
    return ExtensionFields(props["name"], props["schema"])


SPEC = KindSpec(Kind.EXTENSION, Family.EXTENSIONS, ExtensionFields, read, ensure, delete,
                label=named_label, legacy_fields=_legacy, plan=plan)
