"""Kind `schema`: a schema the stack owns (mem0_backup), and its owner.

Apply creates it, or hands it to the declared owner: the canonical text names nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef, named_label
from components.kinds.steps import PlanStep, plain_steps


@dataclass(frozen=True)
class SchemaFields:
    name: str
    owner: str

    def ddl(self) -> str:
        return schema_ddl(self.name, quote_ident(self.owner))

    def drop_sql(self) -> str:
        return f"DROP SCHEMA IF EXISTS {quote_ident(self.name)};"


def schema_ddl(name: str, owner_sql: str) -> str:
    """The canonical text, the owner as SQL (quoted where needed, as regrole prints it)."""
    return f"CREATE SCHEMA {quote_ident(name)} AUTHORIZATION {owner_sql};"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute("SELECT nspowner::regrole::text FROM pg_catalog.pg_namespace"
                      " WHERE nspname = %s", (ref["name"],)).fetchone()
    return None if row is None else schema_ddl(ref["name"], row[0])


def apply_statements(change: Change[SchemaFields]) -> list[str]:
    """Create it, or hand it to the declared owner."""
    if change.live is None:
        return [change.props["ddl"]]
    fields = change.need_fields()
    return [f"ALTER SCHEMA {quote_ident(fields.name)} OWNER TO {quote_ident(fields.owner)};"]


def ensure(conn: psycopg.Connection, change: Change[SchemaFields]) -> None:
    execute_checked(conn, apply_statements(change), change)


def plan(_cur: Cursor, change: Change[SchemaFields]) -> list[PlanStep]:
    return plain_steps(apply_statements(change))


SPEC = KindSpec(Kind.SCHEMA, Family.TABLES, SchemaFields, read, ensure, label=named_label,
                plan=plan)
