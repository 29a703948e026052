"""`migrate rollback RUN`: the memories table as it was before the run, in one transaction.

Rows the run inserted are deleted; rows it overwrote get their pre-image back: vector,
payload, created_at and updated_at, the last two kept by the touch trigger because the
transaction sets mem0_migration.keep_times as the service role (sql/touch_function.sql,
docs/migration.md). Rows it left unchanged were never touched. The history rows the
rollback causes are marked `rollback`; none is deleted. Works after a partial run (only
the batches committed have pre-images) and after a full one.

When rows the run wrote were changed since by someone else (their payload or vector is not
what the run wrote, or they are gone), the rollback would throw those changes away: it
refuses, naming how many and a sample, unless `force`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from components.bench.progress import Progress
from components.errors import ExitCode
from components.migrate.batches import caused_history, history_top
from components.migrate.bulkload import rebuild_dropped
from components.migrate.records import MigrationError
from components.migrate.store import Names, RunState, as_service, load_run, session, set_state
from components.settings import Settings

__all__ = ["RollbackRefused", "RollbackResult", "run_rollback"]

SAMPLE = 10


class RollbackRefused(MigrationError):
    """Rows the run wrote were changed since; nothing was rolled back."""

    exit_code = ExitCode.FAILED


@dataclass
class RollbackResult:
    run_id: str
    deleted: int = 0
    restored: int = 0
    reinserted: int = 0
    history_marked: int = 0
    changed_since: int = 0
    sample: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)  # vector indexes built again
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run_id, "deleted": self.deleted, "restored": self.restored,
                "reinserted": self.reinserted, "history_marked": self.history_marked,
                "changed_since": self.changed_since, "changed_sample": self.sample,
                "rebuilt_indexes": self.rebuilt,
                "seconds": round(self.seconds, 3)}


def run_rollback(dsn: str, settings: Settings, run_id: str, force: bool,
                 progress: Progress | None = None) -> RollbackResult:
    names = Names.of(settings)
    result = RollbackResult(run_id)
    started = time.monotonic()
    with session(dsn, settings) as conn, as_service(conn, settings, keep_times=True) as cur:
        run = load_run(cur, names, run_id, lock=True)  # waits for a batch in flight
        if run.state == RunState.ROLLED_BACK:
            raise MigrationError(f"run {run_id} is rolled_back already")
        changed = [str(r[0]) for r in cur.execute(
            f"SELECT p.id FROM {names.preimages} p JOIN {names.staged} s"
            " ON s.run_id = p.run_id AND s.seq = p.seq"
            f" LEFT JOIN {names.memories} m ON m.id = p.id WHERE p.run_id = %s AND"
            f" (m.id IS NULL OR m.payload IS DISTINCT FROM s.payload OR"
            f" {names.vectors_differ('m.vector', 's.vector')}) ORDER BY p.id", (run_id,))]
        result.changed_since, result.sample = len(changed), changed[:SAMPLE]
        if changed and not force:
            raise RollbackRefused(
                f"{len(changed)} row(s) the run wrote were changed since (e.g. "
                f"{', '.join(changed[:SAMPLE])}); a rollback would undo those changes too. "
                "Nothing was rolled back; pass --force to roll back anyway")
        top = history_top(cur, names)
        cur.execute(f"DELETE FROM {names.memories} m USING {names.preimages} p"
                    " WHERE p.run_id = %s AND NOT p.existed AND m.id = p.id", (run_id,))
        result.deleted = cur.rowcount
        cur.execute(f"UPDATE {names.memories} m SET vector = p.vector, payload = p.payload,"
                    " created_at = p.created_at, updated_at = p.updated_at"
                    f" FROM {names.preimages} p WHERE p.run_id = %s AND p.existed"
                    " AND m.id = p.id", (run_id,))
        result.restored = cur.rowcount
        # Forced only: an overwritten row deleted since comes back as it was.
        cur.execute(f"INSERT INTO {names.memories} (id, vector, payload, created_at,"
                    " updated_at) SELECT p.id, p.vector, p.payload, p.created_at,"
                    f" p.updated_at FROM {names.preimages} p WHERE p.run_id = %s AND"
                    f" p.existed AND NOT EXISTS (SELECT 1 FROM {names.memories} m"
                    " WHERE m.id = p.id)", (run_id,))
        result.reinserted = cur.rowcount
        result.history_marked = caused_history(cur, names, run_id, top, "rollback")
        # A bulk load killed before its build: the indexes it dropped come back, after the
        # deletes (fewer rows to index).
        rebuilt = rebuild_dropped(cur, settings, run_id, dsn, progress or Progress.silent())
        result.rebuilt = [i.name for i in rebuilt.indexes] if rebuilt else []
        set_state(cur, names, run_id, RunState.ROLLED_BACK)
    result.seconds = time.monotonic() - started
    return result
