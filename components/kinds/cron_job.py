"""Kind `cron_job`: a pg_cron job of this stack, as the call that schedules it.

pg_cron keeps every job of a server in one database (`components.cron`); a job is this
stack's when its name matches and it runs in the stack's database. Apply, in one
transaction of the cron database: unschedule every job of the name that runs here,
schedule the declared one, compare `cron.job` with the declared text before committing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from components import cron
from components.identifiers import quote_literal
from components.kinds.apply import ddl_diff
from components.kinds.base import (
    Change,
    Cursor,
    Family,
    Kind,
    KindSpec,
    ObjectRef,
    SqlObjectError,
    named_label,
)
from components.settings import JOB_SETTINGS

INACTIVE_JOB_NOTE = "-- INACTIVE: cron.alter_job(..., active => false) paused this job"


@dataclass(frozen=True)
class CronJobFields:
    name: str  # unique per stack and collection: mem0:<stack>:<collection>:<job>
    schedule: str
    command: str

    def ddl(self) -> str:
        return cron_job_ddl(self.name, self.schedule, self.command)

    def drop_sql(self) -> str:
        return f"SELECT cron.unschedule({quote_literal(self.name)});"


def cron_job_ddl(name: str, schedule: str, command: str) -> str:
    """A pg_cron job's canonical text, as `read` rebuilds it from cron.job: the call that
    schedules it in the database it runs in."""
    quoted = f"$job${command}$job$" if "$job$" not in command else quote_literal(command)
    return f"SELECT cron.schedule({quote_literal(name)}, {quote_literal(schedule)}, {quoted});"


_CRON_JOB_DDL = re.compile(r"^SELECT cron\.schedule\('((?:[^']|'')*)', '((?:[^']|'')*)', "
                           r"(?:\$job\$(.*)\$job\$|'((?:[^']|'')*)')\);$", re.DOTALL)


def parse_cron_job_ddl(ddl: str) -> tuple[str, str, str]:
    """(name, schedule, command) of a canonical job text: `cron_job_ddl`'s inverse. Only
    for inputs that carry no fields (a spec made by hand, older state)."""
    match = _CRON_JOB_DDL.match(ddl)
    if match is None:
        raise ValueError(f"not a canonical cron job statement: {ddl[:80]!r}")
    name, schedule, dollar, literal = match.groups()
    command = dollar if dollar is not None else literal.replace("''", "'")
    return name.replace("''", "'"), schedule.replace("''", "'"), command


def job_setting(name: str) -> str:
    """The setting that schedules the job of that cron.job name."""
    return JOB_SETTINGS.get(name.rsplit(":", 1)[-1], "the job's schedule setting")


def job_ddl(name: str, job: cron.Job | None) -> str | None:
    """A job as cron.job holds it, in the canonical form."""
    if job is None:
        return None
    text = cron_job_ddl(name, job.schedule, job.command)
    return text if job.active else f"{text}\n{INACTIVE_JOB_NOTE}"


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    """The job of this name that runs in the cursor's database, from pg_cron's database;
    None when there is none, or no pg_cron to hold one."""
    conn = cur.connection
    try:
        with cron.cron_session(conn) as cron_conn:
            job = cron.find_job(cron_conn, ref["name"], cron.current_database(conn))
    except cron.CronUnavailable:
        return None
    return job_ddl(ref["name"], job)


def _unavailable(change: Change[CronJobFields], why: cron.CronUnavailable) -> SqlObjectError:
    return SqlObjectError(f"{change.label}: {why}; install pg_cron, or turn the job off "
                          f"(set {job_setting(change.props['name'])} to empty)")


def ensure(conn: psycopg.Connection, change: Change[CronJobFields]) -> None:
    """Unschedule what runs under this name in this database, schedule the declared job,
    and check it, in one transaction of pg_cron's database."""
    job_fields = change.need_fields()
    name, declared = job_fields.name, change.props["ddl"]
    database = cron.current_database(conn)
    try:
        with cron.cron_session(conn) as cron_conn, cron_conn.transaction():
            user = cron_conn.execute("SELECT current_user::text").fetchone()[0]  # type: ignore[index]
            for job in cron.jobs_named(cron_conn, name):
                if job.database != database:
                    if job.username != user:
                        continue  # another role's job elsewhere: pg_cron keeps them apart
                    # pg_cron keys jobs by name and user: scheduling would take it over.
                    # Another stack's, or this one's moved by hand: only a person can say.
                    raise SqlObjectError(
                        f"{change.label}: {user} already has a job of this name that runs "
                        f"in database {job.database!r} (jobid {job.jobid}), not "
                        f"{database!r}; another stack's? Unschedule it, or deploy this "
                        "stack under another stack name or collection")
                cron.unschedule(cron_conn, job)
            cron.schedule(cron_conn, name, job_fields.schedule, job_fields.command, database)
            live = job_ddl(name, cron.find_job(cron_conn, name, database))
            if live != declared:
                raise SqlObjectError(
                    f"{change.label}: after scheduling, cron.job shows a different job than "
                    f"declared:\n{ddl_diff(declared, live or '<missing>')}")
    except cron.CronUnavailable as exc:
        raise _unavailable(change, exc) from None


def delete(conn: psycopg.Connection, change: Change[CronJobFields]) -> None:
    database = cron.current_database(conn)
    try:
        with cron.cron_session(conn) as cron_conn, cron_conn.transaction():
            for job in cron.jobs_named(cron_conn, change.props["name"]):
                if job.database == database:
                    cron.unschedule(cron_conn, job)
    except cron.CronUnavailable:
        pass  # no pg_cron: no job to remove


def _legacy(props: ObjectRef) -> CronJobFields:
    return CronJobFields(*parse_cron_job_ddl(props["ddl"]))


SPEC = KindSpec(Kind.CRON_JOB, Family.JOBS, CronJobFields, read, ensure, delete,
                label=named_label, converge_on_create=True, legacy_fields=_legacy,
                recreates=True)
