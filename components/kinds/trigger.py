"""Kind `trigger`: a row trigger, as `pg_get_triggerdef()` prints it, plus a note when it
was disabled by hand. Apply drops and creates it in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import qualified, quote_ident
from components.kinds.apply import execute_checked, recreate_statements
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.steps import Lock, PlanStep, lock, plain_steps

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
    execute_checked(conn, recreate_statements(change), change)


def plan(_cur: Cursor, change: Change[TriggerFields]) -> list[PlanStep]:
    table = qualified(change.props["schema"], change.props["table"])
    mode = Lock.SHARE_ROW_EXCLUSIVE if change.live is None else Lock.ACCESS_EXCLUSIVE
    return plain_steps(recreate_statements(change), lock(
        mode, table, "CREATE/DROP TRIGGER (brief; waits at most the lock timeout)"))


SPEC = KindSpec(Kind.TRIGGER, Family.TRIGGERS, TriggerFields, read, ensure, plan=plan)
