"""State written by provider version 4 (before `components/kinds`) keeps working.

Stacks deployed by commit 6d811c0's code hold inputs without the kinds' `fields` and
`provider_version` "4". With this code, `preview` and `up` change every SqlObject in place
(never a replace, delete or create), the database is left exactly as it was, and the next
`up` is a no-op; `refresh` and `destroy` work on the old state as it stands.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components.introspect import catalog_snapshot, live_ddl
from components.model import build_model
from tests.conftest import TestDatabase, stack_settings
from tests.support.engine import PulumiStack
from tests.support.testbed import PgServer
from tests.support.versions import deployed_by

pytestmark = pytest.mark.e2e

BEFORE_KINDS = "6d811c0"  # the last commit whose provider wrote version 4 state
DIMS = 8
SQL_OBJECT = "mem0:SqlObject"


@pytest.fixture
def settings(pg_server: PgServer) -> dict[str, object]:
    """Settings that declare every kind: jobs too where the test server has pg_cron."""
    jobs = {"analyzeSchedule": "0 4 * * *", "snapshotSchedule": "0 3 * * *"} \
        if pg_server.has_pg_cron else {}
    return {"dimensions": DIMS, **jobs}



def index_oids(database: TestDatabase) -> dict[str, int]:
    with database.connect() as conn:
        rows = conn.execute(
            "SELECT relname::text, oid::int FROM pg_class WHERE relkind = 'i' AND relnamespace"
            " IN (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'mem0_backup'))"
        ).fetchall()
    return dict(rows)


def deploy_with_old_code(stack: PulumiStack, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    with deployed_by(BEFORE_KINDS, stack, tmp_path / "old", monkeypatch):
        stack.up().raise_for_error()
    objects = sql_objects(stack)
    assert {r["inputs"].get("provider_version") for r in objects.values()} == {"4"}
    assert not any("fields" in r["inputs"] for r in objects.values()), \
        "the old code wrote no fields"


# Declared since BEFORE_KINDS: schemas mem0_migration and mem0_erasure and everything in
# them, the owner's policies forget() uses on the other tables, and
# mem0_promote_session() with its grants and the memories' (user_id, agent_id) index
# (created by the first `up` with this code), and the touch function, whose definition
# changed (updated in place). State compatibility is about the rest.
ADDED_SINCE = ("mem0_migration", "mem0_erasure", "_select_owner", "_delete_owner",
               "_update_owner", "mem0_promote_session", "_user_agent_idx")
CHANGED_SINCE = ("mem0_touch_updated_at",)


def _old(key: str) -> bool:
    """Whether the old code declared the object as it is now (a key or a URN)."""
    return not any(part in key for part in (*ADDED_SINCE, *CHANGED_SINCE))


def _as_before(schema: dict[str, Any]) -> dict[str, Any]:
    """A live schema without the objects added or changed since BEFORE_KINDS."""
    return {part: {k: v for k, v in found.items() if _old(k)} if isinstance(found, dict)
            else found for part, found in schema.items()}


def sql_objects(stack: PulumiStack) -> dict[str, dict[str, Any]]:
    return {urn: r for urn, r in stack.state().items() if r["type"].endswith(SQL_OBJECT)}


def live_schema(database: TestDatabase, stack: str, raw: dict[str, object]) -> dict[str, Any]:
    """Everything the stack declares as the catalog shows it, the catalog snapshot of its
    schemas, and the indexes' oids (a rebuilt index has a new one)."""
    specs = build_model(stack_settings(database, stack, **raw))
    with database.connect() as conn, conn.cursor() as cur:
        declared = {spec.key: live_ddl(cur, spec.__dict__) for spec in specs}
        snapshot = catalog_snapshot(cur)
    return {"declared": declared, "catalog": snapshot, "indexes": index_oids(database)}


@pytest.fixture
def old_stack(make_stack: Any, database: TestDatabase, settings: dict[str, object],
              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PulumiStack]:
    stack: PulumiStack = make_stack(**settings)
    deploy_with_old_code(stack, tmp_path, monkeypatch)
    yield stack


def test_old_state_updates_in_place_and_changes_nothing_live(
        old_stack: PulumiStack, database: TestDatabase, settings: dict[str, object]) -> None:
    before = _as_before(live_schema(database, old_stack.stack, settings))
    assert all(before["declared"].values()), "the old code deployed every object"

    preview = old_stack.preview().raise_for_error()
    for report in (preview, old_stack.up().raise_for_error()):
        everything = report.ops_by_type(SQL_OBJECT)
        added = {u: o for u, o in everything.items() if any(a in u for a in ADDED_SINCE)}
        assert added and set(added.values()) == {"create"}, (report.mode, added)
        objects = {u: o for u, o in everything.items() if u not in added}
        assert objects, report.mode
        assert set(objects.values()) <= {"update", "same"}, (report.mode, objects)
        assert not report.ops("replace") and not report.ops("delete") \
            and set(report.ops("create")) <= set(added), (report.mode, report.ops())
        assert "update" in objects.values(), "provider_version 5 is written to every object"
        # Only the definition changes: the new fields, the version, nothing identifying;
        # the row-security resources' notes (the access matrix) now name forget()'s policies.
        changed = {key for o in report.operations if o["urn"] in objects and _old(o["urn"])
                   for key in o["keys"]}
        assert changed <= {"fields", "provider_version", "notes"}, (report.mode, changed)

    assert _as_before(live_schema(database, old_stack.stack, settings)) == before
    state = sql_objects(old_stack)
    assert {r["inputs"]["provider_version"] for r in state.values()} == {"5"}
    assert all(isinstance(r["inputs"].get("fields"), dict) for r in state.values())

    again = old_stack.up().raise_for_error()
    assert set(again.ops().values()) == {"same"}, again.ops()
    assert old_stack.refresh().raise_for_error().drift == []


def test_refresh_and_destroy_work_on_old_state(
        old_stack: PulumiStack, database: TestDatabase, settings: dict[str, object]) -> None:
    # The new code, reading inputs the old code wrote: no drift, state rewritten as read.
    assert old_stack.refresh().raise_for_error().drift == []
    old_stack.refresh(write=True).raise_for_error()
    assert {r["inputs"]["provider_version"] for r in sql_objects(old_stack).values()} == {"4"}
    # Drift made by hand on an object whose delete and read need what old state lacks
    # (role settings: the names it declared) is still found.
    app = str(stack_settings(database, old_stack.stack, **settings).app_role)
    with database.connect() as conn:
        conn.execute(f"ALTER ROLE {app} SET random_page_cost TO '4'")
    drift = old_stack.refresh().raise_for_error().drift
    assert len(drift) == 1 and drift[0]["urn"].endswith(f"{app}-settings"), drift
    assert "SET random_page_cost TO '4'" in drift[0]["live"]["ddl"]
    old_stack.destroy().raise_for_error()
    assert old_stack.state() == {}
    with database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = "
                            "'public'::regnamespace").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
            " WHERE r.rolname = %s", (app,)).fetchone() == (0,)
        if "analyzeSchedule" in settings:
            assert _jobs_in(database) == 0


def _jobs_in(database: TestDatabase) -> int:
    with psycopg.connect(database.server.dsn_for(database.server.cron_database)) as conn:
        row = conn.execute("SELECT count(*) FROM cron.job WHERE database = %s",
                           (database.name,)).fetchone()
    return int(row[0]) if row else 0
