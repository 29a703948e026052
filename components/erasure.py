"""Erasing a person: what each table the stack declares gives up, and the SQL for it.

Every table the model declares says, where it is declared, how a person's rows are found
in it (`Erasure`), or why it holds nothing of a person. The forget function's body is
rendered from those rules (`forget_statements`), so a table is erased because it is
declared, never because someone remembered to add it here. Pure: no I/O.

A person is a `user`, an `agent` or a `run` id (`PersonKind`); mem0 writes it into the
payload as `<kind>_id`, and the memories' generated columns of the same names hold it.
The SQL written here runs inside `mem0_erasure.forget(erased_kind, subject)`, whose
variables it uses: `erased_kind`, `subject`, `key` (`<kind>_id`), `memory_ids` (the
person's memories, wherever a copy is kept), `n` and `counts` (table -> rows removed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from components.identifiers import quote_ident

__all__ = [
    "ERASING",
    "ERASING_SETTING",
    "KEEP_SDK",
    "PERSON_COLUMNS",
    "Erase",
    "Erasure",
    "PersonKind",
    "forget_statements",
]

# The setting mem0_erasure.forget() turns on for its transaction; the owner's policies
# show and delete rows only while it is on. The owner cannot log in, so only code running
# as the owner (definer-rights functions, fixed bodies) ever meets those policies.
ERASING_SETTING = "mem0.erasing"
ERASING = f"(current_setting('{ERASING_SETTING}'::text, true) = 'on'::text)"

# Columns that hold a person's id or texts: a table with one of them must be erased.
PERSON_COLUMNS = frozenset({"payload", "metadata", "user_id", "agent_id", "run_id",
                            "old_value", "new_value", "source_memory_id", "target_memory_id",
                            "memory_id", "text", "data"})


class PersonKind(StrEnum):
    USER = "user"
    AGENT = "agent"
    RUN = "run"


class Erase(StrEnum):
    """How a table's rows of a person are found (in the order the function runs them)."""

    EDGES = "edges"  # either end is a memory of the person, or the edge's user_id is theirs
    PAYLOAD = "payload"  # mem0's payload names the person (memories, entities, their copies)
    HISTORY = "history"  # the history of the person's memories, or a row naming them
    MEMBERS = "members"  # a user's organisation memberships
    KEEP = "keep"  # nothing of a person: counts, hashes, the salt


@dataclass(frozen=True)
class Erasure:
    """A table's rule. `why` says why a KEEP table holds nothing of a person; `counted_in`
    names (snapshots table, column) whose per-snapshot count drops with the rows removed;
    `unrelated` names columns called like a person's that mean something else (the
    migration run's `run_id`)."""

    how: Erase
    why: str = ""
    counted_in: tuple[str, str] | None = None
    unrelated: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if (self.how == Erase.KEEP) != bool(self.why):
            raise ValueError("a KEEP rule says why the table holds nothing of a person; "
                             "no other rule does")


KEEP_SDK = Erasure(Erase.KEEP, "the TypeScript profile declares no forget function")

_CONDITIONS = {
    Erase.EDGES: "t.source_memory_id = ANY (memory_ids) OR t.target_memory_id = ANY "
                 "(memory_ids) OR (erased_kind = 'user' AND t.user_id = subject)",
    Erase.PAYLOAD: "(t.payload ->> key) = subject",
    Erase.HISTORY: "t.memory_id = ANY (memory_ids) OR (t.old_value ->> key) = subject OR "
                   "(t.new_value ->> key) = subject OR (erased_kind = 'user' AND "
                   "t.user_id = subject) OR (erased_kind = 'run' AND t.run_id = subject)",
    Erase.MEMBERS: "erased_kind = 'user' AND t.user_id = subject",
}
_ORDER = list(Erase)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _delete(table: str, rule: Erasure) -> str:
    condition = _CONDITIONS[rule.how]
    if rule.counted_in is None:
        delete = f"    DELETE FROM {table} t WHERE {condition};\n" \
                 "    GET DIAGNOSTICS n = ROW_COUNT;\n"
    else:
        snapshots, column = rule.counted_in
        column = quote_ident(column)
        delete = (f"    WITH gone AS (\n        DELETE FROM {table} t WHERE {condition}\n"
                  "        RETURNING t.snapshot_id\n"
                  "    ), per AS (\n        SELECT g.snapshot_id, pg_catalog.count(*) AS "
                  "removed FROM gone g GROUP BY g.snapshot_id\n"
                  f"    ), recounted AS (\n        UPDATE {snapshots} s SET {column} = "
                  f"s.{column} - per.removed FROM per WHERE s.id = per.snapshot_id "
                  "RETURNING 1\n"
                  "    )\n    SELECT COALESCE(pg_catalog.sum(per.removed), 0) INTO n FROM per;\n")
    return delete + f"    counts := counts || pg_catalog.jsonb_build_object({_literal(table)}, n);"


def forget_statements(tables: list[tuple[str, Erasure]]) -> tuple[str, str]:
    """For (qualified table, rule) pairs: the statement that gathers the person's memory
    ids (from every PAYLOAD table, snapshot copies included, so an edge or a history row
    of a memory kept only in a snapshot goes too), and the deletes, edges first (before
    the memories' ON DELETE CASCADE removes them uncounted) and history after the
    memories (their delete trigger writes history rows naming the person)."""
    erased = sorted(((t, r) for t, r in tables if r.how != Erase.KEEP),
                    key=lambda pair: _ORDER.index(pair[1].how))
    sources = [t for t, r in erased if r.how == Erase.PAYLOAD]
    if not sources:
        raise ValueError("no table holds mem0 payloads: nothing to erase")
    union = "\n        UNION ".join(
        f"SELECT t.id FROM {t} t WHERE (t.payload ->> key) = subject" for t in sources)
    collect = (f"    SELECT pg_catalog.array_agg(DISTINCT found.id) INTO memory_ids FROM (\n"
               f"        {union}\n    ) found;\n"
               "    memory_ids := COALESCE(memory_ids, '{}'::uuid[]);")
    return collect, "\n".join(_delete(t, r) for t, r in erased)
