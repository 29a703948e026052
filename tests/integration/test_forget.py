"""`forget` against a real PostgreSQL: a user, an agent or a run erased from every table of
every schema (history and snapshots included), nobody else touched, a record without
content, dry runs that change nothing, the function refused to every role but the service
role, and restore refusing a backup that would bring an erased person back.

The stack is test_backup's (org tenancy, so memberships exist), filled by its `fill`
through mem0's own SQL shapes; then a snapshot is taken, a migration run stages copies,
and more changes follow, so the person's rows live in the tables, in the history, in a
snapshot and in mem0_migration, some only in one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from components.backup import RestoreRefused
from components.cli import main
from components.erasure import PersonKind
from components.forget import ForgetError, ForgetRequest, ForgetResult, run_forget
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase
from tests.integration.test_backup import (
    DIMS,
    STACK,
    as_role,
    backup,
    cloned,
    fill,
    mem0_insert,
    mem0_update,
    payload,
    project,
    restore,
    vector,
)
from tests.integration.test_backup import settings as settings
from tests.integration.test_backup import template as template
from tests.support.testbed import PgServer

# Schemas of the test database that hold nothing of the stack.
SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


def person(db: TestDatabase, where: str) -> tuple[set[str], set[str]]:
    """The texts (payload 'data') and the ids of the memories and entities matching
    `where`, wherever a copy is kept: live, in a snapshot, staged by a migration, or only
    in the history."""
    rows = query(db, f"""
        SELECT payload ->> 'data', id::text FROM public.memories WHERE {where}
        UNION SELECT payload ->> 'data', id::text FROM public.memories_entities WHERE {where}
        UNION SELECT payload ->> 'data', id::text FROM mem0_backup.memories WHERE {where}
        UNION SELECT payload ->> 'data', id::text FROM mem0_backup.memories_entities
              WHERE {where}
        UNION SELECT payload ->> 'data', id::text FROM mem0_migration.staged WHERE {where}
        UNION SELECT payload ->> 'data', id::text FROM mem0_migration.preimages WHERE {where}
        UNION SELECT h.v -> 'payload' ->> 'data', memory_id::text FROM public.memory_history,
              LATERAL (VALUES (old_value), (new_value)) h(v)
              WHERE {where.replace('payload', 'h.v')}""")
    return {r[0] for r in rows if r[0]}, {r[1] for r in rows}


def query(db: TestDatabase, statement: str, params: tuple[object, ...] = ()
          ) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(statement, params or None).fetchall()  # type: ignore[arg-type]


def every_table(db: TestDatabase) -> list[str]:
    """Every ordinary table of every schema of the database, qualified."""
    return [r[0] for r in query(db, """
        SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL (%s)
          AND n.nspname NOT LIKE 'pg_temp%%' ORDER BY 1""", (list(SYSTEM),))]


def holding(db: TestDatabase, needles: set[str]) -> dict[str, int]:
    """Rows of every table that hold any needle in their JSON text (as the superuser,
    under no row-level security); a needle is searched as JSON writes it."""
    escaped = [json.dumps(n, ensure_ascii=False)[1:-1] for n in needles]
    found = {}
    with db.connect() as conn:
        for table in every_table(db):
            n = conn.execute(sql.SQL("SELECT count(*) FROM {} t WHERE EXISTS (SELECT FROM "
                                     "unnest(%s::text[]) x WHERE strpos(to_jsonb(t)::text, x)"
                                     " > 0)").format(sql.SQL(table)), (escaped,)).fetchone()
            if n and n[0]:
                found[table] = int(n[0])
    return found


def fingerprints(db: TestDatabase, needles: set[str]) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows in order) of every table, leaving out the rows that hold a
    needle: what erasing the needles' owner must leave exactly as it was."""
    escaped = [json.dumps(n, ensure_ascii=False)[1:-1] for n in needles]
    out = {}
    with db.connect() as conn:
        for table in every_table(db):
            row = conn.execute(sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(j, E'\\n' ORDER BY j), '')) FROM "
                "(SELECT to_jsonb(t)::text j FROM {} t) r WHERE NOT EXISTS (SELECT FROM "
                "unnest(%s::text[]) x WHERE strpos(j, x) > 0)").format(sql.SQL(table)),
                (escaped,)).fetchone()
            assert row is not None
            out[table] = (int(row[0]), str(row[1]))
    return out


# --- the data -------------------------------------------------------------------------------

PERSON_WHERE = {PersonKind.USER: "payload ->> 'user_id' = 'alice'",
                PersonKind.AGENT: "payload ->> 'agent_id' = 'planner'",
                PersonKind.RUN: "payload ->> 'run_id' = 'run-1'"}
SUBJECT = {PersonKind.USER: "alice", PersonKind.AGENT: "planner", PersonKind.RUN: "run-1"}


def fill_more(db: TestDatabase, settings: Settings, ids: dict[str, list[str]]) -> None:
    """After test_backup's fill: an agent memory of a user, a snapshot, then changes only
    the live tables and the history see (a memory deleted and one updated, a new one)."""
    rng = random.Random(11)
    with as_role(db, settings.app_role) as app:
        carol_planner = str(uuid.uuid4())
        mem0_insert(app, "memories", [(carol_planner, vector(rng), payload(
            "Carol asked the planner about Tromsø trips", "carol", agent_id="planner"))])
    with db.connect() as admin:
        admin.execute("SELECT mem0_backup.take_snapshot('7 days')")
        # A migration run's staged records and pre-images: copies of every memory.
        admin.execute("INSERT INTO mem0_migration.runs (id, source_kind, source_spec, "
                      "target_table, dims, options) VALUES ('run-a', 'file', '{}', "
                      "'public.memories', %s, '{}')", (DIMS,))
        admin.execute("INSERT INTO mem0_migration.staged (run_id, seq, id, vector, payload, "
                      "source_had_vector, origin) SELECT 'run-a', row_number() OVER (ORDER BY "
                      "id), id, vector, payload, vector IS NOT NULL, 'export.jsonl' "
                      "FROM public.memories")
        admin.execute("INSERT INTO mem0_migration.preimages (run_id, id, seq, existed, vector,"
                      " payload, created_at, updated_at) SELECT 'run-a', id, 0, true, vector,"
                      " payload, created_at, updated_at FROM public.memories")
    with as_role(db, settings.app_role) as app:
        app.execute("DELETE FROM public.memories WHERE id = %s", (ids["alice"][3],))
        mem0_update(app, ids["alice"][2], vector(rng),
                    payload("Moved to Bergen ⛴ last spring", "alice"))
        mem0_insert(app, "memories", [(str(uuid.uuid4()), vector(rng), payload(
            "Alice's newest: learning the nyckelharpa", "alice", run_id="run-1"))])


@pytest.fixture(scope="module")
def filled(pg_server: PgServer, template: TestDatabase, settings: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestDatabase, Path]]:
    """A filled copy of the stack and a full backup file of it, taken before any erasure."""
    with cloned(pg_server, template) as db:
        ids = fill(db, settings)
        fill_more(db, settings, ids)
        path = tmp_path_factory.mktemp("forget") / "before.tar.gz"
        backup(db, settings, path)
        yield db, path


@pytest.fixture
def db(pg_server: PgServer, filled: tuple[TestDatabase, Path]) -> Iterator[TestDatabase]:
    with cloned(pg_server, filled[0]) as copy:
        yield copy


def forget(db: TestDatabase, settings: Settings, kind: PersonKind, subject: str,
           dry_run: bool = False) -> ForgetResult:
    return run_forget(db.dsn, settings, ForgetRequest(kind, subject, dry_run))


# --- erasure --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(PersonKind))
def test_forget_leaves_no_row_anywhere_holding_the_id_or_a_text(
        db: TestDatabase, settings: Settings, kind: PersonKind) -> None:
    subject = SUBJECT[kind]
    texts, ids = person(db, PERSON_WHERE[kind])
    needles = {subject, *texts}
    before = holding(db, needles)
    # The person is everywhere before: live tables, history, the snapshot's copies.
    assert {"public.memories", "public.memory_history", "mem0_backup.memories",
            "mem0_migration.staged", "mem0_migration.preimages"} <= set(before)
    assert len(texts) >= 2 and len(ids) >= 2
    edges = ("public.memory_relationships", "mem0_backup.memory_relationships")
    if kind != PersonKind.AGENT:  # the agent's memories have no edges
        assert set(edges) <= set(holding(db, ids))
    # Rows of anyone else, apart from edges to the person's memories (and entities listing
    # one of their ids): as they were.
    others = fingerprints(db, needles | ids)
    snapshot_counts = query(db, "SELECT memories, entities, relationships FROM "
                                "mem0_backup.memories_snapshots")

    result = forget(db, settings, kind, subject)

    # No row anywhere holds the id or a text; no edge or history row names one of the
    # person's memories (an entity of another owner may still list one's id, dangling).
    assert holding(db, needles) == {}
    assert set(holding(db, ids)) <= {"public.memories_entities",
                                     "mem0_backup.memories_entities"}
    assert result.total > 0 and not result.dry_run
    removed = {t: n for t, n in result.removed.items() if n}
    assert removed.keys() <= set(before) | set(edges)
    for table in ("public.memories", "public.memory_history", "mem0_backup.memories",
                  "mem0_migration.staged", "mem0_migration.preimages"):
        assert result.removed[table] > 0, table
    # Everyone else's rows: the same rows, byte for byte (the records' schema is new).
    after = fingerprints(db, needles | ids)
    records = {t for t in after if t.startswith("mem0_erasure.")}
    changed = {t for t in others if after[t] != others[t]} - records
    assert changed == {"mem0_backup.memories_snapshots"}, changed
    assert {t: v for t, v in after.items() if t not in records | changed} == \
        {t: v for t, v in others.items() if t not in records | changed}
    # The snapshot's counts still say what it holds.
    kept = query(db, "SELECT s.memories, s.entities, s.relationships, "
                     "(SELECT count(*) FROM mem0_backup.memories m WHERE m.snapshot_id = s.id),"
                     "(SELECT count(*) FROM mem0_backup.memories_entities m "
                     " WHERE m.snapshot_id = s.id),"
                     "(SELECT count(*) FROM mem0_backup.memory_relationships m "
                     " WHERE m.snapshot_id = s.id) FROM mem0_backup.memories_snapshots s")
    assert [r[:3] for r in kept] == [r[3:] for r in kept]
    assert kept[0][0] == snapshot_counts[0][0] - result.removed["mem0_backup.memories"]
    # The record: the kind, who, the counts; the id only as a salted hash.
    (record,) = query(db, "SELECT kind, erased_by, removed, subject_hash, "
                          "to_jsonb(e)::text FROM mem0_erasure.erasures e")
    assert record[0] == str(kind) and record[1] == query(db, "SELECT session_user")[0][0]
    assert record[2] == result.removed
    assert len(record[3]) == 64 and subject not in record[4]
    (salt,) = query(db, "SELECT secret FROM mem0_erasure.salt")
    assert len(salt[0]) == 64


def test_a_dry_run_counts_and_changes_nothing(db: TestDatabase, settings: Settings
                                              ) -> None:
    everything = fingerprints(db, set())
    dry = forget(db, settings, PersonKind.USER, "alice", dry_run=True)
    assert dry.dry_run and dry.total > 0
    assert fingerprints(db, set()) == everything
    assert query(db, "SELECT count(*) FROM mem0_erasure.erasures") == [(0,)]
    real = forget(db, settings, PersonKind.USER, "alice")
    assert real.removed == dry.removed


def test_an_unknown_id_removes_nothing_and_is_recorded(db: TestDatabase,
                                                       settings: Settings) -> None:
    everything = fingerprints(db, set())
    result = forget(db, settings, PersonKind.USER, "nobody-of-that-name")
    assert result.total == 0
    assert {t: v for t, v in fingerprints(db, set()).items()
            if not t.startswith("mem0_erasure.")} == \
        {t: v for t, v in everything.items() if not t.startswith("mem0_erasure.")}


def test_only_the_service_role_may_erase_and_nobody_reads_the_salt(
        db: TestDatabase, settings: Settings) -> None:
    assert settings.readonly_role is not None
    for role in (settings.app_role, settings.readonly_role):
        with as_role(db, role) as conn:
            for call in ("SELECT mem0_erasure.forget('user', 'alice')",
                         "SELECT mem0_erasure.erased('user', ARRAY['alice'])",
                         "SELECT * FROM mem0_erasure.salt",
                         "SELECT * FROM mem0_erasure.erasures",
                         "DELETE FROM public.memory_history"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(call)
    # The app role turning the owner's erasing switch on changes nothing for it.
    with as_role(db, settings.app_role) as app, app.transaction():
        app.execute("SELECT set_config('mem0.erasing', 'on', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DELETE FROM public.memory_history")
    with psycopg.connect(db.server.dsn_for(db.name, user=settings.service_role,
                                           password=APP_PASSWORD), autocommit=True) as service:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            service.execute("SELECT * FROM mem0_erasure.salt")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            service.execute("DELETE FROM public.memory_history")
        removed = service.execute("SELECT mem0_erasure.forget('user', 'alice')").fetchone()
        assert removed is not None and removed[0]["public.memories"] > 0
        erased = service.execute("SELECT mem0_erasure.erased('user', "
                                 "ARRAY['alice', 'bob'])").fetchone()
        assert erased == (["alice"],)
    assert holding(db, {"alice"}) == {}


def test_bad_requests_change_nothing(db: TestDatabase, settings: Settings,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    everything = fingerprints(db, set())
    with pytest.raises(ForgetError, match="--user-id: the id is empty"):
        forget(db, settings, PersonKind.USER, " ")
    directory = project(tmp_path, settings)
    base = ["forget", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn]
    assert main([*base, "--run-id", ""]) == 2
    assert "--run-id: the id is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--user-id", "a", "--agent-id", "b"])
    assert exit_.value.code == 2
    with db.connect() as conn:
        conn.execute("REVOKE EXECUTE ON FUNCTION mem0_erasure.forget(text, text) "
                     f"FROM {settings.service_role}")
    assert main([*base, "--user-id", "alice"]) == 2
    err = capsys.readouterr().err
    assert "rolled back, nothing was removed" in err and "permission denied" in err
    assert fingerprints(db, set()) == everything


def test_the_command_prints_counts_as_text_and_json(
        db: TestDatabase, settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, settings)
    base = ["forget", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn]
    assert main([*base, "--agent-id", "planner", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "public.memories " in out and "planner" not in out
    assert main([*base, "--agent-id", "planner", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "agent" and printed["dry_run"] is False
    assert printed["removed"]["public.memories"] == 2 and "planner" not in json.dumps(printed)


# --- restore --------------------------------------------------------------------------------

def test_restore_refuses_an_older_backup_holding_an_erased_user(
        db: TestDatabase, settings: Settings, filled: tuple[TestDatabase, Path],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = filled[1]
    forget(db, settings, PersonKind.USER, "alice")
    erased = fingerprints(db, set())
    with pytest.raises(RestoreRefused) as refused:
        restore(db, settings, file=path)
    assert "the backup holds rows of 1 erased user id (" in str(refused.value)
    assert "alice" not in str(refused.value)
    assert fingerprints(db, set()) == erased
    # The command: exit 1, in its own words, naming no id.
    directory = project(tmp_path, settings)
    base = ["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn]
    assert main([*base, str(path)]) == 1
    err = capsys.readouterr().err
    assert "restore refused, nothing was changed" in err and "alice" not in err
    # Another user's rows alone hold no erased id.
    assert restore(db, settings, file=path, user_id="bob").outcomes
    # Every user has a memory of run-1: once it is erased, bob's rows are refused too.
    forget(db, settings, PersonKind.RUN, "run-1")
    with pytest.raises(RestoreRefused, match="rows of 1 erased run id ") as refused:
        restore(db, settings, file=path, user_id="bob")
    assert "run-1" not in str(refused.value)
    assert main([*base, str(path)]) == 1
    assert "1 erased user id and 1 erased run id" in capsys.readouterr().err
    # --include-erased: restored on purpose.
    assert main([*base, "--include-erased", str(path)]) == 0
    assert query(db, "SELECT count(*) FROM public.memories WHERE user_id = 'alice'")[0][0] > 0


def test_restore_of_a_snapshot_taken_before_forget_holds_nothing_erased(
        db: TestDatabase, settings: Settings) -> None:
    forget(db, settings, PersonKind.USER, "alice")
    (snapshot,) = query(db, "SELECT id FROM mem0_backup.memories_snapshots")
    result = restore(db, settings, snapshot=snapshot[0])
    assert result.outcomes
    assert holding(db, {"alice"}) == {}
