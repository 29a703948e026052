"""A bar for an index build, from PostgreSQL's own progress report.

CREATE INDEX is one statement that can run for minutes; the server reports how far it
is in `pg_stat_progress_create_index` (pgvector's HNSW counts the tuples it has added to
its graph). While the build runs on the restore's connection, a thread polls that view for
the restore's backend from a second connection and moves the bar. Only on a terminal, as
every bar: elsewhere nothing is opened or drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from components.backup.common import APPLICATION
from components.bench.progress import Bar, Progress
from components.connection import connect

POLL_S = 0.5
_PROGRESS = ("SELECT p.phase, COALESCE(p.tuples_done, 0)"
             " FROM pg_catalog.pg_stat_progress_create_index p WHERE p.pid = %s")


def _poll(dsn: str, pid: int, bar: Bar, label: str, stop: threading.Event) -> None:
    phase = ""
    try:
        with connect(dsn, autocommit=True, application=f"{APPLICATION} progress") as conn:
            while not stop.wait(POLL_S):
                row = conn.execute(_PROGRESS, (pid,)).fetchone()
                if row is None:
                    continue
                if row[0] != phase:
                    phase = str(row[0])
                    bar.relabel(f"{label} ({phase})")
                bar.advance(max(0, int(row[1]) - bar.done))
    except psycopg.Error:
        return  # the bar only shows the build; the build goes on without it


@contextmanager
def watching(dsn: str, pid: int, progress: Progress, label: str,
             rows: int) -> Iterator[None]:
    """While the block builds an index on backend `pid`, show a bar of the `rows` it
    indexes, full when the block succeeds."""
    if not progress.enabled:
        yield
        return
    stop = threading.Event()
    with progress.bar(label, rows) as bar:
        poller = threading.Thread(target=_poll, args=(dsn, pid, bar, label, stop),
                                  name="index-progress", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
        bar.relabel(label)
        bar.advance(rows - bar.done)
