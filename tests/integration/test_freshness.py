"""Backups proven fresh, on the real test cluster with real pg_cron: validation's
`job_runs` and `snapshot_fresh`, the audit's `snapshot_stale`, `job_last_run_failed` and
`--backups DIR`.

pg_cron 1.4 (Debian bookworm) schedules by the minute, so the test that waits for real runs
takes two to three minutes; the daily-schedule tests record a run by hand (as the
superuser) only where no real run could happen within a test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from components import audit
from components.backup import BackupRequest, run_backup
from components.backup.archive import open_archive, write_archive
from components.backup.common import CommandProgress
from components.backup.encryption import PASSPHRASE_ENV, Passphrase
from components.checks import validate
from components.checks.command import run_phase
from components.checks.core import FAIL, PASS, SKIP, Context, Report, Result
from components.checks.freshness import snapshot_state
from components.cli import main
from components.model import build_model, cron_job_name
from components.settings import Settings
from tests.conftest import TestDatabase, stack_config, stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

STACK = "dev"
DAILY: dict[str, Any] = {"dimensions": 4, "snapshotSchedule": "0 3 * * *",
                         "analyzeSchedule": "0 4 * * *"}
SNAPSHOTS = "mem0_backup.memories_snapshots"
OURS = ("snapshot_stale", "job_last_run_failed", "backup_file_unencrypted",
        "backup_file_stale")


@pytest.fixture(autouse=True)
def _needs_pg_cron(pg_server: PgServer) -> None:
    if not pg_server.has_pg_cron:
        pytest.skip("the test server has no pg_cron")


def result(report: Report, name: str) -> Result:
    return next(r for r in report.results if r.name == name)


def ours(report: Report) -> list[tuple[str, str]]:
    return [(f.code, f.object) for f in report.findings if f.code in OURS]


def cron_conn(database: TestDatabase) -> psycopg.Connection:
    return psycopg.connect(database.server.dsn_for(database.server.cron_database),
                           autocommit=True)


def jobid(database: TestDatabase, job: str, stack: str = STACK) -> int:
    with cron_conn(database) as conn:
        row = conn.execute("SELECT jobid FROM cron.job WHERE jobname = %s AND database = %s",
                           (cron_job_name(stack_settings(database, stack), job),
                            database.name)).fetchone()
    assert row is not None
    return int(row[0])


def wait_for_run(database: TestDatabase, job: str, stack: str, after: datetime,
                 timeout: float = 100) -> tuple[str, str]:
    """(status, return_message) of the job's first run that started after `after` and
    finished."""
    ident = jobid(database, job, stack)
    deadline = time.monotonic() + timeout
    with cron_conn(database) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status, return_message FROM cron.job_run_details "
                               "WHERE jobid = %s AND status IN ('succeeded', 'failed') "
                               "AND start_time > %s ORDER BY runid LIMIT 1",
                               (ident, after)).fetchone()
            if row:
                return str(row[0]), str(row[1])
            time.sleep(1)
    raise AssertionError(f"pg_cron did not run job {job} within {timeout} s")


def now(database: TestDatabase) -> datetime:
    value = database.scalar("SELECT clock_timestamp()")
    assert isinstance(value, datetime)
    return value


# --- daily schedules: no real run within a test ----------------------------------------------

@pytest.fixture(scope="module")
def daily(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[TestDatabase, Settings]]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK, **DAILY) as db:
        yield db, stack_settings(db, STACK, **DAILY)


def test_without_jobs_both_checks_are_not_applicable_and_say_why(
        daily: tuple[TestDatabase, Settings]) -> None:
    database, _ = daily
    settings = stack_settings(database, STACK, dimensions=4)  # the same stack, no schedules
    report = run_phase("validate", database.dsn, settings)
    runs, fresh = result(report, "job_runs"), result(report, "snapshot_fresh")
    assert (runs.status, runs.blocks, runs.detail) == (
        SKIP, False, "the stack schedules no pg_cron jobs")
    assert (fresh.status, fresh.blocks) == (SKIP, False)
    assert fresh.detail == "the stack schedules no snapshot job (snapshotSchedule is empty)"
    audited = audit.run_audit(database.dsn, settings)
    assert {r.name: r.status for r in audited.results if r.name in (
        "snapshot_stale", "job_last_run_failed")} == {"snapshot_stale": SKIP,
                                                      "job_last_run_failed": SKIP}


def test_right_after_deploy_jobs_not_run_yet_pass_and_are_named(
        daily: tuple[TestDatabase, Settings]) -> None:
    database, settings = daily
    report = run_phase("validate", database.dsn, settings)
    assert report.passed, report.text()
    runs, fresh = result(report, "job_runs"), result(report, "snapshot_fresh")
    assert runs.status == PASS
    assert runs.detail == ("not run yet since scheduled: mem0:dev:memories:snapshot, "
                           "mem0:dev:memories:analyze")
    assert fresh.status == PASS
    assert fresh.detail == (f"no snapshot in {SNAPSHOTS} yet: job mem0:dev:memories:snapshot "
                            "has not run since it was scheduled (not failed until its first "
                            "run)")
    assert ours(audit.run_audit(database.dsn, settings)) == []


def test_a_snapshot_older_than_twice_the_interval_fails_once_the_job_has_run(
        daily: tuple[TestDatabase, Settings]) -> None:
    database, settings = daily
    snapshot_job = jobid(database, "snapshot")
    with database.connect() as conn:
        taken = conn.execute("SELECT mem0_backup.take_snapshot('7 days')").fetchone()[0]  # type: ignore[index]
    try:
        fresh = result(run_phase("validate", database.dsn, settings), "snapshot_fresh")
        assert fresh.status == PASS
        assert f"newest snapshot {taken} in {SNAPSHOTS}" in fresh.detail
        assert ("within the limit of 2 d, twice the longest interval of snapshotSchedule "
                "'0 3 * * *' (1 d) (1 snapshots kept)") in fresh.detail

        # As the admin: the snapshot is now three days old. The job has not run since it
        # was scheduled, so this is reported, not failed.
        database.scalar(f"UPDATE {SNAPSHOTS} SET taken_at = now() - interval '3 days 2 hours'"
                        " RETURNING id")
        fresh = result(run_phase("validate", database.dsn, settings), "snapshot_fresh")
        assert fresh.status == PASS
        assert "is 3 d 2 h old, over the limit of 2 d" in fresh.detail
        assert "has not run since it was scheduled (not failed until its first run)" \
            in fresh.detail

        # Its first run recorded (as the superuser: a daily job cannot run in a test).
        with cron_conn(database) as conn:
            conn.execute("INSERT INTO cron.job_run_details (jobid, runid, database, username,"
                         " command, status, return_message, start_time, end_time) VALUES"
                         " (%s, nextval('cron.runid_seq'), %s, 'postgres', 'SELECT 1',"
                         " 'succeeded', '1 row', now() - interval '1 hour',"
                         " now() - interval '1 hour')", (snapshot_job, database.name))
        report = run_phase("validate", database.dsn, settings)
        fresh = result(report, "snapshot_fresh")
        assert fresh.status == FAIL
        assert fresh.detail.startswith(f"newest snapshot {taken} in {SNAPSHOTS}, taken at ")
        assert fresh.detail.endswith(
            "is 3 d 2 h old: older than the limit of 2 d, twice the longest interval of "
            "snapshotSchedule '0 3 * * *' (1 d)")
        assert "cron.job_run_details" in fresh.hint and "take_snapshot" in fresh.hint
        assert result(report, "job_runs").status == PASS
        assert report.failures == [fresh]  # one fault, one failed check
        audited = audit.run_audit(database.dsn, settings)
        assert ours(audited) == [("snapshot_stale", f"table {SNAPSHOTS}")]
        assert audited.findings[[f.code for f in audited.findings].index(
            "snapshot_stale")].message == fresh.detail
    finally:
        with cron_conn(database) as conn:
            conn.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", (snapshot_job,))
        database.scalar(f"DELETE FROM {SNAPSHOTS} RETURNING id")


def test_a_role_that_cannot_see_the_snapshots_is_not_told_they_are_missing(
        daily: tuple[TestDatabase, Settings]) -> None:
    """The readonly role does not bypass row-level security: the snapshots' table would
    show it no rows, which must not read as 'no snapshot'."""
    database, settings = daily
    with database.connect() as conn:
        conn.execute("SELECT mem0_backup.take_snapshot('7 days')")
    try:
        with database.connect() as conn, conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL ROLE {settings.readonly_role}")
            ctx = Context(conn, settings, tuple(build_model(settings)), database.dsn)
            state = snapshot_state(ctx)
            assert state is not None and state.exists and not state.visible
            assert (state.role, state.count, state.newest_at) == (
                settings.readonly_role, 0, None)
            refused = validate.check_snapshot_fresh(ctx)
            skipped = audit.snapshot_stale(ctx)
        assert refused.status == FAIL
        assert refused.detail == (f"{settings.readonly_role} does not bypass row-level "
                                  f"security (or may not read {SNAPSHOTS}), so it sees no "
                                  "snapshot")
        assert (skipped.status, skipped.findings) == (SKIP, ())
        assert skipped.detail.startswith(f"{settings.readonly_role} does not bypass")
    finally:
        database.scalar(f"DELETE FROM {SNAPSHOTS} RETURNING id")


# --- --backups DIR ------------------------------------------------------------------------------

def project_dir(tmp_path: Path, database: TestDatabase) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    config = stack_config(database, **DAILY)
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{k}": v for k, v in config.items()}}))
    return directory


def rewritten(source: Path, target: Path, **fields: Any) -> None:
    """A copy of a backup file whose manifest has `fields` changed (members kept)."""
    spool = target.with_name(target.name + ".members")
    spool.mkdir()
    with open_archive(source, None, None) as archive:
        manifest = json.loads(archive.manifest_bytes())
        members = []
        for name, _, stream in archive.members():
            (spool / name).write_bytes(stream.read())
            members.append((name, spool / name))
    manifest.update(fields)
    with target.open("wb") as sink:
        write_archive(sink, json.dumps(manifest).encode(), members, 0)


def audit_json(capsys: pytest.CaptureFixture[str], database: TestDatabase, project: Path,
               *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--stack", STACK, "--project-dir", str(project), "--dsn",
                 database.dsn, "--json", *extra])
    out = capsys.readouterr()
    assert code in (0, 1) and out.out, out.err
    return code, json.loads(out.out)


def test_audit_flags_unencrypted_and_stale_backup_files(
        daily: tuple[TestDatabase, Settings], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    database, settings = daily
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    backups = tmp_path / "backups"
    backups.mkdir()
    plain = backups / "plain.tar.gz"
    run_backup(database.dsn, settings, BackupRequest(plain), CommandProgress(None, "test"))
    # a real encrypted backup under its generated name: the audit reads neither its
    # manifest (no passphrase here) nor its rows, and takes stack and time from the name
    sealed = Path(run_backup(database.dsn, settings, BackupRequest(
        backups, passphrase=Passphrase(PASSPHRASE_ENV, "correct horse")),
        CommandProgress(None, "test")).location)
    assert sealed.name.endswith(".tar.gz.enc")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rewritten(plain, scratch / "other.tar.gz", stack="other-stack")
    (scratch / "other.tar.gz").rename(backups / "other.tar.gz")
    (backups / "notes.txt").write_text("not a backup\n")
    project = project_dir(tmp_path, database)

    code, document = audit_json(capsys, database, project, "--backups", str(backups))
    files = [f for f in document["findings"] if f["code"].startswith("backup_file")]
    # only the stack's own plain file: the sealed one says how it is encrypted, the other
    # stack's is not this audit's business, and the text file is not a backup
    assert [(f["code"], f["object"]) for f in files] == [
        ("backup_file_unencrypted", f"backup file {plain}")]
    assert "is not encrypted" in files[0]["message"]
    assert code == 1
    assert document["checked"][-2:] == ["backup_file_unencrypted", "backup_file_stale"]

    time.sleep(1.5)
    code, document = audit_json(capsys, database, project, "--backups", str(backups),
                                "--backup-max-age-hours", "0.0001")
    stale = [f for f in document["findings"] if f["code"] == "backup_file_stale"]
    assert len(stale) == 1
    assert stale[0]["object"] == f"backup file {sealed}"  # the newer of the two
    assert "older than the limit of 0 s, given by --backup-max-age-hours" \
        in stale[0]["message"]

    # no full backup of the stack at all
    plain.unlink()
    sealed.unlink()
    code, document = audit_json(capsys, database, project, "--backups", str(backups))
    stale = [f for f in document["findings"] if f["code"] == "backup_file_stale"]
    assert [(f["object"], f["message"]) for f in stale] == [(
        f"backup directory {backups}",
        f"no full backup of stack 'dev' in {backups} (1 backups of any stack read, 1 files "
        "not read)")]


def test_audit_refuses_bad_backup_arguments(daily: tuple[TestDatabase, Settings],
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    database, _ = daily
    project = project_dir(tmp_path, database)
    base = ["audit", "--stack", STACK, "--project-dir", str(project), "--dsn", database.dsn]
    assert main([*base, "--backups", str(tmp_path / "nowhere")]) == 2
    assert f"--backups {tmp_path / 'nowhere'}: not a directory" in capsys.readouterr().err
    assert main([*base, "--backup-max-age-hours", "5"]) == 2
    assert "--backup-max-age-hours needs --backups DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*base, "--backups", str(tmp_path), "--backup-max-age-hours", "-1"])
    assert exited.value.code == 2
    assert "'-1' is not a positive number of hours" in capsys.readouterr().err


# --- real pg_cron runs ---------------------------------------------------------------------------

# Not STACK: pg_cron keys jobs by name and user across databases, and the module's daily
# stack holds mem0:dev:... jobs while this test runs.
LIVE = "live"
BREAK = """
CREATE FUNCTION mem0_backup.refuse_for_test() RETURNS trigger LANGUAGE plpgsql
SET search_path = '' AS $$ BEGIN RAISE EXCEPTION 'snapshots refused for the test'; END $$;
CREATE TRIGGER refuse_for_test BEFORE INSERT ON mem0_backup.memories_snapshots
FOR EACH ROW EXECUTE FUNCTION mem0_backup.refuse_for_test();
"""


def test_pg_crons_real_runs_a_fresh_snapshot_passes_then_a_failed_run_and_an_old_snapshot_fail(
        make_stack, database: TestDatabase) -> None:
    config = {"dimensions": 4, "snapshotSchedule": "* * * * *"}
    up = make_stack(LIVE, **config).up().raise_for_error()
    assert up.outputs["checks"]["passed"] is True  # the job has not run yet: not a failure
    settings = stack_settings(database, LIVE, **config)
    name = cron_job_name(settings, "snapshot")

    assert wait_for_run(database, "snapshot", LIVE, now(database))[0] == "succeeded"
    report = run_phase("validate", database.dsn, settings)
    assert report.passed, report.text()
    assert result(report, "job_runs").detail.startswith(f"last run succeeded: {name} (at ")
    fresh = result(report, "snapshot_fresh").detail
    assert "within the limit of 2 min, twice the longest interval of snapshotSchedule " \
        "'* * * * *' (1 min)" in fresh

    # The job now fails (a trigger refuses its insert), and the snapshots look 3 hours old.
    with database.connect() as conn:
        conn.execute(BREAK)
        conn.execute(f"UPDATE {SNAPSHOTS} SET taken_at = taken_at - interval '3 hours'")
    status, message = wait_for_run(database, "snapshot", LIVE, now(database))
    assert status == "failed" and "snapshots refused for the test" in message

    report = run_phase("validate", database.dsn, settings)
    runs, fresh_result = result(report, "job_runs"), result(report, "snapshot_fresh")
    assert runs.status == FAIL
    assert runs.detail.startswith("1 of 1 jobs did not succeed:\n")
    assert f"job {name} (snapshotSchedule '* * * * *') last ran at " in runs.detail
    assert "and failed: ERROR: snapshots refused for the test" in runs.detail
    assert fresh_result.status == FAIL
    assert "is 3 h " in fresh_result.detail or "is 3 h old" in fresh_result.detail
    assert "older than the limit of 2 min, twice the longest interval of snapshotSchedule " \
        "'* * * * *' (1 min)" in fresh_result.detail

    audited = audit.run_audit(database.dsn, settings)
    assert ours(audited) == [("snapshot_stale", f"table {SNAPSHOTS}"),
                             ("job_last_run_failed", f"cron job {name}")]
    failed_run = next(f for f in audited.findings if f.code == "job_last_run_failed")
    assert "snapshots refused for the test" in failed_run.message

    # Fixed: the next run succeeds and both checks pass again.
    with database.connect() as conn:
        conn.execute("DROP TRIGGER refuse_for_test ON mem0_backup.memories_snapshots")
        conn.execute("DROP FUNCTION mem0_backup.refuse_for_test()")
    assert wait_for_run(database, "snapshot", LIVE, now(database))[0] == "succeeded"
    report = run_phase("validate", database.dsn, settings)
    assert result(report, "job_runs").status == PASS
    assert result(report, "snapshot_fresh").status == PASS
