"""Kind `policy`: a row-level security policy, rebuilt from `pg_policy` with `pg_get_expr`
(whitespace collapsed to one line). ALTER POLICY cannot change the command, so apply drops
and creates it in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from components.identifiers import qualified, quote_ident
from components.kinds.apply import delete_with_table, execute_checked, recreate_statements
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.grant import grantee_sql
from components.kinds.steps import Lock, PlanStep, lock, plain_steps


@dataclass(frozen=True)
class PolicyFields:
    name: str
    table: str  # schema-qualified
    command: str  # SELECT | INSERT | UPDATE | DELETE | ALL
    roles: tuple[str, ...]  # "PUBLIC" for everyone
    using: str = ""  # empty: no USING clause
    check: str = ""  # empty: no WITH CHECK clause
    permissive: bool = True

    def ddl(self) -> str:
        text = policy_ddl(self.name, self.table, self.command, self.roles, self.using or None,
                          self.check or None)
        return text if self.permissive else \
            text.replace(" AS PERMISSIVE ", " AS RESTRICTIVE ", 1)

    def drop_sql(self) -> str:
        return f"DROP POLICY IF EXISTS {quote_ident(self.name)} ON {self.table};"


def policy_ddl(name: str, table: str, command: str, roles: Sequence[str], using: str | None,
               check: str | None) -> str:
    """A policy's canonical text, as `read` rebuilds it from pg_policy."""
    lines = [f"CREATE POLICY {quote_ident(name)} ON {table} AS PERMISSIVE FOR {command} "
             f"TO {', '.join(grantee_sql(r) for r in sorted(roles))}"]
    if using is not None:
        lines.append(f"    USING ({using})")
    if check is not None:
        lines.append(f"    WITH CHECK ({check})")
    return "\n".join(lines) + ";"


_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def _expression(text: str | None) -> str:
    # pg_get_expr breaks a sub-select over lines; one line per expression keeps the
    # canonical form (and a preview's diff) simple. No expression the model writes holds a
    # string literal whose spacing this would change.
    return "" if text is None else " ".join(text.split())


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def read_policies(cur: Cursor, table: str, name: str | None = None) -> list[PolicyFields]:
    """The policies on `table` (schema-qualified) as fields, by name; only `name` when
    given. The plan reads them all to put the live access matrix in words."""
    rows = cur.execute(
        "SELECT p.polname, p.polpermissive, p.polcmd,"
        " ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END"
        "       FROM pg_catalog.unnest(p.polroles) AS r),"
        " pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
        " pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)"
        " FROM pg_catalog.pg_policy p"
        " WHERE p.polrelid = pg_catalog.to_regclass(%s) AND (%s::text IS NULL OR p.polname = %s)"
        " ORDER BY p.polname", (table, name, name)).fetchall()
    # regrole prints quoted names; policy_ddl quotes them itself.
    return [PolicyFields(str(polname), table, _POLICY_COMMANDS[command],
                         tuple(r if r == "PUBLIC" else _unquote(r) for r in roles),
                         _expression(using), _expression(check), bool(permissive))
            for polname, permissive, command, roles, using, check in rows]


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    found = read_policies(cur, qualified(ref["schema"], ref["table"]), ref["name"])
    return found[0].ddl() if found else None


def ensure(conn: psycopg.Connection, change: Change[PolicyFields]) -> None:
    execute_checked(conn, recreate_statements(change), change)


def plan(_cur: Cursor, change: Change[PolicyFields]) -> list[PlanStep]:
    table = qualified(change.props["schema"], change.props["table"])
    return plain_steps(recreate_statements(change), lock(
        Lock.ACCESS_EXCLUSIVE, table, "CREATE/DROP POLICY (brief; waits at most the lock "
        "timeout)"))


SPEC = KindSpec(Kind.POLICY, Family.POLICIES, PolicyFields, read, ensure, delete_with_table,
                plan=plan)
