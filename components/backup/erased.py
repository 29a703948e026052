"""Restore's refusal of erased people: a backup holding rows of a user, agent or run that
`forget` erased is refused before any write, unless `--include-erased`.

The erasure records keep only salted hashes, and only the owner reads the salt, so the
landed rows' ids go to `mem0_erasure.erased(kind, ids)` (definer rights, read-only),
which answers which of them were erased. The ids never leave the database, and the
refusal gives counts and kinds only.
"""

from __future__ import annotations

from typing import Any

import psycopg

from components.backup.common import RestoreRefused
from components.backup.tables import ENTITIES, HISTORY, MEMBERS, MEMORIES, RELATIONSHIPS, Part
from components.erasure import PersonKind
from components.identifiers import qualified
from components.model import ERASED_FUNCTION, ERASURE_SCHEMA

ERASED = f"{qualified(ERASURE_SCHEMA, ERASED_FUNCTION)}(text, text[])"


def _ids(part: Part, kind: PersonKind) -> list[str]:
    """SQL over a landing table's written columns: where the part's rows name a `kind`."""
    key = f"'{kind}_id'::text"
    if part.kind in (MEMORIES, ENTITIES):
        return [f"(payload ->> {key})"]
    if part.kind == HISTORY:
        column = [f"{kind}_id"] if kind != PersonKind.AGENT else []
        return [*column, f"(old_value ->> {key})", f"(new_value ->> {key})"]
    if part.kind in (RELATIONSHIPS, MEMBERS) and kind == PersonKind.USER:
        return ["user_id"]
    return []


def erased_ids(cur: psycopg.Cursor[Any], parts: list[Part]) -> dict[PersonKind, int]:
    """How many erased ids of each kind the landed rows (pg_temp) hold; none when the
    database predates erasure (no erased() function, so no erasure either)."""
    found = cur.execute("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
                        (ERASED,)).fetchone()
    if not found or not found[0]:
        return {}
    counts: dict[PersonKind, int] = {}
    for kind in PersonKind:
        selects = [f"SELECT {expression} FROM {qualified('pg_temp', part.table)}"
                   for part in parts for expression in _ids(part, kind)]
        if not selects:
            continue
        row = cur.execute(
            f"SELECT pg_catalog.cardinality({qualified(ERASURE_SCHEMA, ERASED_FUNCTION)}(%s, "
            f"ARRAY(SELECT DISTINCT i FROM ({' UNION '.join(selects)}) found(i) "
            "WHERE i IS NOT NULL)))", (str(kind),)).fetchone()
        if row and row[0]:
            counts[kind] = int(row[0])
    return counts


def describe(counts: dict[PersonKind, int]) -> str:
    return " and ".join(f"{n} erased {kind} id{'s' if n != 1 else ''}"
                        for kind, n in counts.items())


def refuse_erased(cur: psycopg.Cursor[Any], parts: list[Part], include_erased: bool) -> str:
    """Raise RestoreRefused when the landed rows hold an erased id, unless
    `include_erased`; returns what was found, in words ("" when nothing)."""
    counts = erased_ids(cur, parts)
    if counts and not include_erased:
        raise RestoreRefused(
            f"the backup holds rows of {describe(counts)} (erased with `forget` after the "
            "backup was taken); restoring would bring them back. Restore without them "
            "(`--user-id` of another user), or pass --include-erased to restore them anyway")
    return describe(counts)
