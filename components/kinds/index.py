"""Kind `index`: an index as `pg_get_indexdef()` prints it, one clause a line.

Apply builds the index (CONCURRENTLY when its table has rows, dropping a failed build's
INVALID leftover); a changed index is built beside the old one under a temporary name and
swapped in one transaction, so searches always have an index. An INVALID index an
interrupted apply left (under the temporary name, or under the final one when it was a
first build) is dropped CONCURRENTLY and built again; create never adopts one.

The model's `IndexFields` render the DDL; the resource's inputs carry only the index's
`IndexHead` (name, table, unique): the method, parameters and predicate are what the ddl
input shows, and a changed index must read in a preview as that ddl change alone. The
statement that builds it under another name is the head rendered with that name, then the
declared ddl after its head (a prefix the head renders, checked, never searched for).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import MAX_IDENTIFIER_LENGTH, qualified, quote_ident
from components.kinds.apply import (
    DDL_TIMEOUT,
    INDEX_BUILD_TIMEOUT,
    execute_checked,
    relation_has_storage,
    set_timeout,
    verify,
)
from components.kinds.base import (
    Change,
    Cursor,
    Family,
    Kind,
    KindSpec,
    ObjectRef,
    SqlObjectError,
)
from components.kinds.steps import Hazard, HazardKind, Lock, PlanStep, lock
from components.kinds.table import relation

INVALID_INDEX_NOTE = "-- INVALID: a failed or interrupted build left this index unusable"


@dataclass(frozen=True)
class IndexHead:
    """What an index's inputs carry: the head of its statement."""

    name: str
    table: str  # schema-qualified
    unique: bool = False

    def head(self, name: str = "", concurrently: bool = False) -> str:
        return (f"CREATE {'UNIQUE ' if self.unique else ''}INDEX"
                f"{' CONCURRENTLY' if concurrently else ''} {quote_ident(name or self.name)} "
                f"ON {self.table}")

    def statement(self, ddl: str, name: str, concurrently: bool) -> str:
        """The declared statement (`ddl`, whose first line is this head) under another
        name, optionally CONCURRENTLY; a note after the statement is left out."""
        declared = self.head()
        if not ddl.startswith(declared):
            raise SqlObjectError(f"index {self.name}: its ddl does not begin with "
                                 f"{declared!r}; the inputs disagree (report it)")
        body = ddl[len(declared):].split(";\n", 1)[0].rstrip(";")
        return f"{self.head(name, concurrently)}{body};"


@dataclass(frozen=True)
class IndexFields:
    name: str
    table: str  # schema-qualified
    using: str  # the method and its column list: "btree (user_id, created_at DESC)"
    unique: bool = False
    parameters: str = ""  # inside WITH (...): "m='16', ef_construction='64'"
    where: str = ""  # the predicate of a partial index

    @property
    def head(self) -> IndexHead:
        return IndexHead(self.name, self.table, self.unique)

    def definition(self) -> str:
        """The one-line statement, in pg_get_indexdef's form."""
        parameters = f" WITH ({self.parameters})" if self.parameters else ""
        where = f" WHERE {self.where}" if self.where else ""
        return f"{self.head.head()} USING {self.using}{parameters}{where}"

    def ddl(self) -> str:
        return index_ddl(self.definition())

    def drop_sql(self, schema: str) -> str:
        return f"DROP INDEX IF EXISTS {qualified(schema, self.name)};"


def index_ddl(definition: str) -> str:
    """The canonical text of an index from its one-line definition (pg_get_indexdef's form,
    without the semicolon): USING, WITH and WHERE each begin a line, so a preview shows a
    changed method, parameter or predicate as its own SQL line."""
    head, _, using = definition.partition(" USING ")
    using, _, where = using.partition(" WHERE ")
    using, _, parameters = using.rpartition(" WITH (") if " WITH (" in using else \
        (using, "", "")
    lines = [head, f"  USING {using}"]
    if parameters:
        lines.append(f"  WITH ({parameters}")
    if where:
        lines.append(f"  WHERE {where}")
    return "\n".join(lines) + ";"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    found = relation(cur, ref["schema"], ref["name"], "iI")
    if found is None:
        return None
    definition, valid = cur.execute(
        "SELECT pg_catalog.pg_get_indexdef(indexrelid), indisvalid"
        " FROM pg_catalog.pg_index WHERE indexrelid = %s", (found[0],)).fetchone()  # type: ignore[misc]
    text = index_ddl(definition)
    return text if valid else f"{text}\n{INVALID_INDEX_NOTE}"


BUILD_SUFFIX = "_mem0_new"


@dataclass(frozen=True)
class IndexApply:
    """The statements of one index apply, in order: what `ensure` runs and the plan shows.

    A new index is built under its name; a changed one beside the old (`cleanup` drops an
    earlier attempt's leftover first), then `swap` drops the old and renames the new in
    one transaction."""

    table: str  # schema-qualified
    build_name: str
    concurrent: bool  # the table has rows: CONCURRENTLY, outside a transaction
    build: str
    cleanup: str = ""
    swap: tuple[str, ...] = ()


def build_name(name: str) -> str:
    """The temporary name a changed index is built under, beside the old one."""
    return name[: MAX_IDENTIFIER_LENGTH - len(BUILD_SUFFIX)] + BUILD_SUFFIX


def apply_statements(cur: Cursor, change: Change[IndexHead]) -> IndexApply:
    """What applying `change` runs, from the inputs and whether the table holds rows."""
    schema, name, table = change.props["schema"], change.props["name"], change.props["table"]
    concurrent = relation_has_storage(cur, schema, table)
    qualified_table = qualified(schema, table)
    if change.live is not None and is_invalid(change.live):
        # An interrupted build's leftover under the final name serves nothing: no swap.
        build = change.need_fields().statement(change.props["ddl"], name, concurrent)
        return IndexApply(qualified_table, name, concurrent, build,
                          cleanup=drop_concurrently(schema, name))
    target = name if change.live is None else build_name(name)
    build = change.need_fields().statement(change.props["ddl"], target, concurrent)
    if change.live is None:
        return IndexApply(qualified_table, target, concurrent, build)
    return IndexApply(
        qualified_table, target, concurrent, build,
        cleanup=drop_concurrently(schema, target),  # an earlier, interrupted attempt's
        swap=(f"DROP INDEX {qualified(schema, name)};",
              f"ALTER INDEX {qualified(schema, target)} RENAME TO {quote_ident(name)};"))


def _build(conn: psycopg.Connection, schema: str, planned: IndexApply) -> None:
    """Build the declared index under its build name (an index lives in its table's
    schema); CONCURRENTLY when the table has rows."""
    if not planned.concurrent:
        with conn.transaction():
            set_timeout(conn, "statement_timeout", DDL_TIMEOUT, local=True)
            conn.execute(planned.build)
        return
    try:
        set_timeout(conn, "statement_timeout", INDEX_BUILD_TIMEOUT, local=False)
        conn.execute(planned.build)
    except psycopg.Error:
        # A failed concurrent build leaves an INVALID index behind: remove it.
        conn.execute(drop_concurrently(schema, planned.build_name))
        raise
    finally:
        conn.execute("RESET statement_timeout")


def is_invalid(live: str) -> bool:
    """An index whose build failed or was cancelled: it serves no search."""
    return live.endswith(INVALID_INDEX_NOTE)


def drop_concurrently(schema: str, name: str) -> str:
    # CONCURRENTLY: a plain DROP INDEX would queue for the table's strongest lock behind
    # mem0's writes and stall every later statement on the table while it waits.
    return f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(schema, name)};"


def ensure(conn: psycopg.Connection, change: Change[IndexHead]) -> None:
    schema = change.props["schema"]
    with conn.cursor() as cur:
        planned = apply_statements(cur, change)
    if planned.cleanup:
        conn.execute(planned.cleanup)  # an earlier attempt's
    _build(conn, schema, planned)
    if not planned.swap:
        with conn.transaction():
            verify(conn, change)
        return
    # Built beside the old one, now swapped: searches always had an index.
    execute_checked(conn, list(planned.swap), change)


def plan(cur: Cursor, change: Change[IndexHead]) -> list[PlanStep]:
    planned = apply_statements(cur, change)
    table = planned.table
    method = _method(change.props["ddl"])
    if planned.concurrent:
        build_hazards: tuple[Hazard, ...] = (Hazard(
            HazardKind.INDEX_BUILD,
            f"builds {method} index {planned.build_name} over the rows of {table} "
            f"CONCURRENTLY: {Lock.SHARE_UPDATE_EXCLUSIVE} lock on {table} (reads and writes "
            "go on; another schema change waits) for the whole build",
            on=table, lock=Lock.SHARE_UPDATE_EXCLUSIVE, method=method),)
    else:
        build_hazards = (lock(Lock.SHARE, table, "the build of an index on an empty table"),)
    steps = [PlanStep(planned.cleanup)] if planned.cleanup else []
    steps.append(PlanStep(planned.build, build_hazards))
    swap_lock = lock(Lock.ACCESS_EXCLUSIVE, table, "the swap (DROP INDEX and RENAME, one "
                     "transaction, waiting at most the lock timeout)")
    steps += [PlanStep(statement, (swap_lock,)) for statement in planned.swap]
    return steps


def _method(ddl: str) -> str:
    """The access method of a canonical index text (its `  USING <method> (` line)."""
    for line in ddl.splitlines():
        if line.startswith("  USING "):
            return line[len("  USING "):].split(" ", 1)[0]
    return "btree"


def _head(fields: IndexFields) -> IndexHead:
    return fields.head


SPEC = KindSpec(Kind.INDEX, Family.INDEXES, IndexHead, read, ensure, to_inputs=_head,
                plan=plan, leftover=is_invalid)
