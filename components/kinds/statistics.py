"""Kind `statistics`: extended statistics, as `pg_get_statisticsobjdef()` prints them.

No ALTER changes what they cover, so apply drops and creates them in one transaction;
ANALYZE fills them.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import qualified
from components.kinds.apply import execute_checked, recreate_statements
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef


@dataclass(frozen=True)
class StatisticsFields:
    schema: str
    name: str
    types: str  # the statistics kinds: "dependencies", "ndistinct, mcv"
    on: str  # the columns and expressions, as SQL
    table: str  # schema-qualified

    def ddl(self) -> str:
        return (f"CREATE STATISTICS {qualified(self.schema, self.name)} ({self.types}) ON "
                f"{self.on} FROM {self.table};")

    def drop_sql(self) -> str:
        return f"DROP STATISTICS IF EXISTS {qualified(self.schema, self.name)};"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    row = cur.execute(
        "SELECT pg_catalog.pg_get_statisticsobjdef(s.oid) FROM pg_catalog.pg_statistic_ext s"
        " JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace"
        " WHERE n.nspname = %s AND s.stxname = %s", (ref["schema"], ref["name"])).fetchone()
    return None if row is None else f"{row[0]};"


def ensure(conn: psycopg.Connection, change: Change[StatisticsFields]) -> None:
    execute_checked(conn, recreate_statements(change), change)


SPEC = KindSpec(Kind.STATISTICS, Family.INDEXES, StatisticsFields, read, ensure,
                recreates=True)
