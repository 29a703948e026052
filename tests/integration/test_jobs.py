"""pg_cron jobs as resources: scheduled where pg_cron keeps them to run in the stack's
database, drift-checked, healed, unscheduled; each job's command does its work on a real
database; and pg_cron itself runs one.

The test cluster keeps pg_cron in database `postgres` (cron.database_name), and each test
deploys into a database of its own, so the jobs go through cron.schedule_in_database: the
self-hosted shape. Supabase's shape (pg_cron in the stack's own database) is the
`same database` test at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components import cron
from components.checks.command import run_phase
from components.checks.core import FAIL, PASS
from components.connection import connect, stop_embedded
from components.introspect import INACTIVE_JOB_NOTE
from components.model import ObjectSpec, build_model, cron_job_ddl
from components.provider import SqlObjectError, SqlObjectProvider, object_inputs
from components.settings import Settings
from tests.conftest import TestDatabase, stack_settings
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer

DIMS = 4
EVERY_JOB = {"snapshotSchedule": "0 3 * * *", "expiredPurgeSchedule": "15 3 * * *",
             "sessionCleanupSchedule": "0 * * * *", "historyRetentionSchedule": "@weekly",
             "analyzeSchedule": "0 4 * * *", "dimensions": DIMS}
JOBS = ("snapshot", "expired-purge", "session-cleanup", "history-retention", "analyze")


@pytest.fixture(autouse=True)
def _needs_pg_cron(pg_server: PgServer) -> None:
    if not pg_server.has_pg_cron:
        pytest.skip("the test server has no pg_cron")


def job_name(stack: str, job: str) -> str:
    return f"mem0:{stack}:memories:{job}"


def jobs_of(database: TestDatabase) -> dict[str, cron.Job]:
    """This database's jobs, by name, as pg_cron keeps them."""
    with database.connect() as conn, cron.cron_session(conn) as cron_conn:
        rows = cron_conn.execute("SELECT jobname FROM cron.job WHERE database = %s",
                                 (database.name,)).fetchall()
        found = {name: cron.find_job(cron_conn, name, database.name) for (name,) in rows}
    return {name: job for name, job in found.items() if job is not None}


def in_cron_database(database: TestDatabase, statement: str, *params: object) -> None:
    with psycopg.connect(database.server.dsn_for(database.server.cron_database),
                         autocommit=True) as conn:
        conn.execute(statement, params or None)


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


# --- resources: create, read, drift, heal, delete -------------------------------------------

def test_each_job_is_scheduled_to_run_in_the_stacks_database(
        make_stack, database: TestDatabase) -> None:
    report = make_stack("dev", **EVERY_JOB).up().raise_for_error()
    assert report.outputs["checks"]["passed"] is True
    jobs = jobs_of(database)
    assert set(jobs) == {job_name("dev", job) for job in JOBS}
    assert {j.database for j in jobs.values()} == {database.name}
    assert all(j.active and j.username == "postgres" for j in jobs.values())
    assert jobs[job_name("dev", "snapshot")].schedule == "0 3 * * *"
    assert jobs[job_name("dev", "snapshot")].command == \
        "SELECT mem0_backup.take_snapshot('7 days'::interval)"
    assert jobs[job_name("dev", "history-retention")].command == \
        "DELETE FROM public.memory_history WHERE at < now() - '365 days'::interval"
    validate = run_phase("validate", database.dsn, stack_settings(database, "dev", **EVERY_JOB))
    assert {r.name: r.status for r in validate.results}["cron_jobs"] == PASS


def test_a_job_changed_by_hand_is_drift_and_the_next_up_heals_it(
        make_stack, database: TestDatabase) -> None:
    driver = make_stack("dev", **EVERY_JOB)
    driver.up().raise_for_error()
    before = jobs_of(database)
    snapshot, purge = before[job_name("dev", "snapshot")], before[job_name("dev", "expired-purge")]
    analyze = before[job_name("dev", "analyze")]
    # someone moved the snapshot to the afternoon, "fixed" the purge, paused the ANALYZE,
    # and unscheduled the history retention
    in_cron_database(database, "SELECT cron.alter_job(%s, schedule => '0 15 * * *')",
                     snapshot.jobid)
    in_cron_database(database, "SELECT cron.alter_job(%s, command => 'SELECT 1')", purge.jobid)
    in_cron_database(database, "SELECT cron.alter_job(%s, active => false)", analyze.jobid)
    in_cron_database(database, "SELECT cron.unschedule(%s::bigint)",
                     before[job_name("dev", "history-retention")].jobid)

    drift = {resource_name(d["urn"]): d for d in driver.refresh().raise_for_error().drift}
    prefix = "mem0-dev-jobs-mem0:dev:memories:"
    assert {name: d["change"] for name, d in drift.items()} == {
        f"{prefix}snapshot": "updated", f"{prefix}expired-purge": "updated",
        f"{prefix}analyze": "updated", f"{prefix}history-retention": "deleted"}
    assert drift[f"{prefix}snapshot"]["live"]["ddl"] == cron_job_ddl(
        job_name("dev", "snapshot"), "0 15 * * *", snapshot.command)
    assert drift[f"{prefix}expired-purge"]["live"]["ddl"] == cron_job_ddl(
        job_name("dev", "expired-purge"), purge.schedule, "SELECT 1")
    assert drift[f"{prefix}analyze"]["live"]["ddl"].endswith(INACTIVE_JOB_NOTE)

    # validation names the same four, with the fix
    settings = stack_settings(database, "dev", **EVERY_JOB)
    report = run_phase("validate", database.dsn, settings)
    cron_jobs = next(r for r in report.results if r.name == "cron_jobs")
    assert cron_jobs.status == FAIL
    assert f"missing: cron job {job_name('dev', 'history-retention')}" in cron_jobs.detail
    for job in ("snapshot", "expired-purge", "analyze"):
        assert f"differs: cron job {job_name('dev', job)}" in cron_jobs.detail

    healed = driver.up().raise_for_error()
    changed = {resource_name(u) for u, op in healed.ops_by_type("SqlObject").items()
               if op != "same"}
    assert changed == set(drift)
    assert driver.refresh().raise_for_error().drift == []
    after = jobs_of(database)
    assert {name: (j.schedule, j.command, j.active) for name, j in after.items()} == {
        name: (j.schedule, j.command, j.active) for name, j in before.items()}
    assert len(after) == len(JOBS)


def test_turning_a_job_off_unschedules_it_and_a_new_retention_rewrites_its_command(
        make_stack, database: TestDatabase) -> None:
    make_stack("dev", **EVERY_JOB).up().raise_for_error()
    kept = jobs_of(database)[job_name("dev", "analyze")]
    changed = make_stack("dev", **{**EVERY_JOB, "snapshotSchedule": "",
                                    "historyRetentionDays": 30}).up().raise_for_error()
    ops = {resource_name(u): op for u, op in changed.ops_by_type("SqlObject").items()}
    assert ops["mem0-dev-jobs-mem0:dev:memories:snapshot"] == "delete"
    assert ops["mem0-dev-jobs-mem0:dev:memories:history-retention"] == "update"
    assert ops["mem0-dev-jobs-mem0:dev:memories:analyze"] == "same"
    jobs = jobs_of(database)
    assert job_name("dev", "snapshot") not in jobs
    assert jobs[job_name("dev", "history-retention")].command.endswith("'30 days'::interval")
    assert jobs[job_name("dev", "analyze")].jobid == kept.jobid  # left alone
    # the snapshot function and tables stay: turning the job off keeps the snapshots
    assert database.scalar("SELECT to_regprocedure('mem0_backup.take_snapshot(interval)')"
                           " IS NOT NULL") is True


def test_another_databases_job_of_the_same_name_is_never_taken_over(
        make_stack, database: TestDatabase) -> None:
    name = job_name("dev", "analyze")
    other = database.server.cron_database
    in_cron_database(database, "SELECT cron.schedule(%s, '0 1 * * *', 'SELECT 42')", name)
    try:
        report = make_stack("dev", analyzeSchedule="0 4 * * *", dimensions=DIMS).up()
        assert report.error and f"already has a job of this name that runs in database " \
            f"{other!r}" in report.error
        with psycopg.connect(database.server.dsn_for(other)) as conn:
            row = conn.execute("SELECT schedule, command FROM cron.job WHERE jobname = %s",
                               (name,)).fetchone()
        assert row == ("0 1 * * *", "SELECT 42")
    finally:
        in_cron_database(database, "SELECT cron.unschedule(%s)", name)


def test_a_job_in_pg_crons_own_database_is_scheduled_there_with_plain_cron_schedule(
        pg_server: PgServer) -> None:
    """Supabase's shape: pg_cron lives in the stack's database, where only cron.schedule
    is needed. The test cluster's cron database stands in; the job is removed after."""
    spec = ObjectSpec(kind="cron_job", schema="", name=f"mem0:test-{uuid.uuid4().hex[:8]}:x",
                      family="jobs", ddl="", drop_sql="")
    spec = ObjectSpec(**{**spec.__dict__, "ddl": cron_job_ddl(spec.name, "@hourly",
                                                              "SELECT 1")})
    dsn = pg_server.dsn_for(pg_server.cron_database)
    provider = SqlObjectProvider()
    props = object_inputs(spec, dsn, pg_server.cron_database, allow_data_loss=False)
    created = provider.create(props)
    try:
        read = provider.read(created.id, created.outs)
        assert read.outs["ddl"] == spec.ddl
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT database, schedule FROM cron.job WHERE jobname = %s",
                                (spec.name,)).fetchone() == (pg_server.cron_database, "@hourly")
    finally:
        provider.delete(created.id, created.outs)
    assert provider.read(created.id, created.outs).id is None


def test_without_pg_cron_preflight_names_the_settings_to_turn_off(tmp_path: Path) -> None:
    """The embedded server (pgserver) has no pg_cron: the deployment fails before any object
    is made, and says which settings schedule jobs."""
    data_dir = tmp_path / "pgdata"
    try:
        report = PulumiStack("dev", tmp_path / "state.json",
                             {"embeddedDataDir": str(data_dir), "dimensions": DIMS,
                               "snapshotSchedule": "@daily",
                               "analyzeSchedule": "@daily"}).up()
        assert report.error and "pg_cron is not loaded on this server" in report.error
        assert "set snapshotSchedule, analyzeSchedule to empty" in report.error
        assert not [o for o in report.operations
                    if o["op"] == "create" and "SqlObject" in o["urn"]]
    finally:
        stop_embedded(data_dir)


# --- each job's command does its work --------------------------------------------------------

@pytest.fixture
def deployed(make_stack, database: TestDatabase) -> Iterator[tuple[TestDatabase, Settings]]:
    make_stack("dev", **EVERY_JOB).up().raise_for_error()
    yield database, stack_settings(database, "dev", **EVERY_JOB)


def command_of(settings: Settings, job: str) -> str:
    spec = next(s for s in build_model(settings) if s.kind == "cron_job"
                and s.name.endswith(f":{job}"))
    return spec.ddl.split("$job$")[1]


def vector(seed: float) -> str:
    return "[" + ",".join(str(seed + i / 10) for i in range(DIMS)) + "]"


def add_memory(conn: psycopg.Connection, payload: str, updated: str = "now()") -> str:
    memory_id = str(uuid.uuid4())
    conn.execute(f"INSERT INTO public.memories (id, vector, payload, created_at, updated_at)"
                 f" VALUES (%s, %s::vector, %s::jsonb, {updated}, {updated})",
                 (memory_id, vector(len(payload) / 100), payload))
    return memory_id


def add_edge(conn: psycopg.Connection, source: str, target: str) -> None:
    conn.execute("INSERT INTO public.memory_relationships (source_memory_id, target_memory_id,"
                 " relationship_type, user_id) VALUES (%s, %s, 'related_to', 'u')",
                 (source, target))


def ids(conn: psycopg.Connection, table: str = "public.memories") -> set[str]:
    return {str(r[0]) for r in conn.execute(f"SELECT id FROM {table}").fetchall()}


def test_the_snapshot_job_copies_every_table_once_and_purges_old_snapshots(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    with database.connect() as conn:
        first, second = add_memory(conn, '{"user_id": "u", "data": "a"}'), \
            add_memory(conn, '{"user_id": "u", "data": "b ü"}')
        conn.execute("INSERT INTO public.memories_entities (id, vector, payload) "
                     "VALUES (gen_random_uuid(), %s::vector, '{\"user_id\": \"u\"}')",
                     (vector(0.3),))
        add_edge(conn, first, second)
        # a snapshot from a month ago, past the 7-day retention
        old = conn.execute("INSERT INTO mem0_backup.memories_snapshots (taken_at) VALUES "
                           "(now() - interval '30 days') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO mem0_backup.memories SELECT %s, id, vector, payload, "
                     "created_at, updated_at FROM public.memories", (old,))
        [(taken,)] = conn.execute(command_of(settings, "snapshot")).fetchall()
        snapshots = conn.execute("SELECT id, memories, entities, relationships, "
                                 "taken_at > now() - interval '1 minute' "
                                 "FROM mem0_backup.memories_snapshots").fetchall()
        assert snapshots == [(taken, 2, 1, 1, True)]
        live = conn.execute("SELECT id, vector::text, payload, created_at, updated_at "
                            "FROM public.memories ORDER BY id").fetchall()
        copied = conn.execute("SELECT id, vector::text, payload, created_at, updated_at "
                              "FROM mem0_backup.memories WHERE snapshot_id = %s ORDER BY id",
                              (taken,)).fetchall()
        assert copied == live
        assert conn.execute("SELECT count(*) FROM mem0_backup.memories WHERE snapshot_id = %s",
                            (old,)).fetchone() == (0,)  # gone with its snapshot
        edges = conn.execute("SELECT source_memory_id, target_memory_id, updated_at FROM "
                             "mem0_backup.memory_relationships").fetchall()
        assert edges == conn.execute("SELECT source_memory_id, target_memory_id, updated_at "
                                     "FROM public.memory_relationships").fetchall()


def test_a_snapshot_by_a_role_under_row_level_security_is_refused(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    with database.connect() as conn:
        add_memory(conn, '{"user_id": "u"}')
        conn.execute(f"SET ROLE {settings.owner_role}")  # owns it all, but bound by FORCE RLS
        with pytest.raises(psycopg.errors.RaiseException, match="bypasses row-level security"):
            conn.execute(command_of(settings, "snapshot"))
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT count(*) FROM mem0_backup.memories_snapshots"
                            ).fetchone() == (0,)


def test_the_expired_purge_deletes_exactly_what_mem0_hides(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    with database.connect() as conn:
        today = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()[0]
        day = __import__("datetime").timedelta(days=1)
        expired = add_memory(conn, f'{{"user_id": "u", "expiration_date": "{today - day}"}}')
        long_ago = add_memory(conn, '{"user_id": "u", "expiration_date": "2001-02-03"}')
        keep = {add_memory(conn, f'{{"user_id": "u", "expiration_date": "{today}"}}'),
                add_memory(conn, f'{{"user_id": "u", "expiration_date": "{today + day}"}}'),
                add_memory(conn, '{"user_id": "u", "expiration_date": "soon"}'),
                add_memory(conn, '{"user_id": "u", "expiration_date": null}'),
                add_memory(conn, '{"user_id": "u"}')}
        add_edge(conn, expired, next(iter(keep)))
        kept_edge_source, kept_edge_target = sorted(keep)[:2]
        add_edge(conn, kept_edge_source, kept_edge_target)
        conn.execute(command_of(settings, "expired-purge"))
        assert ids(conn) == keep
        # the expired memory's edge went with it (ON DELETE CASCADE); the other stayed
        assert conn.execute("SELECT source_memory_id::text, target_memory_id::text FROM "
                            "public.memory_relationships").fetchall() == [
            (kept_edge_source, kept_edge_target)]
        deletions = conn.execute("SELECT memory_id::text FROM public.memory_history "
                                 "WHERE operation = 'delete'").fetchall()
        assert sorted(d[0] for d in deletions) == sorted([expired, long_ago])


def test_the_session_cleanup_deletes_idle_sessions_only(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    old = "now() - interval '25 hours'"
    with database.connect() as conn:
        add_memory(conn, '{"user_id": "u", "run_id": "idle"}', old)
        add_memory(conn, '{"user_id": "u", "run_id": "idle", "data": "x"}', old)
        active = {add_memory(conn, '{"user_id": "u", "run_id": "active"}', old),
                  add_memory(conn, '{"user_id": "u", "run_id": "active", "data": "x"}')}
        sessionless = add_memory(conn, '{"user_id": "u"}', "now() - interval '400 days'")
        conn.execute(command_of(settings, "session-cleanup"))
        assert ids(conn) == active | {sessionless}


def test_the_history_retention_deletes_old_history_only(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    with database.connect() as conn:
        for n in range(4):
            add_memory(conn, f'{{"user_id": "u", "n": {n}}}')
        conn.execute("UPDATE public.memory_history SET at = now() - interval '366 days' "
                     "WHERE id IN (SELECT id FROM public.memory_history ORDER BY id LIMIT 3)")
        conn.execute(command_of(settings, "history-retention"))
        assert conn.execute("SELECT count(*), min(at) > now() - interval '1 day' FROM "
                            "public.memory_history").fetchone() == (1, True)
        assert len(ids(conn)) == 4  # memories untouched


def test_the_analyze_job_analyzes_every_memory_table(
        deployed: tuple[TestDatabase, Settings]) -> None:
    database, settings = deployed
    tables = ("memories", "memories_entities", "memory_relationships", "memory_history")
    query = ("SELECT relname, analyze_count FROM pg_stat_user_tables WHERE schemaname = "
             "'public' AND relname = ANY(%s)")
    with database.connect() as conn:
        before = dict(conn.execute(query, (list(tables),)).fetchall())
        conn.execute(command_of(settings, "analyze"))
        deadline = time.monotonic() + 10  # the statistics collector reports asynchronously
        after = before
        while time.monotonic() < deadline:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            after = dict(conn.execute(query, (list(tables),)).fetchall())
            if all(after[t] > before[t] for t in tables):
                break
            time.sleep(0.2)
        assert all(after[t] == before[t] + 1 for t in tables), (before, after)


def test_pg_cron_itself_runs_the_snapshot_job(make_stack, database: TestDatabase) -> None:
    """Within about a minute: pg_cron 1.4 schedules by the minute."""
    make_stack("dev", snapshotSchedule="* * * * *", dimensions=DIMS).up().raise_for_error()
    with database.connect() as conn:
        add_memory(conn, '{"user_id": "u"}')
        # pg_cron may already have run the job once, while the deployment ran its checks:
        # the run that counts is the first one that starts after the memory is there.
        inserted_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    job = jobs_of(database)[job_name("dev", "snapshot")]
    status = None
    deadline = time.monotonic() + 90
    with psycopg.connect(database.server.dsn_for(database.server.cron_database),
                         autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status, return_message FROM cron.job_run_details "
                               "WHERE jobid = %s AND status IN ('succeeded', 'failed') "
                               "AND start_time > %s ORDER BY runid LIMIT 1",
                               (job.jobid, inserted_at)).fetchone()
            if row:
                status = row
                break
            time.sleep(1)
    assert status is not None, "pg_cron did not run the job within 90 s"
    assert status[0] == "succeeded", status
    assert database.scalar("SELECT memories FROM mem0_backup.memories_snapshots "
                           "WHERE taken_at > %s ORDER BY id LIMIT 1", (inserted_at,)) == 1


def test_the_provider_refuses_to_schedule_without_pg_cron_naming_the_setting(
        tmp_path: Path) -> None:
    """The provider's own message, for a job applied where pg_cron is missing (preflight
    normally stops the deployment first)."""
    data_dir = tmp_path / "pgdata"
    try:
        spec = ObjectSpec(kind="cron_job", schema="", name="mem0:dev:memories:analyze",
                          family="jobs", ddl=cron_job_ddl("mem0:dev:memories:analyze",
                                                          "@daily", "SELECT 1"), drop_sql="")
        spec_dsn = f"embedded:{data_dir}"
        with connect(spec_dsn):
            pass  # starts the embedded server
        with pytest.raises(SqlObjectError, match="set analyzeSchedule to empty"):
            SqlObjectProvider().create(object_inputs(spec, spec_dsn, spec_dsn, False))
    finally:
        stop_embedded(data_dir)


def test_pg_cron_agrees_with_the_schedule_rules(pg_server: PgServer) -> None:
    """Every schedule the settings accept, pg_cron schedules; every one they refuse,
    pg_cron refuses too, except where the settings are stricter on purpose."""
    from tests.unit.test_schedule import INVALID, VALID

    stricter = {
        "@reboot": "runs once at start-up: not what these jobs are",
        "": "empty turns a job off in the settings",
        "0 3 * * * *": "pg_cron 1.4 ignores a sixth field without a word",
        "5-1 * * * *": "pg_cron 1.4 takes a backwards range, which matches no minute",
    }

    name = f"probe-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn_for(pg_server.cron_database), autocommit=True) as conn:
        try:
            for expression in VALID:
                conn.execute("SELECT cron.schedule(%s, %s, 'SELECT 1')",
                             (name, expression.strip()))
            for expression in INVALID:
                if expression in stricter:
                    continue
                with pytest.raises(psycopg.errors.InvalidParameterValue):
                    conn.execute("SELECT cron.schedule(%s, %s, 'SELECT 1')", (name, expression))
        finally:
            conn.execute("SELECT cron.unschedule(%s)", (name,))


def test_an_older_relationships_table_gains_updated_at_in_place(
        make_stack, database: TestDatabase) -> None:
    """Deployments from before issue 6 have no updated_at on memory_relationships: the next
    up adds it (rows kept, stamped now) with its touch trigger."""
    driver = make_stack("dev", dimensions=DIMS)
    driver.up().raise_for_error()
    with database.connect() as conn:
        first = add_memory(conn, '{"user_id": "u"}')
        add_edge(conn, first, add_memory(conn, '{"user_id": "u", "n": 2}'))
        conn.execute("DROP TRIGGER memory_relationships_touch ON public.memory_relationships")
        conn.execute("ALTER TABLE public.memory_relationships DROP COLUMN updated_at")
    driver.up().raise_for_error()
    with database.connect() as conn:
        assert conn.execute("SELECT count(*), bool_and(updated_at > now() - interval '1 "
                            "minute') FROM public.memory_relationships").fetchone() == (1, True)
        conn.execute("UPDATE public.memory_relationships SET strength = 0.5, "
                     "created_at = '2001-01-01', updated_at = '2001-01-01'")
        assert conn.execute("SELECT created_at > '2001-01-01', updated_at > '2001-01-01' "
                            "FROM public.memory_relationships").fetchone() == (True, True)
