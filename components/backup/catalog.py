"""The live catalog as backup and restore need it: each table's written columns, its
primary key, the vector dimensions, and the server's facts for the manifest.

Every SQL statement backup and restore build names only what this module read from the
target's own catalog (never a name from a backup file), quoted by `quote_ident`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from components.identifiers import qualified, quote_ident

# The columns a backup holds: not dropped, not generated (user_id, agent_id, run_id and
# org_id are recomputed from the payload and cannot be written), in attnum order. An
# identity column (the history's id) is not "generated" in attgenerated: it is kept.
_COLUMNS = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       t.typnamespace::pg_catalog.regnamespace::text, a.atthasdef OR NOT a.attnotnull
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""
_PRIMARY_KEY = """
SELECT a.attname
FROM pg_catalog.pg_constraint c
CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.conrelid = %s AND c.contype = 'p'
ORDER BY k.position
"""
_VECTOR = re.compile(r"(?:^|\.)(?:vector|halfvec)\((\d+)\)$")  # halfvec above 2000 (indexed)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type prints it with an empty search_path: public.vector(16)
    type_schema: str = "pg_catalog"
    # A row written without it gets its default, else NULL: what `ADD COLUMN` gave the rows
    # already there, so a backup taken before the column was added can still be restored.
    fillable: bool = False

    def differs(self, left: str, right: str) -> str:
        """SQL: `left.column` and `right.column` hold different values. With an empty
        search_path an extension type's `=` must be named with its schema, which IS
        DISTINCT FROM cannot do; the history trigger compares vectors the same way."""
        a, b = f"{left}.{quote_ident(self.name)}", f"{right}.{quote_ident(self.name)}"
        if self.type_schema == "pg_catalog":
            return f"{a} IS DISTINCT FROM {b}"
        return (f"NOT COALESCE({a} OPERATOR({quote_ident(self.type_schema)}.=) {b}, "
                f"{a} IS NULL AND {b} IS NULL)")


@dataclass(frozen=True)
class LiveTable:
    schema: str
    name: str
    columns: tuple[Column, ...]  # the written (non-generated) columns, in attnum order
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def temp(self) -> str:
        """The restore's landing table for this table's rows."""
        return qualified("pg_temp", self.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote_ident(name) for name in self.names)

    def key_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote_ident(name) for name in self.primary_key)

    def only(self, names: Sequence[str]) -> LiveTable:
        """The table as a restore writes it: only the columns in `names`, in the table's
        order (the others keep their default on insert and their value on update)."""
        return replace(self, columns=tuple(c for c in self.columns if c.name in names))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def dimensions(self) -> int | None:
        """N of the `vector` column's vector(N) or halfvec(N), if it has one."""
        for column in self.columns:
            if column.name == "vector":
                found = _VECTOR.search(column.type)
                return int(found.group(1)) if found else None
        return None


def _rows(cur: psycopg.Cursor[Any], query: str, params: Sequence[object]) -> list[Any]:
    return cur.execute(query, params).fetchall()


def live_table(cur: psycopg.Cursor[Any], schema: str, name: str) -> LiveTable | None:
    """The table as the catalog has it, or None when there is no such table."""
    row = cur.execute("SELECT pg_catalog.to_regclass(%s)::oid",
                      (qualified(schema, name),)).fetchone()
    if row is None or row[0] is None:
        return None
    oid = row[0]
    columns = tuple(Column(str(n), str(t), str(s), bool(f))
                    for n, t, s, f in _rows(cur, _COLUMNS, (oid,)))
    key = tuple(str(n) for (n,) in _rows(cur, _PRIMARY_KEY, (oid,)))
    return LiveTable(schema, name, columns, key)


@dataclass(frozen=True)
class ServerFacts:
    taken_at: str  # now() of the transaction, ISO 8601 with offset
    taken_at_epoch: int
    server_version: str
    pgvector_version: str | None
    pgvector_schema: str | None


def server_facts(cur: psycopg.Cursor[Any]) -> ServerFacts:
    row = cur.execute(
        "SELECT pg_catalog.to_json(pg_catalog.now())::text,"
        " pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()))::bigint,"
        " pg_catalog.current_setting('server_version'),"
        " (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'vector'),"
        " (SELECT e.extnamespace::pg_catalog.regnamespace::text"
        "  FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')").fetchone()
    assert row is not None
    taken_at, epoch, version, vector_version, vector_schema = row
    return ServerFacts(str(taken_at).strip('"'), int(epoch), str(version),
                       vector_version, vector_schema)


def portable_type(type_text: str, vector_schema: str | None) -> str:
    """The type without pgvector's schema: Supabase keeps pgvector in `extensions`, other
    targets in `public`, and a vector's binary form is the same in both, so a backup of
    one restores into the other."""
    prefix = f"{quote_ident(vector_schema)}." if vector_schema else ""
    return type_text[len(prefix):] if prefix and type_text.startswith(prefix) else type_text
