"""Who gains or loses which command on which table, and under which rows, in plain words.

Each of the stack's tables is seen twice: as the database has it now (the ACL through
`aclexplode`, `pg_policy`, the row-security flags, the roles' BYPASSRLS) and as it will
be after `up` (the declared grants, policies and flags; what the stack does not declare
about a role stays as it is; policies on the table it does not declare are dropped). One
cell per role and command says what the role may do: nothing, every row (and why), or the
rows its policies admit, in the words of the access matrix (`components.access`) wherever
the expression is one the model writes under any tenancy, else as `rows where <SQL>`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import psycopg

from components.access import COMMANDS
from components.kinds import Kind
from components.kinds.grant import GrantFields, granted
from components.kinds.policy import PolicyFields, read_policies
from components.kinds.role import RoleFields
from components.kinds.row_security import RowSecurityFields
from components.kinds.table import TableFields, relation
from components.model import ObjectSpec, build_model
from components.settings import AppRoleIdentity, Settings, Tenancy

NOTHING = "nothing"
NO_ROW = "no row (no policy admits any)"


@dataclass(frozen=True)
class AccessChange:
    table: str
    role: str
    command: str
    before: str
    after: str

    @property
    def words(self) -> str:
        if self.before == NOTHING:
            return f"{self.role} gains {self.command} on {self.table}: {self.after}"
        if self.after == NOTHING:
            return f"{self.role} loses {self.command} on {self.table} (had: {self.before})"
        return f"{self.role}: {self.command} on {self.table}: {self.before} -> {self.after}"


@dataclass
class _View:
    """One side of a table's access."""

    exists: bool = False
    rls: bool = False
    forced: bool = False
    owner: str = ""
    privileges: dict[str, set[str]] = field(default_factory=dict)
    policies: list[PolicyFields] = field(default_factory=list)
    bypass: set[str] = field(default_factory=set)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _commands(privileges: str) -> set[str]:
    return {p.strip() for p in privileges.split(",") if p.strip() in COMMANDS}


def expression_words(settings: Settings) -> dict[tuple[str, ...], str]:
    """(table, role, command, expression), (table, command, expression) and (command,
    expression) -> the matrix's words, for
    every policy the model writes for these settings under any tenancy, app role
    identity, session scope, sharing, org admins and agent spaces (the current settings
    first: their words win)."""
    words: dict[tuple[str, ...], str] = {}
    variants = [settings] + [
        dataclasses.replace(settings, tenancy=tenancy, app_role_identity=identity,
                            session_scope=session, shared_agent_knowledge=shared,
                            org_admins=admins, agent_spaces=agents)
        for tenancy in Tenancy
        for identity in AppRoleIdentity
        for session in (False, True) for shared in (False, True)
        for admins in (False, True) for agents in (False, True)]
    for variant in variants:
        try:
            specs = build_model(variant)
        except ValueError:
            continue  # a combination the model refuses
        for spec in specs:
            if spec.kind != Kind.POLICY or ": " not in spec.comment:
                continue
            policy: PolicyFields = spec.fields
            text = spec.comment.split(": ", 1)[1]  # "<command> for <roles>: <words>"
            expression = _rows_expression(policy)
            # The same expression reads differently on another table (a user's own rows,
            # a user's own memberships): the table's words first, then any table's.
            words.setdefault((policy.command, expression), text)
            words.setdefault((policy.table, policy.command, expression), text)
            for role in policy.roles:
                words.setdefault((policy.table, role, policy.command, expression), text)
    return words


def _rows_expression(policy: PolicyFields) -> str:
    """The expression that bounds a command's rows: WITH CHECK for INSERT, else USING."""
    if policy.command == "INSERT":
        return policy.check or policy.using
    return policy.using or policy.check


def _live_view(cur: psycopg.Cursor[Any], table: str, roles: set[str]) -> _View:
    schema, name = table.split(".", 1)
    found = relation(cur, _unquote(schema), _unquote(name), "rp")
    if found is None:
        return _View()
    flags = cur.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_catalog.pg_class"
                        " WHERE oid = %s", (found[0],)).fetchone()
    assert flags is not None
    view = _View(True, bool(flags[0]), bool(flags[1]), _unquote(found[2]))
    for role in roles:
        held = granted(cur, f"TABLE {table}", role)
        view.privileges[role] = {p for p, _ in held or [] if p in COMMANDS}
    view.policies = read_policies(cur, table)
    view.bypass = {str(r) for (r,) in cur.execute(
        "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)"
        " AND (rolbypassrls OR rolsuper)", (sorted(roles),)).fetchall()}
    return view


def _declared_view(specs: list[ObjectSpec], table: str, live: _View) -> _View:
    """After `up`: the declared grants, policies and flags; the rest as live has it."""
    view = _View(True, live.rls, live.forced, live.owner,
                 {role: set(held) for role, held in live.privileges.items()},
                 [], set(live.bypass))
    for spec in specs:
        fields = spec.fields
        if isinstance(fields, TableFields) and fields.table == table and fields.owner:
            view.owner = _unquote(fields.owner)
        elif isinstance(fields, GrantFields) and fields.on == f"TABLE {table}":
            view.privileges[fields.role] = _commands(fields.privileges)
        elif isinstance(fields, RowSecurityFields) and fields.table == table:
            view.rls, view.forced = fields.enabled, fields.forced
        elif isinstance(fields, PolicyFields) and fields.table == table:
            view.policies.append(fields)
        elif isinstance(fields, RoleFields):
            (view.bypass.add if fields.bypass_rls else view.bypass.discard)(fields.name)
    return view


def _cell(view: _View, role: str, command: str, words: dict[tuple[str, ...], str]) -> str:
    if not view.exists:
        return NOTHING
    owner = role == view.owner
    if command not in view.privileges.get(role, set()) and not owner:
        return NOTHING
    if not view.rls:
        return "every row (row-level security is off)"
    if role in view.bypass:
        return "every row (bypasses row-level security)"
    if owner and not view.forced:
        return "every row (the owner, row-level security not forced)"
    permissive: list[str] = []
    restrictive: list[str] = []
    for policy in view.policies:
        if policy.command not in (command, "ALL") or \
                not ({role, "PUBLIC"} & set(policy.roles)):
            continue
        expression = _rows_expression(policy)
        text = words.get((policy.table, role, policy.command, expression)) or \
            words.get((policy.table, policy.command, expression)) or \
            words.get((policy.command, expression)) or \
            (f"rows where {expression}" if expression else "every row")
        (permissive if policy.permissive else restrictive).append(text)
    if not permissive:
        return NO_ROW
    text = " or ".join(dict.fromkeys(permissive))
    return text + "".join(f", and only {r}" for r in dict.fromkeys(restrictive))


def access_changes(conn: psycopg.Connection, settings: Settings,
                   specs: list[ObjectSpec]) -> list[AccessChange]:
    """Every (table, role, command) whose access `up` would change, in the model's order
    of tables, roles by name, commands in matrix order."""
    tables = [s.fields.table for s in specs if isinstance(s.fields, RowSecurityFields)]
    words = expression_words(settings)
    changes = []
    with conn.cursor() as cur:
        for table in tables:
            roles = {f.role for s in specs if isinstance(f := s.fields, GrantFields)
                     and f.on == f"TABLE {table}"}
            roles |= {r for s in specs if isinstance(f := s.fields, PolicyFields)
                      and f.table == table for r in f.roles}
            live_policies = read_policies(cur, table)
            roles |= {r for p in live_policies for r in p.roles}
            roles.discard("PUBLIC")
            before = _live_view(cur, table, roles)
            after = _declared_view(specs, table, before)
            for role in sorted(roles):
                for command in COMMANDS:
                    old, new = (_cell(v, role, command, words) for v in (before, after))
                    # The owner holds every privilege: where no policy admits it, that is
                    # no access either (a new table's owner gains nothing).
                    owner_only = role in (before.owner, after.owner) and \
                        {old, new} <= {NOTHING, NO_ROW}
                    if old != new and not owner_only:
                        changes.append(AccessChange(table, role, command, old, new))
    return changes

