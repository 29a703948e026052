"""Who may do what to which rows: components/access.py and the policies, grants and
row-security specs the model derives from it (pure: no database)."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from components.access import (
    ADMIN_ORG_IDS_FUNCTION,
    AGENT_ID_FUNCTION,
    BACKEND,
    COMMANDS,
    GRAPH,
    HISTORY,
    MEMBERSHIP,
    MEMBERSHIP_TABLE,
    MEMORY,
    NO_ACCESS,
    ORG_IDS_FUNCTION,
    RUN_ID_FUNCTION,
    TRUSTED_WORDS,
    USER_ID_FUNCTION,
    needs_org_ids,
    needs_run_id,
    table_access,
)
from components.erasure import ERASING
from components.model import ObjectSpec, build_model
from components.settings import Settings, parse_settings

URL = "postgresql://deployer@db.example.internal:5432/postgres"
RAW = {
    "postgres": {"target": "postgres", "databaseUrl": URL, "appRolePassword": "app",
                 "readonlyRolePassword": "ro", "serviceRolePassword": "svc"},
    "supabase": {"target": "supabase", "databaseUrl": URL, "appRolePassword": "app"},
}
TARGETS = tuple(RAW)
TENANCIES = ("user", "org", "service")
PROFILES = ("python", "typescript")
IDENTITY_FUNCTIONS = (USER_ID_FUNCTION, RUN_ID_FUNCTION, ORG_IDS_FUNCTION,
                      ADMIN_ORG_IDS_FUNCTION, AGENT_ID_FUNCTION)
# Who each target's roles are: (owner, app, end-user roles, service).
ROLES = {
    "postgres": ("mem0_owner", "mem0_app", ("mem0_readonly",), "mem0_service"),
    "supabase": ("postgres", "mem0_app", ("anon", "authenticated"), "service_role"),
}
# The end users who reach rows through policies: readonly on postgres (SELECT only), the
# signed-in user on supabase. anon never does.
END_USER = {"postgres": "mem0_readonly", "supabase": "authenticated"}
# Every option that only decides rows, with a value that switches it on.
ROW_OPTIONS = {"sharedAgentKnowledge": True, "sessionScope": True,
               "appRoleIdentity": "required", "agentSpaces": True}

_POLICY_HEAD = re.compile(r"^CREATE POLICY (\S+) ON (\S+) AS (PERMISSIVE|RESTRICTIVE) "
                          r"FOR (SELECT|INSERT|UPDATE|DELETE) TO (.+)$")


def settings(target: str = "postgres", tenancy: str = "user", profile: str = "python",
             **raw: object) -> Settings:
    return parse_settings({**RAW[target], "tenancy": tenancy, "clientProfile": profile,
                           **raw}, "t")


def specs_of(s: Settings) -> dict[str, ObjectSpec]:
    return {spec.key: spec for spec in build_model(s)}


def every_stack(**raw: object) -> list[Settings]:
    return [settings(target, tenancy, profile, **raw)
            for target, tenancy, profile in itertools.product(TARGETS, TENANCIES, PROFILES)]


STACKS = [pytest.param(target, tenancy, profile, id=f"{target}-{tenancy}-{profile}")
          for target, tenancy, profile in itertools.product(TARGETS, TENANCIES, PROFILES)]
OPTIONS = [pytest.param(raw, id="+".join(raw) or "defaults")
           for raw in ({}, {"sharedAgentKnowledge": True}, {"sessionScope": True},
                       {"appRoleIdentity": "required"}, ROW_OPTIONS)]


class Policy:
    """One CREATE POLICY, read back from its canonical DDL."""

    def __init__(self, spec: ObjectSpec) -> None:
        head, *clauses = spec.ddl.removesuffix(";").splitlines()
        match = _POLICY_HEAD.match(head)
        assert match, spec.ddl
        self.spec = spec
        self.name, self.table, self.mode, self.command = match.group(1, 2, 3, 4)
        self.roles = match.group(5).split(", ")
        self.using = self.check = None
        for clause in clauses:
            if clause.startswith("    USING ("):
                assert self.using is None and self.check is None, spec.ddl  # USING first
                self.using = clause.removeprefix("    USING (").removesuffix(")")
            else:
                assert clause.startswith("    WITH CHECK ("), spec.ddl
                assert self.check is None, spec.ddl
                self.check = clause.removeprefix("    WITH CHECK (").removesuffix(")")


def policies(specs: dict[str, ObjectSpec]) -> list[Policy]:
    return [Policy(s) for s in specs.values() if s.kind == "policy"]


def tables(specs: dict[str, ObjectSpec]) -> list[ObjectSpec]:
    """The memory tables (schema public); mem0_backup's snapshot copies have no policy."""
    return [s for s in specs.values() if s.kind == "table" and s.schema == "public"]


def matrix_lines(notes: str) -> list[tuple[str, str, str]]:
    """(role, command, words) of each line of an access matrix."""
    rows = []
    for line in notes.splitlines()[1:]:
        assert line.startswith("  "), line
        role, command, words = line.split(maxsplit=2)
        rows.append((role, command, words))
    return rows


def all_roles(target: str) -> list[str]:
    owner, app, end_users, service = ROLES[target]
    return [owner, app, *end_users, service]


# --- row security: one spec per table, a full matrix ------------------------------------------

@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_every_table_has_one_row_security_spec_with_a_full_matrix(target: str, tenancy: str,
                                                                   profile: str) -> None:
    specs = specs_of(settings(target, tenancy, profile))
    row_security = [s for s in specs.values()
                    if s.kind == "row_security" and s.schema == "public"]
    assert Counter(s.table for s in row_security) == Counter(t.name for t in tables(specs))
    for spec in row_security:
        table = f"public.{spec.table}"
        assert spec.ddl == (f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"
                            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;")
        assert spec.depends_on == (f"table:{table}",)
        assert spec.notes.splitlines()[0] == (
            f"access to {table} (row-level security enabled and forced):")
        lines = matrix_lines(spec.notes)
        assert [(role, command) for role, command, _ in lines] == list(
            itertools.product(all_roles(target), COMMANDS)), spec.key
        assert all(words for _, _, words in lines)


@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_membership_table_exists_only_in_org_tenancy(target: str, tenancy: str,
                                                     profile: str) -> None:
    specs = specs_of(settings(target, tenancy, profile))
    org = tenancy == "org"
    assert (f"table:public.{MEMBERSHIP_TABLE}" in specs) == org
    assert (f"function:public.{ORG_IDS_FUNCTION}" in specs) == org
    assert f"function:public.{USER_ID_FUNCTION}" in specs
    assert f"function:public.{RUN_ID_FUNCTION}" not in specs


# --- policies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_no_role_has_two_permissive_policies_for_one_command_on_one_table(
        target: str, tenancy: str, profile: str, raw: dict[str, object]) -> None:
    """Supabase's linter flags multiple permissive policies for one role and action: each
    is evaluated for every row."""
    found = policies(specs_of(settings(target, tenancy, profile, **raw)))
    assert found
    assert all(p.mode == "PERMISSIVE" for p in found)
    per_role = Counter((p.table, p.command, role) for p in found for role in p.roles)
    assert [key for key, count in per_role.items() if count > 1] == []


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_policies_call_identity_functions_once_per_statement(
        target: str, tenancy: str, profile: str, raw: dict[str, object]) -> None:
    """`( SELECT f() AS f)` is an initplan, run once per statement; a bare `f()` would run
    for every row. One exception, by design: the app role bound to one user
    (appRoleIdentity required) calls mem0_user_id() bare, so that the planner can estimate
    the user's rows (docs/performance.md); it is an index condition there, run once."""
    s = settings(target, tenancy, profile, **raw)
    for policy in policies(specs_of(s)):
        bare_uid = policy.roles == [s.app_role] and s.app_role_identity == "required"
        for text in (policy.using, policy.check):
            if text is None:
                continue
            if bare_uid:
                text = text.replace(f"public.{USER_ID_FUNCTION}()", "")
            for function in IDENTITY_FUNCTIONS:
                rest = text.replace(f"( SELECT public.{function}() AS {function})", "")
                assert f"{function}()" not in rest, (policy.name, text)
            assert "mem0_" not in re.sub(r"\( SELECT public\.mem0_\w+\(\) AS mem0_\w+\)", "",
                                         text), (policy.name, text)


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_each_command_has_its_own_clauses(target: str, tenancy: str, profile: str,
                                          raw: dict[str, object]) -> None:
    """INSERT has only WITH CHECK, SELECT and DELETE only USING, UPDATE both."""
    for policy in policies(specs_of(settings(target, tenancy, profile, **raw))):
        has = (policy.using is not None, policy.check is not None)
        assert has == {"INSERT": (False, True), "SELECT": (True, False),
                       "DELETE": (True, False), "UPDATE": (True, True)}[policy.command], \
            policy.spec.ddl


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_policies_depend_on_their_table_roles_and_functions(
        target: str, tenancy: str, profile: str, raw: dict[str, object]) -> None:
    specs = specs_of(settings(target, tenancy, profile, **raw))
    for policy in policies(specs):
        assert f"table:{policy.table}" in policy.spec.depends_on
        text = f"{policy.using} {policy.check}"
        for function in IDENTITY_FUNCTIONS:
            key = f"function:public.{function}"
            assert (key in policy.spec.depends_on) == (f"{function}()" in text), policy.name
            if key in policy.spec.depends_on:
                assert key in specs
        for role in policy.roles:
            if f"role:{role}" in specs:
                assert f"role:{role}" in policy.spec.depends_on


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_a_role_holds_a_privilege_exactly_where_it_has_a_rule(
        target: str, tenancy: str, profile: str, raw: dict[str, object]) -> None:
    """Under row-level security a privilege without a policy reaches no row, and a policy
    without the privilege is dead: the two always come together (the service role bypasses
    row-level security and needs no policy; the owner owns the table)."""
    s = settings(target, tenancy, profile, **raw)
    specs = specs_of(s)
    owner, _app, _end_users, service = ROLES[target]
    policy_of = {(p.table, p.command, role) for p in policies(specs) for role in p.roles}
    for table in tables(specs):
        on = f"TABLE public.{table.name}"
        grants = {g.role: g for g in specs.values() if g.kind == "grant" and g.on == on}
        assert set(grants) == set(all_roles(target)) - {owner}
        for role, grant in grants.items():
            held = set() if grant.ddl.startswith("REVOKE ") else set(
                grant.ddl.removeprefix("GRANT ").split(" ON ")[0].split(", "))
            assert held <= set(COMMANDS), grant.ddl
            if role == service:
                continue
            with_policy = {c for c in COMMANDS if (f"public.{table.name}", c, role) in policy_of}
            assert held == with_policy, (table.name, role)


# --- who gets nothing -------------------------------------------------------------------------

@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
def test_service_tenancy_gives_end_users_nothing(target: str, profile: str,
                                                 raw: dict[str, object]) -> None:
    specs = specs_of(settings(target, "service", profile, **raw))
    end_user = END_USER[target]
    assert not [p.name for p in policies(specs) if end_user in p.roles]
    for table in tables(specs):
        on = f"TABLE public.{table.name}"
        grant = specs[f"grant:public.{table.name}-to-{end_user}"]
        assert (grant.role, grant.on) == (end_user, on)
        assert grant.ddl == f"REVOKE ALL ON {on} FROM {end_user};"
        assert grant.drop_sql == ""
    # nothing else is granted to them either
    assert all(g.ddl.startswith("REVOKE ALL ON ") for g in specs.values()
               if g.kind == "grant" and g.role == end_user)


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("tenancy", "profile"), itertools.product(TENANCIES, PROFILES))
def test_anon_holds_nothing_on_supabase(tenancy: str, profile: str,
                                        raw: dict[str, object]) -> None:
    specs = specs_of(settings("supabase", tenancy, profile, **raw))
    anon = [g for g in specs.values() if g.kind == "grant" and g.role == "anon"]
    assert {g.on for g in anon} >= {f"TABLE public.{t.name}" for t in tables(specs)}
    for grant in anon:
        assert grant.ddl == f"REVOKE ALL ON {grant.on} FROM anon;"
    assert not [p.name for p in policies(specs) if "anon" in p.roles]


@pytest.mark.parametrize("target", TARGETS)
def test_definer_functions_are_callable_only_by_those_whose_policies_call_them(
        target: str) -> None:
    specs = specs_of(settings(target, "org"))
    owner, app, end_users, service = ROLES[target]
    org_ids = {g.role: g.ddl for g in specs.values()
               if g.kind == "grant" and g.on == f"FUNCTION public.{ORG_IDS_FUNCTION}()"}
    callers = {app, END_USER[target]}
    assert set(org_ids) == {"PUBLIC", app, *end_users, service}
    for role, ddl in org_ids.items():
        on = f"FUNCTION public.{ORG_IDS_FUNCTION}()"
        assert ddl == (f"GRANT EXECUTE ON {on} TO {role};" if role in callers
                       else f"REVOKE ALL ON {on} FROM {role};"), role
    history = {g.role: g.ddl for g in specs.values()
               if g.kind == "grant" and g.on == "FUNCTION public.mem0_record_history()"}
    assert set(history) == {"PUBLIC", app, *end_users, service}
    assert all(ddl.startswith("REVOKE ALL ON FUNCTION public.mem0_record_history() FROM ")
               for ddl in history.values())
    assert owner not in history


# --- switching an option changes only what it should -----------------------------------------

def _definitions(s: Settings) -> dict[str, tuple[str, str, str]]:
    """What a preview compares for each object: its DDL, its drop SQL and its notes."""
    return {spec.key: (spec.ddl, spec.drop_sql, spec.notes) for spec in build_model(s)}


def _changed(before: Settings, after: Settings
             ) -> tuple[dict[str, tuple[str, str, str]], dict[str, tuple[str, str, str]]]:
    a, b = _definitions(before), _definitions(after)
    keys = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return {k: a[k] for k in keys if k in a}, {k: b[k] for k in keys if k in b}


def _assert_only_row_rules_changed(old: dict[str, tuple[str, str, str]],
                                   new: dict[str, tuple[str, str, str]],
                                   also: frozenset[str] | set[str] = frozenset()) -> None:
    """Every changed key is a policy, a row-security spec whose notes (only) changed, or
    one of `also`."""
    for key in old.keys() | new.keys():
        if key in also or key.startswith("policy:"):
            continue
        assert key.startswith("row_security:"), key
        assert key in old and key in new, key
        assert old[key][:2] == new[key][:2] and old[key][2] != new[key][2], key


def _is_membership_object(key: str) -> bool:
    kind, _, name = key.partition(":")
    name = name.removeprefix("public.")
    if kind in ("table", "row_security"):
        return name == MEMBERSHIP_TABLE
    if kind == "index":
        return name.startswith(f"{MEMBERSHIP_TABLE}_")
    if kind == "function":
        return name == ORG_IDS_FUNCTION
    if kind in ("grant", "policy"):
        return name.startswith((f"{MEMBERSHIP_TABLE}-to-", f"{MEMBERSHIP_TABLE}_",
                                f"{ORG_IDS_FUNCTION}-to-"))
    return False


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
def test_user_to_org_adds_the_membership_and_changes_only_policies(
        target: str, profile: str, raw: dict[str, object]) -> None:
    before = settings(target, "user", profile, **raw)
    after = settings(target, "org", profile, **raw)
    old, new = _changed(before, after)
    membership = {k for k in new if _is_membership_object(k)}
    # forget() erases a user's memberships too (python profile: the only one declaring it)
    forget = {"function:mem0_erasure.forget"} if profile == "python" else set()
    assert forget <= old.keys()
    _assert_only_row_rules_changed(old, new, also=membership | forget)
    # the membership objects are new, not changed; nothing is dropped but policies
    assert not [k for k in old if _is_membership_object(k)]
    assert [k for k in old.keys() - new.keys() if not k.startswith("policy:")] == []
    app, end_user = ROLES[target][1], END_USER[target]
    assert {k for k in membership if not k.startswith(("policy:", "grant:"))} == {
        f"table:public.{MEMBERSHIP_TABLE}", f"index:public.{MEMBERSHIP_TABLE}_user_id_idx",
        f"row_security:public.{MEMBERSHIP_TABLE}", f"function:public.{ORG_IDS_FUNCTION}"}
    assert {f"grant:public.{MEMBERSHIP_TABLE}-to-{app}",
            f"grant:public.{MEMBERSHIP_TABLE}-to-{end_user}",
            f"grant:public.{ORG_IDS_FUNCTION}-to-{app}",
            f"grant:public.{ORG_IDS_FUNCTION}-to-PUBLIC"} <= membership
    # the memory rows' access changed, and the preview says so
    assert f"row_security:public.{before.collection}" in new


@pytest.mark.parametrize("tenancy", TENANCIES)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
def test_shared_agent_knowledge_changes_only_policies(target: str, profile: str,
                                                      tenancy: str) -> None:
    old, new = _changed(settings(target, tenancy, profile),
                        settings(target, tenancy, profile, sharedAgentKnowledge=True))
    if tenancy == "service":
        # No end user, and the trusted app role (the default) reads every row anyway.
        assert old == new == {}
        return
    _assert_only_row_rules_changed(old, new)
    assert "row_security:public.memories" in new
    assert [k for k in new if k.startswith("policy:")]


@pytest.mark.parametrize("tenancy", TENANCIES)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
def test_session_scope_adds_its_function_and_changes_only_policies(target: str, profile: str,
                                                                   tenancy: str) -> None:
    old, new = _changed(settings(target, tenancy, profile),
                        settings(target, tenancy, profile, sessionScope=True))
    run_id = f"function:public.{RUN_ID_FUNCTION}"
    _assert_only_row_rules_changed(old, new, also={run_id})
    assert run_id in new and run_id not in old
    if tenancy == "service":  # no end user, and the trusted app role reads every row
        assert list(new) == [run_id]
        return
    assert "row_security:public.memories" in new
    assert [k for k in new if k.startswith("policy:")]


@pytest.mark.parametrize("tenancy", TENANCIES)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("identity", ["optional", "required"])
def test_app_role_identity_changes_only_policies(target: str, profile: str,
                                                 tenancy: str, identity: str) -> None:
    old, new = _changed(settings(target, tenancy, profile),
                        settings(target, tenancy, profile, appRoleIdentity=identity))
    _assert_only_row_rules_changed(old, new)
    assert "row_security:public.memories" in new


# --- the rules themselves (components.access, without the model) ----------------------------

NATURES = {MEMORY: "memories", GRAPH: "memory_relationships", HISTORY: "memory_history",
           MEMBERSHIP: MEMBERSHIP_TABLE, BACKEND: "memory_migrations"}


def accesses(s: Settings):
    return table_access(s, "public", [(table, nature) for nature, table in NATURES.items()],
                        "public.memories")


@pytest.mark.parametrize("raw", OPTIONS)
@pytest.mark.parametrize(("target", "tenancy"), itertools.product(TARGETS, TENANCIES))
def test_rules_cover_every_role_and_command(target: str, tenancy: str,
                                            raw: dict[str, object]) -> None:
    for access in accesses(settings(target, tenancy, **raw)):
        assert list(access.rules) == all_roles(target)
        for role, rules in access.rules.items():
            assert list(rules) == list(COMMANDS), (access.table, role)
            for command, rule in rules.items():
                assert rule.words
                if not rule.policy:
                    assert (rule.using, rule.check) == (None, None)
                    continue
                assert rule.privilege, (access.table, role, command)
                assert (rule.using is not None, rule.check is not None) == {
                    "INSERT": (False, True), "SELECT": (True, False),
                    "DELETE": (True, False), "UPDATE": (True, True)}[command]
        lines = matrix_lines(access.matrix("public"))
        assert [(r, c) for r, c, _ in lines] == list(itertools.product(all_roles(target),
                                                                       COMMANDS))
        assert [w for _, _, w in lines] == [access.rules[r][c].words for r, c, _ in lines]


@pytest.mark.parametrize(("target", "tenancy"), itertools.product(TARGETS, TENANCIES))
def test_the_service_role_bypasses_and_history_is_read_only(target: str,
                                                            tenancy: str) -> None:
    service = ROLES[target][3]
    for access in accesses(settings(target, tenancy)):
        rules = access.rules[service]
        assert not any(r.policy for r in rules.values())
        held = {c for c, r in rules.items() if r.privilege}
        assert held == ({"SELECT"} if access.nature == HISTORY else set(COMMANDS))


@pytest.mark.parametrize(("target", "tenancy"), itertools.product(TARGETS, TENANCIES))
def test_the_owner_has_policies_only_for_the_history_trigger_membership_lookup_and_forget(
        target: str, tenancy: str) -> None:
    owner = ROLES[target][0]
    for access in accesses(settings(target, tenancy)):
        with_policy = {c for c, r in access.rules[owner].items() if r.policy}
        erase = {"SELECT", "DELETE"} if access.nature != BACKEND else set()
        assert with_policy == erase | {HISTORY: {"INSERT"}}.get(access.nature, set()), \
            access.table
        # What forget() reads and deletes, it sees only while mem0.erasing is on.
        for command in erase:
            assert ERASING in (access.rules[owner][command].using or ""), access.table


@pytest.mark.parametrize("target", TARGETS)
def test_service_tenancy_rules_give_end_users_no_access(target: str) -> None:
    for access in accesses(settings(target, "service")):
        for role in ROLES[target][2]:
            assert access.rules[role] == {c: NO_ACCESS for c in COMMANDS}, access.table


@pytest.mark.parametrize("target", TARGETS)
def test_readonly_and_anon_never_write(target: str) -> None:
    for tenancy in TENANCIES:
        for access in accesses(settings(target, tenancy)):
            for role in ROLES[target][2]:
                if role == "authenticated":
                    continue
                for command in ("INSERT", "UPDATE", "DELETE"):
                    assert access.rules[role][command] == NO_ACCESS


def test_what_each_option_adds_to_a_memory_rule() -> None:
    uid = "( SELECT public.mem0_user_id() AS mem0_user_id)"
    run = "( SELECT public.mem0_run_id() AS mem0_run_id)"
    orgs = "( SELECT public.mem0_org_ids() AS mem0_org_ids)::text[]"

    def memory_rule(**raw: object):
        [access] = table_access(settings(**raw), "public", [("memories", MEMORY)],
                                "public.memories")
        return access.rules["mem0_readonly"]["SELECT"], access.rules["mem0_app"]["INSERT"]

    read, write = memory_rule()
    assert read.using == f"(user_id = {uid})"
    assert (write.check, write.words) == ("true", TRUSTED_WORDS)  # the default: trusted
    read, write = memory_rule(appRoleIdentity="optional")
    assert write.check == f"(({uid} IS NULL) OR (user_id = {uid}))"
    read, _ = memory_rule(tenancy="org")
    assert read.using == f"(org_id = ANY ({orgs}))"
    read, write = memory_rule(sessionScope=True)
    assert read.using == f"((user_id = {uid}) AND ((run_id IS NULL) OR (run_id = {run})))"
    read, write = memory_rule(sharedAgentKnowledge=True, appRoleIdentity="optional")
    assert read.using == (f"((user_id = {uid}) OR ((user_id IS NULL) AND (agent_id IS NOT "
                          f"NULL) AND ({uid} IS NOT NULL)))")
    assert write.check == f"(({uid} IS NULL) OR (user_id = {uid}))"  # shared rows: read only
    _, write = memory_rule(appRoleIdentity="required")
    assert write.check == "(user_id = public.mem0_user_id())"  # bare: planner-visible


def test_which_functions_an_option_needs() -> None:
    assert not needs_run_id(settings()) and needs_run_id(settings(sessionScope=True))
    assert not needs_org_ids(settings()) and needs_org_ids(settings(tenancy="org"))
    assert not needs_org_ids(settings(tenancy="service"))


@pytest.mark.parametrize("target", TARGETS)
def test_the_owners_words_say_whether_force_binds_it(target: str) -> None:
    # Supabase's postgres has BYPASSRLS, which FORCE ROW LEVEL SECURITY does not override;
    # the NOLOGIN ownerRole elsewhere has not (tests/integration/test_security.py).
    owner = ROLES[target][0]
    for access in accesses(settings(target, "org")):
        words = {c: r.words for c, r in access.rules[owner].items()}
        if target == "supabase":
            assert all(w.startswith("every row: Supabase gives postgres BYPASSRLS, which FORCE "
                                    "ROW LEVEL SECURITY does not override") for w in
                       words.values()), access.table
            assert "binds the owner" not in " ".join(words.values())
        else:
            assert "no policy (FORCE ROW LEVEL SECURITY binds the owner: it has no BYPASSRLS)" \
                in words.values(), access.table
            assert "BYPASSRLS, which" not in " ".join(words.values())
    comments = [s.comment for s in build_model(settings(target)) if s.kind == "row_security"]
    assert all(("Supabase's postgres" in c) == (target == "supabase") for c in comments)


# --- org admins and agent spaces ---------------------------------------------------------------

def _words(s: Settings, table: str) -> dict[tuple[str, str], str]:
    """(role, command) -> the matrix's words, for one table of the stack."""
    spec = specs_of(s)[f"row_security:public.{table}"]
    return {(role, command): words for role, command, words in matrix_lines(spec.notes)}


ADMIN_WORDS = "every row of the organisations where the caller is admin"
AGENT_WORDS = "with an agent identity (mem0_agent_id()), only rows of that agent"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("raw", [{}, {"sessionScope": True}, {"appRoleIdentity": "required"},
                                 ROW_OPTIONS], ids=lambda raw: "+".join(raw) or "defaults")
def test_org_admins_adds_its_function_and_changes_only_policies(
        target: str, profile: str, raw: dict[str, object]) -> None:
    """orgAdmins on an org stack: the definer function, who may call it, and policies; the
    membership table is the same (its role column is there in every org stack)."""
    before = settings(target, "org", profile, **raw)
    after = settings(target, "org", profile, orgAdmins=True, **raw)
    old, new = _changed(before, after)
    function = f"function:public.{ADMIN_ORG_IDS_FUNCTION}"
    grants = {k for k in new if k.startswith(f"grant:public.{ADMIN_ORG_IDS_FUNCTION}-to-")}
    _assert_only_row_rules_changed(old, new, also={function, *grants})
    assert function in new and function not in old and grants and not grants & old.keys()
    assert f"table:public.{MEMBERSHIP_TABLE}" not in new
    assert "role text DEFAULT 'member'::text NOT NULL" in \
        specs_of(before)[f"table:public.{MEMBERSHIP_TABLE}"].ddl
    app, end_user = ROLES[target][1], END_USER[target]
    callers = {app, end_user}
    for key in grants:
        role = key.rsplit("-to-", 1)[1]
        assert new[key][0].startswith("GRANT EXECUTE" if role in callers else "REVOKE ALL"), key


@pytest.mark.parametrize("target", TARGETS)
def test_org_admin_words_in_the_matrix(target: str) -> None:
    """Admins read and manage every row of their organisations, every session's; edges keep
    their endpoint rule; history is read; the membership table is unchanged for them."""
    s = settings(target, "org", sessionScope=True, appRoleIdentity="required",
                 orgAdmins=True)
    app, end_user = ROLES[target][1], END_USER[target]
    memories = _words(s, "memories")
    for command in COMMANDS:
        assert f"{ADMIN_WORDS} (every session's)" in memories[(app, command)], command
    assert f"{ADMIN_WORDS} (every session's)" in memories[(end_user, "SELECT")]
    history = _words(s, "memory_history")
    assert ADMIN_WORDS in history[(app, "SELECT")]
    assert history[(app, "INSERT")] == "no privilege"
    edges = _words(s, "memory_relationships")[(app, "INSERT")]
    assert edges.index("between memories of the edge's organisation") < edges.index(ADMIN_WORDS)
    members = _words(s, MEMBERSHIP_TABLE)
    assert ADMIN_WORDS not in " ".join(members.values())
    assert f"{ORG_IDS_FUNCTION}() and {ADMIN_ORG_IDS_FUNCTION}()" in \
        members[(ROLES[target][0], "SELECT")]
    # The trusted app role is trusted with every row: nothing to add.
    trusted = _words(settings(target, "org", orgAdmins=True), "memories")
    assert trusted[(app, "SELECT")] == TRUSTED_WORDS


def test_org_admins_sql_reaches_every_session_and_keeps_edge_endpoints() -> None:
    s = settings("postgres", "org", sessionScope=True, orgAdmins=True)
    specs = specs_of(s)
    admin = f"(org_id = ANY (( SELECT public.{ADMIN_ORG_IDS_FUNCTION}() AS " \
            f"{ADMIN_ORG_IDS_FUNCTION})::text[]))"
    found = {(p.table, p.command): p for p in policies(specs) if "mem0_readonly" in p.roles}
    select = found[("public.memories", "SELECT")].using
    assert select is not None and select.endswith(f" OR {admin})")  # beside the session rule
    app = settings("postgres", "org", orgAdmins=True, appRoleIdentity="required")
    check = next(p.check for p in policies(specs_of(app))
                 if p.table == "public.memory_relationships" and p.command == "INSERT")
    assert check is not None
    admin_part = check[check.index(f"OR ({admin}"):]
    assert admin_part.count("(EXISTS ( SELECT 1 FROM public.memories m") == 2, check


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("tenancy", TENANCIES)
def test_agent_spaces_adds_its_function_and_changes_only_policies(
        target: str, tenancy: str, profile: str) -> None:
    before = settings(target, tenancy, profile, appRoleIdentity="required")
    after = settings(target, tenancy, profile, appRoleIdentity="required", agentSpaces=True)
    old, new = _changed(before, after)
    function = f"function:public.{AGENT_ID_FUNCTION}"
    _assert_only_row_rules_changed(old, new, also={function})
    assert function in new and function not in old
    assert "SECURITY DEFINER" not in new[function][0]  # invoker rights, like mem0_run_id
    assert "SET search_path TO ''" in new[function][0] and " STABLE" in new[function][0]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("identity", ["required", "optional"])
def test_agent_space_words_bind_writes_of_memories_only(target: str, identity: str) -> None:
    s = settings(target, "user", appRoleIdentity=identity, agentSpaces=True)
    app, end_user = ROLES[target][1], END_USER[target]
    for table in ("memories", "memories_entities"):
        words = _words(s, table)
        assert AGENT_WORDS not in words[(app, "SELECT")]
        for command in ("INSERT", "UPDATE", "DELETE"):
            assert words[(app, command)].endswith(AGENT_WORDS), (table, command)
            if target == "supabase":
                assert words[(end_user, command)].endswith(AGENT_WORDS), (table, command)
    # Edges and history have no agent_id column: unchanged.
    for table in ("memory_relationships", "memory_history"):
        assert AGENT_WORDS not in " ".join(_words(s, table).values()), table


def test_agent_spaces_cannot_bind_a_trusted_app_role_and_says_so() -> None:
    s = settings("supabase", "user", agentSpaces=True)
    words = _words(s, "memories")
    assert words[("mem0_app", "INSERT")] == f"{TRUSTED_WORDS}; agentSpaces does not bind it"
    assert words[("mem0_app", "SELECT")] == TRUSTED_WORDS
    assert words[("authenticated", "INSERT")].endswith(AGENT_WORDS)
    app_policies = [p for p in policies(specs_of(s)) if p.roles == ["mem0_app"]
                    and p.table == "public.memories"]
    assert app_policies and all(text in (None, "true") for p in app_policies
                                for text in (p.using, p.check))


def test_an_optional_app_role_is_bound_by_its_agent_even_before_it_names_a_user() -> None:
    """With appRoleIdentity optional, 'every row until the connection names a user' is for
    reading and writing users' rows; an agent identity still binds its writes."""
    s = settings("postgres", "user", appRoleIdentity="optional", agentSpaces=True)
    agent = f"( SELECT public.{AGENT_ID_FUNCTION}() AS {AGENT_ID_FUNCTION})"
    guard = f"(({agent} IS NULL) OR (agent_id = {agent}))"
    insert = next(p for p in policies(specs_of(s))
                  if p.table == "public.memories" and p.command == "INSERT")
    assert insert.check is not None and insert.check.startswith("((")
    assert insert.check.endswith(f" AND {guard})"), insert.check


def _groups(text: str) -> list[str]:
    """Every parenthesised group's inside, outermost first."""
    found, stack = [], []
    for i, char in enumerate(text):
        if char == "(":
            stack.append(i)
        elif char == ")":
            found.append(text[stack.pop() + 1:i])
    return found[::-1]


def _top_level(text: str, op: str) -> list[str]:
    """`text` split at ` op ` outside any parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0 and text.startswith(f" {op} ", i):
            parts.append(text[start:i])
            i += len(op) + 2
            start = i
            continue
        i += 1
    return [*parts, text[start:]]


@pytest.mark.parametrize(("target", "tenancy", "profile"), STACKS)
def test_no_policy_nests_an_and_or_an_or_on_its_left(target: str, tenancy: str,
                                                      profile: str) -> None:
    """PostgreSQL stores `(a AND b) AND c` as `a AND b AND c`, so a declared policy written
    the first way would never match the catalog (every apply fails its verification)."""
    extra: list[dict[str, object]] = [{**ROW_OPTIONS, "appRoleIdentity": identity}
                                      for identity in ("optional", "required")]
    if tenancy == "org":
        extra += [{**raw, "orgAdmins": True} for raw in (*extra, {})]
    for raw in extra:
        for policy in policies(specs_of(settings(target, tenancy, profile, **raw))):
            for text in (policy.using, policy.check):
                for group in _groups(text or ""):
                    for op in ("AND", "OR"):
                        parts = _top_level(group, op)
                        first = parts[0].strip()
                        if len(parts) > 1 and first.startswith("(") and first.endswith(")"):
                            inner = first[1:-1]
                            nested = len(_top_level(inner, op)) > 1 and \
                                _groups(first)[0] == inner
                            assert not nested, (raw, policy.name, group)
