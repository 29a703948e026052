"""Kind `table`: a table's columns, constraints, storage settings and owner.

The canonical text is one column or constraint per line, then the `ALTER TABLE` lines of
column storage and storage parameters, then the ownership line: what `read` rebuilds from
`pg_attribute`/`pg_attrdef`/`pg_constraint`. Apply plans `ALTER TABLE` steps from the
live shape to the declared fields (`components.table_changes`); a table is never
recreated, and a step that loses data on a table with rows needs `allowDataLoss`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from components.identifiers import qualified, quote_ident
from components.kinds.apply import execute_checked, has_rows, relation_has_storage
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef, SqlObjectError
from components.kinds.steps import Hazard, HazardKind, Lock, PlanStep, lock
from components.table_changes import Step, TableShape, parse_table, plan_shape_change


@dataclass(frozen=True)
class TableFields:
    """A table as the canonical text lists it; names and types as SQL (quoted if needed)."""

    table: str  # schema-qualified
    unlogged: bool
    columns: tuple[str, ...]  # full column lines: name, type, then its clauses
    constraints: tuple[tuple[str, str], ...] = ()  # (name, definition)
    storage: tuple[tuple[str, str], ...] = ()  # (column, PLAIN | EXTERNAL | MAIN | ...)
    options: tuple[tuple[str, str], ...] = ()  # storage parameters (name, value)
    owner: str = ""  # empty: no ownership line (a benchmark's scratch copy)

    def ddl(self) -> str:
        elements = [*self.columns, *(f"CONSTRAINT {n} {d}" for n, d in self.constraints)]
        body = ",\n".join(f"    {e}" for e in elements)
        lines = [f"CREATE {'UNLOGGED ' if self.unlogged else ''}TABLE {self.table} (\n"
                 f"{body}\n);"]
        lines += [f"ALTER TABLE {self.table} ALTER COLUMN {column} SET STORAGE {mode};"
                  for column, mode in self.storage]
        if self.options:
            lines.append(f"ALTER TABLE {self.table} SET "
                         f"({', '.join(f'{k}={v}' for k, v in self.options)});")
        if self.owner:
            lines.append(f"ALTER TABLE {self.table} OWNER TO {self.owner};")
        return "\n".join(lines)

    def drop_sql(self) -> str:
        return f"DROP TABLE IF EXISTS {self.table};"

    def shape(self) -> TableShape:
        """The planner's view (components.table_changes)."""
        return TableShape(self.table, self.unlogged,
                          {line.split(" ", 1)[0]: line for line in self.columns},
                          dict(self.constraints), self.owner or None, dict(self.storage),
                          dict(self.options))


def table_fields(text: str, owner: str = "") -> TableFields:
    """The fields of a table written as canonical SQL (the model's templates), with the
    ownership line `owner` (SQL) when given. Refuses a text that is not canonical: its
    rendering would differ from the catalog's, a perpetual diff."""
    shape = parse_table(text)
    fields = TableFields(shape.table, shape.unlogged, tuple(shape.columns.values()),
                         tuple(shape.constraints.items()), tuple(shape.storage.items()),
                         tuple(shape.options.items()), owner or shape.owner or "")
    expected = f"{text}\nALTER TABLE {shape.table} OWNER TO {owner};" if owner else text
    if fields.ddl() != expected:
        raise ValueError(f"table {shape.table}: its SQL is not in canonical form (one column "
                         "or constraint per line, as introspection prints it)")
    return fields


_COLUMNS = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       a.attgenerated,
       a.attidentity,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# Constraints in a fixed order: primary key, unique, foreign keys, checks, exclusions.
# NOT NULL constraints ('n', PostgreSQL 18) are shown on their columns instead.
_CONSTRAINTS = """
SELECT conname, pg_catalog.pg_get_constraintdef(oid)
FROM pg_catalog.pg_constraint
WHERE conrelid = %s AND contype <> 'n'
ORDER BY array_position(ARRAY['p','u','f','c','x']::"char"[], contype), conname
"""

_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
# Columns stored other than their type's default, then the table's storage parameters.
_TABLE_SETTINGS = """
SELECT a.attname, a.attstorage, NULL::text[]
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attstorage <> t.typstorage
UNION ALL
SELECT NULL, NULL, c.reloptions FROM pg_catalog.pg_class c
WHERE c.oid = %(oid)s AND c.reloptions IS NOT NULL
"""


def column_line(name: str, type_: str, not_null: bool, generated: str, identity: str,
                default: str | None, collation: str | None) -> str:
    line = f"{quote_ident(name)} {type_}"
    if collation:
        line += f" COLLATE {quote_ident(collation)}"
    if generated == "s":
        line += f" GENERATED ALWAYS AS ({default}) STORED"
    elif identity:
        line += " GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT") + " AS IDENTITY"
    elif default is not None:
        line += f" DEFAULT {default}"
    if not_null:
        line += " NOT NULL"
    return line


def relation(cur: Cursor, schema: str, name: str,
             relkinds: str) -> tuple[int, str, str] | None:
    """(oid, relpersistence, owner as the catalog prints it) of the relation, or None."""
    row = cur.execute(
        "SELECT c.oid, c.relpersistence, c.relowner::regrole::text FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)",
        (schema, name, list(relkinds)),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def read_fields(cur: Cursor, schema: str, name: str) -> TableFields | None:
    """The live table's fields from the catalog, or None when it does not exist."""
    found = relation(cur, schema, name, "rp")
    if found is None:
        return None
    oid, persistence, owner = found
    columns = tuple(column_line(*row) for row in cur.execute(_COLUMNS, (oid,)).fetchall())
    constraints = tuple((quote_ident(con), str(definition))
                        for con, definition in cur.execute(_CONSTRAINTS, (oid,)).fetchall())
    storage: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for column, mode, reloptions in cur.execute(_TABLE_SETTINGS, {"oid": oid}).fetchall():
        if column is not None:
            storage.append((quote_ident(column), _STORAGE[mode]))
        else:
            for item in reloptions:
                option, _, value = str(item).partition("=")
                options.append((option, value))
    return TableFields(qualified(schema, name), persistence == "u", columns, constraints,
                       tuple(storage), tuple(options), owner)


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    fields = read_fields(cur, ref["schema"], ref["name"])
    return None if fields is None else fields.ddl()


@dataclass(frozen=True)
class TableApply:
    """What applying a table change runs: each statement with the planner's step it comes
    from (None for an index dropped ahead of a column's new type), and whether a lossy
    step meets rows (then apply refuses unless the stack allows data loss)."""

    statements: tuple[tuple[str, Step | None], ...]
    lossy: tuple[Step, ...]
    rows: bool


def apply_statements(conn: psycopg.Connection, change: Change[TableFields]) -> TableApply:
    """The statements of `ensure`, from the live shape and the declared fields."""
    props = change.props
    if change.live is None:
        return TableApply(((props["ddl"], None),), (), False)
    schema, name = props["schema"], props["name"]
    with conn.cursor() as cur:
        live = read_fields(cur, schema, name)
    assert live is not None, "the table was read a moment ago"
    steps = plan_shape_change(live.shape(), change.need_fields().shape())
    lossy = tuple(s for s in steps if s.loses_data)
    rows = bool(lossy) and has_rows(conn, schema, name)
    statements: list[tuple[str, Step | None]] = []
    for step in steps:
        if step.drop_indexes_on:
            statements += [(f"DROP INDEX {qualified(schema, index)};", None) for index in
                           _indexes_on(conn, schema, name, step.drop_indexes_on)]
        statements.append(((step.lossy_sql or step.sql) if (rows and step.loses_data)
                           else step.sql, step))
    return TableApply(tuple(statements), lossy, rows)


def ensure(conn: psycopg.Connection, change: Change[TableFields]) -> None:
    planned = apply_statements(conn, change)
    if planned.rows and not change.allow_data_loss:
        props = change.props
        reasons = "\n".join(f"  - {s.why}" for s in planned.lossy)
        raise SqlObjectError(
            f"refusing to change table {qualified(props['schema'], props['name'])}: it holds "
            f"rows and the change would lose data:\n{reasons}\nBack the data up first; to "
            "proceed anyway set `allowDataLoss: true` in the stack and run again.")
    execute_checked(conn, [statement for statement, _ in planned.statements], change)


# ALTER TABLE forms that take less than ACCESS EXCLUSIVE (PostgreSQL's
# AlterTableGetLockLevel): column storage and storage parameters.
_LIGHT_ALTER = re.compile(r" (SET STORAGE \w+|SET \(.*\)|RESET \(.*\));$")
_REWRITES = re.compile(r" ALTER COLUMN \S+ TYPE | SET (UN)?LOGGED;$")
_SCANS = re.compile(r" SET NOT NULL;$| ADD CONSTRAINT \S+ (CHECK|FOREIGN KEY|PRIMARY KEY|UNIQUE)")


def plan(cur: Cursor, change: Change[TableFields]) -> list[PlanStep]:
    planned = apply_statements(cur.connection, change)
    table = qualified(change.props["schema"], change.props["name"])
    stored = relation_has_storage(cur, change.props["schema"], change.props["name"])
    steps = []
    for statement, step in planned.statements:
        hazards: list[Hazard] = []
        if change.live is not None:
            light = _LIGHT_ALTER.search(statement) is not None
            why = step.why if step else "an index on a column whose type changes"
            hazards.append(lock(Lock.SHARE_UPDATE_EXCLUSIVE if light else Lock.ACCESS_EXCLUSIVE,
                                table, why))
        if step is not None and _REWRITES.search(statement) and stored:
            hazards.append(Hazard(HazardKind.TABLE_REWRITE, f"rewrites every row of {table} "
                                  "(and its indexes) under ACCESS EXCLUSIVE: mem0 waits "
                                  "for the whole rewrite", on=table))
        if step is not None and _SCANS.search(statement):
            hazards.append(Hazard(HazardKind.LOCK, f"scans every row of {table} to check "
                                  "the new constraint while holding the lock", on=table,
                                  lock=Lock.ACCESS_EXCLUSIVE))
        if step is not None and step.loses_data and planned.rows:
            lost, what = _lost(cur, table, statement)
            hazards.append(Hazard(HazardKind.ROWS_LOST, f"{lost} {what} of {table} lost: "
                                  f"{step.why}", on=table, rows=lost))
            if not change.allow_data_loss:
                hazards.append(Hazard(HazardKind.REFUSED, "apply refuses this step while the "
                                      "table holds rows, unless the stack sets "
                                      "`allowDataLoss: true` (back the data up first)",
                                      on=table))
        steps.append(PlanStep(statement, tuple(hazards)))
    return steps


_DROPPED_COLUMN = re.compile(r" DROP COLUMN (\S+);$")
_RETYPED_COLUMN = re.compile(r" ALTER COLUMN (\S+) TYPE ")


def _lost(cur: Cursor, table: str, statement: str) -> tuple[int, str]:
    """How many values a lossy statement destroys: the column's non-null values (counted
    past row-level security, which would hide rows), else the table's rows."""
    match = _DROPPED_COLUMN.search(statement) or _RETYPED_COLUMN.search(statement)
    column = match.group(1) if match else ""
    where = f" WHERE {column} IS NOT NULL" if column else ""
    with cur.connection.transaction():
        cur.execute("SET LOCAL row_security = off")
        count = int(cur.execute(f"SELECT count(*) FROM {table}{where}")  # type: ignore[index]
                    .fetchone()[0])
    return count, (f"values of column {column} (rows holding one)" if column else "rows")


def _indexes_on(conn: psycopg.Connection, schema: str, table: str, column: str) -> list[str]:
    """The indexes of a table that cover the column (its index resources rebuild them)."""
    rows = conn.execute(
        "SELECT i.relname FROM pg_catalog.pg_index x"
        " JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_catalog.pg_class t ON t.oid = x.indrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attname = %s"
        " WHERE n.nspname = %s AND t.relname = %s"
        "   AND a.attnum = ANY (x.indkey::pg_catalog.int2[]) ORDER BY 1",
        (column.strip('"'), schema, table)).fetchall()
    return [name for (name,) in rows]


def delete(conn: psycopg.Connection, change: Change[TableFields]) -> None:
    props = change.props
    if has_rows(conn, props["schema"], props["name"]) and not change.allow_data_loss:
        raise SqlObjectError(
            f"refusing to drop table {qualified(props['schema'], props['name'])}: it holds "
            "rows. Back them up first (pg_dump), then allow it with "
            "`pulumi config set allowDataLoss true` and `pulumi destroy --run-program` (the "
            "engine hands the provider the stack's current config only when it runs the "
            "program).")
    with conn.transaction():
        conn.execute(props["drop_sql"])


SPEC = KindSpec(Kind.TABLE, Family.TABLES, TableFields, read, ensure, delete, plan=plan)
