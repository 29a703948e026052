"""pgvector's psycopg adapters on this project's sessions, and the checks' probe vectors.

`pgvector.psycopg.register_vector` looks its type up by the bare name `vector`, which this
project's sessions cannot see: they run with an empty search_path (`connection.connect`),
and on Supabase pgvector lives in schema `extensions`. `register` finds the type by its
qualified name instead and installs the package's dumpers and loaders on one connection:
`pgvector.Vector` (and numpy arrays) are then sent as pgvector's type, text or binary, and
vector columns come back as `pgvector.Vector`.

Where code must bind a vector exactly as mem0 does (a list of floats, see components.mem0),
it passes the list and registers nothing.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo

from components.errors import Mem0InfraError
from components.identifiers import qualified, quote_ident

__all__ = ["VectorTypeMissing", "probe_vector", "register"]


class VectorTypeMissing(Mem0InfraError):
    """pgvector's type is not where the stack puts it."""


def register(conn: psycopg.Connection[Any], extension_schema: str) -> int:
    """pgvector's adapters for `extension_schema`.vector on `conn`; returns the type's oid
    (what COPY's set_types takes)."""
    name = qualified(extension_schema, "vector")
    try:
        info = TypeInfo.fetch(conn, name)
    except psycopg.errors.UndefinedObject:  # the schema itself is missing
        info = None
    if info is None:
        raise VectorTypeMissing(f"pgvector's type {name} is not in this database; install "
                                f"it with CREATE EXTENSION vector WITH SCHEMA "
                                f"{quote_ident(extension_schema)}")
    register_vector_info(conn, info)
    return info.oid


def probe_vector(dims: int, seed: int = 1) -> list[float]:
    """A deterministic, non-zero vector of `dims` values in 0.1..1.0 that differs by `seed`:
    the post-deploy checks' rows and queries."""
    return [((i * 7 + seed) % 10 + 1) / 10 for i in range(dims)]
