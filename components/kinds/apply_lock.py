"""The project's apply lock, and how an apply recovers from one a killed deployment left.

Every apply session names itself (`application_name`) after the process that opened it:
`mem0infra apply <origin> <pid> <start>`, where origin identifies the machine and its
process namespace, and start is the process's start time in clock ticks. It also asks the
server to check every `CLIENT_CHECK_INTERVAL` whether its client is still there
(`client_connection_check_interval`, PostgreSQL 14+), so a statement whose client was
killed (a `CREATE INDEX CONCURRENTLY` of a `pulumi up` killed with SIGKILL) is cancelled
by the server within that interval instead of running to its end with the lock held.

Waiting for the lock, an apply looks at the session that holds it. It terminates that
session only when the holder's name says it was opened by a process of this same origin
and no such process (that pid with that start time) is running here: its client is gone
for certain, and nothing else could be waiting for its result. A holder from another
machine, another container, or a process that is alive is waited for, with one log line
naming it. docs/interrupted.md has the measurements behind both choices.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors

__all__ = ["APPLY_LOCK_KEY", "APPLY_SESSION_PREFIX", "CLIENT_CHECK_INTERVAL", "ApplySession",
           "apply_session_name", "check_client_connection", "wait_for_apply_lock"]

# Pulumi applies independent resources in parallel, but two DDL statements that touch the
# same catalog row (two indexes or triggers on one table, two grants on one object) fail
# with "tuple concurrently updated". Every apply in a database takes this session-level
# advisory lock first, so this project's DDL runs one object at a time. Reads do not.
APPLY_LOCK_KEY = 0x6D656D30_696E6672  # "mem0infr"
APPLY_SESSION_PREFIX = "mem0infra apply"
# How often the server checks that an apply session's client is still connected: a poll()
# of the socket, nothing sent. A killed deployment's statement is cancelled this soon.
CLIENT_CHECK_INTERVAL = "1s"
HOLDER_CHECK_EVERY = 1.0  # seconds between looks at who holds the lock
TERMINATE_WAIT_MS = 5000  # how long pg_terminate_backend waits for the holder to exit

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    # The engine shows a provider plugin's stderr lines as info diagnostics.
    print(f"mem0infra: {message}", file=sys.stderr, flush=True)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


@functools.cache
def _origin() -> str | None:
    """This machine, boot and pid namespace, hashed: two processes with equal origins see
    the same pids. None where /proc does not tell (then no holder is ever judged gone)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    if boot is None:
        return None
    text = f"{socket.gethostname()}\0{boot}\0{namespace}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a running process, None when there is
    none or it is a zombie (whose sockets are already closed)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class ApplySession:
    """Who opened an apply session, as its application_name says."""

    origin: str
    pid: int
    start: int

    @property
    def name(self) -> str:
        return f"{APPLY_SESSION_PREFIX} {self.origin} {self.pid} {self.start}"

    @classmethod
    def parse(cls, application_name: str) -> ApplySession | None:
        parts = application_name.split(" ")
        if (len(parts) != 5 or " ".join(parts[:2]) != APPLY_SESSION_PREFIX
                or not parts[3].isdigit() or not parts[4].isdigit()):
            return None
        return cls(parts[2], int(parts[3]), int(parts[4]))

    def client_gone(self) -> bool:
        """True only when this session's client process is known to have exited: same
        origin as this process, and no process with its pid and start time runs here."""
        return self.origin == _origin() and process_start(self.pid) != self.start


def apply_session_name(pid: int | None = None) -> str:
    """The application_name of an apply session opened by this process (or `pid`)."""
    pid = os.getpid() if pid is None else pid
    origin, start = _origin(), process_start(pid)
    if origin is None or start is None:
        return APPLY_SESSION_PREFIX  # cannot be told apart: never judged an orphan
    return ApplySession(origin, pid, start).name


def check_client_connection(conn: psycopg.Connection, log: Log = _stderr) -> bool:
    """Ask the server to cancel this session's statements once its client is gone. False
    (and a log line) where the server cannot: it then keeps running a killed client's
    statement, and the next apply's lock wait is what recovers."""
    try:
        conn.execute("SELECT pg_catalog.set_config('client_connection_check_interval', %s,"
                     " false)", (CLIENT_CHECK_INTERVAL,))
    except (pg_errors.InvalidParameterValue, pg_errors.UndefinedObject) as exc:
        log(f"the server cannot watch for a vanished client ({exc.diag.message_primary}); "
            "an interrupted apply's statement will run to its end")
        return False
    return True


@dataclass(frozen=True)
class Holder:
    pid: int
    application_name: str
    state: str
    query: str
    since: float  # seconds the holder's current state has lasted

    def describe(self) -> str:
        query = " ".join(self.query.split())[:120]
        return (f"backend {self.pid} ({self.application_name or 'no application_name'}, "
                f"{self.state} for {self.since:.0f}s: {query})")


def lock_holder(conn: psycopg.Connection) -> Holder | None:
    """The session that holds the apply lock in this database, if any."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, coalesce(a.state, ''), coalesce(a.query, ''),"
        " extract(epoch FROM pg_catalog.clock_timestamp() - a.state_change)::float8"
        " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_catalog.pg_database"
        "                   WHERE datname = pg_catalog.current_database())"
        " AND l.classid::int8 = %s AND l.objid::int8 = %s",
        (APPLY_LOCK_KEY >> 32, APPLY_LOCK_KEY & 0xFFFFFFFF)).fetchone()
    return None if row is None else Holder(row[0], row[1], row[2], row[3], row[4] or 0.0)


def _terminate_orphan(conn: psycopg.Connection, holder: Holder, log: Log) -> None:
    log(f"the apply lock is held by {holder.describe()}, whose deployment process is gone "
        "(an interrupted pulumi up): terminating it; its unfinished index build is dropped "
        "and rebuilt by this apply")
    try:
        conn.execute("SELECT pg_catalog.pg_terminate_backend(%s, %s)",
                     (holder.pid, TERMINATE_WAIT_MS))
    except psycopg.Error as exc:
        log(f"could not terminate backend {holder.pid} ({str(exc).strip()}); waiting for it "
            "instead: a superuser can run SELECT pg_terminate_backend("
            f"{holder.pid})")


def wait_for_apply_lock(conn: psycopg.Connection, log: Log = _stderr) -> None:
    """Take the project's apply lock (session level), polling rather than blocking.

    A session blocked in pg_advisory_lock() holds a snapshot for as long as it waits, and
    CREATE INDEX CONCURRENTLY in the session holding the lock waits for every older
    snapshot to end: two resources applied at once would deadlock. Each try is a short
    transaction that ends at once. Between tries it looks at the holder (module docstring):
    an orphan is terminated, anyone else is waited for and named once."""
    delay, next_look, named = 0.02, time.monotonic() + HOLDER_CHECK_EVERY, 0
    while not conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)",
                           (APPLY_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        if time.monotonic() >= next_look:
            next_look = time.monotonic() + HOLDER_CHECK_EVERY
            holder = lock_holder(conn)
            session = ApplySession.parse(holder.application_name) if holder else None
            if holder is not None and session is not None and session.client_gone():
                _terminate_orphan(conn, holder, log)
                continue
            mine = session is not None and session.pid == os.getpid()
            if holder is not None and not mine and holder.pid != named and holder.since >= 5:
                named = holder.pid
                log(f"waiting for the apply lock, held by {holder.describe()}")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
