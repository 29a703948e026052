"""`migrate status [RUN]`: each run's state, batches done of all, records written
(inserted, updated, unchanged), skipped with reasons, the failure, the rate and the time
left, read from mem0_migration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from components.migrate.store import Names, Run, RunState, as_service, load_run, load_runs, session
from components.settings import Settings

__all__ = ["DROPPED", "RunStatus", "run_status", "status_text"]

DROPPED = "vector index dropped for the bulk load: resume or rollback rebuilds it"


@dataclass(frozen=True)
class RunStatus:
    run: Run
    batches_done: int
    inserted: int
    updated: int
    unchanged: int
    first_done: datetime | None
    last_done: datetime | None

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def rate(self) -> float | None:
        """Records per second over the batches applied (from the run's start)."""
        if self.last_done is None or not self.written:
            return None
        seconds = (self.last_done - self.run.started_at).total_seconds()
        return self.written / seconds if seconds > 0 else None

    @property
    def seconds_left(self) -> float | None:
        left = self.run.total_batches - self.batches_done
        if self.run.state != RunState.RUNNING and self.run.state != RunState.FAILED:
            return 0.0
        if not left:
            return 0.0
        if self.last_done is None or not self.batches_done:
            return None
        per_batch = (self.last_done - self.run.started_at).total_seconds() / self.batches_done
        return per_batch * left

    def as_json(self) -> dict[str, Any]:
        r = self.run
        return {"run": r.id, "state": r.state.value, "source": r.source_kind,
                "spec": r.source_spec, "target": r.target_table, "dims": r.dims,
                "options": r.options, "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "started_by": r.started_by, "staged": r.staged_rows,
                "staging_done": r.staging_done, "batches_done": self.batches_done,
                "batches_total": r.total_batches, "inserted": self.inserted,
                "updated": self.updated, "unchanged": self.unchanged,
                "skipped": r.skipped, "failure": r.failure,
                "dropped_indexes": r.dropped_indexes,
                "records_per_second": round(self.rate, 1) if self.rate else None,
                "seconds_left": round(self.seconds_left, 1)
                if self.seconds_left is not None else None}


def run_status(dsn: str, settings: Settings, run_id: str | None) -> list[RunStatus]:
    names = Names.of(settings)
    with session(dsn, settings) as conn, as_service(conn, settings) as cur:
        runs = [load_run(cur, names, run_id)] if run_id else load_runs(cur, names)
        sums = {str(r[0]): r[1:] for r in cur.execute(
            "SELECT run_id, count(*), COALESCE(sum(inserted), 0), COALESCE(sum(updated), 0),"
            f" COALESCE(sum(unchanged), 0), min(done_at), max(done_at) FROM {names.batches}"
            " GROUP BY run_id")}
    out = []
    for run in runs:
        done, inserted, updated, unchanged, first, last = sums.get(
            run.id, (0, 0, 0, 0, None, None))
        out.append(RunStatus(run, int(done), int(inserted), int(updated), int(unchanged),
                             first, last))
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def status_text(statuses: list[RunStatus]) -> str:
    if not statuses:
        return "no migration runs\n"
    lines = []
    for s in statuses:
        r = s.run
        lines.append(f"run {r.id}  {r.state.value}  {r.source_kind} -> {r.target_table}"
                     f"  started {r.started_at:%Y-%m-%d %H:%M:%S %Z} by {r.started_by}")
        rate = f"{s.rate:.0f} records/s" if s.rate else "rate unknown"
        lines.append(f"  batches {s.batches_done}/{r.total_batches} (size {r.batch_size}),"
                     f" staged {r.staged_rows}{'' if r.staging_done else ' so far'};"
                     f" written {s.written}: inserted {s.inserted}, updated {s.updated},"
                     f" unchanged {s.unchanged}; {rate}; time left "
                     f"{_duration(s.seconds_left)}")
        lines.append(f"  skipped {len(r.skipped)}")
        lines.extend(f"    {k['origin']}: {k['reason']}" for k in r.skipped)
        if r.failure:
            lines.append(f"  failed: {r.failure}")
        if r.dropped_indexes:
            lines.append(f"  {DROPPED}")
    return "\n".join(lines) + "\n"
