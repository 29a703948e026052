"""The server under test: its version, pgvector and settings, and the search session's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components.bench.common import BenchError, set_setting
from components.identifiers import qualified, quote_ident
from components.model import app_role_search_settings, version_tuple
from components.settings import Settings

__all__ = ["MIN_PGVECTOR", "SERVER_SETTINGS", "Server", "inspect_server", "pgvector_defaults",
           "search_settings", "set_search_settings"]

MIN_PGVECTOR = (0, 5, 0)  # hnsw indexes and the element-wise vector product


@dataclass(frozen=True)
class Server:
    version: str
    version_num: int
    pgvector: str
    settings: dict[str, str]


SERVER_SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "jit", "fsync",
                   "synchronous_commit", "max_parallel_workers",
                   "max_parallel_workers_per_gather", "random_page_cost")


def inspect_server(conn: psycopg.Connection[Any], settings: Settings) -> Server:
    row = conn.execute(
        "SELECT e.extversion, n.nspname FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'vector'").fetchone()
    schema = settings.extension_schema
    if row is None:
        raise BenchError(
            f"pgvector is not installed in this database; install it first with "
            f"CREATE EXTENSION vector WITH SCHEMA {quote_ident(schema)} (the bench creates "
            "no extension)")
    if row[1] != schema:
        raise BenchError(
            f"pgvector is in schema {row[1]!r}, but stack {settings.stack!r} (target "
            f"{settings.target}) expects it in {schema!r}; allowed: a database whose pgvector "
            "is where the stack puts it")
    if version_tuple(row[0]) < MIN_PGVECTOR:
        raise BenchError(f"pgvector {row[0]} is too old; allowed: 0.5.0 or later (hnsw)")
    values = conn.execute(
        "SELECT pg_catalog.current_setting(name) FROM pg_catalog.unnest(%s::text[]) AS name",
        (["server_version", "server_version_num", *SERVER_SETTINGS],)).fetchall()
    flat = [v[0] for v in values]
    return Server(version=flat[0], version_num=int(flat[1]), pgvector=row[0],
                  settings=dict(zip(SERVER_SETTINGS, flat[2:], strict=True)))


def search_settings(settings: Settings, server: Server) -> dict[str, str]:
    """The search settings the stack gives its app role (the model's own list); those the
    server's pgvector cannot serve are left out."""
    values, requires = app_role_search_settings(settings)
    if not all(r.met_by(server.pgvector) for r in requires):
        values = {k: v for k, v in values.items() if not k.endswith(".iterative_scan")}
    return values


def set_search_settings(conn: psycopg.Connection[Any], settings: Settings,
                    server: Server) -> dict[str, str]:
    """`search_settings`, set for this session."""
    values = search_settings(settings, server)
    for name, value in values.items():
        set_setting(conn, name, value)
    return values


def pgvector_defaults(conn: psycopg.Connection[Any], extension_schema: str) -> dict[str, str]:
    """pgvector's own defaults of its settings (hnsw.ef_search 40, no iterative scan ...),
    whatever the connecting role or the database set: name -> built-in value. The settings
    exist once pgvector's library is loaded, which reading a vector does."""
    conn.execute(f"SELECT '[1]'::{qualified(extension_schema, 'vector')}").fetchone()
    rows = conn.execute(
        "SELECT name, boot_val FROM pg_catalog.pg_settings"
        " WHERE name LIKE 'hnsw.%' OR name LIKE 'ivfflat.%' ORDER BY name").fetchall()
    return {name: value for name, value in rows if value is not None}
