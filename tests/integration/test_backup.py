"""Backup and restore against a real PostgreSQL: round trips bit for bit, per-user and
incremental selections, idempotent and dry-run restores, refusals that change no row, the
command's exit codes, and the in-database snapshots.

One deployment (org tenancy, so the membership table is there too) is the module's
template: the source is a copy of it filled through mem0's own SQL shapes, and every test
that writes gets its own copy (CREATE DATABASE ... TEMPLATE), empty or of the source.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.types.json import Json

from components import mem0
from components.backup import (
    BackupError,
    BackupRequest,
    BackupResult,
    RestoreRefused,
    RestoreRequest,
    RestoreResult,
    run_backup,
    run_restore,
    upsert,
)
from components.backup import restore as restore_module
from components.backup.bulk import WritePath, drop_vector_indexes
from components.backup.common import CommandProgress
from components.backup.report import restore_text
from components.cli import main
from components.connection import connect
from components.introspect import catalog_snapshot, live_ddl
from components.model import build_model
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase, stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer, create_database, drop_database

DIMS = 16
CONFIG: dict[str, object] = {"dimensions": DIMS, "tenancy": "org"}
STACK = "dev"
# Every data table and its primary key, as the tests read them (independently of the code
# under test).
KEYS = {"memories": "id", "memories_entities": "id", "memory_history": "id",
        "memory_relationships": "id", "memory_org_members": "org_id, user_id"}
ROWS = ("memories", "memories_entities", "memory_relationships", "memory_org_members")
ORGS = {"alice": "org-a", "bob": "org-a", "carol": "org-b"}
QUIET = CommandProgress(None, "test")


# --- databases ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK, **CONFIG) as db:
        yield db


@pytest.fixture(scope="module")
def settings(template: TestDatabase) -> Settings:
    return stack_settings(template, STACK, **CONFIG)


@contextmanager
def cloned(server: PgServer, original: TestDatabase) -> Iterator[TestDatabase]:
    """A copy of `original` (which must have no open connection), dropped afterwards. The
    copy keeps the original's roles: the same stack."""
    name = create_database(server, prefix="b")
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(original.name)))
    try:
        yield TestDatabase(server, name, server.dsn_for(name))
    finally:
        drop_database(server, name)


@pytest.fixture
def empty(pg_server: PgServer, template: TestDatabase) -> Iterator[TestDatabase]:
    """An empty deployment of the same stack."""
    with cloned(pg_server, template) as db:
        yield db


@pytest.fixture(scope="module")
def source(pg_server: PgServer, template: TestDatabase, settings: Settings
           ) -> Iterator[TestDatabase]:
    with cloned(pg_server, template) as db:
        fill(db, settings)
        yield db


@pytest.fixture
def copy_of_source(pg_server: PgServer, source: TestDatabase) -> Iterator[TestDatabase]:
    with cloned(pg_server, source) as db:
        yield db


@pytest.fixture(scope="module")
def full(source: TestDatabase, settings: Settings,
         tmp_path_factory: pytest.TempPathFactory) -> BackupResult:
    return backup(source, settings, tmp_path_factory.mktemp("full") / "full.tar.gz")


# --- data, written the way mem0 writes it ---------------------------------------------------

def as_role(db: TestDatabase, role: str) -> psycopg.Connection:
    return psycopg.connect(db.server.dsn_for(db.name, user=role, password=APP_PASSWORD),
                           autocommit=True)


def vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1.0, 1.0) for _ in range(DIMS)]


def payload(text: str, user: str | None, **extra: object) -> dict[str, object]:
    """mem0's flat payload (components.mem0.payload), with a fixed creation time."""
    owner = {} if user is None else {"user_id": user, "org_id": ORGS[user]}
    return mem0.payload(text, created_at="2025-03-01T09:30:00.123456-08:00",
                        lemmatized=text.lower(), **{**extra, **owner})


def mem0_insert(conn: psycopg.Connection, table: str, rows: list[tuple[str, Any, dict]]
                ) -> None:
    """mem0's insert: executemany of (id, vector, payload) with the payload as JSON text."""
    with conn.cursor() as cur:
        cur.executemany(sql.SQL("INSERT INTO public.{} (id, vector, payload) VALUES "
                                "(%s, %s, %s)").format(sql.Identifier(table)),
                        [(i, v, json.dumps(p)) for i, v, p in rows])


def mem0_update(conn: psycopg.Connection, memory: str, new_vector: list[float],
                new_payload: dict[str, object]) -> None:
    """mem0's update: the vector, then the payload (two statements, one transaction)."""
    with conn.transaction():
        conn.execute("UPDATE public.memories SET vector = %s WHERE id = %s",
                     (new_vector, memory))
        conn.execute("UPDATE public.memories SET payload = %s WHERE id = %s",
                     (Json(new_payload), memory))


def link(conn: psycopg.Connection, source: str, target: str, kind: str, strength: float,
         user: str | None, metadata: dict[str, object] | None = None) -> str:
    edge = str(uuid.uuid4())
    conn.execute("INSERT INTO public.memory_relationships (id, source_memory_id,"
                 " target_memory_id, relationship_type, strength, metadata, user_id, org_id)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (edge, source, target, kind, strength, Json(metadata or {}), user,
                  ORGS.get(user or "")))
    return edge


TEXTS = ("Prefers naïve café ☕ over tea", "Lives in Zürich — near the Limmat",
         "日本語を勉強している 🧠", "Allergic to peanuts; carries an EpiPen",
         "Quote: \"never\" \\ backslash", "Emoji 👩‍💻 and RTL مرحبا")


def fill(db: TestDatabase, settings: Settings, seed: int = 7) -> dict[str, list[str]]:
    """Memories, entities, edges and memberships for three users and an agent, with
    unicode, JSON nulls and a NULL vector; one memory updated and one deleted the way mem0
    does it. Returns the memory ids by user."""
    rng = random.Random(seed)
    ids: dict[str, list[str]] = {}
    # Memberships are the service role's to write (Supabase's service_role cannot log in).
    with db.connect() as admin, admin.transaction():
        admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.service_role)))
        for user, org in ORGS.items():
            admin.execute("INSERT INTO public.memory_org_members (org_id, user_id) "
                          "VALUES (%s, %s)", (org, user))
    with as_role(db, settings.app_role) as app:
        rows = []
        for n, user in enumerate(ORGS):
            ids[user] = [str(uuid.uuid4()) for _ in range(4)]
            for k, memory in enumerate(ids[user]):
                text = f"{TEXTS[(n + k) % len(TEXTS)]} #{user}-{k}"
                extra = {"agent_id": None, "run_id": "run-1"} if k == 1 else {}
                rows.append((memory, None if (user, k) == ("carol", 3) else vector(rng),
                             payload(text, user, **extra)))
        ids["agent"] = [str(uuid.uuid4())]
        rows.append((ids["agent"][0], vector(rng),
                     payload("Shared planner knowledge", None, agent_id="planner")))
        mem0_insert(app, "memories", rows)
        mem0_insert(app, "memories_entities", [
            (str(uuid.uuid4()), vector(rng),
             {"data": f"entity {k} of {user} — Ünïcødé", "user_id": user,
              "linked_memory_ids": ids[user][:2], "note": None})
            for user in ORGS for k in range(2)])
        mem0_update(app, ids["alice"][0], vector(rng),
                    payload("Prefers oat milk now 🥛", "alice", updated_at="2025-03-02"))
        app.execute("DELETE FROM public.memories WHERE id = %s", (ids["bob"][3],))
        ids["bob"].pop()
        a, b, c = ids["alice"], ids["bob"], ids["carol"]
        link(app, a[0], a[1], "related_to", 0.5, "alice", {"why": "même sujet ✓"})
        link(app, a[1], a[2], "followed_by", 1.0, "alice")
        link(app, a[2], b[0], "mentions", 0.25, "alice")  # into another user's memory
        link(app, b[0], b[1], "related_to", 0.75, None)
        link(app, c[0], c[1], "related_to", 0.0, "carol", {"n": None, "list": [1, 2.5]})
    return ids


# --- what the tests compare -----------------------------------------------------------------

def query(db: TestDatabase, statement: str | sql.Composed, params: tuple[object, ...] = ()
          ) -> list[tuple[Any, ...]]:
    """As the test server's superuser (no row-level security), on a connection closed
    afterwards: a copy of a database needs it to have none open."""
    with db.connect() as conn:
        return conn.execute(statement, params or None).fetchall()


def digest(db: TestDatabase, table: str, where: str = "true") -> str:
    """sha256 of the table's every column (generated ones too) as binary COPY by key."""
    statement = sql.SQL("COPY (SELECT * FROM public.{} WHERE {} ORDER BY {}) TO STDOUT "
                        "(FORMAT binary)").format(sql.Identifier(table), sql.SQL(where),
                                                  sql.SQL(KEYS[table]))
    hashed = hashlib.sha256()
    with db.connect() as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        for block in copy:
            hashed.update(block)
    return hashed.hexdigest()


def digests(db: TestDatabase) -> dict[str, str]:
    return {table: digest(db, table) for table in KEYS}


def count(db: TestDatabase, table: str, where: str = "true") -> int:
    return int(db.scalar(sql.SQL("SELECT count(*) FROM public.{} WHERE {}").format(
        sql.Identifier(table), sql.SQL(where)).as_string()))  # type: ignore[arg-type]


def backup(db: TestDatabase, settings: Settings, path: Path, **request: Any) -> BackupResult:
    return run_backup(db.dsn, settings, BackupRequest(path, **request), QUIET)


def restore(db: TestDatabase, settings: Settings, **request: Any) -> RestoreResult:
    return run_restore(db.dsn, settings, RestoreRequest(**request), QUIET)


def counts(result: RestoreResult) -> dict[str, tuple[int, int, int, int]]:
    return {o.table: (o.inserted, o.updated, o.unchanged, len(o.skipped))
            for o in result.outcomes}


def archive_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def member_rows(db: TestDatabase, path: Path, table: str) -> list[dict[str, Any]]:
    """A member's rows, decoded by PostgreSQL itself (COPY FROM into a scratch table)."""
    members = archive_members(path)
    manifest = json.loads(members["manifest.json"])
    entry = next(t for t in manifest["tables"] if t["table"] == table)
    columns = sql.SQL(", ").join(sql.Identifier(c[0]) for c in entry["columns"])
    with db.connect() as conn, conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("CREATE TEMP TABLE landing AS SELECT {} FROM public.{} "
                             "WITH NO DATA").format(columns, sql.Identifier(table)))
        with conn.cursor() as cur, cur.copy("COPY landing FROM STDIN (FORMAT binary)") as copy:
            copy.write(members[entry["member"]])
        return [r[0] for r in conn.execute("SELECT to_jsonb(l) FROM landing l").fetchall()]


def project(tmp_path: Path, settings: Settings, stack: str = STACK, **extra: object) -> Path:
    """A project directory whose stack file is the test stack's (the template's roles,
    which every copy shares)."""
    directory = tmp_path / f"project-{stack}"
    directory.mkdir(exist_ok=True)
    config = {"target": "postgres", "databaseUrl": "postgresql://unused@localhost/unused",
              **CONFIG, "appRole": settings.app_role, "appRolePassword": APP_PASSWORD,
              "ownerRole": settings.owner_role, "readonlyRole": settings.readonly_role,
              "readonlyRolePassword": APP_PASSWORD, "serviceRole": settings.service_role,
              "serviceRolePassword": APP_PASSWORD, **extra}
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{k}": v for k, v in config.items()}}))
    return directory


# --- round trips ----------------------------------------------------------------------------

def test_a_full_backup_restores_every_row_bit_for_bit(
        source: TestDatabase, empty: TestDatabase, settings: Settings, full: BackupResult,
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upsert, "BATCH", 2)  # many batches, as a large restore has
    manifest = full.manifest
    assert manifest.kind == "full" and manifest.settings["dimensions"] == DIMS
    assert [t.table for t in manifest.tables] == ["memories", "memories_entities",
                                                  "memory_history", "memory_relationships",
                                                  "memory_org_members"]
    members = archive_members(full.path)
    assert next(iter(members)) == "manifest.json"
    for entry in manifest.tables:
        assert entry.rows == count(source, entry.table)
        assert hashlib.sha256(members[entry.member]).hexdigest() == entry.sha256
    generated = {"user_id", "agent_id", "run_id", "org_id"}
    assert not generated & {c for c, _ in manifest.tables[0].columns}
    assert "updated_at" in {c for c, _ in manifest.tables[3].columns}

    directory = project(tmp_path, settings)
    assert main(["restore", "--stack", STACK, "--project-dir", str(directory),
                 "--dsn", empty.dsn, str(full.path)]) == 0
    out = capsys.readouterr().out
    assert "committed" in out and "one 'create' per inserted memory" in out
    for table in ROWS:
        assert digest(empty, table) == digest(source, table), table
    # History: every backed-up row, bit for bit, under its own id; then exactly one
    # 'create' per restored memory, written by the memories' trigger as the login role.
    last = int(source.scalar("SELECT max(id) FROM public.memory_history"))  # type: ignore[arg-type]
    assert digest(empty, "memory_history", f"id <= {last}") == digest(source, "memory_history")
    added = query(empty, "SELECT memory_id::text, operation, login_role FROM"
                         " public.memory_history WHERE id > %s", (last,))
    memories = {str(r[0]) for r in query(source, "SELECT id FROM public.memories")}
    assert sorted(m for m, _, _ in added) == sorted(memories)
    admin = str(empty.scalar("SELECT session_user"))
    assert {(op, role) for _, op, role in added} == {("create", admin)}


def test_a_per_user_backup_holds_only_that_users_rows(
        source: TestDatabase, settings: Settings, tmp_path: Path) -> None:
    result = backup(source, settings, tmp_path / "alice.tar.gz", user_id="alice")
    assert result.manifest.kind == "user" and result.manifest.user_id == "alice"
    for entry in result.manifest.tables:
        rows = member_rows(source, result.path, entry.table)
        owners = {(r.get("user_id") if "user_id" in r else r["payload"].get("user_id"))
                  for r in rows}
        assert owners == {"alice"}, entry.table
        where = ("payload->>'user_id' = 'alice'" if entry.table.startswith("memories")
                 else "user_id = 'alice'")
        assert len(rows) == entry.rows == count(source, entry.table, where), entry.table


def test_an_incremental_backup_holds_exactly_the_rows_changed_since(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult,
        tmp_path: Path) -> None:
    db = copy_of_source
    rng = random.Random(11)
    alice, bob = ([str(r[0]) for r in query(db, "SELECT id FROM public.memories WHERE"
                                            " user_id = %s ORDER BY id", (user,))]
                  for user in ("alice", "bob"))
    new = [str(uuid.uuid4()) for _ in range(2)]
    with as_role(db, settings.app_role) as app:
        for memory in alice[:2]:
            mem0_update(app, memory, vector(rng), payload(f"changed {memory}", "alice"))
        mem0_insert(app, "memories", [(m, vector(rng), payload(f"new {m}", "carol"))
                                      for m in new])
        app.execute("DELETE FROM public.memories WHERE id = %s", (bob[0],))
        edge = str(app.execute("SELECT id FROM public.memory_relationships WHERE user_id ="
                               " 'carol'").fetchone()[0])
        app.execute("UPDATE public.memory_relationships SET strength = 0.9 WHERE id = %s",
                    (edge,))
    with as_role(db, settings.service_role) as service:
        service.execute("INSERT INTO public.memory_org_members (org_id, user_id) "
                        "VALUES ('org-b', 'dave')")
    since = full.manifest.taken_at
    result = backup(db, settings, tmp_path / "incremental.tar.gz",
                    since=datetime.fromisoformat(since))
    assert result.manifest.kind == "incremental" and result.manifest.since is not None

    def ids(table: str) -> set[str]:
        return {str(r["id"]) for r in member_rows(db, result.path, table)}

    assert ids("memories") == set(alice[:2]) | set(new)
    assert ids("memories_entities") == set()
    assert ids("memory_relationships") == {edge}
    assert [(r["org_id"], r["user_id"]) for r in
            member_rows(db, result.path, "memory_org_members")] == [("org-b", "dave")]
    history = member_rows(db, result.path, "memory_history")
    assert sorted((r["memory_id"], r["operation"]) for r in history) == sorted(
        [(m, "update") for m in alice[:2] for _ in range(2)]
        + [(m, "create") for m in new] + [(bob[0], "delete")])
    assert len(history) == count(db, "memory_history", f"at >= '{since}'")


def test_restoring_twice_changes_nothing_the_second_time(
        empty: TestDatabase, settings: Settings, full: BackupResult) -> None:
    first = restore(empty, settings, file=full.path)
    assert all(o.inserted == o.total and not o.skipped for o in first.outcomes)
    after_first = digests(empty)
    history = count(empty, "memory_history")
    second = restore(empty, settings, file=full.path)
    assert {t: c for t, c in counts(second).items()} == {
        o.table: (0, 0, o.total, 0) for o in second.outcomes}
    assert count(empty, "memory_history") == history
    assert digests(empty) == after_first


def test_a_dry_run_changes_nothing_and_reports_what_the_real_run_does(
        copy_of_source: TestDatabase, source: TestDatabase, settings: Settings,
        full: BackupResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_of_source
    with as_role(db, settings.app_role) as app:  # the mistake: alice's memories deleted
        app.execute("DELETE FROM public.memories WHERE user_id = 'alice'")
        app.execute("UPDATE public.memories SET payload = payload || '{\"x\": 1}'"
                    " WHERE user_id = 'carol' AND payload->>'run_id' IS NOT NULL")
    before = digests(db)
    directory = project(tmp_path, settings)
    assert main(["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn",
                 db.dsn, str(full.path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: rolled back, nothing was changed" in out
    assert digests(db) == before
    dry = restore(db, settings, file=full.path, dry_run=True)
    real = restore(db, settings, file=full.path)
    assert counts(dry) == counts(real)
    assert counts(real)["memories"] == (4, 1, 7, 0)  # alice's 4 back, carol's 1 undone
    assert counts(real)["memory_relationships"][0] == 3  # alice's edges, cascaded away
    # Inserted rows keep their times; the updated one keeps created_at and is updated now.
    alice = "user_id = 'alice'"
    assert digest(db, "memories", alice) == digest(source, "memories", alice)
    changed = "user_id = 'carol' AND payload->>'run_id' IS NOT NULL"
    times = "SELECT payload, created_at, updated_at FROM public.memories WHERE " + changed
    [(payload_now, created_now, updated_now)] = query(db, times)
    [(payload_then, created_then, updated_then)] = query(source, times)
    assert (payload_now, created_now) == (payload_then, created_then)
    assert updated_now > datetime.fromisoformat(full.manifest.taken_at) > updated_then


def test_restore_user_from_a_full_backup_restores_only_that_user(
        empty: TestDatabase, settings: Settings, full: BackupResult, source: TestDatabase,
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upsert, "BATCH", 3)  # batches over the gaps the filter leaves
    directory = project(tmp_path, settings)
    assert main(["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn",
                 empty.dsn, str(full.path), "--user-id", "alice"]) == 0
    captured = capsys.readouterr()
    for table in (*ROWS, "memory_history"):
        owners = {r[0] for r in query(empty, sql.SQL(
            "SELECT DISTINCT user_id FROM public.{}").format(sql.Identifier(table)))}
        assert owners == {"alice"}, table
    assert count(empty, "memories") == count(source, "memories", "user_id = 'alice'")
    # alice's edge into bob's memory cannot be restored without bob's memory: reported.
    edge = str(source.scalar("SELECT id FROM public.memory_relationships"
                             " WHERE relationship_type = 'mentions'"))
    assert f"skipped memory_relationships {edge}: its target memory" in captured.out
    assert "1 rows of the backup were not restored" in captured.err
    assert count(empty, "memory_relationships") == 2


def test_an_edge_that_exists_under_another_id_is_reported_not_written(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult) -> None:
    db = copy_of_source
    with db.connect() as admin:
        old = str(admin.execute("SELECT id FROM public.memory_relationships WHERE"
                                " relationship_type = 'followed_by'").fetchone()[0])
        new = str(admin.execute("UPDATE public.memory_relationships SET id ="
                                " gen_random_uuid() WHERE id = %s RETURNING id",
                                (old,)).fetchone()[0])
    result = restore(db, settings, file=full.path)
    edges = next(o for o in result.outcomes if o.table == "memory_relationships")
    assert [(s.key, s.reason) for s in edges.skipped] == [
        (old, f"the same source, target and type (followed_by) is already edge {new}")]
    assert (edges.inserted, edges.updated) == (0, 0)


def test_a_supabase_backup_restores_into_a_postgres_deployment(
        pg_server: PgServer, empty: TestDatabase, settings: Settings,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # pgvector lives in `extensions` there and in `public` here; the vectors' bytes do not
    # depend on it, and the layouts compare without it.
    state = tmp_path_factory.mktemp("supabase")
    with deployed_stack(pg_server, state, "staging", target="supabase", **CONFIG) as db:
        theirs = stack_settings(db, "staging", target="supabase", **CONFIG)
        fill(db, theirs)
        result = backup(db, theirs, state / "supabase.tar.gz")
        assert result.manifest.pgvector_schema == "extensions"
        assert result.manifest.tables[0].columns[1] == ["vector", "extensions.vector(16)"]
        restored = restore(empty, settings, file=result.path)
        assert all(o.inserted == o.total for o in restored.outcomes)
        for table in ROWS:
            assert digest(empty, table) == digest(db, table), table
        again = restore(db, theirs, file=result.path)  # and back into Supabase: no change
        assert all(o.unchanged == o.total for o in again.outcomes)


# --- the bulk path: into an empty table, rows first and the vector index after --------------

VECTOR_INDEXES = ("memories_vector_idx", "memories_entities_vector_idx")


def vector_indexes(db: TestDatabase) -> dict[str, tuple[int, str, bool]]:
    """Each vector index's oid (a new one when it was built again), pg_get_indexdef and
    indisvalid, read from the catalog."""
    return {str(name): (int(oid), str(definition), bool(valid))
            for name, oid, definition, valid in query(
                db, "SELECT c.relname, c.oid::bigint, pg_get_indexdef(c.oid), i.indisvalid"
                    " FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
                    " WHERE c.relname = ANY(%s)", (list(VECTOR_INDEXES),))}


def nearest(db: TestDatabase, probe: list[float]) -> list[str]:
    """mem0's search (cosine distance, LIMIT) through the HNSW index: the ids it finds."""
    statement = ("SELECT id::text FROM public.memories ORDER BY vector <=> %s::vector LIMIT 5")
    with db.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement, (str(probe),)))
        assert "memories_vector_idx" in plan, plan
        return [r[0] for r in conn.execute(statement, (str(probe),))]


def declared_indexes(db: TestDatabase, settings: Settings) -> dict[str, tuple[str, str | None]]:
    """Each vector index's DDL as the model declares it and as Pulumi's introspection reads
    it: what drift detection compares."""
    found = {}
    with connect(db.dsn, autocommit=True) as conn, conn.cursor() as cur:
        for spec in build_model(settings):
            if spec.kind == "index" and spec.name in VECTOR_INDEXES:
                found[spec.name] = (spec.ddl, live_ddl(cur, {"kind": "index",
                                                             "schema": spec.schema,
                                                             "name": spec.name}))
    return found


class Terminal(io.StringIO):
    """A stream that says it is a TTY, so the bars are drawn into it."""

    def isatty(self) -> bool:
        return True


def test_a_restore_into_an_empty_stack_builds_the_vector_index_after_the_rows(
        source: TestDatabase, empty: TestDatabase, settings: Settings, full: BackupResult
        ) -> None:
    before = vector_indexes(empty)
    assert set(before) == set(VECTOR_INDEXES) and all(v for _, _, v in before.values())
    with connect(empty.dsn, autocommit=True) as conn, conn.cursor() as cur:
        catalog = catalog_snapshot(cur)
    screen = Terminal()
    result = run_restore(empty.dsn, settings, RestoreRequest(file=full.path),
                         CommandProgress(screen, "restore"))
    assert result.path.startswith("bulk: index rebuilt after load, "), result.path
    assert [(w.table, w.bulk) for w in result.writes] == [
        ("public.memories", True), ("public.memories_entities", True)]
    assert "building public.memories_vector_idx" in screen.getvalue()
    assert f"writes: {result.path}" in restore_text(result)
    after = vector_indexes(empty)
    for name, (oid, definition, valid) in after.items():
        assert oid != before[name][0], f"{name} was not built again"
        assert (definition, valid) == (before[name][1], True), name
    with connect(empty.dsn, autocommit=True) as conn, conn.cursor() as cur:
        assert catalog_snapshot(cur) == catalog  # every object as deployed, indexes too
    assert all(declared == live for declared, live in
               declared_indexes(empty, settings).values())  # no drift for Pulumi
    for table in ROWS:
        assert count(empty, table) == count(source, table), table
        assert digest(empty, table) == digest(source, table), table
    rng = random.Random(3)
    for _ in range(3):
        probe = vector(rng)
        assert nearest(empty, probe) == nearest(source, probe)


def test_a_restore_into_a_stack_with_memories_writes_row_by_row(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult) -> None:
    db = copy_of_source
    with as_role(db, settings.app_role) as app:
        app.execute("DELETE FROM public.memories WHERE user_id = 'alice'")
    before = vector_indexes(db)
    result = restore(db, settings, file=full.path)
    assert [(w.table, w.describe()) for w in result.writes] == [
        ("public.memories", "row by row (it held rows when the restore began)"),
        ("public.memories_entities", "row by row (it held rows when the restore began)")]
    assert "row by row" in result.path and "bulk" not in result.path
    assert counts(result)["memories"][0] == 4
    assert vector_indexes(db) == before  # the same index, never dropped


def test_a_login_role_that_cannot_act_as_the_owner_restores_row_by_row(
        empty: TestDatabase, source: TestDatabase, settings: Settings, full: BackupResult
        ) -> None:
    before = vector_indexes(empty)
    service = empty.server.dsn_for(empty.name, user=settings.service_role,
                                   password=APP_PASSWORD)
    result = run_restore(service, settings, RestoreRequest(file=full.path), QUIET)
    assert all(not w.bulk for w in result.writes)
    assert (f"row by row (the login role {settings.service_role} cannot act as the "
            f"table's owner {settings.owner_role}: ") in result.path
    assert vector_indexes(empty) == before
    for table in ROWS:
        assert digest(empty, table) == digest(source, table), table


def _edges_refused(db: TestDatabase) -> dict[str, Any]:
    # A constraint of the target's own that a backed-up edge breaks: the edges are written
    # after the memories, so the failure comes with the index dropped and rows written.
    with db.connect() as admin:
        admin.execute("ALTER TABLE public.memory_relationships ADD CONSTRAINT no_mentions"
                      " CHECK (relationship_type <> 'mentions') NOT VALID")
    return {}


FAILURES: dict[str, tuple[Callable[[TestDatabase], dict[str, Any]], str]] = {
    "a constraint the edges break": (_edges_refused, "no_mentions"),
    "the index build": (lambda db: {"maintenance_work_mem": "plenty"}, "plenty"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_bulk_restore_that_fails_leaves_the_index_and_writes_no_row(
        empty: TestDatabase, settings: Settings, full: BackupResult, case: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    provoke, message = FAILURES[case]
    request = provoke(empty)
    before, rows = vector_indexes(empty), digests(empty)
    dropped: list[WritePath] = []

    def drop(*args: Any) -> list[WritePath]:  # the real drop, remembering its paths
        dropped.extend(drop_vector_indexes(*args))
        return dropped

    monkeypatch.setattr(restore_module, "drop_vector_indexes", drop)
    with pytest.raises(BackupError, match=f"rolled back, no row changed: .*{message}"):
        restore(empty, settings, file=full.path, **request)
    assert [w.bulk for w in dropped] == [True, True]  # it failed on the bulk path
    assert vector_indexes(empty) == before  # the very index: its drop was rolled back
    assert digests(empty) == rows
    assert all(count(empty, table) == 0 for table in KEYS)


def test_a_parallel_build_the_server_refuses_is_done_without_workers(
        empty: TestDatabase, settings: Settings, full: BackupResult) -> None:
    # A parallel HNSW build asks for maintenance_work_mem of dynamic shared memory at once:
    # 1 TB is more than any /dev/shm, and posix shared memory says so before allocating.
    if empty.scalar("SELECT current_setting('dynamic_shared_memory_type')") != "posix":
        pytest.skip("the server's dynamic shared memory is not posix")
    with empty.connect() as admin:  # even these few rows get a parallel worker
        admin.execute(sql.SQL("ALTER DATABASE {} SET min_parallel_table_scan_size = 0"
                              ).format(sql.Identifier(empty.name)))
    before = vector_indexes(empty)
    result = restore(empty, settings, file=full.path, maintenance_work_mem="1TB")
    memories = result.writes[0]
    assert memories.bulk and "the parallel build failed (" in memories.note
    assert memories.note.endswith("; built without workers")
    assert "built without workers" in result.path
    after = vector_indexes(empty)
    assert {n: (d, v) for n, (_, d, v) in after.items()} == {
        n: (d, v) for n, (_, d, v) in before.items()}
    assert count(empty, "memories") == full.manifest.tables[0].rows


# --- refusals -------------------------------------------------------------------------------

def rewrite(path: Path, out: Path, edit: Callable[[dict[str, Any]], None],
            edit_members: Callable[[dict[str, bytes], dict[str, Any]], None] | None = None
            ) -> Path:
    """The archive again, with its manifest (and members) edited."""
    members = archive_members(path)
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    if edit_members is not None:
        edit_members(members, manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def corrupt(path: Path, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0x5A for b in data[middle:middle + 8])
    out.write_bytes(bytes(data))
    return out


def truncate(path: Path, out: Path) -> Path:
    out.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    return out


def no_manifest(path: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo("memories.pgcopy")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return out


def _other_checksum(manifest: dict[str, Any]) -> None:
    manifest["tables"][0]["sha256"] = hashlib.sha256(b"something else").hexdigest()


def _other_rows(manifest: dict[str, Any]) -> None:
    manifest["tables"][2]["rows"] += 1


def _twice(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Every row of the memories member twice, with a manifest that agrees."""
    data = members["memories.pgcopy"]
    members["memories.pgcopy"] = data[:-2] + data[19:-2] + data[-2:]  # header, rows, end
    entry = manifest["tables"][0]
    entry.update(rows=entry["rows"] * 2, bytes=len(members["memories.pgcopy"]),
                 sha256=hashlib.sha256(members["memories.pgcopy"]).hexdigest())


BAD: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "corrupt": (corrupt, ""),
    "truncated": (truncate, ""),
    "checksum": (lambda p, o: rewrite(p, o, _other_checksum),
                 "member memories.pgcopy: its sha256 is"),
    "row count": (lambda p, o: rewrite(p, o, _other_rows),
                  "member memory_history.pgcopy holds"),
    "text file": (lambda p, o: (o.write_text("SELECT 1;\n"), o)[1],
                  "is not a readable backup"),
    "no manifest": (no_manifest, "its first member is memories.pgcopy, not manifest.json"),
    "collection": (lambda p, o: rewrite(p, o, lambda m: m["settings"].update(
        collection="notes")), "a backup of collection 'notes'"),
    "repeated keys": (lambda p, o: rewrite(p, o, lambda m: None, _twice),
                      "of public.memories more than once"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_and_no_row_changes(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], case: str) -> None:
    db = copy_of_source
    with as_role(db, settings.app_role) as app:  # so that a restore would change rows
        app.execute("DELETE FROM public.memories WHERE user_id = 'alice'")
    before = digests(db)
    make, message = BAD[case]
    bad = make(full.path, tmp_path / "bad.tar.gz")
    with pytest.raises(RestoreRefused, match=message.replace("(", r"\(") or None):
        restore(db, settings, file=bad)
    assert digests(db) == before
    directory = project(tmp_path, settings)
    assert main(["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn",
                 db.dsn, str(bad)]) == 1
    assert "restore refused, nothing was changed:" in capsys.readouterr().err
    assert digests(db) == before


@pytest.fixture(scope="module")
def other_dimensions(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[BackupResult]:
    """A backup of a stack with 8-dimensional vectors."""
    state = tmp_path_factory.mktemp("other")
    with deployed_stack(pg_server, state, STACK, dimensions=8, tenancy="org") as db:
        other = stack_settings(db, STACK, dimensions=8, tenancy="org")
        with as_role(db, other.app_role) as app:
            mem0_insert(app, "memories", [(str(uuid.uuid4()), [0.5] * 8,
                                           payload("eight", "alice"))])
        yield backup(db, other, state / "eight.tar.gz")


def test_a_backup_of_other_dimensions_is_refused(
        copy_of_source: TestDatabase, settings: Settings, other_dimensions: BackupResult
        ) -> None:
    before = digests(copy_of_source)
    with pytest.raises(RestoreRefused) as refused:
        restore(copy_of_source, settings, file=other_dimensions.path)
    assert "holds vectors of 8 dimensions, but the target's public.memories is " \
           "vector(16) (stack 'dev': dimensions 16)" in str(refused.value)
    assert digests(copy_of_source) == before


def test_a_backup_of_another_layout_names_the_table_and_column(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult,
        tmp_path: Path) -> None:
    def drop_relationship_type(manifest: dict[str, Any]) -> None:
        from components.backup.manifest import fingerprint

        edges = manifest["tables"][3]
        edges["columns"] = [c for c in edges["columns"] if c[0] != "relationship_type"]
        manifest["layout_fingerprint"] = fingerprint(
            [(t["table"], t["columns"]) for t in manifest["tables"]],
            manifest["pgvector_schema"])

    older = rewrite(full.path, tmp_path / "older.tar.gz", drop_relationship_type)
    before = digests(copy_of_source)
    with pytest.raises(RestoreRefused) as refused:
        restore(copy_of_source, settings, file=older)
    assert ("public.memory_relationships: column relationship_type (text) of the target is "
            "not in") in str(refused.value)
    assert "(and it is NOT NULL with no default)" in str(refused.value)
    assert digests(copy_of_source) == before


def test_a_backup_from_before_a_column_was_added_restores_with_its_default(
        copy_of_source: TestDatabase, settings: Settings, full: BackupResult) -> None:
    # What an upgrade does (orgAdmins' membership role, say): ADD COLUMN with a default.
    # The older backup lacks the column; inserted rows get the default, updated rows
    # keep their value.
    with copy_of_source.connect() as admin:
        admin.execute("ALTER TABLE public.memory_org_members "
                      "ADD COLUMN tier text NOT NULL DEFAULT 'gold'")
        admin.execute("DELETE FROM public.memory_org_members WHERE user_id = 'carol'")
        admin.execute("UPDATE public.memory_org_members SET tier = 'silver' "
                      "WHERE user_id = 'alice'")
    result = restore(copy_of_source, settings, file=full.path)
    assert counts(result)["memory_org_members"][0] == 1  # carol, inserted
    with copy_of_source.connect() as admin:
        tiers = dict(admin.execute("SELECT user_id, tier FROM public.memory_org_members"
                                   ).fetchall())
    assert tiers == {"alice": "silver", "bob": "gold", "carol": "gold"}


# --- the command line -----------------------------------------------------------------------

def test_the_commands_exit_codes(source: TestDatabase, empty: TestDatabase,
                                 settings: Settings, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, settings)
    base = ["--stack", STACK, "--project-dir", str(directory)]
    out = tmp_path / "cli.tar.gz"
    assert main(["backup", *base, "--dsn", source.dsn, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "full backup of stack 'dev'" in printed and "rows/s" in printed
    assert main(["backup", *base, "--dsn", source.dsn, "--output", str(out),
                 "--user-id", "bob", "--since", "2020-01-01T00:00:00+00:00"]) == 0
    assert "incremental backup of stack 'dev' (" in (printed := capsys.readouterr().out)
    assert "; rows changed since 2020-01-01T00:00:00+00:00, user 'bob'), taken at " in printed
    assert main(["restore", *base, "--dsn", empty.dsn, str(out)]) == 0
    capsys.readouterr()

    def fails(code: int, argv: list[str], message: str) -> None:
        assert main(argv) == code
        assert message in capsys.readouterr().err

    monkeypatch.delenv("MEM0_DATABASE_URL", raising=False)
    fails(2, ["backup", *base, "--output", str(out)], "no database to back up")
    fails(2, ["backup", *base, "--dsn", source.dsn, "--output", str(out), "--since",
              "2020-01-01"], "has no time zone")
    fails(2, ["backup", *base, "--dsn", source.dsn, "--output", str(tmp_path / "no" / "f")],
          "does not exist")
    fails(2, ["restore", *base, "--dsn", empty.dsn], "exactly one source")
    fails(2, ["restore", *base, "--dsn", empty.dsn, str(tmp_path / "missing.tar.gz")],
          "cannot open")
    typescript = project(tmp_path, settings, "ts", clientProfile="typescript")
    fails(2, ["backup", "--stack", "ts", "--project-dir", str(typescript), "--dsn",
              source.dsn, "--output", str(out)], "support only clientProfile 'python'")
    app_dsn = source.server.dsn_for(source.name, user=settings.app_role,
                                    password=APP_PASSWORD)
    fails(2, ["backup", *base, "--dsn", app_dsn, "--output", str(out)],
          f"cannot act as the stack's service role {settings.service_role}")
    fails(1, ["restore", *base, "--dsn", empty.dsn, str(corrupt(out, tmp_path / "c"))],
          "restore refused, nothing was changed")


def test_a_service_role_that_does_not_bypass_rls_is_refused(
        source: TestDatabase, settings: Settings, tmp_path: Path) -> None:
    role = sql.Identifier(settings.service_role)
    with source.connect() as admin:
        admin.execute(sql.SQL("ALTER ROLE {} NOBYPASSRLS").format(role))
    try:
        with pytest.raises(Exception, match="does not bypass row-level security"):
            backup(source, settings, tmp_path / "partial.tar.gz")
    finally:
        with source.connect() as admin:
            admin.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(role))
    assert not (tmp_path / "partial.tar.gz").exists()


# --- in-database snapshots ------------------------------------------------------------------

def test_a_snapshot_restores_a_users_deleted_memories(
        copy_of_source: TestDatabase, source: TestDatabase, settings: Settings,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_of_source
    with db.connect() as admin:
        snapshot = int(admin.execute("SELECT mem0_backup.take_snapshot('7 days')"
                                     ).fetchone()[0])
    with as_role(db, settings.app_role) as app:
        app.execute("DELETE FROM public.memories WHERE user_id = 'alice'")
    assert count(db, "memories", "user_id = 'alice'") == 0
    directory = project(tmp_path, settings)
    base = ["restore", "--stack", STACK, "--project-dir", str(directory), "--dsn", db.dsn]
    assert main([*base, "--snapshot", str(snapshot), "--user-id", "alice"]) == 0
    out = capsys.readouterr().out
    assert f"restore of snapshot {snapshot}" in out
    for table in ("memories", "memories_entities", "memory_relationships"):
        assert digest(db, table) == digest(source, table), table
    assert main([*base, "--snapshot", str(snapshot + 100)]) == 2
    err = capsys.readouterr().err
    assert f"no snapshot {snapshot + 100}" in err and f"{snapshot} (taken at " in err
