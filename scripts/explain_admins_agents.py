"""EXPLAIN what orgAdmins and agentSpaces cost mem0's writes: do their predicates need an index?

Deploys a test stack (tenancy org, orgAdmins, agentSpaces, sessionScope, appRoleIdentity
required) on the test bed's server through the real Pulumi CLI, loads N mem0-shaped
memories (one user per 100 memories, users spread over organisations, each user's rows
spread over agents, a tenth in sessions), one admin per organisation, ANALYZE, then, as the
app role bound to an admin with an agent identity (mem0.user_id, mem0.agent_id), prints
EXPLAIN (ANALYZE, BUFFERS) of the statements mem0 writes with (update and delete by id),
of a dashboard's delete of one agent's rows in the organisation, and of the same with a
plain (agent_id) index added for the comparison; and of mem0_admin_org_ids()'s lookup.
Everything is rolled back; no asserts.

    .venv/bin/python scripts/explain_admins_agents.py [--memories 100000] [--orgs 20]
        [--agents 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' test bed

from tests.conftest import app_role_for
from tests.support.supabase import act_as, deployed_stack
from tests.support.testbed import start_server

DIMS = 8


def load(conn: psycopg.Connection[Any], memories: int, orgs: int, agents: int) -> None:
    users = max(1, memories // 100)
    conn.execute(
        "INSERT INTO public.memories (id, vector, payload) SELECT gen_random_uuid(), "
        f"array_fill(random()::real, ARRAY[{DIMS}])::vector, jsonb_build_object("
        "'data', 'memory ' || g.i, 'user_id', 'u' || (g.i %% %(users)s), "
        "'org_id', 'o' || ((g.i %% %(users)s) %% %(orgs)s), "
        "'agent_id', 'a' || ((g.i / %(users)s) %% %(agents)s), "
        "'run_id', CASE WHEN g.i %% 10 = 0 THEN 'r' || (g.i %% 7) END) "
        "FROM generate_series(1, %(n)s) AS g(i)",
        {"users": users, "orgs": orgs, "agents": agents, "n": memories})
    conn.execute(
        "INSERT INTO public.memory_org_members (org_id, user_id, role) SELECT "
        "'o' || (u %% %(orgs)s), 'u' || u, CASE WHEN u < %(orgs)s THEN 'admin' ELSE 'member' END "
        "FROM generate_series(0, %(users)s - 1) AS u", {"users": users, "orgs": orgs})
    conn.execute("ANALYZE public.memories, public.memory_org_members")


def explain(conn: psycopg.Connection[Any], title: str, statement: str,
            params: tuple[object, ...]) -> None:
    print(f"\n-- {title}\n{statement}")
    with conn.transaction(force_rollback=True):
        for (line,) in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}",
                                    params):
            print(f"   {line}")


def measure(dsn: str, app_role: str, memories: int, orgs: int, agents: int) -> None:
    with psycopg.connect(dsn) as conn:
        load(conn, memories, orgs, agents)
        conn.commit()
        # u1 is admin of o1; another member's row of o1 written by agent a0.
        (target,) = conn.execute(
            "SELECT id::text FROM public.memories WHERE org_id = 'o1' AND user_id <> 'u1' "
            "AND agent_id = 'a0' AND run_id IS NULL LIMIT 1").fetchone() or ("",)
        total = conn.execute("SELECT count(*) FROM public.memories").fetchone()
        print(f"memories: {total}; users: {max(1, memories // 100)}; organisations: {orgs}; "
              f"agents: {agents}")
        explain(conn, "mem0_admin_org_ids()'s lookup (the membership table's user_id index)",
                "SELECT m.org_id FROM public.memory_org_members m "
                "WHERE m.user_id = 'u1' AND m.role = 'admin'", ())
        for index in (False, True):
            with conn.transaction(force_rollback=True):
                if index:
                    conn.execute("CREATE INDEX explain_agent_idx ON public.memories (agent_id)")
                    conn.execute("ANALYZE public.memories")
                act_as(conn, app_role, None, {"mem0.user_id": "u1", "mem0.agent_id": "a0"})
                label = " (with a plain agent_id index)" if index else ""
                explain(conn, f"mem0's update by id{label}",
                        "UPDATE public.memories SET payload = payload || "
                        "'{\"data\": \"edited\"}' WHERE id = %s", (target,))
                explain(conn, f"mem0's delete by id{label}",
                        "DELETE FROM public.memories WHERE id = %s", (target,))
                explain(conn, f"a dashboard deletes its agent's rows of the organisation{label}",
                        "DELETE FROM public.memories WHERE org_id = 'o1' AND agent_id = 'a0'",
                        ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--agents", type=int, default=5)
    args = parser.parse_args(argv)
    server, stop = start_server()
    try:
        with tempfile.TemporaryDirectory() as state, deployed_stack(
                server, Path(state), "measure", dimensions=DIMS, tenancy="org",
                orgAdmins=True, agentSpaces=True, sessionScope=True,
                appRoleIdentity="required") as db:
            measure(db.dsn, app_role_for(db), args.memories, args.orgs, args.agents)
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
