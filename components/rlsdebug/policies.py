"""The row-level-security facts of one table for one role, read from the catalog.

Nothing here knows the stack's rules: policies are read from pg_policy as PostgreSQL applies
them (a policy applies to a role when its roles include PUBLIC or a role whose privileges
the role has, and to a command when it names it or ALL), so policies another stack setting
adds are explained without change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from components.rlsdebug.session import DebugSession

__all__ = ["Command", "Policy", "TableSecurity", "applicable_policies", "table_security"]


class Command(StrEnum):
    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


# pg_policy.polcmd's letters.
_POLCMD = {Command.SELECT: "r", Command.INSERT: "a", Command.UPDATE: "w",
           Command.DELETE: "d"}
_COMMAND_OF = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


@dataclass(frozen=True)
class Policy:
    name: str
    permissive: bool
    command: str  # SELECT | INSERT | UPDATE | DELETE | ALL
    roles: tuple[str, ...]
    using: str | None
    check: str | None

    @property
    def kind(self) -> str:
        return "permissive" if self.permissive else "restrictive"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "command": self.command,
                "roles": list(self.roles), "using": self.using, "with_check": self.check}


@dataclass(frozen=True)
class TableSecurity:
    """Whether row-level security binds `role` on `table`, and why not when it does not."""

    table: str  # qualified
    role: str
    rls_enabled: bool
    rls_forced: bool
    exempt: str | None  # why policies do not apply to the role, None when they do

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "role": self.role, "rls_enabled": self.rls_enabled,
                "rls_forced": self.rls_forced, "policies_apply": self.exempt is None,
                "exempt_because": self.exempt}


def table_security(session: DebugSession, table: str, role: str) -> TableSecurity:
    """`table` is a qualified name the caller validated (or the catalog printed)."""
    row = session.rows(
        "SELECT c.relrowsecurity, c.relforcerowsecurity, r.rolsuper, r.rolbypassrls,"
        " pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE'),"
        " pg_catalog.pg_get_userbyid(c.relowner)::text"
        " FROM pg_catalog.pg_class c, pg_catalog.pg_roles r"
        " WHERE c.oid = pg_catalog.to_regclass(%s) AND r.rolname = %s", (table, role))[0]
    enabled, forced, superuser, bypass, owner, owner_name = row
    exempt = None
    if not enabled:
        exempt = "row-level security is not enabled on the table"
    elif superuser:
        exempt = f"{role} is a superuser: it bypasses row-level security"
    elif bypass:
        exempt = f"{role} has BYPASSRLS"
    elif owner and not forced:
        exempt = f"{role} owns the table (as {owner_name}) and row-level security is not forced"
    return TableSecurity(table, role, bool(enabled), bool(forced), exempt)


def applicable_policies(session: DebugSession, table: str, role: str, command: Command
                        ) -> list[Policy]:
    """The policies PostgreSQL applies to `role` running `command` on `table`."""
    rows = session.rows(
        "SELECT p.polname::text, p.polpermissive, p.polcmd::text,"
        " ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'public'"
        "        ELSE pg_catalog.pg_get_userbyid(r.oid)::text END"
        "       FROM pg_catalog.unnest(p.polroles) AS r(oid)),"
        " pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
        " pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)"
        " FROM pg_catalog.pg_policy p"
        " WHERE p.polrelid = pg_catalog.to_regclass(%s) AND p.polcmd::text IN (%s, '*')"
        " AND EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) AS r(oid)"
        "             WHERE r.oid = 0 OR pg_catalog.pg_has_role(%s, r.oid, 'USAGE'))"
        " ORDER BY p.polpermissive DESC, p.polname", (table, _POLCMD[command], role))
    return [Policy(name, bool(permissive), _COMMAND_OF[cmd], tuple(roles), using, check)
            for name, permissive, cmd, roles, using, check in rows]
