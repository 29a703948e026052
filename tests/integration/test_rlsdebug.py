"""`python -m components rls`: whoami, as-user and explain against deployed stacks.

Three deployments, each through the real Pulumi CLI: the app role bound to one user
(appRoleIdentity required, sessionScope on), the same in org tenancy, and the default
trusted app role whose policy is `true`. Every answer is checked against what the
database does (rows counted by the superuser, writes attempted and seen refused), and
every command must leave the tables exactly as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.settings import Settings
from tests.conftest import TestDatabase, stack_config, stack_settings
from tests.support.supabase import deployed_stack
from tests.support.testbed import PgServer

STACK = "dev"
ALICE_OWN = "a0000000-0000-4000-8000-000000000001"
ALICE_SESSION = "a0000000-0000-4000-8000-000000000002"  # run r1
BOB_OWN = "b0000000-0000-4000-8000-000000000001"
CAROL_OWN = "c0000000-0000-4000-8000-000000000001"
EDGE = "e0000000-0000-4000-8000-000000000001"
MISSING = "f0000000-0000-4000-8000-000000000009"
U1, U2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
SEED = ((ALICE_OWN, {"user_id": "alice", "org_id": "acme", "data": "alice's"}),
        (ALICE_SESSION, {"user_id": "alice", "org_id": "acme", "run_id": "r1",
                         "data": "alice's session"}),
        (BOB_OWN, {"user_id": "bob", "org_id": "acme", "data": "bob's"}),
        (CAROL_OWN, {"user_id": "carol", "org_id": "globex", "data": "carol's"}))
TABLES = ("memories", "memory_history", "memory_relationships")


@dataclass(frozen=True)
class Deployed:
    database: TestDatabase
    settings: Settings
    project: Path

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        """`python -m components rls ...` in this process; (exit code, stdout, stderr)."""
        action, rest = argv[0], argv[1:]
        code = main(["rls", action, "--stack", STACK, "--project-dir", str(self.project),
                     "--dsn", self.database.dsn, *rest])
        out, err = capsys.readouterr()
        return code, out, err

    def json(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
        code, out, err = self.run(capsys, *argv, "--json") if "--" not in argv else \
            self.run(capsys, *_before_sql(argv, "--json"))
        assert out, err
        return code, json.loads(out)

    def counts(self) -> dict[str, int]:
        return {t: int(str(self.database.scalar(f"SELECT count(*) FROM public.{t}")))
                for t in TABLES}


def _before_sql(argv: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    cut = argv.index("--")
    return (*argv[:cut], *extra, *argv[cut:])


def _seed(database: TestDatabase, org: bool) -> None:
    with database.connect() as conn:
        for memory, payload in SEED:
            conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES"
                         " (%s, NULL, %s)", (memory, json.dumps(payload)))
        conn.execute("INSERT INTO public.memory_relationships (id, source_memory_id,"
                     " target_memory_id, relationship_type, user_id, org_id) VALUES"
                     " (%s, %s, %s, 'knows', 'alice', 'acme')", (EDGE, ALICE_OWN, ALICE_SESSION))
        if org:
            conn.execute("INSERT INTO public.memory_org_members (org_id, user_id) VALUES"
                         " ('acme', 'alice'), ('acme', 'bob'), ('globex', 'carol')")


def _seed_supabase(database: TestDatabase) -> None:
    """auth.uid() is a uuid: Supabase's users are uuids."""
    with database.connect() as conn:
        for memory, user in ((ALICE_OWN, U1), (BOB_OWN, U2)):
            conn.execute("INSERT INTO public.memories (id, vector, payload) VALUES"
                         " (%s, NULL, %s)", (memory, json.dumps({"user_id": user})))


def _deploy(server: PgServer, factory: pytest.TempPathFactory, **settings: object
            ) -> Iterator[Deployed]:
    state = factory.mktemp("state")
    with deployed_stack(server, state, STACK, dimensions=3, **settings) as database:
        if settings.get("target") == "supabase":
            _seed_supabase(database)
        else:
            _seed(database, settings.get("tenancy") == "org")
        project = factory.mktemp("project")
        config = stack_config(database, dimensions=3, **settings)
        (project / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
            {"config": {f"mem0infra:{k}": v for k, v in config.items()}}))
        yield Deployed(database, stack_settings(database, STACK, dimensions=3, **settings),
                       project)


@pytest.fixture(scope="module")
def bound(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Deployed]:
    """The app role bound to the user its connection names; sessions scoped."""
    yield from _deploy(pg_server, tmp_path_factory, tenancy="user",
                       appRoleIdentity="required", sessionScope=True)


@pytest.fixture(scope="module")
def org(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    yield from _deploy(pg_server, tmp_path_factory, tenancy="org",
                       appRoleIdentity="required")


@pytest.fixture(scope="module")
def trusted(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Deployed]:
    """The default: the app role trusted with every row (its policy is `true`)."""
    yield from _deploy(pg_server, tmp_path_factory)


@pytest.fixture(scope="module")
def supabase(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Deployed]:
    """Target supabase (in the emulation): end users are `authenticated` with a JWT."""
    yield from _deploy(pg_server, tmp_path_factory, target="supabase", tenancy="user")


def _outcome(report: dict[str, Any], command: str) -> dict[str, Any]:
    [outcome] = [o for o in report["outcomes"] if o["command"] == command]
    return outcome


# --- whoami ---------------------------------------------------------------------------------


def test_whoami_shows_the_connection_as_it_is_and_the_identity_set(
        bound: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code, plain = bound.json(capsys, "whoami")
    assert code == 0
    assert plain["current_user"] == plain["session_user"]
    assert plain["superuser"] is True and plain["row_level_security_applies"] is False
    assert plain["functions"] == {"public.mem0_user_id": None, "public.mem0_run_id": None}

    app = bound.settings.app_role
    code, who = bound.json(capsys, "whoami", "--role", app, "--user", "alice", "--run", "r1")
    assert code == 0
    assert who["current_user"] == app and who["session_user"] == plain["session_user"]
    assert who["bypass_rls"] is False and who["row_level_security_applies"] is True
    assert who["settings"]["mem0.user_id"] == "alice"
    assert who["settings"]["mem0.run_id"] == "r1"
    assert who["settings"]["request.jwt.claims"] is None
    # only the identity functions this stack has: no organisations, no agent spaces here
    assert who["functions"] == {"public.mem0_user_id": "alice", "public.mem0_run_id": "r1"}

    # the JWT's sub wins over mem0.user_id, as the function says
    code, jwt = bound.json(capsys, "whoami", "--role", app, "--user", "alice",
                           "--claims", '{"sub": "bob", "run_id": "r9"}')
    assert jwt["functions"] == {"public.mem0_user_id": "bob", "public.mem0_run_id": "r9"}

    code, service = bound.json(capsys, "whoami", "--role", bound.settings.service_role)
    assert service["bypass_rls"] is True and service["row_level_security_applies"] is False
    code, text, _ = bound.run(capsys, "whoami", "--role", app, "--user", "alice")
    assert f"current_user  {app} (row-level security applies)" in text
    assert "public.mem0_user_id()  alice" in text


def test_whoami_in_org_tenancy_calls_mem0_org_ids(org: Deployed,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    app = org.settings.app_role
    code, who = org.json(capsys, "whoami", "--role", app, "--user", "alice", "--org", "acme")
    assert code == 0
    assert who["functions"] == {"public.mem0_user_id": "alice", "public.mem0_org_ids": ["acme"]}
    assert who["org"] == "acme" and who["org_member"] is True
    code, who = org.json(capsys, "whoami", "--role", app, "--user", "alice", "--org", "globex")
    assert who["org_member"] is False


# --- as-user --------------------------------------------------------------------------------


def test_as_user_returns_only_the_users_rows_and_names_the_policy(
        bound: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before = bound.counts()
    code, result = bound.json(capsys, "as-user", "alice", "--",
                              "SELECT id::text FROM public.memories ORDER BY id")
    assert code == 0
    assert result["role"] == bound.settings.app_role and result["command"] == "SELECT"
    assert result["rows"] == [[ALICE_OWN]]  # not bob's, not alice's session outside it
    [memories] = result["tables"]
    assert memories["table"] == "public.memories" and memories["policies_apply"]
    assert [p["name"] for p in memories["policies"]] == ["memories_select_app"]
    assert "public.mem0_user_id()" in memories["policies"][0]["using"]
    assert (memories["rows_visible"], memories["rows_total"]) == (1, len(SEED))

    # the statement runs with mem0's search_path: unqualified names find the tables
    code, result = bound.json(capsys, "as-user", "alice", "--run", "r1", "--",
                              "SELECT id::text FROM memories ORDER BY id")
    assert result["rows"] == [[ALICE_OWN], [ALICE_SESSION]]
    code, text, _ = bound.run(capsys, "as-user", "alice", "--limit", "1", "--",
                              "SELECT m.id FROM public.memories m JOIN public.memory_history h"
                              " ON h.memory_id = m.id")
    assert code == 0
    assert "1 of 4 rows visible (total)" in text
    assert "permissive memory_history_select_app" in text  # the join's other table
    assert bound.counts() == before


def test_as_user_is_read_only_and_leaves_nothing(bound: Deployed,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = bound.counts()
    insert = ("INSERT INTO public.memories (id, vector, payload) VALUES"
              """ (gen_random_uuid(), NULL, '{"user_id": "alice"}')""")
    code, _, err = bound.run(capsys, "as-user", "alice", "--", insert)
    assert code == 1
    assert "25006" in err and "read-only transaction" in err
    # the same insert is allowed to the app role outside the debug transaction's READ ONLY:
    # what refused it was the transaction, not a policy
    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN)
    assert _outcome(report, "INSERT")["allowed"] is True
    # the service role bypasses row-level security, and still cannot write
    code, _, err = bound.run(capsys, "as-user", "alice", "--role",
                             bound.settings.service_role, "--",
                             "DELETE FROM public.memories")
    assert code == 1 and "read-only transaction" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--",
                             "SELECT 1; DELETE FROM public.memories")
    assert code == 1 and "multiple commands" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--", "COMMIT")
    assert code == 1 and "ended the transaction" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--", "RESET ROLE")
    assert code == 1 and "changed the session" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--timeout", "0.2", "--",
                             "SELECT pg_catalog.pg_sleep(5)")
    assert code == 1 and "statement timeout" in err
    assert bound.counts() == before
    assert bound.database.scalar(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name ="
        " 'mem0infra-rls' AND state <> 'idle'") == 0


# --- explain --------------------------------------------------------------------------------


def test_explain_own_row_allowed_names_the_policy_and_matches_reality(
        bound: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before = bound.counts()
    updated = bound.database.scalar("SELECT updated_at FROM public.memories WHERE id = %s",
                                    (ALICE_OWN,))
    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN)
    assert code == 0
    assert report["disagreements"] == []
    for command in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        outcome = _outcome(report, command)
        assert outcome["allowed"] is True and outcome["agrees"] is True, outcome
    select = _outcome(report, "SELECT")
    assert "permissive policy memories_select_app let it through" in select["reason"]
    [layer] = select["layers"]
    [predicate] = layer["predicates"]
    assert predicate["policy"] == "memories_select_app" and predicate["value"] is True
    assert "public.mem0_user_id()" in predicate["expression"]
    assert "memories_delete_app" in _outcome(report, "DELETE")["reason"]
    # every attempt was rolled back: the row, its history and its updated_at as they were
    assert bound.counts() == before
    assert bound.database.scalar("SELECT updated_at FROM public.memories WHERE id = %s",
                                 (ALICE_OWN,)) == updated


def test_explain_other_users_row_refused_names_the_predicate(
        bound: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", BOB_OWN)
    assert code == 1
    assert report["disagreements"] == []
    for command in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        outcome = _outcome(report, command)
        assert outcome["allowed"] is False and outcome["agrees"] is True, outcome
    select = _outcome(report, "SELECT")
    assert select["what_happened"].startswith("0 rows")
    assert "no permissive policy is true (memories_select_app)" in select["reason"]
    assert select["layers"][0]["predicates"][0]["value"] is False
    insert = _outcome(report, "INSERT")
    assert "violates row-level security" in insert["what_happened"]
    assert "memories_insert_app" in insert["reason"] and "error" in insert["reason"]

    # a session row outside its session: refused by the run_id part of the same predicate
    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", ALICE_SESSION)
    assert code == 1 and report["disagreements"] == []
    code, report = bound.json(capsys, "explain", "--user", "alice", "--run", "r1",
                              "--memory", ALICE_SESSION)
    assert code == 0 and report["disagreements"] == []

    # the read-only role: SELECT by its own policy; no grant for the rest
    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN,
                              "--role", bound.settings.readonly_role)
    assert code == 0 and report["disagreements"] == []
    assert "memories_select_users" in _outcome(report, "SELECT")["reason"]
    update = _outcome(report, "UPDATE")
    assert update["allowed"] is False and update["reason"].startswith("no privilege")
    assert "permission denied" in update["what_happened"]

    code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", MISSING)
    assert code == 1 and _outcome(report, "SELECT")["reason"] == "row does not exist"


def test_explain_in_org_tenancy_and_on_relationships(org: Deployed,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    before = org.counts()
    # bob's memory in alice's organisation: she reads it, she may not change it
    code, report = org.json(capsys, "explain", "--user", "alice", "--memory", BOB_OWN)
    assert code == 0 and report["disagreements"] == []
    assert _outcome(report, "SELECT")["allowed"] is True
    assert _outcome(report, "UPDATE")["allowed"] is False
    assert _outcome(report, "DELETE")["allowed"] is False
    assert "public.mem0_org_ids()" in json.dumps(_outcome(report, "SELECT")["layers"])
    code, report = org.json(capsys, "explain", "--user", "alice", "--memory", CAROL_OWN)
    assert code == 1 and report["disagreements"] == []
    # an edge: the write policies' subqueries on memories are evaluated as the role
    code, report = org.json(capsys, "explain", "--user", "alice", "--memory", EDGE,
                            "--table", "memory_relationships")
    assert code == 0 and report["disagreements"] == [], report
    assert _outcome(report, "UPDATE")["allowed"] is True
    assert "EXISTS" in json.dumps(_outcome(report, "UPDATE")["layers"])
    # the copy collides with the edge's unique key, after the policies let it in
    insert = _outcome(report, "INSERT")
    assert insert["allowed"] is True and insert["agrees"] is True
    assert "then a constraint refused it (23505)" in insert["what_happened"]
    code, report = org.json(capsys, "explain", "--user", "carol", "--memory", EDGE,
                            "--table", "memory_relationships")
    assert code == 1 and report["disagreements"] == []
    assert org.counts() == before


def test_trusted_app_role_sees_every_row_through_a_true_policy(
        trusted: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = trusted.json(capsys, "as-user", "alice", "--",
                                "SELECT id::text FROM public.memories ORDER BY id")
    assert code == 0 and len(result["rows"]) == len(SEED)
    [memories] = result["tables"]
    assert (memories["rows_visible"], memories["rows_total"]) == (len(SEED), len(SEED))
    assert [p["using"] for p in memories["policies"]] == ["true"]
    code, report = trusted.json(capsys, "explain", "--user", "alice", "--memory", BOB_OWN)
    assert code == 0 and report["disagreements"] == []
    [predicate] = _outcome(report, "SELECT")["layers"][0]["predicates"]
    assert (predicate["expression"], predicate["value"]) == ("true", True)


REOWN = """
CREATE FUNCTION public.test_reown() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.payload := NEW.payload || '{"user_id": "mallory"}'; RETURN NEW; END$$;
CREATE TRIGGER test_reown BEFORE UPDATE ON public.memories
    FOR EACH ROW EXECUTE FUNCTION public.test_reown();
"""


def test_explain_says_when_the_policies_and_the_attempt_disagree(
        bound: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    """A trigger that gives every updated row to someone else: evaluated on the row, the
    UPDATE's WITH CHECK passes; tried, the new row fails it. The report must say so."""
    with bound.database.connect() as conn:
        conn.execute(REOWN)
    try:
        code, report = bound.json(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN)
        code, text, _ = bound.run(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN)
    finally:
        with bound.database.connect() as conn:
            conn.execute("DROP TRIGGER test_reown ON public.memories;"
                         " DROP FUNCTION public.test_reown()")
    assert code == 0  # SELECT is still allowed
    assert report["disagreements"] == ["UPDATE"]
    update = _outcome(report, "UPDATE")
    assert update["allowed"] is False and update["explanation_allows"] is True
    assert "violates row-level security" in update["what_happened"]
    assert "DISAGREEMENT" in text


def test_supabase_authenticated_through_jwt_claims(supabase: Deployed,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    claims = json.dumps({"sub": U1, "role": "authenticated"})
    code, who = supabase.json(capsys, "whoami", "--role", "authenticated", "--claims", claims)
    assert code == 0 and who["current_user"] == "authenticated"
    assert who["functions"]["public.mem0_user_id"] == U1  # from auth.uid()
    assert who["settings"]["request.jwt.claims"] == json.dumps(json.loads(claims),
                                                               separators=(",", ":"))
    code, result = supabase.json(capsys, "as-user", U1, "--role", "authenticated",
                                 "--claims", claims, "--",
                                 "SELECT id::text FROM public.memories")
    assert code == 0 and result["rows"] == [[ALICE_OWN]]
    [memories] = result["tables"]
    assert memories["policies"] and all("authenticated" in p["roles"]
                                        for p in memories["policies"])
    for memory, allowed in ((ALICE_OWN, True), (BOB_OWN, False)):
        code, report = supabase.json(capsys, "explain", "--user", U1, "--role",
                                     "authenticated", "--claims", claims, "--memory", memory)
        assert code == (0 if allowed else 1) and report["disagreements"] == []
        assert {o["allowed"] for o in report["outcomes"]} == {allowed}
    code, report = supabase.json(capsys, "explain", "--user", U1, "--role", "anon",
                                 "--memory", ALICE_OWN)
    assert code == 1 and report["disagreements"] == []
    assert _outcome(report, "SELECT")["reason"].startswith("no privilege")
    code, _, err = supabase.run(capsys, "whoami", "--role", "postgres")
    assert code == 2 and "authenticated" in err  # not one of the roles it may act as


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_names_the_argument(bound: Deployed,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    before = bound.counts()
    code, _, err = bound.run(capsys, "explain", "--user", "alice", "--memory", "not-a-uuid")
    assert code == 2 and "--memory 'not-a-uuid': not a uuid" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--role", "nobody", "--", "SELECT 1")
    assert code == 2 and "--role 'nobody'" in err and bound.settings.app_role in err
    code, _, err = bound.run(capsys, "whoami", "--role", "Robert'); DROP TABLE x;--")
    assert code == 2 and "--role" in err
    code, _, err = bound.run(capsys, "whoami", "--claims", "[1]")
    assert code == 2 and "--claims: must be a JSON object" in err
    code, _, err = bound.run(capsys, "explain", "--user", "alice", "--memory", ALICE_OWN,
                             "--table", "memory_history")
    assert code == 2 and "--table 'memory_history'" in err and "memories" in err
    code, _, err = bound.run(capsys, "as-user", "alice", "--", " ")
    assert code == 2 and "-- SQL: no statement given" in err
    with pytest.raises(SystemExit) as exit_info:
        bound.run(capsys, "as-user", "alice")
    assert exit_info.value.code == 2
    assert "required: SQL" in capsys.readouterr().err
    assert bound.counts() == before
