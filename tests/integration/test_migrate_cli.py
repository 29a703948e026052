"""The whole path from the Mem0 Platform, as an operator runs it: every step is
`python -m components migrate ...` in its own process.

A local Platform (tests/support/platform_server.py) serves 230 memories to mem0ai's own
`MemoryClient`; `export` writes them raw; `import` embeds them with a real model
(all-MiniLM-L6-v2 through the `class` embedder config) and is killed with SIGKILL while a
batch's transaction holds its writes; `status` shows the run; `resume` finishes it with
every record written once; `verify` passes; `rollback` gives back the table exactly as it
was, the row the import overwrote included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from components import mem0
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase, stack_settings
from tests.support.platform_server import platform_server, synthetic_memories
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

DIMS = 384  # all-MiniLM-L6-v2
STACK = "dev"
REPO = Path(__file__).resolve().parents[2]
MEMORIES = synthetic_memories(230)
EMBEDDER = {"provider": "class", "config": {"class": "components.migrate.minilm:MiniLMEmbedder"}}
# The server sleeps in each row's insert while the test watches: a batch transaction is
# then surely open when the test kills the import (a real server-side delay, no mock).
SLOW_INSERTS = """
CREATE FUNCTION public.test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN PERFORM pg_catalog.pg_sleep(0.02); RETURN NULL; END$$;
CREATE TRIGGER test_slow_insert AFTER INSERT ON public.memories
    FOR EACH ROW EXECUTE FUNCTION public.test_slow_insert();
"""


@pytest.fixture(scope="module")
def db(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[TestDatabase]:
    with deployed_stack(pg_server, tmp_path_factory.mktemp("state"), STACK,
                        dimensions=DIMS) as database:
        yield database


@pytest.fixture(scope="module")
def settings(db: TestDatabase) -> Settings:
    return stack_settings(db, STACK, dimensions=DIMS)


def _project(directory: Path, settings: Settings) -> Path:
    config = {"target": "postgres", "databaseUrl": "postgresql://unused@localhost/unused",
              "dimensions": DIMS, "appRole": settings.app_role,
              "appRolePassword": APP_PASSWORD, "ownerRole": settings.owner_role,
              "readonlyRole": settings.readonly_role, "readonlyRolePassword": APP_PASSWORD,
              "serviceRole": settings.service_role, "serviceRolePassword": APP_PASSWORD}
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{k}": v for k, v in config.items()}}))
    return directory


def _env(tmp_path: Path) -> dict[str, str]:
    mem0_dir = tmp_path / "mem0-dir"
    mem0_dir.mkdir(exist_ok=True)
    return {**os.environ, "PYTHONPATH": str(REPO), "MEM0_DIR": str(mem0_dir),
            "MEM0_TELEMETRY": "False"}


def migrate(tmp_path: Path, db: TestDatabase, *args: str, stack: bool = True
            ) -> subprocess.CompletedProcess[str]:
    common = ["--stack", STACK, "--project-dir", str(tmp_path), "--dsn", db.dsn] if stack \
        else []
    return subprocess.run([sys.executable, "-m", "components", "migrate", *args, *common],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=600)


def one(db: TestDatabase, query: str) -> Any:
    with db.connect() as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def table_md5(db: TestDatabase) -> str:
    return str(one(db, "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM public.memories t"))


def test_platform_to_stack_through_the_cli(db: TestDatabase, settings: Settings,
                                           tmp_path: Path) -> None:
    _project(tmp_path, settings)
    export_file = tmp_path / "platform.jsonl"
    with platform_server([dict(m) for m in MEMORIES]) as server:
        done = migrate(tmp_path, db, "export", "--from", "platform", "--api-key",
                       "m0-test-key", "--host", server.url, "--output", str(export_file),
                       "--json", stack=False)
    assert done.returncode == 0, done.stderr
    exported = [json.loads(line) for line in export_file.read_text().splitlines()]
    assert sorted(m["id"] for m in exported) == sorted(m["id"] for m in MEMORIES)

    # A row already in the stack under one of the Platform's ids: the import overwrites it,
    # and the rollback must give it back as it was (times included).
    taken = MEMORIES[0]["id"]
    with psycopg.connect(db.server.dsn_for(db.name, user=settings.app_role,
                                           password=APP_PASSWORD), autocommit=True) as app:
        app.execute("INSERT INTO public.memories (id, vector, payload) VALUES (%s, %s, %s)",
                    (taken, [0.5] * DIMS, mem0.payload_json("an older note", user_id="user-0")))
        app.execute("INSERT INTO public.memories (id, vector, payload) VALUES "
                    "(gen_random_uuid(), %s, %s)",
                    ([0.25] * DIMS, mem0.payload_json("someone else's", user_id="zed")))
    before = table_md5(db)
    config = tmp_path / "embedder.json"
    config.write_text(json.dumps(EMBEDDER))

    dry = migrate(tmp_path, db, "import", str(export_file), "--embedder", str(config),
                  "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert table_md5(db) == before
    assert one(db, "SELECT count(*) FROM mem0_migration.runs") == 0

    with db.connect() as admin:
        admin.execute(SLOW_INSERTS)
    child = subprocess.Popen(
        [sys.executable, "-m", "components", "migrate", "import", str(export_file),
         "--embedder", str(config), "--batch-size", "10", "--stack", STACK,
         "--project-dir", str(tmp_path), "--dsn", db.dsn],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        killed_with = _kill_in_a_batch(db, child)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        with db.connect() as admin:
            admin.execute("DROP TRIGGER test_slow_insert ON public.memories;"
                          "DROP FUNCTION public.test_slow_insert()")
    run_id = str(one(db, "SELECT id FROM mem0_migration.runs"))
    assert one(db, "SELECT state FROM mem0_migration.runs") == "running"
    # the open batch died with its process: only committed batches wrote rows
    assert one(db, "SELECT count(*) FROM mem0_migration.batches") == killed_with

    status = migrate(tmp_path, db, "status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    assert run_id in status.stdout and "running" in status.stdout

    resumed = migrate(tmp_path, db, "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    valid = int(one(db, "SELECT count(*) FROM mem0_migration.staged"))
    assert valid == len(MEMORIES)
    # each record written once: one history row per new id, one update for the taken one
    with db.connect() as conn:
        history = conn.execute(
            "SELECT h.operation, count(*) FROM public.memory_history h JOIN "
            "mem0_migration.history_marks m ON m.history_id = h.id GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert history == [("create", len(MEMORIES) - 1), ("update", 1)]
    assert one(db, "SELECT count(*) FROM public.memories") == len(MEMORIES) + 1
    batches = [r[0] for r in _rows(db, "SELECT batch FROM mem0_migration.batches ORDER BY 1")]
    assert batches == list(range(1, len(batches) + 1)) and len(batches) == 23

    verified = migrate(tmp_path, db, "verify", run_id, "--embedder", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PASS" in verified.stdout

    rolled = migrate(tmp_path, db, "rollback", run_id, "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert table_md5(db) == before
    assert one(db, "SELECT state FROM mem0_migration.runs") == "rolled_back"


def _rows(db: TestDatabase, query: str) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(query).fetchall()


def _kill_in_a_batch(db: TestDatabase, child: subprocess.Popen[bytes]) -> int:
    """SIGKILL the import's process group once 3 batches are committed and the next
    one's transaction is writing; returns the batches committed before the kill."""
    deadline = time.monotonic() + 300
    with db.connect() as admin:
        while time.monotonic() < deadline:
            assert child.poll() is None, "the import ended before it could be killed"
            done = int(admin.execute("SELECT count(*) FROM mem0_migration.batches"
                                     ).fetchone()[0])  # type: ignore[index]
            writing = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'mem0infra-migrate' AND backend_xid IS NOT NULL "
                "AND query LIKE 'INSERT INTO%%memories%%'").fetchone()
            if done >= 3 and writing and writing[0]:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(10)
                return int(admin.execute("SELECT count(*) FROM mem0_migration.batches"
                                         ).fetchone()[0])  # type: ignore[index]
            time.sleep(0.01)
    pytest.fail("no batch transaction was seen writing")
