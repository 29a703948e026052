"""Restoring from the in-database snapshots the stack's cron job takes (schema mem0_backup).

`mem0_backup.<collection>_snapshots` has one row per snapshot (id, taken_at and how many
memories, entities and relationships it copied); `mem0_backup.<table>` holds, for each of
the memories, the entities and the relationships, `snapshot_id` followed by the live
table's written columns. A snapshot lands in the same temporary tables as a file's
members and goes through the same upsert; it has no history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from components.backup.catalog import Column, LiveTable, live_table
from components.backup.common import BackupError, RestoreRefused
from components.backup.load import create_landing
from components.backup.tables import ENTITIES, MEMORIES, RELATIONSHIPS, Part
from components.backup.verify import check_layout, column_problems
from components.identifiers import qualified
from components.model import BACKUP_SCHEMA
from components.settings import Settings

SNAPSHOT_KINDS = (MEMORIES, ENTITIES, RELATIONSHIPS)
SNAPSHOT_KEY = Column("snapshot_id", "bigint")


def snapshots_table(settings: Settings) -> str:
    return qualified(BACKUP_SCHEMA, f"{settings.collection}_snapshots")


def _describe(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join(f"{i} (taken at {taken.isoformat()})" for i, taken in rows) or "none"


def _record(cur: psycopg.Cursor[Any], settings: Settings, snapshot: int
            ) -> tuple[Any, ...]:
    """The snapshot's row: taken_at and its counts by kind; BackupError naming the
    snapshots there are when it does not exist."""
    table = snapshots_table(settings)
    found = cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if not found or not found[0]:
        raise BackupError(
            f"this database has no {table}: deploy the current version of stack "
            f"{settings.stack!r} (it declares the snapshot tables), then take snapshots "
            "with its snapshot job or `SELECT mem0_backup.take_snapshot('7 days')`")
    row: tuple[Any, ...] | None = cur.execute(
        f"SELECT taken_at, memories, entities, relationships FROM {table} WHERE id = %s",
        (snapshot,)).fetchone()
    if row is None:
        there = cur.execute(f"SELECT id, taken_at FROM {table} ORDER BY id").fetchall()
        raise BackupError(f"no snapshot {snapshot} in {table}; the snapshots there: "
                          f"{_describe(there)}")
    return row


def load_snapshot(cur: psycopg.Cursor[Any], settings: Settings, snapshot: int,
                  parts: list[Part], targets: Mapping[str, LiveTable]) -> tuple[str, list[Part]]:
    """Land snapshot `snapshot` in pg_temp; returns its description and the parts it
    filled (memories, entities, relationships)."""
    taken_at, *counts = _record(cur, settings, snapshot)
    expected = dict(zip(SNAPSHOT_KINDS, counts, strict=True))
    filled = [p for p in parts if p.kind in SNAPSHOT_KINDS]
    source = f"snapshot {snapshot}"
    copies: dict[str, LiveTable] = {}
    problems: list[str] = []
    for part in filled:
        copy = live_table(cur, BACKUP_SCHEMA, part.table)
        if copy is None:
            raise BackupError(f"{qualified(BACKUP_SCHEMA, part.table)} is missing: deploy "
                              f"the current version of stack {settings.stack!r}")
        copies[part.table] = copy
        if copy.columns[:1] != (SNAPSHOT_KEY,):
            problems.append(f"{copy.qualified}: its first column is not snapshot_id bigint")
        problems += column_problems(targets[part.table], [[c.name, c.type] for c in
                                                          copy.columns[1:]],
                                    None, None, source)
    check_layout(problems, source)
    for part in filled:
        table = targets[part.table]
        create_landing(cur, table)
        cur.execute(f"INSERT INTO {table.temp} ({table.column_list()}) SELECT "
                    f"{table.column_list()} FROM {copies[part.table].qualified}"
                    f" WHERE snapshot_id = %s ORDER BY {table.key_list()}", (snapshot,))
        if cur.rowcount != expected[part.kind]:
            raise RestoreRefused(f"{source} is incomplete: {copies[part.table].qualified} "
                                 f"holds {cur.rowcount} rows of it, its record says "
                                 f"{expected[part.kind]}")
        cur.execute(f"ANALYZE {table.temp}")
    return f"{source} of {snapshots_table(settings)}, taken at {taken_at.isoformat()}", filled
