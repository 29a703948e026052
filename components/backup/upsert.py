"""Writing the landed rows into the stack's tables: an upsert by primary key that never
deletes and is idempotent.

Per table: rows whose key is missing are inserted with every written column as backed up
(created_at and updated_at included); rows whose content differs (every written column but
the key and the database's own times) are updated, and the touch trigger then sets
updated_at = now() and keeps created_at; identical rows are left alone, so a second
restore of the same backup changes nothing, not even the history. Nothing is skipped
silently: an edge that cannot be written and a history row whose id holds another row are
reported with their ids.

Rows are written in batches of landing-table row numbers, all in the restore's one
transaction: the batches only let the progress bar move while an index as slow to insert
into as HNSW takes its time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from components.backup.catalog import LiveTable
from components.backup.common import DATABASE_TIMES, SHOW_IDS, BackupError, CommandProgress
from components.backup.load import ROW_NUMBER
from components.backup.tables import HISTORY, RELATIONSHIPS, Part
from components.bench.progress import Bar
from components.identifiers import qualified, quote_ident
from components.model import RESTORE_HISTORY_FUNCTION

BATCH = 1000  # landed rows per statement (history: per call of the restore function)
RESTORE_HISTORY = f"{qualified('public', RESTORE_HISTORY_FUNCTION)}(jsonb)"


@dataclass(frozen=True)
class Skip:
    key: str
    reason: str


@dataclass
class Outcome:
    table: str
    kind: str
    total: int  # rows of the backup for this table (after --user-id)
    inserted: int = 0
    updated: int = 0
    inserted_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.total - self.inserted - self.updated - len(self.skipped)


def _sample(ids: list[str], cur: psycopg.Cursor[Any]) -> None:
    """Keep the first SHOW_IDS keys the statements returned."""
    if len(ids) < SHOW_IDS:
        ids += ["/".join(str(v) for v in row)
                for row in cur.fetchmany(SHOW_IDS - len(ids))]


def _count(cur: psycopg.Cursor[Any], table: LiveTable, where: str = "true") -> int:
    row = cur.execute(f"SELECT pg_catalog.count(*) FROM {table.temp} AS s WHERE {where}"
                      ).fetchone()
    return int(row[0]) if row else 0


def _content(table: LiveTable) -> list[str]:
    return [n for n in table.names if n not in table.primary_key and n not in DATABASE_TIMES]


def _differs(table: LiveTable, columns: list[str]) -> str:
    """SQL: the target row `p` and the backed-up row `s` differ in one of `columns`."""
    return "(" + " OR ".join(table.column(c).differs("p", "s") for c in columns) + ")"


def _same_key(table: LiveTable) -> str:
    return " AND ".join(f"p.{quote_ident(k)} = s.{quote_ident(k)}" for k in table.primary_key)


def _batches(cur: psycopg.Cursor[Any], table: LiveTable) -> Iterator[tuple[int, int, int]]:
    """(first, last, rows): consecutive ranges of landed row numbers holding BATCH rows
    each (the last one fewer), over the rows still landed."""
    cur.execute(f"CREATE INDEX ON {table.temp} ({ROW_NUMBER})")
    starts = [int(r[0]) for r in cur.execute(
        f"SELECT {ROW_NUMBER} FROM (SELECT {ROW_NUMBER}, pg_catalog.row_number() OVER"
        f" (ORDER BY {ROW_NUMBER}) AS n FROM {table.temp}) AS x"
        " WHERE pg_catalog.mod(n - 1, %s) = 0 ORDER BY 1", (BATCH,)).fetchall()]
    row = cur.execute(f"SELECT pg_catalog.max({ROW_NUMBER}), pg_catalog.count(*) FROM "
                      f"{table.temp}").fetchone()
    top, remaining = (int(row[0] or 0), int(row[1])) if row else (0, 0)
    for i, first in enumerate(starts):
        rows = min(BATCH, remaining)
        remaining -= rows
        yield first, starts[i + 1] - 1 if i + 1 < len(starts) else top, rows


def upsert(cur: psycopg.Cursor[Any], table: LiveTable, outcome: Outcome, bar: Bar) -> None:
    content = _content(table)
    in_batch = f"s.{ROW_NUMBER} BETWEEN %s AND %s"
    for first, last, rows in _batches(cur, table):
        if content:
            cur.execute(
                f"UPDATE {table.qualified} AS p SET "
                + ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in content)
                + f" FROM {table.temp} AS s WHERE {in_batch} AND {_same_key(table)}"
                f" AND {_differs(table, content)} RETURNING {table.key_list('p')}",
                (first, last))
            outcome.updated += cur.rowcount
            _sample(outcome.updated_ids, cur)
        cur.execute(
            f"INSERT INTO {table.qualified} ({table.column_list()})"
            f" SELECT {table.column_list('s')} FROM {table.temp} AS s WHERE {in_batch}"
            f" ORDER BY s.{ROW_NUMBER} ON CONFLICT ({table.key_list()}) DO NOTHING"
            f" RETURNING {table.key_list()}", (first, last))
        outcome.inserted += cur.rowcount
        _sample(outcome.inserted_ids, cur)
        bar.advance(rows)


def skip_edges(cur: psycopg.Cursor[Any], table: LiveTable, memories: LiveTable
               ) -> list[Skip]:
    """Take out of the landing table the edges the upsert cannot write: one whose (source,
    target, type) exists under another id (the unique constraint), one whose endpoint
    memory is not in the target (say, a per-user restore of an edge into another user's
    memory). Runs after the memories are restored."""
    conflicts = cur.execute(
        f"DELETE FROM {table.temp} AS s USING {table.qualified} AS p"
        " WHERE p.source_memory_id = s.source_memory_id"
        " AND p.target_memory_id = s.target_memory_id"
        " AND p.relationship_type = s.relationship_type AND p.id <> s.id"
        " RETURNING s.id, p.id, s.relationship_type").fetchall()
    skips = [Skip(str(ours), f"the same source, target and type ({kind}) is already edge "
                             f"{theirs}") for ours, theirs, kind in conflicts]
    exists = f"EXISTS (SELECT 1 FROM {memories.qualified} AS m WHERE m.id = s.{{}})"
    orphans = cur.execute(
        f"DELETE FROM {table.temp} AS s"
        f" WHERE NOT {exists.format('source_memory_id')}"
        f" OR NOT {exists.format('target_memory_id')}"
        f" RETURNING s.id, s.source_memory_id, {exists.format('source_memory_id')},"
        f" s.target_memory_id").fetchall()
    for edge, source, has_source, target in orphans:
        missing = target if has_source else source
        skips.append(Skip(str(edge), f"its {'target' if has_source else 'source'} memory "
                                     f"{missing} is not in the target"))
    return skips


def _absent(table: LiveTable) -> str:
    return f"NOT EXISTS (SELECT 1 FROM {table.qualified} AS p WHERE p.id = s.id)"


def check_history_path(cur: psycopg.Cursor[Any], table: LiveTable) -> None:
    """Before the first write: when history rows are to be added, the target must have
    the function that adds them, callable by the service role."""
    if not _count(cur, table, _absent(table)):
        return
    row = cur.execute("SELECT f IS NOT NULL, CASE WHEN f IS NULL THEN false ELSE"
                      " pg_catalog.has_function_privilege(f, 'EXECUTE') END"
                      " FROM (SELECT pg_catalog.to_regprocedure(%s) AS f) AS x",
                      (RESTORE_HISTORY,)).fetchone()
    if row is None or not row[0] or not row[1]:
        raise BackupError(
            f"the backup holds history rows, but {RESTORE_HISTORY} is "
            + ("not callable by the service role" if row and row[0] else
               "missing in the target") + " (the service role may only read the history; "
            "the stack declares that function: deploy the current version with `pulumi up`)")


def restore_history(cur: psycopg.Cursor[Any], table: LiveTable, outcome: Outcome,
                    bar: Bar) -> None:
    """Add the backed-up history rows whose id is absent, through the owner's function,
    one batch per call; a row whose id holds a different row is reported, never
    rewritten."""
    every = [n for n in table.names if n not in table.primary_key]
    conflicts = cur.execute(
        f"SELECT s.id FROM {table.temp} AS s JOIN {table.qualified} AS p ON p.id = s.id"
        f" WHERE {_differs(table, every)} ORDER BY s.id").fetchall()
    outcome.skipped = [Skip(str(i), "the target's history has another row under this id")
                       for (i,) in conflicts]
    expected = _count(cur, table, _absent(table))
    cur.execute(f"SELECT s.id FROM {table.temp} AS s WHERE {_absent(table)} ORDER BY s.id"
                " LIMIT %s", (SHOW_IDS,))
    _sample(outcome.inserted_ids, cur)
    function = qualified("public", RESTORE_HISTORY_FUNCTION)
    for first, last, rows in _batches(cur, table):
        row = cur.execute(
            f"SELECT {function}((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(b)"
            f" ORDER BY b.id) FROM (SELECT {table.column_list('s')} FROM {table.temp} AS s"
            f" WHERE s.{ROW_NUMBER} BETWEEN %s AND %s AND {_absent(table)}) AS b))",
            (first, last)).fetchone()
        outcome.inserted += int(row[0] or 0) if row else 0
        bar.advance(rows)
    if outcome.inserted != expected:
        raise BackupError(f"{RESTORE_HISTORY} added {outcome.inserted} history rows of the "
                          f"{expected} given; the restore is rolled back")


def apply(cur: psycopg.Cursor[Any], loaded: list[tuple[Part, LiveTable]],
          memories: LiveTable, progress: CommandProgress) -> list[Outcome]:
    """Write every landed table, in restore order (`loaded` comes in it)."""
    for part, table in loaded:
        if part.kind == HISTORY:
            check_history_path(cur, table)
    outcomes = [Outcome(table.name, part.kind, _count(cur, table)) for part, table in loaded]
    with progress.bar("restoring", sum(o.total for o in outcomes)) as bar:
        for (part, table), outcome in zip(loaded, outcomes, strict=True):
            bar.relabel(f"restoring {table.name}")
            if part.kind == HISTORY:
                restore_history(cur, table, outcome, bar)
                continue
            if part.kind == RELATIONSHIPS:
                outcome.skipped = skip_edges(cur, table, memories)
                bar.advance(len(outcome.skipped))
            upsert(cur, table, outcome, bar)
    return outcomes
