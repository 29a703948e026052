"""Kind `schema`: a schema the stack owns (mem0_backup), and its owner.

Apply creates it, or hands it to the declared owner: the canonical text names nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef, named_label


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


def ensure(conn: psycopg.Connection, change: Change[SchemaFields]) -> None:
    if change.live is None:
        execute_checked(conn, [change.props["ddl"]], change)
        return
    fields = change.need_fields()
    execute_checked(conn, [f"ALTER SCHEMA {quote_ident(fields.name)} OWNER TO "
                           f"{quote_ident(fields.owner)}"], change)


SPEC = KindSpec(Kind.SCHEMA, Family.TABLES, SchemaFields, read, ensure, label=named_label)
