"""Who may do what to which rows: the access rules of a stack, in SQL and in plain words.

One truth for three things the model derives from it: the row-level-security policies
(their USING and WITH CHECK expressions), the grants (a role holds a privilege exactly where
it has a rule), and the access matrix that `render` prints and each table's row-security
resource carries, so a change of access reads as a changed line in a preview.

Expressions are written in the form PostgreSQL's `pg_get_expr` prints them (with an empty
search_path, whitespace collapsed), because the provider compares declared and live
definitions as text. Identity comes from functions called as `( SELECT f() AS f)`: an
initplan evaluated once per statement, never per row, and never cast per row. Two
exceptions serve mem0's search (docs/performance.md): the app role trusted with every row
has the literal policy `true`, which the planner drops; the app role bound to one user calls
`mem0_user_id()` bare, so the planner estimates the connection's own user.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.erasure import ERASING
from components.identifiers import qualified
from components.settings import SUPABASE_END_USER_ROLES, Settings, Target

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
USER_ID_FUNCTION = "mem0_user_id"
RUN_ID_FUNCTION = "mem0_run_id"
ORG_IDS_FUNCTION = "mem0_org_ids"
ADMIN_ORG_IDS_FUNCTION = "mem0_admin_org_ids"
AGENT_ID_FUNCTION = "mem0_agent_id"
MEMBERSHIP_TABLE = "memory_org_members"

# What a table is, for access: which rules apply to its rows.
MEMORY = "memory"  # memories and entities: owner columns, shared agent rows, sessions
GRAPH = "graph"  # relationships: owner columns; both endpoints must be visible to write
HISTORY = "history"  # written by the history trigger (as the owner), read by end users
MEMBERSHIP = "membership"  # org members: each user reads their own; the service writes
BACKEND = "backend"  # no owner column: the app role and the service only


@dataclass(frozen=True)
class Rule:
    """What a role may do with one command on one table."""

    words: str  # the matrix's plain words
    using: str | None = None  # SQL of USING (SELECT, UPDATE, DELETE)
    check: str | None = None  # SQL of WITH CHECK (INSERT, UPDATE)
    privilege: bool = True  # the role holds the table privilege for the command
    policy: bool = True  # a policy carries the rule (False: no privilege, or bypasses RLS)


NO_ACCESS = Rule("no privilege", privilege=False, policy=False)


@dataclass(frozen=True)
class TableAccess:
    table: str  # unqualified name
    nature: str  # MEMORY | GRAPH | HISTORY | MEMBERSHIP | BACKEND
    rules: dict[str, dict[str, Rule]]  # role -> command -> rule

    def matrix(self, schema: str) -> str:
        """The plain-words matrix: one line per role and command."""
        width = max(len(role) for role in self.rules)
        lines = [f"access to {qualified(schema, self.table)} "
                 "(row-level security enabled and forced):"]
        for role, commands in self.rules.items():
            for command in COMMANDS:
                lines.append(f"  {role.ljust(width)}  {command.ljust(6)}  "
                             f"{commands[command].words}")
        return "\n".join(lines)


# --- expressions, in pg_get_expr's form -----------------------------------------------------

def _call(schema: str, function: str) -> str:
    return f"( SELECT {qualified(schema, function)}() AS {function})"


class _Group(str):
    """An AND or OR of parts, as text that remembers its operator and parts."""

    op: str
    parts: tuple[str, ...]


def _group(op: str, parts: tuple[str, ...]) -> str:
    if len(parts) == 1:
        return parts[0]
    # PostgreSQL's parser merges a left operand that is the same operator into one list
    # (`(a AND b) AND c` is stored as `a AND b AND c`), and pg_get_expr prints that.
    first = parts[0]
    if isinstance(first, _Group) and first.op == op:
        parts = (*first.parts, *parts[1:])
    group = _Group("(" + f" {op} ".join(parts) + ")")
    group.op, group.parts = op, parts
    return group


def _all(*parts: str) -> str:
    return _group("AND", parts)


def _any(*parts: str) -> str:
    return _group("OR", parts)


class _Expressions:
    def __init__(self, settings: Settings, schema: str, direct_uid: bool = False) -> None:
        self.settings = settings
        self.schema = schema
        # The bound app role calls the identity function directly: the planner evaluates
        # a stable call when it estimates, so a large user's search is planned as one
        # (docs/performance.md); an initplan's value is unknown until execution.
        self.uid = f"{qualified(schema, USER_ID_FUNCTION)}()" if direct_uid else \
            _call(schema, USER_ID_FUNCTION)
        self.run = _call(schema, RUN_ID_FUNCTION)
        self.orgs = f"{_call(schema, ORG_IDS_FUNCTION)}::text[]"
        self.admin_orgs = f"{_call(schema, ADMIN_ORG_IDS_FUNCTION)}::text[]"
        self.agent = _call(schema, AGENT_ID_FUNCTION)

    def own(self) -> str:
        return f"(user_id = {self.uid})"

    def in_orgs(self) -> str:
        return f"(org_id = ANY ({self.orgs}))"

    def in_admin_orgs(self) -> str:
        return f"(org_id = ANY ({self.admin_orgs}))"

    def agent_space(self) -> str:
        """No agent identity, or the row's agent is the caller's."""
        return f"(({self.agent} IS NULL) OR (agent_id = {self.agent}))"

    def signed_in(self) -> str:
        return f"({self.uid} IS NOT NULL)"

    def no_identity(self) -> str:
        return f"({self.uid} IS NULL)"

    def session(self) -> str:
        return f"((run_id IS NULL) OR (run_id = {self.run}))"

    def shared_agent(self) -> str:
        return _all("(user_id IS NULL)", "(agent_id IS NOT NULL)", self.signed_in())

    def endpoint(self, table: str, column: str, memories: str) -> str:
        """The memory at `column` is visible to the caller; in org tenancy it also belongs
        to the edge's organisation, or a member of two organisations could label an edge
        between one's memories with the other and show it to that other's members."""
        match = f"(m.id = {table}.{column})"
        if needs_org_ids(self.settings):
            match = f"({match} AND (m.org_id = {table}.org_id))"
        return f"(EXISTS ( SELECT 1 FROM {memories} m WHERE {match}))"


# --- rules per table ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Scope:
    """The rows an end user reaches on a table: to read, and to write."""

    read: str
    write: str
    read_words: str
    write_words: str
    # agentSpaces: what every write of a bound role must also meet, whatever else lets it
    # write ("" when the option is off or the table has no agent_id).
    guard: str = ""
    guard_words: str = ""

    def guarded(self, write: str) -> str:
        return _all(write, self.guard) if self.guard else write


def _scope(e: _Expressions, nature: str, table: str, memories: str) -> _Scope:
    s = e.settings
    org = needs_org_ids(s)
    if nature == MEMBERSHIP:
        return _Scope(e.own(), e.own(), "the caller's own memberships",
                      "the caller's own memberships")
    read = [e.in_orgs()] if org else [e.own()]
    write = [e.in_orgs(), e.own()] if org else [e.own()]
    read_words = "rows of the caller's organisations" if org else "the caller's own rows"
    write_words = ("the caller's own rows in the caller's organisations" if org
                   else "the caller's own rows")
    endpoints: list[str] = []
    if nature == GRAPH:
        endpoints = [e.endpoint(table, "source_memory_id", memories),
                     e.endpoint(table, "target_memory_id", memories)]
        write += endpoints
        write_words += (", between memories of the edge's organisation the caller can read"
                        if org else ", between memories the caller can read")
    if nature in (MEMORY, HISTORY) and needs_run_id(s):  # history holds the payloads too
        read.append(e.session())
        write.append(e.session())
        read_words += " (a session's rows only in that session)"
        write_words += " (a session's rows only in that session)"
    read_sql, write_sql = _all(*read), _all(*write)
    if org and s.org_admins and nature in (MEMORY, GRAPH, HISTORY):
        # An admin's organisations: every row, every member's and every session's; edges
        # still join memories of their own organisation that the admin can read.
        read_sql = _any(read_sql, e.in_admin_orgs())
        write_sql = _any(write_sql, _all(e.in_admin_orgs(), *endpoints))
        read_words += ("; every row of the organisations where the caller is admin"
                       + (" (every session's)" if needs_run_id(s) else ""))
        write_words += ("; every row of the organisations where the caller is admin"
                        + (" (every session's)" if needs_run_id(s) else ""))
    if nature == MEMORY and s.shared_agent_knowledge:
        read_sql = _any(read_sql, e.shared_agent())
        read_words += ", and shared agent knowledge"
    guard = e.agent_space() if s.agent_spaces and nature == MEMORY else ""
    guard_words = ("; with an agent identity (mem0_agent_id()), only rows of that agent"
                   if guard else "")
    return _Scope(read_sql, write_sql, read_words, write_words, guard, guard_words)


def _commands(scope_read: str, scope_write: str, read_words: str, write_words: str,
              writable: bool) -> dict[str, Rule]:
    """SELECT reads `scope_read`; the writes stay inside `scope_write` (USING and CHECK)."""
    if not writable:
        return {"SELECT": Rule(read_words, using=scope_read),
                "INSERT": NO_ACCESS, "UPDATE": NO_ACCESS, "DELETE": NO_ACCESS}
    return {"SELECT": Rule(read_words, using=scope_read),
            "INSERT": Rule(write_words, check=scope_write),
            "UPDATE": Rule(write_words, using=scope_write, check=scope_write),
            "DELETE": Rule(write_words, using=scope_write)}


ERASE_WORDS = "every row, only inside mem0_erasure.forget() (it sets mem0.erasing)"
# FORCE ROW LEVEL SECURITY binds a table's owner only where the owner does not bypass
# row-level security: the NOLOGIN ownerRole of postgres and embedded does not; Supabase
# gives its owner, postgres, BYPASSRLS (docs/security.md, "FORCE and the owner").
OWNER_BOUND = "no policy (FORCE ROW LEVEL SECURITY binds the owner: it has no BYPASSRLS)"
OWNER_BYPASSES = ("every row: Supabase gives postgres BYPASSRLS, which FORCE ROW LEVEL "
                  "SECURITY does not override")


def owner_bypasses_rls(settings: Settings) -> bool:
    """Whether the stack's owner reads and writes every row, forced or not: on target
    supabase the owner is Supabase's postgres, which has BYPASSRLS."""
    return settings.target == Target.SUPABASE


def owner_words(settings: Settings, bound: str) -> str:
    """What the owner may do, in words: `bound` where FORCE ROW LEVEL SECURITY binds it; on
    supabase every row (a policy of its, `bound`, binds only a role that acts as the owner
    through membership without BYPASSRLS of its own)."""
    if not owner_bypasses_rls(settings):
        return bound
    return OWNER_BYPASSES if bound == OWNER_BOUND else \
        f"{OWNER_BYPASSES}; its policy ({bound}) binds only a member of postgres without " \
        "BYPASSRLS of its own"

TRUSTED_WORDS = "every row (trusted: mem0's own filters separate users)"


def _app_rules(e: _Expressions, scope: _Scope, nature: str) -> dict[str, Rule]:
    """The app role: trusted with every row (appRoleIdentity trusted: a literal `true`
    policy, which the planner drops, so mem0's filters become index conditions); bound
    like an end user once its connection names a user (required), or only then
    (optional: every row before)."""
    writable = nature in (MEMORY, GRAPH)
    if nature == BACKEND:
        return _commands("true", "true", "every row (the table has no owner column)",
                         "every row (the table has no owner column)", writable=True)
    if e.settings.app_role_identity == "trusted":
        # agentSpaces cannot bind it: any predicate would replace the literal `true` that
        # keeps mem0's searches indexed (settings refuse the option where it binds nobody).
        unbound = "; agentSpaces does not bind it" if scope.guard else ""
        return _commands("true", "true", TRUSTED_WORDS, TRUSTED_WORDS + unbound, writable)
    if e.settings.app_role_identity == "required":
        return _commands(scope.read, scope.guarded(scope.write), scope.read_words,
                         scope.write_words + scope.guard_words, writable)
    prefix = "every row until the connection sets mem0.user_id, then "
    return _commands(_any(e.no_identity(), scope.read),
                     scope.guarded(_any(e.no_identity(), scope.write)),
                     prefix + scope.read_words,
                     prefix + scope.write_words + scope.guard_words, writable)


def _rules(settings: Settings, e: _Expressions, nature: str, table: str,
           memories: str) -> dict[str, dict[str, Rule]]:
    scope = _scope(e, nature, table, memories)
    service_mode = settings.tenancy == "service"
    rules: dict[str, dict[str, Rule]] = {}
    owner_rule = {c: Rule(OWNER_BOUND, policy=False) for c in COMMANDS}
    if nature == HISTORY:
        owner_rule["INSERT"] = Rule("every row, through the history trigger only",
                                    check="true")
    erasable = settings.client_profile == "python" and nature != BACKEND
    if erasable:  # mem0_erasure.forget() acts as the owner (definer rights)
        for command in ("SELECT", "DELETE"):
            owner_rule[command] = Rule(ERASE_WORDS, using=ERASING)
    if nature == MEMBERSHIP:
        through = f"{ORG_IDS_FUNCTION}()" + (f" and {ADMIN_ORG_IDS_FUNCTION}()"
                                             if needs_admin_org_ids(settings) else "")
        owner_rule["SELECT"] = Rule(f"the caller's own memberships, through {through} only"
                                    + (f"; {ERASE_WORDS}" if erasable else ""),
                                    using=_any(e.own(), ERASING) if erasable else e.own())
    rules[settings.owner_role] = {
        c: Rule(owner_words(settings, r.words), r.using, r.check, r.privilege, r.policy)
        for c, r in owner_rule.items()}
    bound = settings.app_role_identity == "required"
    app_scope = _scope(_Expressions(settings, e.schema, direct_uid=True), nature, table,
                       memories) if bound else scope
    rules[settings.app_role] = _app_rules(e, app_scope, nature)
    end_user = {c: NO_ACCESS for c in COMMANDS}
    if not service_mode and nature != BACKEND:
        end_user = _commands(scope.read, scope.guarded(scope.write), scope.read_words,
                             scope.write_words + scope.guard_words, nature in (MEMORY, GRAPH))
    if settings.target == "supabase":
        rules[SUPABASE_END_USER_ROLES[0]] = {c: NO_ACCESS for c in COMMANDS}  # anon
        rules[SUPABASE_END_USER_ROLES[1]] = end_user  # authenticated
    else:
        assert settings.readonly_role is not None
        rules[settings.readonly_role] = {
            c: (end_user[c] if c == "SELECT" else NO_ACCESS) for c in COMMANDS}
    bypass = Rule("every row (bypasses row-level security)", policy=False)
    rules[settings.service_role] = {c: (bypass if c == "SELECT" or nature != HISTORY
                                        else NO_ACCESS) for c in COMMANDS}
    return rules


def table_access(settings: Settings, schema: str, tables: list[tuple[str, str]],
                 memories: str) -> list[TableAccess]:
    """The access of each (table, nature); `memories` is the qualified memories table
    relationships point at."""
    e = _Expressions(settings, schema)
    return [TableAccess(table, nature, _rules(settings, e, nature, table, memories))
            for table, nature in tables]


def needs_run_id(settings: Settings) -> bool:
    """Whether policies read the caller's session (mem0_run_id())."""
    return settings.session_scope


def needs_agent_id(settings: Settings) -> bool:
    """Whether policies read the caller's agent (mem0_agent_id())."""
    return settings.agent_spaces


def needs_admin_org_ids(settings: Settings) -> bool:
    """Whether policies read the organisations where the caller is admin
    (mem0_admin_org_ids())."""
    return settings.org_admins and needs_org_ids(settings)


def needs_org_ids(settings: Settings) -> bool:
    """Whether policies read the caller's organisations (mem0_org_ids() and the
    membership table)."""
    return settings.tenancy == "org"
