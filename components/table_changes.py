"""Plan the ALTER TABLE statements that turn one canonical table definition into another.

Pure work on a table's shape: its columns, constraints, storage and owner. `parse_table`
reads the canonical text (one column or constraint per line, `components.kinds.table`),
which is how the SQL templates declare tables; the provider plans from the declared fields
and the shape introspection reads, never from its own SQL. A table is never dropped and
recreated to apply a change: rows must survive. Steps that would destroy data say so
(`loses_data`), and the provider refuses them on a table with rows unless the stack sets
`allowDataLoss`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from components.errors import ExitCode, Mem0InfraError

_HEADER = re.compile(r"^CREATE (UNLOGGED )?TABLE (\S+) \($")
_OWNER = re.compile(r"^ALTER TABLE (\S+) OWNER TO (\S+);$")
_STORAGE = re.compile(r"^ALTER TABLE \S+ ALTER COLUMN (\S+) SET STORAGE (\w+);$")
_OPTIONS = re.compile(r"^ALTER TABLE \S+ SET \((.*)\);$")


@dataclass(frozen=True)
class TableShape:
    table: str  # qualified name as rendered
    unlogged: bool
    columns: dict[str, str]  # name -> full column line
    constraints: dict[str, str]  # name -> definition after "CONSTRAINT <name> "
    owner: str | None = None  # the quoted owner, from the ownership line after the table
    # From the lines between the table and its owner: columns stored other than their
    # type's default (name -> PLAIN | MAIN | ...), and storage parameters (name -> value).
    storage: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    sql: str
    loses_data: bool
    why: str
    # What runs instead on a table with rows once the stack allows data loss (e.g. a
    # vector column whose stored embeddings cannot convert to new dimensions is cleared).
    lossy_sql: str = ""
    # A column whose indexes the provider drops first, in the same transaction: pgvector's
    # operator classes belong to one type, so no index follows a vector <-> halfvec change
    # (`operator class "vector_cosine_ops" does not accept data type halfvec`); the index's
    # own resource then builds it for the new type.
    drop_indexes_on: str = ""


class UnsupportedTableChange(Mem0InfraError, ValueError):
    """A change the planner will not make in place; the message says what to do instead."""

    exit_code = ExitCode.FAILED


def parse_table(ddl: str) -> TableShape:
    """The shape of a canonical table text (as introspection prints it and the SQL
    templates are written)."""
    lines = ddl.strip().splitlines()
    owner_line = _OWNER.match(lines[-1]) if lines else None
    if owner_line:
        lines = lines[:-1]
    settings: list[re.Match[str]] = []
    while lines and (line_match := _STORAGE.match(lines[-1]) or _OPTIONS.match(lines[-1])):
        settings.insert(0, line_match)
        lines = lines[:-1]
    storage: dict[str, str] = {}
    options: dict[str, str] = {}
    for line_match in settings:  # in written order, which the canonical text keeps
        if line_match.re is _STORAGE:
            storage[line_match.group(1)] = line_match.group(2)
        else:
            for item in line_match.group(1).split(", "):
                option, _, value = item.partition("=")
                options[option] = value
    header = _HEADER.match(lines[0]) if lines else None
    if header is None or lines[-1] != ");":
        raise ValueError(f"not a canonical CREATE TABLE statement: {ddl[:80]!r}")
    columns: dict[str, str] = {}
    constraints: dict[str, str] = {}
    for raw in lines[1:-1]:
        line = raw.strip().removesuffix(",")
        if line.startswith("CONSTRAINT "):
            _, name, definition = line.split(" ", 2)
            constraints[name] = definition
        else:
            columns[line.split(" ", 1)[0]] = line
    return TableShape(header.group(2), bool(header.group(1)), columns, constraints,
                      owner_line.group(2) if owner_line else None, storage, options)


def _column_type(line: str) -> str:
    """The type part of a column line: between the name and the first clause keyword."""
    rest = line.split(" ", 1)[1]
    return re.split(r" (?:COLLATE|GENERATED|DEFAULT|NOT NULL)\b", rest, maxsplit=1)[0]


# pgvector's dense types as format_type prints them (schema-qualified): element, dimensions.
_PGVECTOR_TYPE = re.compile(r"^(?:\S+\.)?(vector|halfvec)\((\d+)\)$")


def _column_change(table: str, name: str, old: str, new: str) -> list[Step]:
    old_type, new_type = _column_type(old), _column_type(new)
    old_rest, new_rest = old[len(name) + 1 + len(old_type):], new[len(name) + 1 + len(new_type):]
    steps: list[Step] = []
    old_vector, new_vector = _PGVECTOR_TYPE.match(old_type), _PGVECTOR_TYPE.match(new_type)
    reindex = name if old_vector and new_vector and \
        old_vector.group(1) != new_vector.group(1) else ""
    if old_type != new_type and old_vector and new_vector and \
            old_vector.group(2) == new_vector.group(2):
        # Same dimensions, vector <-> halfvec (an indexed stack crossing 2000 dimensions'
        # index limit, or its index method turning none): pgvector casts every stored
        # embedding, so the rows keep them; to halfvec each value rounds to a 16-bit float.
        steps.append(Step(
            f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {new_type};", loses_data=False,
            why=f"column {name} changes type from {old_type} to {new_type}; every stored "
                "embedding is converted in place"
                + (" (rounded to 16-bit floats)" if new_vector.group(1) == "halfvec" else ""),
            drop_indexes_on=reindex))
    elif old_type != new_type:
        migration = ""
        if old_vector and new_vector:
            migration = (
                ". Migration path that keeps every memory: deploy the new dimensions under a "
                "new `collection` (a second stack or a changed setting), re-embed each memory's "
                "text into it with the new embedder (read the old rows, then mem0 "
                "`add(..., infer=False)` with their metadata), switch the application's "
                "collection_name, then retire the old table")
        steps.append(Step(
            f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {new_type};",
            loses_data=True,
            why=f"column {name} changes type from {old_type} to {new_type}: existing values "
                "cannot be kept (for vectors: every stored embedding has the old dimensions, "
                f"so they are cleared to NULL and must be re-embedded){migration}",
            lossy_sql=f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {new_type} USING NULL;",
            drop_indexes_on=reindex))
    if old_rest == new_rest:
        return steps
    if "GENERATED" in old_rest or "GENERATED" in new_rest:
        raise UnsupportedTableChange(
            f"{table}: column {name} changes from `{old}` to `{new}`; changing a generated or "
            "identity column needs a hand-written migration")
    old_default = re.search(r" DEFAULT (.*?)(?: NOT NULL)?$", old_rest)
    new_default = re.search(r" DEFAULT (.*?)(?: NOT NULL)?$", new_rest)
    if (old_default and old_default.group(1)) != (new_default and new_default.group(1)):
        steps.append(Step(
            f"ALTER TABLE {table} ALTER COLUMN {name} "
            + (f"SET DEFAULT {new_default.group(1)};" if new_default else "DROP DEFAULT;"),
            loses_data=False, why=f"default of {name}"))
    if old_rest.endswith("NOT NULL") != new_rest.endswith("NOT NULL"):
        setting = "SET NOT NULL" if new_rest.endswith("NOT NULL") else "DROP NOT NULL"
        steps.append(Step(f"ALTER TABLE {table} ALTER COLUMN {name} {setting};",
                          loses_data=False, why=f"nullability of {name}"))
    return steps


def plan_table_change(old_ddl: str, new_ddl: str) -> list[Step]:
    """The steps from one canonical table text to another."""
    return plan_shape_change(parse_table(old_ddl), parse_table(new_ddl))


def plan_shape_change(old: TableShape, new: TableShape) -> list[Step]:
    """The steps that turn table `old` into `new` (the provider's: live into declared)."""
    if old.table != new.table:
        raise UnsupportedTableChange(f"cannot turn table {old.table} into {new.table} in place")
    table = new.table
    steps: list[Step] = []
    if old.unlogged != new.unlogged:
        steps.append(Step(f"ALTER TABLE {table} SET {'UNLOGGED' if new.unlogged else 'LOGGED'};",
                          loses_data=False, why="persistence"))
    # Constraints go first (they may depend on columns about to change), then columns.
    for name, definition in old.constraints.items():
        if new.constraints.get(name) != definition:
            steps.append(Step(f"ALTER TABLE {table} DROP CONSTRAINT {name};",
                              loses_data=False, why=f"constraint {name} changes or goes"))
    for name in old.columns:
        if name not in new.columns:
            steps.append(Step(f"ALTER TABLE {table} DROP COLUMN {name};", loses_data=True,
                              why=f"column {name} is no longer declared: its values go"))
    for name, line in new.columns.items():
        if name not in old.columns:
            steps.append(Step(f"ALTER TABLE {table} ADD COLUMN {line};", loses_data=False,
                              why=f"new column {name}"))
        elif old.columns[name] != line:
            steps.extend(_column_change(table, name, old.columns[name], line))
    for name, definition in new.constraints.items():
        if old.constraints.get(name) != definition:
            steps.append(Step(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition};",
                              loses_data=False, why=f"constraint {name}"))
    steps.extend(_storage_changes(old, new))
    if new.owner and new.owner != old.owner:
        steps.append(Step(f"ALTER TABLE {table} OWNER TO {new.owner};", loses_data=False,
                          why=f"owner becomes {new.owner}"))
    return steps


def _storage_changes(old: TableShape, new: TableShape) -> list[Step]:
    """Column storage and storage parameters: catalog changes that take effect for rows
    written from now on (existing rows move only when rewritten, docs/performance.md)."""
    table = new.table
    steps = []
    for column in sorted(old.storage.keys() | new.storage.keys()):
        # A new type resets the column to its type's storage: declare it again after.
        retyped = column in old.columns and column in new.columns and \
            _column_type(old.columns[column]) != _column_type(new.columns[column])
        if column in new.columns and (retyped or
                                      old.storage.get(column) != new.storage.get(column)):
            # A column no longer listed goes back to its type's default storage (SET STORAGE
            # DEFAULT is PostgreSQL 16+): pgvector's types are EXTERNAL, the others EXTENDED.
            vector = re.search(r"\bhalfvec\(|\bvector\(", new.columns[column]) is not None
            mode = new.storage.get(column, "EXTERNAL" if vector else "EXTENDED")
            steps.append(Step(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {mode};",
                              loses_data=False, why=f"storage of {column} (new rows only)"))
    changed = {k: v for k, v in new.options.items() if old.options.get(k) != v}
    if changed:
        steps.append(Step(
            f"ALTER TABLE {table} SET ({', '.join(f'{k}={v}' for k, v in changed.items())});",
            loses_data=False, why="storage parameters (new rows only)"))
    gone = sorted(old.options.keys() - new.options.keys())
    if gone:
        steps.append(Step(f"ALTER TABLE {table} RESET ({', '.join(gone)});", loses_data=False,
                          why="storage parameters back to their defaults"))
    return steps
