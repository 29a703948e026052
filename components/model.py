"""The model: Settings -> ordered object specs. Pure: no Pulumi, no I/O.

Each spec's `ddl` is written in the canonical form PostgreSQL's catalog prints the object
in (with `search_path` empty, so every non-catalog name is schema-qualified): the form
`components.introspect` reconstructs from a live database. Declared and live definitions
therefore compare as plain text, and a difference reads as a SQL line diff in a preview.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.identifiers import qualified, quote_ident
from components.settings import Settings
from components.templates import render_template

KINDS = ("extension", "table", "index")


@dataclass(frozen=True)
class ObjectSpec:
    kind: str  # one of KINDS
    schema: str
    name: str
    table: str  # the table an index belongs to; "" for other kinds
    family: str  # which component owns it: extensions | tables | indexes
    ddl: str  # canonical CREATE statement
    drop_sql: str
    depends_on: tuple[str, ...] = ()  # keys of specs that must exist first
    data_bearing: bool = False  # dropping it loses rows: `protect` applies
    comment: str = ""  # why the object looks the way it does; shown by `render`

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}"

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)


def vector_type(settings: Settings) -> str:
    return f"{qualified(settings.extension_schema, 'vector')}({settings.dimensions})"


def _extension(settings: Settings) -> ObjectSpec:
    schema = settings.extension_schema
    return ObjectSpec(
        kind="extension", schema=schema, name="vector", table="", family="extensions",
        ddl=render_template("extension", name="vector", schema=quote_ident(schema)),
        drop_sql="DROP EXTENSION IF EXISTS vector;",
        comment=f"pgvector, in schema {schema}"
        + (" (where Supabase keeps extensions)" if schema == "extensions" else ""),
    )


def _memories_table(settings: Settings, depends_on: str) -> ObjectSpec:
    name = settings.collection
    return ObjectSpec(
        kind="table", schema="public", name=name, table="", family="tables",
        ddl=render_template(
            "memories_table", table=qualified("public", name),
            vector_type=vector_type(settings), pkey=quote_ident(f"{name}_pkey")),
        drop_sql=f"DROP TABLE IF EXISTS {qualified('public', name)};",
        depends_on=(depends_on,), data_bearing=True,
        comment="mem0's own layout: (id uuid, vector, payload jsonb) in schema public",
    )


def _indexed_column(settings: Settings) -> str:
    # vector_l2_ops is pgvector's default operator class for ivfflat (hnsw has none), and
    # the catalog omits a default class when it prints an index, so the canonical form does.
    if settings.vector_index.method == "ivfflat" and settings.vector_index.measure == "l2":
        return "vector"
    return f"vector {qualified(settings.extension_schema, settings.vector_index.opclass)}"


def _vector_index(settings: Settings, table: ObjectSpec) -> ObjectSpec | None:
    index = settings.vector_index
    if index.method == "none":
        return None
    name = f"{settings.collection}_vector_idx"
    if index.method == "hnsw":
        options = f"m='{index.m}', ef_construction='{index.ef_construction}'"
    else:
        options = f"lists='{index.lists}'"
    return ObjectSpec(
        kind="index", schema="public", name=name, table=table.name, family="indexes",
        ddl=render_template(
            "vector_index", name=quote_ident(name), table=table.qualified_name,
            method=index.method, column=_indexed_column(settings), options=options),
        drop_sql=f"DROP INDEX IF EXISTS {qualified('public', name)};",
        depends_on=(table.key,),
        comment=f"{index.method} chosen by {index.reason}; measure {index.measure}",
    )


def build_model(settings: Settings) -> list[ObjectSpec]:
    """Every object the stack declares, in dependency order (dependencies first)."""
    extension = _extension(settings)
    table = _memories_table(settings, extension.key)
    specs = [extension, table]
    vector_index = _vector_index(settings, table)
    if vector_index is not None:
        specs.append(vector_index)
    _check_order(specs)
    return specs


def _check_order(specs: list[ObjectSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise ValueError(f"model declares {spec.key} twice")
        missing = [d for d in spec.depends_on if d not in seen]
        if missing:
            raise ValueError(f"model orders {spec.key} before its dependencies {missing}")
        seen.add(spec.key)
