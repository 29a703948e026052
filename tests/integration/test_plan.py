"""`python -m components plan` against a real PostgreSQL: a database it has never seen, a
deployed stack, settings changes, drift made by hand, and what it cannot run against.

Stacks are deployed with the provider's own create calls (what `pulumi up` runs for each
object), which is quicker than the CLI and applies the same code.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from components.cli import main
from components.connection import connect, database_identity
from components.kinds import kind_spec
from components.model import build_model
from components.plan.objects import spec_props
from components.provider import SqlObjectProvider, object_inputs
from components.settings import Settings, parse_settings
from tests.conftest import TestDatabase, app_role_for, stack_config

STACK = "t"


def write_stack(tmp_path: Path, database: TestDatabase, **settings: object) -> Path:
    """A project directory whose Pulumi.t.yaml holds the test stack's settings."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    config = stack_config(database, **{"dimensions": 3, **settings})
    (project / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{key}": value for key, value in config.items()}}))
    return project


def settings_for(database: TestDatabase, **settings: object) -> Settings:
    return parse_settings(stack_config(database, **{"dimensions": 3, **settings}), STACK)


def deploy(database: TestDatabase, **settings: object) -> None:
    """Create every declared object as `pulumi up` would, one provider create each."""
    parsed = settings_for(database, **settings)
    provider = SqlObjectProvider()
    for spec in build_model(parsed):
        password = parsed.role_password(spec.name) if spec.kind == "role" else None
        provider.create(object_inputs(spec, database.dsn, database_identity(database.dsn),
                                      False, password))


def run_plan(capsys: pytest.CaptureFixture[str], project: Path, dsn: str,
             *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["plan", "--stack", STACK, "--project-dir", str(project), "--dsn", dsn,
                 "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["key"]: o for o in document["objects"]}


def hazards(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for step in obj["steps"] for h in step["hazards"]]


def insert_memories(database: TestDatabase, count: int, dims: int = 3) -> None:
    with database.connect() as conn:
        conn.execute(
            "INSERT INTO public.memories (id, vector, payload) SELECT gen_random_uuid(),"
            " ARRAY(SELECT random() FROM generate_series(1, %s) WHERE g > 0)::public.vector,"
            " jsonb_build_object('user_id', 'u' || (g %% 7), 'data', 'm' || g)"
            " FROM generate_series(1, %s) g", (dims, count))


def test_a_database_it_never_saw_plans_every_object_as_new(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    project = write_stack(tmp_path, database)
    markdown = tmp_path / "plan.md"
    code, document = run_plan(capsys, project, database.dsn, "--markdown", str(markdown))
    assert code == 1
    declared = build_model(settings_for(database))
    assert [o["key"] for o in document["objects"]] == [s.key for s in declared]
    assert {o["action"] for o in document["objects"]} == {"create"}
    assert document["counts"] == {"create": len(declared), "change": 0, "drop": 0}
    table = by_key(document)["table:public.memories"]
    assert table["steps"][0]["sql"].startswith("CREATE TABLE public.memories (")
    role = app_role_for(database)
    words = {c["words"] for c in document["access"]}
    assert f"{role} gains DELETE on public.memories: every row (trusted: mem0's own " \
           "filters separate users)" in words
    text = markdown.read_text()
    assert text.startswith("### mem0infra plan: stack `t`")
    assert "| `table public.memories` | create |" in text and "```sql" in text


def test_a_deployed_stack_plans_no_change(capsys: pytest.CaptureFixture[str],
                                          database: TestDatabase, tmp_path: Path) -> None:
    deploy(database)
    project = write_stack(tmp_path, database)
    code = main(["plan", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", database.dsn])
    assert code == 0
    assert "no changes" in capsys.readouterr().out


def test_a_changed_hnsw_m_is_built_beside_and_swapped_with_an_estimate(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database, vectorIndexMethod="hnsw", vectorIndexM=16)
    insert_memories(database, 500)
    project = write_stack(tmp_path, database, vectorIndexMethod="hnsw", vectorIndexM=24)
    markdown = tmp_path / "plan.md"
    code, document = run_plan(capsys, project, database.dsn, "--markdown", str(markdown))
    assert code == 1
    assert [o["key"] for o in document["objects"]] == [
        "index:public.memories_vector_idx", "index:public.memories_entities_vector_idx"]
    index = document["objects"][0]
    assert index["action"] == "change"
    sql = [step["sql"] for step in index["steps"]]
    assert sql[0] == "DROP INDEX CONCURRENTLY IF EXISTS public.memories_vector_idx_mem0_new;"
    assert sql[1].startswith("CREATE INDEX CONCURRENTLY memories_vector_idx_mem0_new ON "
                             "public.memories")
    assert "m='24'" in sql[1]
    assert sql[2:] == ["DROP INDEX public.memories_vector_idx;",
                       "ALTER INDEX public.memories_vector_idx_mem0_new RENAME TO "
                       "memories_vector_idx;"]
    build = next(h for h in hazards(index) if h["kind"] == "index_build")
    assert build["lock"] == "SHARE UPDATE EXCLUSIVE" and build["on"] == "public.memories"
    assert build["rows"] == 500 and build["method"] == "hnsw"
    assert build["seconds"] > 0 and "estimated" in build["message"]
    assert any(h["kind"] == "lock" and h["lock"] == "ACCESS EXCLUSIVE" for h in hazards(index))
    assert set(document["load"]) == {"public.memories"}
    assert "index build (500 rows" in markdown.read_text()


def test_tenancy_user_to_org_shows_policy_changes_in_words(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database, tenancy="user")
    project = write_stack(tmp_path, database, tenancy="org")
    code, document = run_plan(capsys, project, database.dsn)
    assert code == 1
    objects = by_key(document)
    changed = {k for k, o in objects.items() if o["action"] == "change"}
    assert "policy:public.memories_select_users" in changed, sorted(changed)
    assert objects["table:public.memory_org_members"]["action"] == "create"
    policy = objects["policy:public.memories_select_users"]
    assert [s["sql"].split(" ", 2)[:2] for s in policy["steps"]] == \
        [["DROP", "POLICY"], ["CREATE", "POLICY"]]
    assert any(h["lock"] == "ACCESS EXCLUSIVE" for h in hazards(policy))
    words = {c["words"] for c in document["access"]}
    readonly = f"readonly_{database.name}"
    assert f"{readonly}: SELECT on public.memories: the caller's own rows -> rows of the " \
           "caller's organisations" in words, sorted(words)


def test_org_admins_and_agent_spaces_show_as_access_changes_in_words(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    """Switching orgAdmins and agentSpaces on is a change of access, said in the matrix's
    words (and switching them off again, below, reads as words too, not as raw SQL)."""
    base = {"tenancy": "org", "appRoleIdentity": "required"}
    options = {**base, "orgAdmins": True, "agentSpaces": True}
    app = app_role_for(database)
    deploy(database, **base)
    code, document = run_plan(capsys, write_stack(tmp_path, database, **options),
                              database.dsn)
    assert code == 1
    objects = by_key(document)
    assert objects["function:public.mem0_admin_org_ids"]["action"] == "create"
    assert objects["function:public.mem0_agent_id"]["action"] == "create"
    words = {c["words"] for c in document["access"]}
    update = [w for w in words if w.startswith(f"{app}: UPDATE on public.memories: ")]
    assert update and "every row of the organisations where the caller is admin" in \
        update[0] and update[0].endswith("only rows of that agent"), sorted(words)
    assert not [w for w in words if "rows where" in w], sorted(words)



def test_org_admins_and_agent_spaces_switched_off_show_in_words(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    base = {"tenancy": "org", "appRoleIdentity": "required"}
    deploy(database, **base, orgAdmins=True, agentSpaces=True)
    code, document = run_plan(capsys, write_stack(tmp_path, database, **base), database.dsn)
    assert code == 1
    words = {c["words"] for c in document["access"]}
    app = app_role_for(database)
    update = [w for w in words if w.startswith(f"{app}: UPDATE on public.memories: ")]
    assert update and update[0].endswith("-> the caller's own rows in the caller's "
                                         "organisations"), sorted(words)
    assert not [w for w in words if "rows where" in w], sorted(words)


def test_a_grant_revoked_by_hand_shows_who_gains_it_back(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database)
    role = app_role_for(database)
    with database.connect() as conn:
        conn.execute(f"REVOKE DELETE ON public.memories FROM {role}")
    project = write_stack(tmp_path, database)
    code, document = run_plan(capsys, project, database.dsn)
    assert code == 1
    key = f"grant:public.memories-to-{role}"
    assert list(by_key(document)) == [key]
    assert [s["sql"] for s in by_key(document)[key]["steps"]] == [
        f"REVOKE ALL ON TABLE public.memories FROM {role};",
        f"GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE public.memories TO {role};"]
    assert [c["words"] for c in document["access"]] == [
        f"{role} gains DELETE on public.memories: every row (trusted: mem0's own filters "
        "separate users)"]


def test_a_grant_added_by_hand_shows_who_loses_it(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database)
    readonly = f"readonly_{database.name}"
    with database.connect() as conn:
        conn.execute(f"GRANT DELETE ON public.memories TO {readonly}")
    code, document = run_plan(capsys, write_stack(tmp_path, database), database.dsn)
    assert code == 1
    assert [c["words"] for c in document["access"]] == [
        f"{readonly} loses DELETE on public.memories (had: no row (no policy admits any))"]


def test_a_vector_type_change_on_rows_counts_the_values_lost(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database)
    insert_memories(database, 40)
    with database.connect() as conn:  # rows without an embedding lose nothing
        conn.execute("INSERT INTO public.memories (id, payload) SELECT gen_random_uuid(),"
                     " '{\"user_id\": \"x\"}' FROM generate_series(1, 5)")
    project = write_stack(tmp_path, database, dimensions=4)
    code, document = run_plan(capsys, project, database.dsn)
    assert code == 1
    table = by_key(document)["table:public.memories"]
    lost = [h for h in hazards(table) if h["kind"] == "rows_lost"]
    assert [h["rows"] for h in lost] == [40]
    assert "USING NULL" in " ".join(s["sql"] for s in table["steps"])
    kinds = {h["kind"] for h in hazards(table)}
    assert {"refused", "table_rewrite", "lock"} <= kinds
    # the plan wrote nothing: the rows keep their vectors
    assert database.scalar("SELECT count(vector) FROM public.memories") == 40


def test_an_unknown_stack_or_an_unreachable_database_cannot_run(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    project = write_stack(tmp_path, database)
    code = main(["plan", "--stack", "nope", "--project-dir", str(project),
                 "--dsn", database.dsn])
    assert code == 2
    assert "stack 'nope': no file Pulumi.nope.yaml" in capsys.readouterr().err
    with psycopg.connect(database.dsn) as conn:
        port = conn.info.port
    unreachable = database.dsn.replace(f":{port}/", ":1/")
    assert unreachable != database.dsn
    code = main(["plan", "--stack", STACK, "--project-dir", str(project),
                 "--dsn", unreachable])
    assert code == 2
    assert "could not connect to the database" in capsys.readouterr().err


class Recording(psycopg.Connection[Any]):
    """A real connection that remembers the statements run through `execute`."""

    statements: list[str]

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.__dict__.setdefault("statements", []).append(str(query))
        return super().execute(query, *args, **kwargs)


def test_the_index_swap_the_plan_shows_is_what_apply_runs(database: TestDatabase) -> None:
    deploy(database, vectorIndexMethod="hnsw", vectorIndexM=16)
    insert_memories(database, 50)
    spec = next(s for s in build_model(settings_for(
        database, vectorIndexMethod="hnsw", vectorIndexM=24))
        if s.key == "index:public.memories_vector_idx")
    index = kind_spec("index")
    props = spec_props(spec, False)
    with connect(database.dsn, autocommit=True) as conn, conn.cursor() as cur:
        live = index.read(cur, props)
        planned = [step.sql for step in index.planned(cur, index.change(props, live))]
    with Recording.connect(database.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_catalog.set_config('search_path', '', false)")
        index.ensure(conn, index.change(props, live))
        ran = [s for s in conn.statements
               if s.split(" ", 1)[0] in ("CREATE", "DROP", "ALTER")]
    assert ran == planned
    assert len(planned) == 4 and "CONCURRENTLY" in planned[1]
    with connect(database.dsn) as conn, conn.cursor() as cur:
        assert index.read(cur, props) == spec.ddl


def test_the_build_estimate_reads_the_load_on_the_table(
        capsys: pytest.CaptureFixture[str], database: TestDatabase, tmp_path: Path) -> None:
    deploy(database, vectorIndexMethod="hnsw", vectorIndexM=16)
    insert_memories(database, 300)
    project = write_stack(tmp_path, database, vectorIndexMethod="hnsw", vectorIndexM=24)
    _, idle = run_plan(capsys, project, database.dsn)
    stop = threading.Event()

    def write() -> None:  # a writer mem0 could be: one insert after another
        with database.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES"
                             " (gen_random_uuid(), '[1,2,3]', '{\"user_id\": \"w\"}')")

    sleeper = database.connect()
    busy = threading.Thread(target=sleeper.execute, args=("SELECT pg_sleep(4)",))
    writer = threading.Thread(target=write)
    busy.start()
    writer.start()
    try:
        _, loaded = run_plan(capsys, project, database.dsn)
    finally:
        stop.set()
        writer.join()
        busy.join()
        sleeper.close()
    load = loaded["load"]["public.memories"]
    assert load["active_backends"] >= 1 and load["writes_per_second"] > 0
    assert idle["load"]["public.memories"]["active_backends"] == 0

    def build(document: dict[str, Any]) -> dict[str, Any]:
        return next(h for h in hazards(document["objects"][0]) if h["kind"] == "index_build")

    assert build(loaded)["seconds"] > build(idle)["seconds"] * 1.4
    assert "writes/s on the table" in build(loaded)["message"]
