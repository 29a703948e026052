"""The database side of `migrate` against a real PostgreSQL: import into an empty and a
non-empty table, invalid records, dry run, SIGKILL mid-batch and resume, rollback after a
partial and a full run (byte-identical), verify, and the checkpoint schema's access.

One deployment (through the Pulumi CLI) is the module's template; each test works on its
own copy (CREATE DATABASE ... TEMPLATE). Sources, validator and embedder are small classes
of this module that keep the records contract (components/migrate/records.py): the sources
side brings the real ones.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import yaml

from components import mem0
from components.bench.progress import Progress
from components.cli import main
from components.introspect import live_ddl
from components.migrate import Problem, Record, SourceKind
from components.migrate import batches as batches_module
from components.migrate.importer import (
    ImportInvalid,
    ImportRequest,
    resume_import,
    run_import,
)
from components.migrate.records import MigrationError
from components.migrate.rollback import RollbackRefused, run_rollback
from components.migrate.status import DROPPED, run_status, status_text
from components.migrate.verify import run_verify
from components.model import build_model
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase, stack_settings
from tests.integration.test_backup import cloned
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

DIMS = 16
STACK = "dev"
QUIET = Progress.silent()
REPO = Path(__file__).resolve().parents[2]
CREATED = "2024-07-20T08:32:08.675366-07:00"
UPDATED = "2024-08-01T10:00:00+00:00"


# --- the records contract's other side, small -------------------------------------------------

def hash_vector(text: str, dims: int = DIMS) -> list[float]:
    """tests.support.mem0_client.HashEmbedder's vector (without importing mem0 here)."""
    values: list[float] = []
    block = 0
    while len(values) < dims:
        digest = hashlib.sha512(f"{block}:{text}".encode()).digest()
        values += [v / 2**31 - 1.0 for v in struct.unpack(">16I", digest)]
        block += 1
    norm = math.sqrt(sum(v * v for v in values[:dims]))
    return [v / norm for v in values[:dims]]


class HashEmbedder:
    name = "hash"
    dims: int | None = DIMS

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [hash_vector(t) for t in texts]


class ListSource:
    """Entries in memory; `spec` names them for a resume."""

    kind = SourceKind.TABLE

    def __init__(self, entries: list[Record | Problem], name: str = "test") -> None:
        self.entries = entries
        self.name = name

    def describe(self) -> str:
        return f"test source {self.name}"

    def spec(self) -> dict[str, str]:
        return {"test": self.name}

    def count(self) -> int | None:
        return len(self.entries)

    def read(self, after: int = 0) -> Iterator[Record | Problem]:
        return (e for e in self.entries if e.seq > after)


class Checker:
    """The validator's contract: uuid ids, text, the stack's dims unless it can embed,
    duplicates."""

    def __init__(self, can_embed: bool = True) -> None:
        self.can_embed = can_embed
        self.seen: set[str] = set()

    def needs_embedding(self, record: Record) -> bool:
        return record.vector is None or len(record.vector) != DIMS

    def check(self, record: Record) -> Problem | None:
        try:
            key = str(uuid.UUID(record.id))
        except ValueError:
            return Problem(record.seq, record.origin, f"id {record.id!r} is not a UUID")
        if not record.payload.get("data"):
            return Problem(record.seq, record.origin, "no memory text")
        if self.needs_embedding(record) and not self.can_embed:
            return Problem(record.seq, record.origin, "no vector and no embedder")
        if key in self.seen:
            return Problem(record.seq, record.origin, f"duplicate id {record.id}")
        self.seen.add(key)
        return None


def record(seq: int, user: str, text: str | None = None, memory: str | None = None,
           vector: bool = True, **extra: Any) -> Record:
    text = text or f"memory {seq} of {user}"
    payload = mem0.payload(text, user_id=user, created_at=CREATED, lemmatized=text.lower(),
                           **extra)
    payload["updated_at"] = UPDATED
    payload["categories"] = ["test"]
    return Record(seq, f"line {seq}", memory or str(uuid.uuid5(uuid.NAMESPACE_URL, text)),
                  payload, hash_vector(text) if vector else None)


def records(n: int, users: Sequence[str] = ("alice", "bob", "carol")) -> list[Record]:
    return [record(i, users[i % len(users)]) for i in range(1, n + 1)]


# --- databases ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK,
                        dimensions=DIMS) as db:
        yield db


@pytest.fixture(scope="module")
def settings(template: TestDatabase) -> Settings:
    return stack_settings(template, STACK, dimensions=DIMS)


@pytest.fixture
def db(pg_server: PgServer, template: TestDatabase) -> Iterator[TestDatabase]:
    with cloned(pg_server, template) as copy:
        yield copy


@pytest.fixture
def project(tmp_path: Path, settings: Settings, template: TestDatabase) -> Path:
    """A project directory whose stack file is the template's stack (the CLI reads it)."""
    config = {f"mem0infra:{k}": v for k, v in stack_config(settings).items()}
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def stack_config(settings: Settings) -> dict[str, object]:
    return {"target": "postgres", "databaseUrl": "postgresql://unused@localhost/unused",
            "dimensions": DIMS, "appRole": settings.app_role, "appRolePassword": APP_PASSWORD,
            "ownerRole": settings.owner_role, "readonlyRole": settings.readonly_role,
            "readonlyRolePassword": APP_PASSWORD, "serviceRole": settings.service_role,
            "serviceRolePassword": APP_PASSWORD}


def as_role(db: TestDatabase, role: str) -> psycopg.Connection:
    return psycopg.connect(db.server.dsn_for(db.name, user=role, password=APP_PASSWORD),
                           autocommit=True)


def rows(db: TestDatabase, query: str, params: tuple[object, ...] = ()) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(query, params or None).fetchall()


def one(db: TestDatabase, query: str, params: tuple[object, ...] = ()) -> Any:
    return rows(db, query, params)[0][0]


def table_md5(db: TestDatabase) -> str:
    return str(one(db, "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM public.memories t"))


def migration_counts(db: TestDatabase) -> dict[str, int]:
    return {t: int(one(db, f"SELECT count(*) FROM mem0_migration.{t}"))
            for t in ("runs", "staged", "batches", "preimages", "history_marks")}


def app_insert(db: TestDatabase, settings: Settings, entries: list[Record]) -> None:
    """Rows already in the stack, written the way mem0 writes them (as the app role)."""
    with as_role(db, settings.app_role) as app, app.cursor() as cur:
        cur.executemany("INSERT INTO public.memories (id, vector, payload) VALUES (%s, %s, %s)",
                        [(r.id, list(r.vector or []), json.dumps(dict(r.payload)))
                         for r in entries])


def do_import(db: TestDatabase, settings: Settings, entries: list[Record | Problem],
              **request: Any) -> Any:
    request.setdefault("embedder", HashEmbedder())
    return run_import(db.dsn, settings, ImportRequest(ListSource(entries), Checker(),
                                                      **request), QUIET)


def vector_indexes(db: TestDatabase) -> dict[str, str]:
    """The memories table's pgvector indexes: name -> pg_get_indexdef (every name
    qualified, as on the bulk path's empty search_path)."""
    with db.connect() as conn:
        conn.execute("SET search_path = ''")
        return {str(r[0]): str(r[1]) for r in conn.execute(
            "SELECT x.relname, pg_catalog.pg_get_indexdef(x.oid) FROM pg_catalog.pg_index i"
            " JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid JOIN pg_catalog.pg_am a"
            " ON a.oid = x.relam WHERE i.indrelid = 'public.memories'::pg_catalog.regclass"
            " AND a.amname::text IN ('hnsw', 'ivfflat')")}


def watch_batches(db: TestDatabase, monkeypatch: pytest.MonkeyPatch,
                  fail_at: int | None = None) -> list[dict[str, str]]:
    """Record the vector indexes present as each batch is applied (from another
    connection); batch `fail_at` raises instead."""
    original = batches_module.apply_batch
    seen: list[dict[str, str]] = []

    def watched(conn: Any, s: Settings, run_id: str, batch: int) -> Any:
        seen.append(vector_indexes(db))
        if batch == fail_at:
            raise MigrationError("disk full (simulated)")
        return original(conn, s, run_id, batch)

    monkeypatch.setattr("components.migrate.importer.apply_batch", watched)
    return seen


# --- import ------------------------------------------------------------------------------------

def test_bulk_path_into_an_empty_table_only(db: TestDatabase, settings: Settings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    indexes = vector_indexes(db)
    assert indexes and all("hnsw" in d or "ivfflat" in d for d in indexes.values())
    seen = watch_batches(db, monkeypatch)
    first = do_import(db, settings, records(25), batch_size=10)
    assert first.bulk and first.write_path.startswith("bulk: index rebuilt after load")
    assert first.as_json()["bulk"] is True
    assert seen == [{}, {}, {}]  # the batches wrote into the table without its index
    assert vector_indexes(db) == indexes  # the same name, the same definition
    assert one(db, "SELECT dropped_indexes FROM mem0_migration.runs") is None
    assert one(db, "SELECT count(*) FROM public.memories") == 25
    with db.connect() as conn:  # the rebuilt index is valid and used by a search
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(str(r[0]) for r in conn.execute(
            "EXPLAIN SELECT id FROM public.memories ORDER BY vector <=> %s::vector LIMIT 3",
            (str(hash_vector("memory 3 of alice")),)))
    assert any(name in plan for name in indexes), plan

    # Into the table now holding rows: row by row, the index kept throughout.
    seen.clear()
    second = do_import(db, settings, [record(i, "bob", f"second {i}") for i in range(1, 6)],
                       batch_size=2)
    assert not second.bulk and second.write_path == \
        "row by row (the table held rows when the import began)"
    assert seen == [indexes] * 3
    assert vector_indexes(db) == indexes


def test_no_bulk_keeps_the_index_into_an_empty_table(db: TestDatabase, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    indexes = vector_indexes(db)
    seen = watch_batches(db, monkeypatch)
    result = do_import(db, settings, records(9), batch_size=4, bulk=False)
    assert not result.bulk and result.write_path == "row by row (--no-bulk)"
    assert seen == [indexes] * 3
    assert vector_indexes(db) == indexes


def test_failed_bulk_run_keeps_its_dropped_index_until_resume_or_rollback(
        db: TestDatabase, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    indexes = vector_indexes(db)
    entries = records(20)
    watch_batches(db, monkeypatch, fail_at=3)
    with pytest.raises(MigrationError, match="simulated"):
        do_import(db, settings, entries, batch_size=4)
    [(run_id, dropped)] = rows(db, "SELECT id, dropped_indexes FROM mem0_migration.runs")
    assert vector_indexes(db) == {}
    assert {d["definition"] for d in dropped} == set(indexes.values())
    [status] = run_status(db.dsn, settings, run_id)
    assert DROPPED in status_text([status])
    assert status.as_json()["dropped_indexes"] == dropped
    monkeypatch.undo()
    result = resume_import(db.dsn, settings, run_id, lambda spec: ListSource(entries),
                           Checker, HashEmbedder(), QUIET)
    assert result.batches == 3 and result.bulk
    assert vector_indexes(db) == indexes
    assert one(db, "SELECT dropped_indexes FROM mem0_migration.runs") is None
    assert DROPPED not in status_text(run_status(db.dsn, settings, run_id))
    assert one(db, "SELECT count(*) FROM public.memories") == 20

    # The rollback of such a run builds the index again too, after its deletes.
    run_rollback(db.dsn, settings, run_id, force=False)  # back to empty
    watch_batches(db, monkeypatch, fail_at=2)
    with pytest.raises(MigrationError, match="simulated"):
        do_import(db, settings, entries, batch_size=4)
    [(failed,)] = rows(db, "SELECT id FROM mem0_migration.runs WHERE state = 'failed'")
    assert vector_indexes(db) == {}
    rolled = run_rollback(db.dsn, settings, failed, force=False)
    assert rolled.deleted == 4 and len(rolled.rebuilt) == len(indexes)
    assert vector_indexes(db) == indexes
    assert one(db, "SELECT count(*) FROM public.memories") == 0
    assert one(db, "SELECT dropped_indexes FROM mem0_migration.runs WHERE id = %s",
               (failed,)) is None


def test_a_login_role_that_cannot_act_as_the_owner_writes_row_by_row(
        db: TestDatabase, settings: Settings) -> None:
    indexes = vector_indexes(db)
    service_dsn = db.server.dsn_for(db.name, user=settings.service_role,
                                    password=APP_PASSWORD)
    result = run_import(service_dsn, settings, ImportRequest(
        ListSource(records(5)), Checker(), HashEmbedder()), QUIET)
    assert not result.bulk
    assert f"cannot act as the table's owner {settings.owner_role}" in result.write_path
    assert vector_indexes(db) == indexes
    assert one(db, "SELECT count(*) FROM public.memories") == 5


def test_import_into_empty_and_non_empty_tables(db: TestDatabase, settings: Settings,
                                                tmp_path_factory: pytest.TempPathFactory,
                                                ) -> None:
    entries = records(25)
    entries.append(record(26, "dave", vector=False))  # embedded by the import
    first = do_import(db, settings, entries, batch_size=10)
    assert (first.inserted, first.updated, first.unchanged, first.batches) == (26, 0, 0, 3)
    assert first.to_embed == 1
    # The payload is exactly the record's, the times the payload's (not now()).
    for entry in (entries[0], entries[-1]):
        payload, created, updated, vector = rows(
            db, "SELECT payload, created_at, updated_at, vector::text FROM public.memories "
                "WHERE id = %s", (entry.id,))[0]
        assert payload == dict(entry.payload)
        assert created == datetime.fromisoformat(CREATED)
        assert updated == datetime.fromisoformat(UPDATED)
        assert json.loads(vector) == pytest.approx(hash_vector(str(entry.payload["data"])),
                                                   rel=1e-6)
    assert one(db, "SELECT source_had_vector FROM mem0_migration.staged WHERE id = %s",
               (entries[-1].id,)) is False
    assert one(db, "SELECT count(*) FROM mem0_migration.preimages WHERE NOT existed") == 26

    # Into a non-empty table: 3 rows changed (overwritten, with pre-images), 2 identical
    # (left alone), 5 new; one row of the stack not in the source at all.
    other = record(99, "erin", "not in the source")
    app_insert(db, settings, [other])
    changed = [record(r.seq, str(r.payload["user_id"]), memory=r.id,
                      text=f"{r.payload['data']} (changed)") for r in entries[:3]]
    second_entries = [*changed, *entries[3:5], *[record(100 + i, "alice") for i in range(5)]]
    second_entries = [Record(i, e.origin, e.id, e.payload, e.vector)
                      for i, e in enumerate(second_entries, 1)]
    before = {r.id: rows(db, "SELECT vector::text, payload, created_at, updated_at FROM "
                             "public.memories WHERE id = %s", (r.id,))[0] for r in changed}
    history_before = int(one(db, "SELECT count(*) FROM public.memory_history"))
    second = do_import(db, settings, second_entries, batch_size=4)
    assert (second.inserted, second.updated, second.unchanged) == (5, 3, 2)
    images = {str(r[0]): r[1:] for r in rows(
        db, "SELECT id, existed, vector::text, payload, created_at, updated_at FROM "
            "mem0_migration.preimages WHERE run_id = %s", (second.run_id,))}
    assert len(images) == 8  # the 3 overwritten and the 5 inserted; none for the unchanged
    for r in changed:
        assert images[r.id] == (True, *before[r.id])
        assert one(db, "SELECT payload->>'data' FROM public.memories WHERE id = %s",
                   (r.id,)).endswith("(changed)")
        # Overwritten rows keep the source's times too (keep_times, as the service role).
        assert one(db, "SELECT updated_at FROM public.memories WHERE id = %s",
                   (r.id,)) == datetime.fromisoformat(UPDATED)
    # The history the run caused is marked, exactly: 5 creates and 3 updates.
    marked = rows(db, "SELECT h.operation, count(*) FROM mem0_migration.history_marks k JOIN "
                      "public.memory_history h ON h.id = k.history_id WHERE k.run_id = %s "
                      "AND k.kind = 'caused' GROUP BY 1 ORDER BY 1", (second.run_id,))
    assert marked == [("create", 5), ("update", 3)]
    assert int(one(db, "SELECT count(*) FROM public.memory_history")) == history_before + 8
    assert one(db, "SELECT payload FROM public.memories WHERE id = %s",
               (other.id,)) == dict(other.payload)

    # mem0's own Memory, as the app role, reads an imported memory with get and search.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))
        env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        client: ModuleType = importlib.import_module("tests.support.mem0_client")
        app_dsn = db.server.dsn_for(db.name, user=settings.app_role, password=APP_PASSWORD)
        memory = client.memory({"provider": "pgvector", "config": {
            "connection_string": app_dsn, "collection_name": settings.collection,
            "embedding_model_dims": DIMS}}, DIMS)
        try:
            target = entries[10]
            got = memory.get(target.id)
            assert got is not None and got["memory"] == target.payload["data"]
            assert got["user_id"] == target.payload["user_id"]
            assert got["created_at"] == CREATED
            found = memory.search(str(target.payload["data"]), top_k=3,
                                  filters={"user_id": str(target.payload["user_id"])})
            assert found["results"][0]["id"] == target.id
            embedded = memory.search(str(entries[-1].payload["data"]), top_k=1,
                                     filters={"user_id": "dave"})
            assert embedded["results"][0]["id"] == entries[-1].id
        finally:
            client.close(memory)


def test_invalid_records_stop_the_import_unless_skipped(db: TestDatabase, settings: Settings,
                                                        project: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        ) -> None:
    entries: list[Record | Problem] = list(records(8))
    entries[2] = Record(3, "line 3", "not-a-uuid", entries[2].payload, None)  # type: ignore[union-attr]
    entries[5] = Problem(6, "line 6", "not JSON: Expecting value")
    before = table_md5(db)
    with pytest.raises(ImportInvalid) as caught:
        do_import(db, settings, entries)
    assert [(p.origin, p.reason) for p in caught.value.problems] == [
        ("line 3", "id 'not-a-uuid' is not a UUID"), ("line 6", "not JSON: Expecting value")]
    assert caught.value.exit_code == 1
    assert table_md5(db) == before
    assert migration_counts(db) == dict.fromkeys(migration_counts(db), 0)

    result = do_import(db, settings, entries, skip_invalid=True)
    assert result.inserted == 6 and [p.seq for p in result.skipped] == [3, 6]
    assert main(["migrate", "status", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", db.dsn, "--json", str(result.run_id)]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["state"] == "done" and status["inserted"] == 6
    assert status["batches_done"] == status["batches_total"] == 1
    assert [(s["origin"], s["reason"]) for s in status["skipped"]] == [
        ("line 3", "id 'not-a-uuid' is not a UUID"), ("line 6", "not JSON: Expecting value")]
    assert main(["migrate", "status", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", db.dsn]) == 0
    out = capsys.readouterr().out
    assert f"run {result.run_id}  done" in out and "line 6: not JSON" in out


def test_dry_run_writes_nothing_and_counts_per_user(db: TestDatabase,
                                                    settings: Settings) -> None:
    existing = records(6)
    app_insert(db, settings, existing[:4])
    changed = record(2, "carol", memory=existing[1].id, text="carol changed her mind")
    entries: list[Record | Problem] = [existing[0], changed, existing[2], existing[3],
                                       existing[4], existing[5], record(7, "alice")]
    history = int(one(db, "SELECT count(*) FROM public.memory_history"))
    before = table_md5(db)
    result = do_import(db, settings, entries, dry_run=True)
    assert result.run_id is None
    assert table_md5(db) == before
    assert migration_counts(db) == dict.fromkeys(migration_counts(db), 0)
    assert int(one(db, "SELECT count(*) FROM public.memory_history")) == history
    counts = {u: (c.records, c.insert, c.update, c.unchanged)
              for u, c in result.per_user.items()}
    # records(6) cycles alice, bob, carol from seq 1: 1 bob, 2 carol, 3 alice, ...
    assert counts == {"bob": (2, 0, 0, 2), "carol": (2, 1, 1, 0), "alice": (3, 2, 0, 1)}
    real = do_import(db, settings, entries)
    assert (real.inserted, real.updated, real.unchanged) == (3, 1, 3)


# --- SIGKILL, resume, rollback -----------------------------------------------------------------

KILLED_IMPORT = textwrap.dedent("""
    import sys, time
    from components.migrate import batches
    from components.migrate.importer import ImportRequest, run_import
    from components.bench.progress import Progress
    from components.settings import parse_settings
    from tests.integration.test_migrate_engine import Checker, HashEmbedder, ListSource, records
    import json
    dsn, config = sys.argv[1], json.loads(sys.argv[2])
    original = batches.caused_history
    def slow(*args, **kwargs):
        marked = original(*args, **kwargs)
        time.sleep(0.15)  # the batch's writes are done, its transaction still open
        return marked
    batches.caused_history = slow
    settings = parse_settings(config, "dev")
    run_import(dsn, settings, ImportRequest(ListSource(records(120)), Checker(),
               HashEmbedder(), batch_size=7), Progress.silent())
""")


def _start_killed_import(db: TestDatabase, settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, db.dsn,
                             json.dumps(stack_config(settings))],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def _kill_mid_batch(db: TestDatabase, child: subprocess.Popen[bytes]) -> None:
    """SIGKILL once 3 batches are committed and the next one's transaction holds writes."""
    deadline = time.monotonic() + 60
    with db.connect() as admin:
        while time.monotonic() < deadline:
            assert child.poll() is None, "the import ended before it could be killed"
            done = admin.execute("SELECT count(*) FROM mem0_migration.batches").fetchone()
            open_batch = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'mem0infra-migrate' AND backend_xid IS NOT NULL "
                "AND state = 'idle in transaction'").fetchone()
            if done and done[0] >= 3 and open_batch and open_batch[0]:
                child.send_signal(signal.SIGKILL)
                child.wait(10)
                return
            time.sleep(0.01)
    child.kill()
    pytest.fail("no batch transaction was seen open")


def test_sigkill_mid_batch_then_resume_writes_every_record_once(db: TestDatabase,
                                                                settings: Settings) -> None:
    indexes = vector_indexes(db)
    _kill_mid_batch(db, _start_killed_import(db, settings))
    [(run_id, state)] = rows(db, "SELECT id, state FROM mem0_migration.runs")
    assert state == "running"  # killed: nobody could mark it
    # Killed on the bulk path: the index is gone and the run remembers it.
    assert vector_indexes(db) == {}
    assert DROPPED in status_text(run_status(db.dsn, settings, run_id))
    done = int(one(db, "SELECT count(*) FROM mem0_migration.batches"))
    # The open batch died with the process: only committed batches' rows are there.
    assert int(one(db, "SELECT count(*) FROM public.memories")) == done * 7
    entries = records(120)
    result = resume_import(db.dsn, settings, run_id, lambda spec: ListSource(entries),
                           Checker, HashEmbedder(), QUIET)
    assert result.batches == 18 - done
    ids = sorted(str(r[0]) for r in rows(db, "SELECT id FROM public.memories"))
    assert ids == sorted(r.id for r in entries)
    # Exactly once: one 'create' in the history per record, and nothing else.
    assert rows(db, "SELECT operation, count(*), count(DISTINCT memory_id) FROM "
                    "public.memory_history GROUP BY 1") == [("create", 120, 120)]
    assert int(one(db, "SELECT count(*) FROM mem0_migration.history_marks")) == 120
    batch_rows = rows(db, "SELECT batch, first_seq, last_seq, inserted FROM "
                          "mem0_migration.batches ORDER BY batch")
    assert [b[0] for b in batch_rows] == list(range(1, 19))
    assert all(b[1] == (b[0] - 1) * 7 + 1 and b[2] == min(b[0] * 7, 120) for b in batch_rows)
    assert sum(b[3] for b in batch_rows) == 120
    assert one(db, "SELECT state FROM mem0_migration.runs") == "done"
    assert vector_indexes(db) == indexes  # built again by the resume, exactly as it was
    assert DROPPED not in status_text(run_status(db.dsn, settings, run_id))
    with pytest.raises(MigrationError, match="is done: nothing to resume"):
        resume_import(db.dsn, settings, run_id, lambda spec: ListSource(entries), Checker,
                      HashEmbedder(), QUIET)


def _mixed(db: TestDatabase, settings: Settings) -> list[Record]:
    """A table with rows the import will overwrite, leave alone, and not touch; returns the
    source: 30 records, 5 of them overwriting, 3 identical."""
    entries = records(30)
    present = [record(r.seq, str(r.payload["user_id"]), memory=r.id, text=f"old {r.seq}")
               for r in entries[:5]] + entries[5:8]
    app_insert(db, settings, [*present, record(50, "zed", "unrelated row")])
    with as_role(db, settings.app_role) as app:  # updated once: updated_at != created_at
        app.execute("UPDATE public.memories SET payload = payload || '{\"x\": 1}'::jsonb "
                    "WHERE id = %s", (present[0].id,))
    return entries


def test_rollback_after_a_partial_and_a_full_run(db: TestDatabase, settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entries = _mixed(db, settings)
    before = table_md5(db)
    history = int(one(db, "SELECT count(*) FROM public.memory_history"))

    # Partial: the third batch fails, the run stays failed with two batches applied.
    original = batches_module.apply_batch

    def failing(conn: Any, s: Settings, run_id: str, batch: int) -> Any:
        if batch == 3:
            raise MigrationError("disk full (simulated)")
        return original(conn, s, run_id, batch)

    monkeypatch.setattr("components.migrate.importer.apply_batch", failing)
    with pytest.raises(MigrationError, match="simulated"):
        do_import(db, settings, entries, batch_size=4)
    [(run_id, state, failure)] = rows(db, "SELECT id, state, failure FROM mem0_migration.runs")
    assert state == "failed" and "simulated" in failure and f"migrate resume {run_id}" in failure
    assert table_md5(db) != before
    caused = int(one(db, "SELECT count(*) FROM public.memory_history")) - history
    assert caused == 5  # batch 1: 4 overwritten; batch 2: 1 overwritten, 3 unchanged
    result = run_rollback(db.dsn, settings, run_id, force=False)
    assert (result.deleted, result.restored) == (0, 5)
    assert table_md5(db) == before
    # History: nothing deleted; what the rollback caused is marked.
    assert int(one(db, "SELECT count(*) FROM public.memory_history")) == history + 2 * caused
    assert rows(db, "SELECT kind, count(*) FROM mem0_migration.history_marks GROUP BY 1 "
                    "ORDER BY 1") == [("caused", caused), ("rollback", caused)]
    with pytest.raises(MigrationError, match="is rolled_back: nothing to resume"):
        resume_import(db.dsn, settings, run_id, lambda spec: ListSource(entries), Checker,
                      HashEmbedder(), QUIET)
    with pytest.raises(MigrationError, match="rolled_back already"):
        run_rollback(db.dsn, settings, run_id, force=False)

    monkeypatch.setattr("components.migrate.importer.apply_batch", original)
    full = do_import(db, settings, entries, batch_size=4)
    assert (full.inserted, full.updated, full.unchanged) == (22, 5, 3)
    assert table_md5(db) != before
    result = run_rollback(db.dsn, settings, str(full.run_id), force=False)
    assert (result.deleted, result.restored) == (22, 5)
    assert table_md5(db) == before


def test_rollback_refuses_rows_changed_since_unless_forced(db: TestDatabase,
                                                           settings: Settings,
                                                           project: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           ) -> None:
    entries = _mixed(db, settings)
    before = table_md5(db)
    run = do_import(db, settings, entries)
    with as_role(db, settings.app_role) as app:
        app.execute("UPDATE public.memories SET payload = payload || '{\"edited\": true}'"
                    " WHERE id = %s", (entries[12].id,))
    arguments = ["migrate", "rollback", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", db.dsn, str(run.run_id)]
    after_edit = table_md5(db)
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert "1 row(s) the run wrote were changed since" in err and entries[12].id in err
    assert table_md5(db) == after_edit
    with pytest.raises(RollbackRefused):
        run_rollback(db.dsn, settings, str(run.run_id), force=False)
    assert main([*arguments, "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed_since"] == 1
    assert table_md5(db) == before


# --- verify ------------------------------------------------------------------------------------

def test_verify_passes_then_names_a_changed_row(db: TestDatabase, settings: Settings,
                                                project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    entries = records(40)
    entries.append(record(41, "dave", "embedded by the import", vector=False))
    run = do_import(db, settings, entries, batch_size=9)
    arguments = ["migrate", "verify", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", db.dsn, str(run.run_id)]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "41/41 memories are their own text's top hit" in out
    assert "the stored vector" in out and "40/40 sampled vectors" in out
    verdict = run_verify(db.dsn, settings, str(run.run_id), HashEmbedder(), sample=5)
    assert verdict.passed and "the text embedded again" in verdict.checks[1].detail
    # Another user's text under this id: counts, search and sampled vector all fail.
    victim = entries[7]
    with as_role(db, settings.app_role) as app:
        app.execute("UPDATE public.memories SET vector = %s WHERE id = %s",
                    (hash_vector("something else entirely"), victim.id))
    assert main([*arguments, "--json", "--sample", "100"]) == 1
    verdict_json = json.loads(capsys.readouterr().out)
    assert not verdict_json["passed"]
    failed = {c["name"]: c["failures"] for c in verdict_json["checks"] if not c["passed"]}
    assert set(failed) == {"counts", "vectors"}
    assert any(victim.id in f and "changed since the run" in f for f in failed["counts"])
    assert any(victim.id in f for f in failed["vectors"])
    embedded = run_verify(db.dsn, settings, str(run.run_id), HashEmbedder(), sample=1)
    assert any(victim.id in f for f in embedded.checks[1].failures)


# --- access ------------------------------------------------------------------------------------

def test_only_the_service_role_reaches_mem0_migration(db: TestDatabase,
                                                      settings: Settings) -> None:
    do_import(db, settings, records(3))
    assert settings.readonly_role is not None
    for role in (settings.app_role, settings.readonly_role):
        with as_role(db, role) as conn:
            for table in ("runs", "staged", "batches", "preimages", "history_marks"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT * FROM mem0_migration.{table}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO mem0_migration.runs (id) VALUES ('x')")
    with as_role(db, settings.service_role) as service:
        assert service.execute("SELECT count(*) FROM mem0_migration.runs").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            service.execute("DELETE FROM mem0_migration.history_marks")
    # The tables force row-level security with no policy: the owner itself sees nothing.
    forced = rows(db, "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM "
                      "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
                      "n.nspname = 'mem0_migration' AND c.relkind = 'r' ORDER BY 1")
    assert forced == [(t, True, True) for t in
                      ("batches", "history_marks", "preimages", "runs", "staged")]
    # What the stack declares is what the catalog holds, text for text (no drift).
    with db.connect() as conn:
        conn.execute("SET search_path TO ''")
        with conn.cursor() as cur:
            for spec in build_model(settings):
                if "mem0_migration" in spec.key or spec.name == "mem0_touch_updated_at":
                    assert live_ddl(cur, spec.__dict__) == spec.ddl, spec.key


def test_only_a_role_that_bypasses_rls_keeps_given_times(db: TestDatabase,
                                                         settings: Settings) -> None:
    entry = record(1, "alice")
    app_insert(db, settings, [entry])
    forged = "2001-01-01 00:00:00+00"
    with as_role(db, settings.app_role) as app, app.transaction():
        app.execute("SELECT set_config('mem0_migration.keep_times', 'on', true)")
        app.execute("UPDATE public.memories SET updated_at = %s, created_at = %s "
                    "WHERE id = %s", (forged, forged, entry.id))
    created, updated = rows(db, "SELECT created_at, updated_at FROM public.memories "
                                "WHERE id = %s", (entry.id,))[0]
    assert created.year != 2001 and updated.year != 2001
    with as_role(db, settings.service_role) as service, service.transaction():
        service.execute("SELECT set_config('mem0_migration.keep_times', 'on', true)")
        service.execute("UPDATE public.memories SET updated_at = %s WHERE id = %s",
                        (forged, entry.id))
    assert one(db, "SELECT updated_at FROM public.memories WHERE id = %s",
               (entry.id,)).year == 2001
    with as_role(db, settings.service_role) as service:  # without the setting: the trigger's
        service.execute("UPDATE public.memories SET updated_at = %s WHERE id = %s",
                        (forged, entry.id))
    assert one(db, "SELECT updated_at FROM public.memories WHERE id = %s",
               (entry.id,)).year != 2001


def test_migrate_arguments_are_checked(project: Path, db: TestDatabase,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--stack", STACK, "--project-dir", str(project), "--dsn", db.dsn]
    assert main(["migrate", "status", *base, "m20990101-000000-ffff"]) == 2
    assert "no migration run 'm20990101-000000-ffff'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["migrate", "import", *base, "--from-table", "public.x", "--batch-size", "0"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["migrate", "import", *base, "--from-table", "a.b", "--from-vecs", "c.d"])
    assert "not allowed with argument" in capsys.readouterr().err
