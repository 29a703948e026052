"""Kind `role_settings`: session settings a role gets (`ALTER ROLE ... SET`), limited to
the names the stack declares: the role may carry others that are not this stack's business
(Supabase sets some on its roles). Apply sets the declared names and resets the ones the
stack no longer declares; delete resets them all."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from components.identifiers import quote_ident, quote_literal
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.role import role_flags
from components.kinds.steps import Hazard, HazardKind, PlanStep, plain_steps


@dataclass(frozen=True)
class RoleSettingsFields:
    role: str
    settings: tuple[tuple[str, str], ...]  # (name, value), sorted by name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.settings)

    def statements(self) -> list[str]:
        return [role_setting_line(self.role, name, value) for name, value in self.settings]

    def ddl(self) -> str:
        return "\n".join(self.statements())

    def drop_sql(self) -> str:
        return "\n".join(f"ALTER ROLE {quote_ident(self.role)} RESET {name};"
                         for name in self.names)


def role_setting_line(role: str, name: str, value: str) -> str:
    """The canonical `ALTER ROLE ... SET` line, as the model writes it and `read` rebuilds
    it. search_path is a list: written bare, as `SET search_path TO a, b` stores it (a
    quoted string would become one schema name)."""
    shown = value if name == "search_path" else quote_literal(value)
    return f"ALTER ROLE {quote_ident(role)} SET {name} TO {shown};"


_SETTING_LINE = re.compile(r"^ALTER ROLE \S+ SET (\S+) TO ")


def _legacy(props: ObjectRef) -> RoleSettingsFields:
    """The declared names of inputs written before fields existed (provider version 4 and
    earlier), from their ddl; the values are not needed of them (reads and resets only)."""
    names = [m.group(1) for m in map(_SETTING_LINE.match, (props.get("ddl") or "").splitlines())
             if m]
    return RoleSettingsFields(props["role"], tuple((name, "") for name in names))


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    declared = SPEC.fields_of(ref)
    row = cur.execute(
        "SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s"
        " JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"
        " WHERE r.rolname = %s AND s.setdatabase = 0", (ref["role"],)).fetchone()
    current = dict(item.split("=", 1) for item in (row[0] if row else []))
    lines = [role_setting_line(ref["role"], name, current[name])
             for name in (declared.names if declared else ()) if name in current]
    return "\n".join(lines) or None


def apply_statements(change: Change[RoleSettingsFields]) -> list[str]:
    """Reset the names the previous inputs declared and these do not, then set each
    declared one (a plan has no previous inputs: it sets the declared ones)."""
    fields = change.need_fields()
    before = SPEC.fields_of(change.olds) if change.olds else None
    dropped = [name for name in (before.names if before else ()) if name not in fields.names]
    resets = [f"ALTER ROLE {quote_ident(fields.role)} RESET {name};" for name in dropped]
    return resets + fields.statements()


def ensure(conn: psycopg.Connection, change: Change[RoleSettingsFields]) -> None:
    execute_checked(conn, apply_statements(change), change)


def plan(_cur: Cursor, change: Change[RoleSettingsFields]) -> list[PlanStep]:
    return plain_steps(apply_statements(change), Hazard(
        HazardKind.NEW_SESSIONS, f"role {change.props['role']}'s settings apply to sessions "
        "opened afterwards: a pool keeps its open connections' old values until they are "
        "replaced"))


def delete(conn: psycopg.Connection, change: Change[RoleSettingsFields]) -> None:
    with conn.cursor() as cur:
        if role_flags(cur, change.props["role"]) is None:
            return  # the role is gone, and its settings with it
    with conn.transaction():
        for statement in change.props["drop_sql"].splitlines():
            conn.execute(statement)


def label(ref: ObjectRef) -> str:
    return f"settings of role {ref['role']}"


SPEC: KindSpec[RoleSettingsFields] = KindSpec(
    Kind.ROLE_SETTINGS, Family.SEARCH_SETTINGS, RoleSettingsFields, read, ensure, delete,
    label=label, legacy_fields=_legacy, plan=plan)
