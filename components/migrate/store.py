"""The checkpoint store: schema mem0_migration's tables by name, the run rows, and the
transactions every step opens as the stack's service role.

Every write of a migration happens in a transaction that acts as the service role (the
only role granted anything in mem0_migration, and one that bypasses the memories' row-level
security), so a run started on one machine can be resumed, rolled back or verified from
another with the same stack and `--dsn`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from components.backup.session import act_as_service_role
from components.connection import open_session
from components.identifiers import qualified, quote_ident
from components.migrate.records import MigrationError
from components.model import HISTORY_TABLE, MIGRATION_SCHEMA
from components.settings import Settings
from components.vectors import register

__all__ = ["APPLICATION", "KEEP_TIMES", "Names", "Run", "RunState", "as_service",
           "create_run", "load_run", "load_runs", "new_run_id", "session", "set_state"]

APPLICATION = "mem0infra-migrate"
# The transaction setting under which the touch trigger keeps the times a write gives
# (sql/touch_function.sql; only for a role that bypasses row-level security).
KEEP_TIMES = "mem0_migration.keep_times"
DEFAULT_BATCH_SIZE = 1000


class RunState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Names:
    """The SQL names a migration uses, qualified and quoted."""

    memories: str
    history: str
    runs: str
    staged: str
    batches: str
    preimages: str
    marks: str
    equals: str  # pgvector's = on an empty search_path: OPERATOR(schema.=)

    @classmethod
    def of(cls, settings: Settings) -> Names:
        def table(name: str) -> str:
            return qualified(MIGRATION_SCHEMA, name)
        return cls(memories=qualified("public", settings.collection),
                   history=qualified("public", HISTORY_TABLE),
                   runs=table("runs"), staged=table("staged"), batches=table("batches"),
                   preimages=table("preimages"), marks=table("history_marks"),
                   equals=f"OPERATOR({quote_ident(settings.extension_schema)}.=)")

    def vectors_differ(self, left: str, right: str) -> str:
        """SQL: the two vector expressions differ (NULL equals only NULL)."""
        return (f"NOT COALESCE({left} {self.equals} {right}, "
                f"{left} IS NULL AND {right} IS NULL)")


@dataclass(frozen=True)
class Run:
    """One `migrate import`, as mem0_migration.runs keeps it."""

    id: str
    source_kind: str
    source_spec: dict[str, str]
    target_table: str
    dims: int
    options: dict[str, Any]
    state: RunState
    staged_seq: int
    staged_rows: int
    staging_done: bool
    skipped: list[dict[str, Any]]
    failure: str | None
    started_at: datetime
    finished_at: datetime | None
    started_by: str
    # The vector indexes the bulk load dropped and has not built again yet (None: none).
    dropped_indexes: list[dict[str, Any]] | None = None

    @property
    def batch_size(self) -> int:
        return int(self.options.get("batch_size", DEFAULT_BATCH_SIZE))

    @property
    def last_seq(self) -> int:
        """The highest seq the source had when the run was validated."""
        return int(self.options.get("last_seq", self.staged_seq))

    @property
    def total_batches(self) -> int:
        return math.ceil(self.last_seq / self.batch_size)

    def batch_range(self, batch: int) -> tuple[int, int]:
        """Batch `batch` (1-based) covers these seqs, both included."""
        return (batch - 1) * self.batch_size + 1, min(batch * self.batch_size, self.last_seq)


_COLUMNS = ("id, source_kind, source_spec, target_table, dims, options, state, staged_seq, "
            "staged_rows, staging_done, skipped, failure, started_at, finished_at, started_by, "
            "dropped_indexes")


def _run(row: tuple[Any, ...]) -> Run:
    return Run(row[0], row[1], dict(row[2]), row[3], int(row[4]), dict(row[5]),
               RunState(row[6]), int(row[7]), int(row[8]), bool(row[9]), list(row[10]),
               row[11], row[12], row[13], row[14],
               list(row[15]) if row[15] is not None else None)


def new_run_id(now: datetime | None = None) -> str:
    """`m20261206-211500-ab12`: sortable by start, unique enough with its random tail."""
    now = now or datetime.now(UTC)
    return f"m{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@contextmanager
def session(dsn: str, settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection (autocommit between the transactions `as_service` opens) with pgvector's
    adapters registered."""
    if settings.client_profile != "python":
        raise MigrationError(f"migrate writes mem0's Python layout; this stack's "
                             f"clientProfile is {settings.client_profile!r}")
    if settings.vector_column_type != "vector":
        raise MigrationError(f"migrate stages vectors as pgvector's vector; this stack keeps "
                             f"{settings.vector_column_type}({settings.dimensions}) columns")
    with open_session(dsn, APPLICATION, MigrationError) as conn:
        register(conn, settings.extension_schema)
        yield conn


@contextmanager
def as_service(conn: psycopg.Connection[Any], settings: Settings,
               keep_times: bool = False) -> Iterator[psycopg.Cursor[Any]]:
    """One transaction acting as the service role; with `keep_times`, the touch trigger
    keeps the created_at/updated_at this transaction writes."""
    with conn.transaction(), conn.cursor() as cur:
        act_as_service_role(cur, settings.service_role, MigrationError)
        if keep_times:
            cur.execute("SELECT pg_catalog.set_config(%s, 'on', true)", (KEEP_TIMES,))
        try:
            cur.execute(f"SELECT dropped_indexes FROM {Names.of(settings).runs} LIMIT 0")
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            missing = (f"schema {MIGRATION_SCHEMA} is missing"
                       if isinstance(exc, psycopg.errors.UndefinedTable) else
                       f"{MIGRATION_SCHEMA}.runs lacks its column dropped_indexes")
            raise MigrationError(
                f"{missing}: the stack declares it; deploy the stack with this version "
                "(`pulumi up`) before migrating") from exc
        yield cur


def create_run(cur: psycopg.Cursor[Any], names: Names, run_id: str, kind: str,
               spec: Mapping[str, str], dims: int, options: Mapping[str, Any],
               skipped: list[dict[str, Any]]) -> None:
    cur.execute(f"INSERT INTO {names.runs} (id, source_kind, source_spec, target_table, dims,"
                " options, skipped) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (run_id, kind, Jsonb(dict(spec)), names.memories, dims, Jsonb(dict(options)),
                 Jsonb(skipped)))


def load_run(cur: psycopg.Cursor[Any], names: Names, run_id: str,
             lock: bool = False) -> Run:
    row = cur.execute(f"SELECT {_COLUMNS} FROM {names.runs} WHERE id = %s"
                      + (" FOR UPDATE" if lock else ""), (run_id,)).fetchone()
    if row is None:
        raise MigrationError(f"no migration run {run_id!r} in {MIGRATION_SCHEMA} "
                             "(`migrate status` lists the runs)")
    return _run(row)


def load_runs(cur: psycopg.Cursor[Any], names: Names) -> list[Run]:
    rows = cur.execute(f"SELECT {_COLUMNS} FROM {names.runs} "
                       "ORDER BY started_at DESC, id DESC").fetchall()
    return [_run(r) for r in rows]


def set_state(cur: psycopg.Cursor[Any], names: Names, run_id: str, state: RunState,
              failure: str | None = None) -> None:
    finished = state != RunState.RUNNING
    cur.execute(f"UPDATE {names.runs} SET state = %s, failure = %s, finished_at = "
                f"CASE WHEN %s THEN pg_catalog.now() END WHERE id = %s",
                (state.value, failure, finished, run_id))
