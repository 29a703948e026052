"""The import engine: validate every record, create the run, stage, apply in batches; and
`resume`, which finishes a run that a crash, SIGKILL or Ctrl-C interrupted.

Validation reads the whole source before anything is written: any problem stops the import
(exit 1, nothing written, not even a run row) unless `skip_invalid`, when the problems are
kept in the run as skipped, with their reasons. `dry_run` does every check and counts per
user what a real run would insert, update and leave unchanged, reading the target only.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from components.bench.progress import Progress
from components.errors import ExitCode
from components.migrate.batches import apply_batch
from components.migrate.bulkload import drop_for_bulk, rebuild_dropped
from components.migrate.records import Embedder, MigrationError, Problem, Record, Source
from components.migrate.staging import Checker, stage
from components.migrate.store import (
    DEFAULT_BATCH_SIZE,
    Names,
    RunState,
    as_service,
    create_run,
    load_run,
    new_run_id,
    session,
    set_state,
)
from components.settings import Settings
from components.vectors import register

__all__ = ["ImportInvalid", "ImportRequest", "ImportResult", "UserCounts", "resume_import",
           "run_import", "same_vectors", "user_of"]

DRY_RUN_CHUNK = 1000


class ImportInvalid(MigrationError):
    """Records failed validation and --skip-invalid was not given: nothing was written."""

    exit_code = ExitCode.FAILED

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} record(s) are not valid; nothing was written "
                         "(fix them, or pass --skip-invalid to import the rest)")


@dataclass
class UserCounts:
    records: int = 0
    insert: int = 0
    update: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ImportRequest:
    source: Source
    checker: Checker  # a fresh Validator: it remembers the ids it has seen
    embedder: Embedder | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    dry_run: bool = False
    skip_invalid: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # kept in the run (e.g. embedder)
    bulk: bool = True  # into an empty table, drop the vector indexes and build them after


@dataclass
class ImportResult:
    run_id: str | None
    dry_run: bool
    records: int = 0
    skipped: list[Problem] = field(default_factory=list)
    to_embed: int = 0
    per_user: dict[str, UserCounts] = field(default_factory=dict)
    batches: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stage_s: float = 0.0
    apply_s: float = 0.0
    write_path: str = ""  # "bulk: index rebuilt after load, 1.2 s" or "row by row (why)"
    index_s: float = 0.0

    @property
    def bulk(self) -> bool:
        return self.write_path.startswith("bulk")

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run_id, "dry_run": self.dry_run, "records": self.records,
                "to_embed": self.to_embed, "batches": self.batches,
                "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "stage_s": round(self.stage_s, 3),
                "apply_s": round(self.apply_s, 3), "bulk": self.bulk,
                "write_path": self.write_path, "index_s": round(self.index_s, 3),
                "skipped": [{"seq": p.seq, "origin": p.origin, "reason": p.reason}
                            for p in self.skipped],
                "per_user": {u: vars(c) for u, c in sorted(self.per_user.items())}}


def user_of(payload: Any) -> str:
    """The per-user key of the counts: the user id, else `agent:<id>`, else `run:<id>`."""
    for key, prefix in (("user_id", ""), ("agent_id", "agent:"), ("run_id", "run:")):
        value = payload.get(key)
        if value:
            return f"{prefix}{value}"
    return "(none)"


def same_vectors(left: Any, right: Any) -> bool:
    """Whether two vectors (pgvector's Vector as loaded, numpy arrays or lists) hold the
    same float32 values; None equals only None."""
    if left is None or right is None:
        return left is None and right is None
    def values(v: Any) -> Any:
        return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)
    return bool(np.array_equal(values(left), values(right)))


def _normal(payload: Any) -> Any:
    """A payload as jsonb gives it back (key order and number forms aside)."""
    return json.loads(json.dumps(payload))


def _compare(conn: psycopg.Connection[Any], settings: Settings, names: Names,
             records: list[Record], checker: Checker, result: ImportResult) -> None:
    """Dry run: what a real run would do to each record's row, read in one query."""
    with as_service(conn, settings) as cur:
        rows = cur.execute(f"SELECT id, vector, payload FROM {names.memories}"
                           " WHERE id = ANY(%s)",
                           ([uuid.UUID(r.id) for r in records],)).fetchall()
    existing = {str(r[0]): (r[1], r[2]) for r in rows}
    for record in records:
        counts = result.per_user.setdefault(user_of(record.payload), UserCounts())
        counts.records += 1
        found = existing.get(str(uuid.UUID(record.id)))
        if found is None:
            counts.insert += 1
            continue
        vector, payload = found
        same_vector = (not checker.needs_embedding(record)
                       and same_vectors(vector, record.vector))
        if same_vector and payload == _normal(dict(record.payload)):
            counts.unchanged += 1
        else:
            counts.update += 1


def _validate(conn: psycopg.Connection[Any], settings: Settings, request: ImportRequest,
              result: ImportResult, progress: Progress) -> tuple[list[Problem], int]:
    """Every record checked (and, in a dry run, compared); returns the problems and the
    highest seq."""
    names = Names.of(settings)
    problems: list[Problem] = []
    top = 0
    chunk: list[Record] = []
    with progress.bar("validating", request.source.count() or 0) as bar:
        for entry in request.source.read(0):
            top = max(top, entry.seq)
            problem = entry if isinstance(entry, Problem) else request.checker.check(entry)
            bar.advance()
            if problem is not None:
                problems.append(problem)
                continue
            assert isinstance(entry, Record)
            result.records += 1
            if request.checker.needs_embedding(entry):
                result.to_embed += 1
            if request.dry_run:
                chunk.append(entry)
                if len(chunk) >= DRY_RUN_CHUNK:
                    _compare(conn, settings, names, chunk, request.checker, result)
                    chunk = []
            else:
                counts = result.per_user.setdefault(user_of(entry.payload), UserCounts())
                counts.records += 1
    if chunk:
        _compare(conn, settings, names, chunk, request.checker, result)
    return problems, top


def run_import(dsn: str, settings: Settings, request: ImportRequest,
               progress: Progress) -> ImportResult:
    if request.batch_size < 1:
        raise MigrationError(f"--batch-size must be at least 1, not {request.batch_size}")
    result = ImportResult(None, request.dry_run)
    with session(dsn, settings) as conn:
        with as_service(conn, settings):
            pass  # the role and the schema are usable before the source is read
        progress(f"validating {request.source.describe()}")
        problems, top = _validate(conn, settings, request, result, progress)
        if problems and not request.skip_invalid:
            raise ImportInvalid(problems)
        result.skipped = problems
        if request.dry_run:
            return result
        if result.records and result.to_embed and request.embedder is None:
            raise MigrationError(f"{result.to_embed} record(s) need embedding and no "
                                 "embedder was given (--embedder FILE)")
        run_id = new_run_id()
        result.run_id = run_id
        options = {**request.options, "batch_size": request.batch_size, "last_seq": top,
                   "records": result.records, "to_embed": result.to_embed}
        skipped = [{"seq": p.seq, "origin": p.origin, "reason": p.reason} for p in problems]
        with as_service(conn, settings) as cur:
            create_run(cur, Names.of(settings), run_id, request.source.kind,
                       request.source.spec(), settings.dimensions, options, skipped)
        progress(f"run {run_id}: {result.records} records, {len(problems)} skipped")
        _finish(conn, dsn, settings, run_id, request.source.read(0), request.checker,
                request.embedder, result, progress, bulk=request.bulk)
    return result


def resume_import(dsn: str, settings: Settings, run_id: str,
                  open_source: Callable[[dict[str, str]], Source],
                  make_checker: Callable[[], Checker], embedder: Embedder | None,
                  progress: Progress) -> ImportResult:
    """Finish run `run_id`: the staging from its highest staged seq, then the batches not
    done. Refuses a run that is done or rolled back."""
    names = Names.of(settings)
    with session(dsn, settings) as conn:
        with as_service(conn, settings) as cur:
            run = load_run(cur, names, run_id, lock=True)
            if run.state in (RunState.DONE, RunState.ROLLED_BACK):
                raise MigrationError(f"run {run_id} is {run.state.value}: nothing to resume")
            set_state(cur, names, run_id, RunState.RUNNING)
        result = ImportResult(run_id, False, records=int(run.options.get("records", 0)),
                              to_embed=int(run.options.get("to_embed", 0)))
        result.skipped = [Problem(int(s["seq"]), str(s["origin"]), str(s["reason"]))
                          for s in run.skipped]
        entries: Iterable[Record | Problem] = ()
        if not run.staging_done:
            source = open_source(run.source_spec)
            progress(f"run {run_id}: staging again after seq {run.staged_seq} of "
                     f"{source.describe()}")
            entries = _checked(source.read(run.staged_seq), make_checker())
        _finish(conn, dsn, settings, run_id, entries, make_checker(), embedder, result,
                progress, resume=True)
    return result


def _checked(entries: Iterable[Record | Problem], checker: Checker
             ) -> Iterator[Record | Problem]:
    for entry in entries:
        problem = checker.check(entry) if isinstance(entry, Record) else None
        yield problem or entry


def _finish(conn: psycopg.Connection[Any], dsn: str, settings: Settings, run_id: str,
            entries: Iterable[Record | Problem], checker: Checker,
            embedder: Embedder | None, result: ImportResult, progress: Progress,
            resume: bool = False, bulk: bool = False) -> None:
    """Stage what is not staged yet, then apply the batches not done (with `bulk`, into
    an empty table, its vector indexes dropped first), then build again the indexes the run
    dropped; the run ends done, or failed with the reason (and stays resumable)."""
    names = Names.of(settings)
    try:
        with as_service(conn, settings) as cur:
            run = load_run(cur, names, run_id)
        skipped = {int(s["seq"]) for s in run.skipped}
        started = time.monotonic()
        if not run.staging_done:
            vector_oid = register(conn, settings.extension_schema)
            left = max(result.records - run.staged_rows, 0)
            with progress.bar("staging", left) as bar:
                stage(conn, settings, run_id, entries, checker, embedder, skipped,
                      vector_oid, bar.advance)
        result.stage_s = time.monotonic() - started
        with as_service(conn, settings) as cur:
            run = load_run(cur, names, run_id)
            done = {int(r[0]) for r in cur.execute(
                f"SELECT batch FROM {names.batches} WHERE run_id = %s", (run_id,))}
        started = time.monotonic()
        todo = [b for b in range(1, run.total_batches + 1) if b not in done]
        if run.dropped_indexes:
            result.write_path = "bulk: vector index dropped by the run"
        elif not bulk:
            result.write_path = "row by row (" + ("a resume drops no index" if resume
                                                  else "--no-bulk") + ")"
        elif todo:
            path = drop_for_bulk(conn, settings, run_id)
            result.write_path = path.describe()
            if path.bulk:
                progress(f"bulk load: dropped {', '.join(i.name for i in path.indexes)}; "
                         "built again after the last batch")
            else:
                progress(f"writing {path.describe()}")
        with progress.bar("applying batches", len(todo)) as bar:
            for batch in todo:
                applied = apply_batch(conn, settings, run_id, batch)
                bar.advance()
                if applied is None:
                    continue
                result.batches += 1
                result.inserted += applied.inserted
                result.updated += applied.updated
                result.unchanged += applied.unchanged
        result.apply_s = time.monotonic() - started
        started = time.monotonic()
        with as_service(conn, settings) as cur:
            load_run(cur, names, run_id, lock=True)
            rebuilt = rebuild_dropped(cur, settings, run_id, dsn, progress)
        result.index_s = time.monotonic() - started
        if rebuilt is not None:
            result.write_path = rebuilt.describe()
        with as_service(conn, settings) as cur:
            set_state(cur, names, run_id, RunState.DONE)
        if resume:
            progress(f"run {run_id} resumed and done")
    except BaseException as exc:
        reason = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
        try:
            with as_service(conn, settings) as cur:
                set_state(cur, names, run_id, RunState.FAILED,
                          f"{reason.strip()} (resume with `migrate resume {run_id}`)")
        except (psycopg.Error, MigrationError):
            pass  # the connection is gone: the run stays `running`, resumable all the same
        raise
