"""The import sources, opened from the command line or from a run's stored spec.

- `PlatformFileSource`: a JSON Lines file `migrate export` wrote; seq is the line number,
  and a line that is not a JSON object is a Problem at that line.
- `TableSource`: `SCHEMA.TABLE` made by mem0's `pgvector` provider (`id uuid, vector,
  payload jsonb`), read with a server-side cursor in id order, so seq is the row's place
  in that order and stays the same from one read to the next while the table is left
  alone; vectors arrive through pgvector's adapters, as lists of float.
- `VecsSource`: `SCHEMA.COLLECTION` made by mem0's `supabase` provider through vecs
  (`id varchar, vec vector, metadata jsonb`), likewise, ordered by id in the "C"
  collation so the order does not depend on the database's locale.

A spec (`Source.spec()`) holds no password: `open_source` takes the DSN again, so that
`resume` on another machine names its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import psycopg

from components.connection import connect
from components.identifiers import identifier_problem, qualified, quote_ident
from components.migrate import transform
from components.migrate.records import MigrationError, Problem, Record, SourceKind
from components.vectors import register

__all__ = ["PlatformFileSource", "TableSource", "VecsSource", "open_source",
           "parse_qualified", "source_from_arguments"]

FETCH_ROWS: Final = 1000  # rows per round trip of the server-side cursor
FORMS: Final = ("FILE (a JSON Lines file from `migrate export`), --from-table SCHEMA.TABLE "
                "(mem0's pgvector table) or --from-vecs SCHEMA.COLLECTION (mem0's supabase "
                "provider's vecs collection)")


@dataclass(frozen=True)
class PlatformFileSource:
    """A Platform export, one raw memory per line."""

    path: Path
    kind: ClassVar[SourceKind] = SourceKind.PLATFORM_FILE

    def describe(self) -> str:
        return f"Platform export {self.path}"

    def spec(self) -> dict[str, str]:
        return {"kind": self.kind.value, "path": str(self.path.resolve())}

    def count(self) -> int | None:
        with self.path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))

    def read(self, after: int = 0) -> Iterator[Record | Problem]:
        with self.path.open("rb") as handle:
            for seq, line in enumerate(handle, start=1):
                if seq <= after:
                    continue
                origin = f"line {seq}"
                try:
                    raw = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    yield Problem(seq, origin, f"not UTF-8 text ({exc})")
                    continue
                except ValueError as exc:
                    yield Problem(seq, origin, f"not JSON ({exc})")
                    continue
                if not isinstance(raw, dict):
                    yield Problem(seq, origin, f"a JSON {type(raw).__name__}, not an object")
                    continue
                yield transform.from_platform(seq, origin, raw)


@dataclass(frozen=True)
class _DatabaseSource:
    """A table read in id order with a server-side cursor."""

    schema: str
    table: str
    dsn: str
    kind: ClassVar[SourceKind]
    columns: ClassVar[tuple[str, str, str]]  # id, vector, payload
    order: ClassVar[str]
    option: ClassVar[str]
    made_by: ClassVar[str]

    @property
    def name(self) -> str:
        return qualified(self.schema, self.table)

    def describe(self) -> str:
        return f"{self.made_by} {self.schema}.{self.table}"

    def spec(self) -> dict[str, str]:
        return {"kind": self.kind.value, "table": f"{self.schema}.{self.table}"}

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = connect(self.dsn, application="mem0infra-migrate-source")
        except psycopg.Error as exc:
            raise MigrationError(f"{self.option}: cannot connect to the source database: "
                                 f"{str(exc).strip()}") from exc
        try:
            self._check(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT pg_catalog.to_regclass(%s)::oid", (self.name,)).fetchone()
        if row is None or row[0] is None:
            raise MigrationError(f"{self.option} {self.schema}.{self.table}: no such table in "
                                 "the source database (or no privilege to see it)")
        found = dict(conn.execute(
            "SELECT a.attname, tn.nspname FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            " JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (row[0],)).fetchall())
        missing = [c for c in self.columns if c not in found]
        if missing:
            raise MigrationError(
                f"{self.option} {self.schema}.{self.table} lacks column(s) "
                f"{', '.join(missing)}: not a table {self.made_by} made (it has "
                f"{', '.join(self.columns)})")
        register(conn, found[self.columns[1]])

    def count(self) -> int | None:
        with self._connect() as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.name}").fetchone()
            return int(row[0]) if row else 0

    def read(self, after: int = 0) -> Iterator[Record | Problem]:
        ident, vector, payload = (quote_ident(c) for c in self.columns)
        # Binary results: pgvector's loader reads a vector straight into numpy.
        with self._connect() as conn, conn.cursor(name="mem0infra_migrate_source",
                                                  binary=True) as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(f"SELECT {ident}, {vector}, {payload} FROM {self.name}"
                           f" ORDER BY {ident}{self.order} OFFSET %s", (after,))
            for seq, (row_id, values, body) in enumerate(cursor, start=after + 1):
                yield self.convert(seq, row_id, values, body)

    def convert(self, seq: int, row_id: object, vector: object,
                payload: object) -> Record | Problem:
        raise NotImplementedError


class TableSource(_DatabaseSource):
    kind = SourceKind.TABLE
    columns = ("id", "vector", "payload")
    order = ""
    option = "--from-table"
    made_by = "mem0's pgvector table"

    def convert(self, seq: int, row_id: object, vector: object,
                payload: object) -> Record | Problem:
        return transform.from_table_row(seq, row_id, vector, payload)


class VecsSource(_DatabaseSource):
    kind = SourceKind.VECS
    columns = ("id", "vec", "metadata")
    order = ' COLLATE "C"'
    option = "--from-vecs"
    made_by = "the vecs collection"

    def convert(self, seq: int, row_id: object, vector: object,
                payload: object) -> Record | Problem:
        return transform.from_vecs_row(seq, row_id, vector, payload)


def parse_qualified(option: str, value: str, noun: str) -> tuple[str, str]:
    """`SCHEMA.NAME` → (schema, name), both valid identifiers, or an error naming `option`."""
    parts = value.split(".")
    if len(parts) != 2:
        raise MigrationError(f"{option} {value!r}: give SCHEMA.{noun} (e.g. public.mem0 or "
                             f"vecs.mem0)")
    for part in parts:
        problem = identifier_problem(part)
        if problem:
            raise MigrationError(f"{option} {value!r}: {part!r} {problem}")
    return parts[0], parts[1]


def _needs_dsn(option: str, dsn: str | None) -> str:
    if not dsn:
        raise MigrationError(f"{option} needs a database to read from: pass --dsn (or set "
                             "MEM0_DATABASE_URL)")
    return dsn


def source_from_arguments(file: Path | None, from_table: str | None, from_vecs: str | None,
                          dsn: str | None) -> PlatformFileSource | TableSource | VecsSource:
    """The one source the import's arguments name."""
    given = [g for g in (file, from_table, from_vecs) if g is not None]
    if len(given) != 1:
        raise MigrationError(f"import needs exactly one source: {FORMS}")
    if file is not None:
        if not file.is_file():
            raise MigrationError(f"FILE {file}: no such file; give {FORMS}")
        return PlatformFileSource(file)
    if from_table is not None:
        schema, table = parse_qualified("--from-table", from_table, "TABLE")
        return TableSource(schema, table, _needs_dsn("--from-table", dsn))
    assert from_vecs is not None
    schema, collection = parse_qualified("--from-vecs", from_vecs, "COLLECTION")
    return VecsSource(schema, collection, _needs_dsn("--from-vecs", dsn))


def open_source(spec: Mapping[str, str],
                dsn: str | None) -> PlatformFileSource | TableSource | VecsSource:
    """The source a run stored with `spec()`, opened again (by `resume`, `verify`)."""
    kind = spec.get("kind")
    if kind == SourceKind.PLATFORM_FILE.value:
        return source_from_arguments(Path(spec.get("path", "")), None, None, dsn)
    if kind == SourceKind.TABLE.value:
        return source_from_arguments(None, spec.get("table", ""), None, dsn)
    if kind == SourceKind.VECS.value:
        return source_from_arguments(None, None, spec.get("table", ""), dsn)
    raise MigrationError(f"the run's source spec {dict(spec)!r} names no known kind "
                         f"({', '.join(k.value for k in SourceKind)})")
