"""Backups proven fresh: the newest in-database snapshot against the snapshot schedule, and
the last run of every pg_cron job the stack schedules. Read by validation and the audit.

The rule (docs/backup.md, "Proven fresh"): the newest snapshot must be younger than twice
the longest time between two runs of `snapshotSchedule`, and the last finished run of each
declared job must have succeeded. A job pg_cron has no finished run of yet is not a
failure: cron.job keeps no time of scheduling, so nothing tells "deployed a minute ago"
from "never runs", and every deployment that (re)schedules a job gives it a new jobid and
so no runs. Until the snapshot job's first run, a missing or old snapshot is reported,
not failed (turning the job on after months off must not fail that deployment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from components import cron
from components.checks.core import Context
from components.identifiers import qualified
from components.model import BACKUP_SCHEMA, cron_job_name
from components.schedule import longest_interval
from components.settings import JOB_SETTINGS, Settings

SNAPSHOT_JOB = "snapshot"
FINISHED = ("succeeded", "failed")  # pg_cron's end states; others are runs in progress
MAX_MESSAGE = 300  # characters of a run's error shown

# The last finished run of each named job that runs in the database, newest job first when
# a name has more than one (scheduled twice by hand).
_LAST_RUNS = """
SELECT j.jobname, j.jobid, d.status, d.start_time, d.end_time, d.return_message
FROM cron.job j
LEFT JOIN LATERAL (
    SELECT r.status, r.start_time, r.end_time, r.return_message
    FROM cron.job_run_details r
    WHERE r.jobid = j.jobid AND r.status = ANY(%s)
    ORDER BY r.runid DESC LIMIT 1) d ON true
WHERE j.jobname = ANY(%s) AND j.database = %s
ORDER BY j.jobid DESC
"""


@dataclass(frozen=True)
class LastRun:
    """A job's last finished run, as cron.job_run_details recorded it."""

    succeeded: bool
    started: datetime
    ended: datetime | None
    message: str


@dataclass(frozen=True)
class JobState:
    job: str  # the model's short name: snapshot, analyze, ...
    name: str  # its name in cron.job
    setting: str  # the setting that schedules it
    schedule: str
    scheduled: bool  # cron.job has it, to run in this database
    last: LastRun | None  # None: no finished run yet

    def describe_failure(self) -> str:
        assert self.last is not None
        return (f"job {self.name} ({self.setting} {self.schedule!r}) last ran at "
                f"{self.last.started:%Y-%m-%d %H:%M:%S %Z} and failed: "
                f"{shorten(self.last.message)}")


@dataclass(frozen=True)
class SnapshotState:
    """The newest snapshot as the role sees it, and the limit its age is held to."""

    table: str
    schedule: str
    interval: timedelta | None  # longest time between two runs; None: never fires
    exists: bool  # the snapshots table is there
    visible: bool  # the role reads the table's rows (it bypasses row-level security)
    role: str
    count: int
    newest_id: int | None
    newest_at: datetime | None
    age: timedelta | None

    @property
    def limit(self) -> timedelta | None:
        return None if self.interval is None else 2 * self.interval

    @property
    def stale(self) -> bool:
        return self.age is not None and self.limit is not None and self.age > self.limit

    def rule(self) -> str:
        assert self.interval is not None
        return (f"twice the longest interval of snapshotSchedule {self.schedule!r} "
                f"({span(self.interval)})")


def span(delta: timedelta) -> str:
    """A duration exactly, in the largest units that matter: '2 d 3 h', '1 h 5 min'."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def shorten(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def declared_jobs(settings: Settings) -> list[tuple[str, str, str]]:
    """(job, cron.job name, schedule) of every job the stack schedules."""
    return [(job, cron_job_name(settings, job), when) for job in JOB_SETTINGS
            if (when := settings.jobs.schedule(job))]


def job_states(ctx: Context) -> list[JobState]:
    """Every declared job with its last finished run. CronUnavailable without pg_cron;
    psycopg's InsufficientPrivilege when the role may not read pg_cron's tables (in a
    savepoint: the caller's transaction stays usable)."""
    declared = declared_jobs(ctx.settings)
    database = cron.current_database(ctx.conn)
    with cron.cron_session(ctx.conn) as cron_conn, cron_conn.transaction():
        rows = cron_conn.execute(_LAST_RUNS, (list(FINISHED), [n for _, n, _ in declared],
                                              database)).fetchall()
    found: dict[str, LastRun | None] = {}
    for name, _jobid, status, started, ended, message in rows:
        if name in found:
            continue  # an older job of the same name: the newest one is the stack's
        found[name] = None if status is None else LastRun(
            status == "succeeded", started, ended, str(message or ""))
    return [JobState(job, name, JOB_SETTINGS[job], when, name in found, found.get(name))
            for job, name, when in declared]


def snapshot_state(ctx: Context) -> SnapshotState | None:
    """The newest snapshot and its limit; None when the stack schedules no snapshot job."""
    s = ctx.settings
    when = s.jobs.snapshot_schedule
    if not when:
        return None
    table = qualified(BACKUP_SCHEMA, f"{s.collection}_snapshots")
    # Row-level security is forced on the table with no policy: a role that does not
    # bypass it reads no rows, which must not pass for "no snapshot". Each privilege is
    # asked first (from the catalog: to_regclass errs without USAGE on the schema), so a
    # role that lacks one gets an answer, not an error.
    role, exists, visible = ctx.rows(
        "SELECT current_user::text, t.oid IS NOT NULL, CASE WHEN t.oid IS NULL THEN false"
        " ELSE (r.rolsuper OR r.rolbypassrls)"
        " AND pg_catalog.has_schema_privilege(t.relnamespace, 'USAGE')"
        " AND pg_catalog.has_table_privilege(t.oid, 'SELECT') END"
        " FROM pg_catalog.pg_roles r LEFT JOIN (SELECT c.oid, c.relnamespace"
        "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        "  WHERE n.nspname = %s AND c.relname = %s) t ON true"
        " WHERE r.rolname = current_user", (BACKUP_SCHEMA, f"{s.collection}_snapshots"))[0]
    count, newest_id, newest_at, age = 0, None, None, None
    if visible:
        count, newest_id, newest_at, age = ctx.rows(
            f"SELECT (SELECT count(*) FROM {table}), n.id, n.taken_at, now() - n.taken_at"
            f" FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, taken_at FROM {table}"
            " ORDER BY taken_at DESC, id DESC LIMIT 1) n ON true")[0]
    return SnapshotState(table, when, longest_interval(when), bool(exists), bool(visible),
                         str(role), int(count), newest_id, newest_at, age)


@dataclass(frozen=True)
class Verdict:
    """What the rule makes of the snapshots: fresh or not, and why, in a line."""

    fresh: bool
    detail: str
    hint: str = ""


def snapshot_verdict(state: SnapshotState, job: JobState | None) -> Verdict:
    """Apply the rule to a visible snapshot table. `job` is the snapshot job's state; None
    when pg_cron could not be read, and then the rule applies without the exemption."""
    # scheduled (anew) and no run finished yet: the exemption
    waiting = job is not None and job.scheduled and job.last is None
    if state.interval is None:
        return Verdict(False, f"snapshotSchedule {state.schedule!r} never fires, so no "
                              "snapshot will be taken",
                       "give snapshotSchedule a date that exists, then `pulumi up`")
    assert state.limit is not None
    limit = f"the limit of {span(state.limit)}, {state.rule()}"
    not_run = f"job {job.name if job else SNAPSHOT_JOB} has not run since it was scheduled"
    if state.newest_at is None or state.age is None:
        if waiting:
            return Verdict(True, f"no snapshot in {state.table} yet: {not_run} (not failed "
                                 "until its first run)")
        ran = f", though job {job.name} ran" if job and job.last else ""
        return Verdict(False, f"no snapshot in {state.table}{ran}; {limit}", _SNAPSHOT_HINT)
    newest = (f"newest snapshot {state.newest_id} in {state.table}, taken at "
              f"{state.newest_at:%Y-%m-%d %H:%M:%S %Z}, is {span(state.age)} old")
    if not state.stale:
        return Verdict(True, f"{newest}: within {limit} ({state.count} snapshots kept)")
    if waiting:
        return Verdict(True, f"{newest}, over {limit}; but {not_run} (not failed until its "
                             "first run)")
    return Verdict(False, f"{newest}: older than {limit}", _SNAPSHOT_HINT)


_SNAPSHOT_HINT = ("see the snapshot job's runs in pg_cron's database (SELECT status, "
                  "return_message FROM cron.job_run_details WHERE jobid = <its jobid> ORDER "
                  "BY runid DESC LIMIT 5); a snapshot by hand: SELECT "
                  "mem0_backup.take_snapshot('<retention> days')")


def snapshot_job(states: list[JobState]) -> JobState | None:
    return next((j for j in states if j.job == SNAPSHOT_JOB), None)
