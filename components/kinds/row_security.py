"""Kind `row_security`: a table's row-level security flags (`relrowsecurity`,
`relforcerowsecurity`), with the table's access matrix as the resource's `notes`. On
create they are made to match rather than adopted."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import qualified
from components.kinds.apply import delete_with_table, execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.steps import Lock, PlanStep, lock, plain_steps


@dataclass(frozen=True)
class RowSecurityFields:
    table: str  # schema-qualified
    enabled: bool
    forced: bool

    def ddl(self) -> str:
        return (f"ALTER TABLE {self.table} {'ENABLE' if self.enabled else 'DISABLE'} "
                "ROW LEVEL SECURITY;\n"
                f"ALTER TABLE {self.table} {'FORCE' if self.forced else 'NO FORCE'} "
                "ROW LEVEL SECURITY;")

    def drop_sql(self) -> str:
        """PostgreSQL's defaults back: not forced, then disabled."""
        return (f"ALTER TABLE {self.table} NO FORCE ROW LEVEL SECURITY;\n"
                f"ALTER TABLE {self.table} DISABLE ROW LEVEL SECURITY;")


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    table = qualified(ref["schema"], ref["table"])
    row = cur.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_catalog.pg_class"
                      " WHERE oid = pg_catalog.to_regclass(%s)", (table,)).fetchone()
    return None if row is None else RowSecurityFields(table, bool(row[0]), bool(row[1])).ddl()


def apply_statements(change: Change[RowSecurityFields]) -> list[str]:
    """The two ALTER TABLE lines of the declared text, one transaction."""
    return change.props["ddl"].splitlines()  # type: ignore[no-any-return]


def ensure(conn: psycopg.Connection, change: Change[RowSecurityFields]) -> None:
    execute_checked(conn, apply_statements(change), change)


def plan(_cur: Cursor, change: Change[RowSecurityFields]) -> list[PlanStep]:
    table = qualified(change.props["schema"], change.props["table"])
    return plain_steps(apply_statements(change), lock(
        Lock.ACCESS_EXCLUSIVE, table, "ALTER TABLE ... ROW LEVEL SECURITY (brief; waits at "
        "most the lock timeout)"))


SPEC = KindSpec(Kind.ROW_SECURITY, Family.POLICIES, RowSecurityFields, read, ensure,
                delete_with_table, converge_on_create=True, plan=plan)
