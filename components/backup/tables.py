"""Which tables a backup holds, and how each one is selected and restored.

The tables come from the model (`build_model(settings)`, kind "table" in schema public),
so a stack's backup follows its settings: `memory_org_members` only in org tenancy. Each
gets a *part* that says how a per-user and an incremental backup select its rows and where
it comes in the restore order. A table the model declares that no part describes stops the
backup: silently leaving it out would make a backup that looks whole and is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from components.access import MEMBERSHIP_TABLE
from components.backup.catalog import LiveTable, live_table
from components.backup.common import BackupError
from components.kinds import Kind
from components.model import HISTORY_TABLE, RELATIONSHIPS_TABLE, build_model
from components.settings import Settings

SCHEMA = "public"
MEMORIES, ENTITIES, HISTORY, RELATIONSHIPS, MEMBERS = (
    "memories", "entities", "history", "relationships", "members")
# Memberships and history first (history before memories, so the memories' trigger appends
# to the restored history), relationships last (their foreign keys need the memories).
RESTORE_ORDER = (MEMBERS, HISTORY, MEMORIES, ENTITIES, RELATIONSHIPS)
# mem0 keeps the owner in the payload; the generated user_id column holds the same value,
# but a restore's landing table has only the written columns.
PAYLOAD_USER = "(payload ->> 'user_id'::text)"


@dataclass(frozen=True)
class Part:
    table: str  # unqualified name in public
    kind: str  # MEMORIES | ENTITIES | HISTORY | RELATIONSHIPS | MEMBERS
    user_sql: str  # the row's user id, as SQL over the table's written columns
    since_column: str  # when the row last changed: what a window (--from/--to) selects by
    created_column: str | None  # when it was created, if the table keeps that apart

    @property
    def rank(self) -> int:
        return RESTORE_ORDER.index(self.kind)


def _part(table: str, kind: str) -> Part:
    user = PAYLOAD_USER if kind in (MEMORIES, ENTITIES) else "user_id"
    since = {HISTORY: "at", MEMBERS: "added_at"}.get(kind, "updated_at")
    created = "created_at" if kind in (MEMORIES, ENTITIES, RELATIONSHIPS) else None
    return Part(table, kind, user, since, created)


def check_profile(settings: Settings) -> None:
    if settings.client_profile != "python":
        raise BackupError(
            f"stack {settings.stack!r} has clientProfile {settings.client_profile!r}; backup "
            "and restore support only clientProfile 'python' (the TypeScript SDK owns its "
            "tables' contents: back them up with pg_dump)")


def data_parts(settings: Settings) -> list[Part]:
    """The stack's data tables in the model's order (the order of a backup's members)."""
    check_profile(settings)
    kinds = {settings.collection: MEMORIES, f"{settings.collection}_entities": ENTITIES,
             HISTORY_TABLE: HISTORY, RELATIONSHIPS_TABLE: RELATIONSHIPS,
             MEMBERSHIP_TABLE: MEMBERS}
    names = [s.name for s in build_model(settings) if s.kind == Kind.TABLE and s.schema == SCHEMA]
    unknown = [name for name in names if name not in kinds]
    if unknown:
        raise BackupError(
            f"stack {settings.stack!r} declares {', '.join(f'{SCHEMA}.{n}' for n in unknown)}, "
            "which backup does not know how to select and restore; describe it in "
            "components/backup/tables.py")
    return [_part(name, kinds[name]) for name in names]


def restore_order(parts: list[Part]) -> list[Part]:
    return sorted(parts, key=lambda p: p.rank)


def deployed_tables(cur: psycopg.Cursor[Any], parts: list[Part]) -> dict[str, LiveTable]:
    """Each part's table as the database has it; BackupError when one is missing or has no
    primary key (the stack is not deployed there, or an older version of it is)."""
    tables = {}
    for part in parts:
        table = live_table(cur, SCHEMA, part.table)
        if table is None or not table.primary_key:
            raise BackupError(f"{SCHEMA}.{part.table} is missing or has no primary key: "
                              "is the stack deployed on this database?")
        tables[part.table] = table
    return tables
