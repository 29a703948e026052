"""Kind `function`: a function's definition (the SQL template it is written in) and owner.

Apply is `CREATE OR REPLACE`; where that cannot change the function (a new result type or
parameter name), the old one is dropped and the new one created in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from components.identifiers import qualified
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef


@dataclass(frozen=True)
class FunctionFields:
    """What identifies a function and who owns it; its body stays in the `ddl` input (the
    text a reviewer diffs), written once in its SQL template."""

    schema: str
    name: str
    arguments: str  # the argument types, as regprocedure prints them
    owner: str = ""  # as SQL; empty: no ownership line (a benchmark's scratch copy)

    @property
    def signature(self) -> str:
        return f"{qualified(self.schema, self.name)}({self.arguments})"

    def ddl(self, definition: str) -> str:
        """The canonical text: the definition, then its ownership line."""
        if not self.owner:
            return definition
        return f"{definition}\nALTER FUNCTION {self.signature} OWNER TO {self.owner};"

    def drop_sql(self) -> str:
        return f"DROP FUNCTION IF EXISTS {self.signature};"


def function_signature(ref: ObjectRef) -> str:
    return f"{qualified(ref['schema'], ref['name'])}({ref.get('arguments') or ''})"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    signature = function_signature(ref)
    row = cur.execute("SELECT pg_catalog.pg_get_functiondef(p.oid), p.proowner::regrole::text"
                      " FROM pg_catalog.pg_proc p WHERE p.oid = pg_catalog.to_regprocedure(%s)",
                      (signature,)).fetchone()
    if row is None:
        return None
    return f"{row[0].rstrip(chr(10))};\nALTER FUNCTION {signature} OWNER TO {row[1]};"


def ensure(conn: psycopg.Connection, change: Change[FunctionFields]) -> None:
    props = change.props
    try:
        execute_checked(conn, [props["ddl"]], change)
    except pg_errors.InvalidFunctionDefinition:
        # CREATE OR REPLACE cannot change a result type or a parameter name: drop the old
        # definition and create the new one in the same transaction (it fails, changing
        # nothing, while a trigger or policy still uses the function).
        drop = (change.olds or props)["drop_sql"]
        execute_checked(conn, [drop, props["ddl"]], change)


SPEC = KindSpec(Kind.FUNCTION, Family.FUNCTIONS, FunctionFields, read, ensure)
