"""Kind `trigger`: a row trigger, as `pg_get_triggerdef()` prints it, plus a note when it
was disabled by hand. Apply drops and creates it in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import qualified, quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef

DISABLED_TRIGGER_NOTE = "-- DISABLED: ALTER TABLE ... DISABLE TRIGGER turned this trigger off"


@dataclass(frozen=True)
class TriggerFields:
    name: str
    timing: str  # "BEFORE UPDATE", "AFTER INSERT OR DELETE OR UPDATE"
    table: str  # schema-qualified
    function: str  # schema-qualified; called with no arguments

    def ddl(self) -> str:
        return (f"CREATE TRIGGER {quote_ident(self.name)} {self.timing} ON {self.table} "
                f"FOR EACH ROW EXECUTE FUNCTION {self.function}();")

    def drop_sql(self) -> str:
        return f"DROP TRIGGER IF EXISTS {quote_ident(self.name)} ON {self.table};"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled FROM pg_catalog.pg_trigger t"
        " WHERE t.tgrelid = pg_catalog.to_regclass(%s) AND t.tgname = %s AND NOT t.tgisinternal",
        (qualified(ref["schema"], ref["table"]), ref["name"])).fetchone()
    if row is None:
        return None
    definition, enabled = row
    return f"{definition};" + (f"\n{DISABLED_TRIGGER_NOTE}" if enabled == "D" else "")


def ensure(conn: psycopg.Connection, change: Change[TriggerFields]) -> None:
    props = change.props
    statements = [props["ddl"]] if change.live is None else [props["drop_sql"], props["ddl"]]
    execute_checked(conn, statements, change)


SPEC = KindSpec(Kind.TRIGGER, Family.TRIGGERS, TriggerFields, read, ensure)
