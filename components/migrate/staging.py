"""Staging: a run's records into mem0_migration.staged by binary COPY, a chunk per
transaction, the run row advancing with each chunk (`staged_seq`), so that a resume reads
the source again after the highest seq staged and no record is staged twice.

Records the validator says need it are embedded here, a chunk at a time, with the
application's embedder; `source_had_vector` keeps whether the vector is the source's own
(verify compares those).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from components.migrate.records import Embedder, MigrationError, Problem, Record
from components.migrate.store import Names, as_service
from components.settings import Settings

__all__ = ["CHUNK", "Checker", "parse_time", "stage"]

CHUNK = 2000  # records per staging transaction (one COPY, one embedding call per 256)
EMBED_CHUNK = 256

class Checker(Protocol):
    """What the import needs of the validator (components/migrate/validate.Validator)."""

    def check(self, record: Record) -> Problem | None: ...

    def needs_embedding(self, record: Record) -> bool: ...


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 payload time as a timestamptz value (no zone: UTC, as mem0 writes);
    None when absent or not a time (the validator has reported those already)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _chunks(entries: Iterable[Record | Problem], skipped: set[int]
            ) -> Iterator[tuple[list[Record], int]]:
    """Records in chunks, with the highest seq each chunk passed (skipped ones included).
    A problem not among the run's skipped ones means the source changed since it was
    validated: refuse rather than write around it."""
    chunk: list[Record] = []
    top = 0
    for entry in entries:
        top = max(top, entry.seq)
        if entry.seq in skipped:
            continue  # reported at validation and kept in the run as skipped
        if isinstance(entry, Problem):
            raise MigrationError(f"{entry.origin}: {entry.reason} (the source changed "
                                 "since the run validated it; nothing more was staged)")
        chunk.append(entry)
        if len(chunk) >= CHUNK:
            yield chunk, top
            chunk = []
    if chunk or top:
        yield chunk, top


def _vectors(records: list[Record], checker: Checker, embedder: Embedder | None
             ) -> list[tuple[Any, bool]]:
    """Each record's vector (float32) and whether it is the source's own."""
    out: list[tuple[Any, bool]] = []
    wanted = [i for i, r in enumerate(records) if checker.needs_embedding(r)]
    embedded: dict[int, list[float]] = {}
    if wanted:
        if embedder is None:
            raise MigrationError(f"{records[wanted[0]].origin}: needs embedding and no "
                                 "embedder was given (--embedder FILE)")
        for start in range(0, len(wanted), EMBED_CHUNK):
            part = wanted[start:start + EMBED_CHUNK]
            vectors = embedder.embed([str(records[i].payload.get("data", "")) for i in part])
            embedded.update(zip(part, vectors, strict=True))
    for i, record in enumerate(records):
        if i in embedded:
            out.append((np.asarray(embedded[i], dtype=np.float32), False))
        else:
            assert record.vector is not None
            out.append((np.asarray(record.vector, dtype=np.float32), True))
    return out


def stage(conn: psycopg.Connection[Any], settings: Settings, run_id: str,
          entries: Iterable[Record | Problem], checker: Checker, embedder: Embedder | None,
          skipped: set[int], vector_oid: int, advance: Callable[[int], None]) -> int:
    """Stage `entries` (the source read after the run's staged_seq); returns the records
    staged. Each chunk commits with the run's new staged_seq; the last marks staging done."""
    names = Names.of(settings)
    copy_sql = (f"COPY {names.staged} (run_id, seq, id, vector, payload, created_at, "
                "updated_at, source_had_vector, origin) FROM STDIN (FORMAT binary)")
    total = 0
    for records, top in _chunks(entries, skipped):
        vectors = _vectors(records, checker, embedder)
        with as_service(conn, settings) as cur:
            with cur.copy(copy_sql) as copy:
                copy.set_types(["text", "int8", "uuid", vector_oid, "jsonb", "timestamptz",
                                "timestamptz", "bool", "text"])
                for record, (vector, own) in zip(records, vectors, strict=True):
                    copy.write_row((run_id, record.seq, uuid.UUID(record.id), vector,
                                    Jsonb(dict(record.payload)),
                                    parse_time(record.payload.get("created_at")),
                                    parse_time(record.payload.get("updated_at")),
                                    own, record.origin))
            cur.execute(f"UPDATE {names.runs} SET staged_seq = GREATEST(staged_seq, %s),"
                        " staged_rows = staged_rows + %s WHERE id = %s",
                        (top, len(records), run_id))
        total += len(records)
        advance(len(records))
    with as_service(conn, settings) as cur:
        cur.execute(f"UPDATE {names.runs} SET staging_done = true WHERE id = %s", (run_id,))
    return total
