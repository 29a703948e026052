"""Kind `role`: a role the stack creates, its attributes and (secret) password.

Apply names only the attributes that differ (on Supabase, `postgres` may not even restate
NOSUPERUSER); the password is set as a SCRAM verifier computed on the client, so it never
appears in SQL text or server logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from components.identifiers import quote_ident
from components.kinds.apply import checked_transaction
from components.kinds.base import (
    Change,
    Cursor,
    Family,
    Kind,
    KindSpec,
    ObjectRef,
    SqlObjectError,
    named_label,
)
from components.kinds.steps import PlanStep, plain_steps

# pg_roles columns and the CREATE ROLE word each one prints as, in canonical order.
_ROLE_FLAGS = (("rolcanlogin", "LOGIN"), ("rolsuper", "SUPERUSER"),
               ("rolcreatedb", "CREATEDB"), ("rolcreaterole", "CREATEROLE"),
               ("rolinherit", "INHERIT"), ("rolreplication", "REPLICATION"),
               ("rolbypassrls", "BYPASSRLS"))


@dataclass(frozen=True)
class RoleFields:
    name: str
    login: bool
    bypass_rls: bool

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every attribute as a CREATE ROLE word, in canonical order: a project role is
        never a superuser, never creates databases or roles, inherits, never replicates."""
        return ("LOGIN" if self.login else "NOLOGIN", "NOSUPERUSER", "NOCREATEDB",
                "NOCREATEROLE", "INHERIT", "NOREPLICATION",
                "BYPASSRLS" if self.bypass_rls else "NOBYPASSRLS")

    def ddl(self) -> str:
        return role_ddl(self.name, self.attributes)

    def drop_sql(self) -> str:
        return f"DROP ROLE IF EXISTS {quote_ident(self.name)};"


def role_ddl(name: str, attributes: Sequence[str]) -> str:
    return f"CREATE ROLE {quote_ident(name)} WITH {' '.join(attributes)};"


def role_flags(cur: Cursor, role: str) -> list[str] | None:
    """The role's attributes as CREATE ROLE words (LOGIN or NOLOGIN, ...), or None."""
    columns = ", ".join(column for column, _ in _ROLE_FLAGS)
    row = cur.execute(f"SELECT {columns} FROM pg_catalog.pg_roles WHERE rolname = %s",
                      (role,)).fetchone()
    if row is None:
        return None
    return [word if on else f"NO{word}" for (_, word), on in zip(_ROLE_FLAGS, row, strict=True)]


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    flags = role_flags(cur, ref["name"])
    return None if flags is None else role_ddl(ref["name"], flags)


def apply_statements(cur: Cursor, change: Change[RoleFields]) -> list[str]:
    """CREATE ROLE, or ALTER ROLE naming only the attributes that change: on Supabase,
    `postgres` may not even restate NOSUPERUSER or NOREPLICATION."""
    if change.live is None:
        return [change.props["ddl"]]
    have = role_flags(cur, change.props["name"]) or []
    wanted = change.need_fields().attributes
    changed = [w for w, h in zip(wanted, have, strict=True) if w != h]
    return [f"ALTER ROLE {quote_ident(change.props['name'])} WITH {' '.join(changed)};"]


def plan(cur: Cursor, change: Change[RoleFields]) -> list[PlanStep]:
    return plain_steps(apply_statements(cur, change))


def ensure(conn: psycopg.Connection, change: Change[RoleFields]) -> None:
    with conn.cursor() as cur:
        statements = apply_statements(cur, change)
    with checked_transaction(conn, change):
        for statement in statements:
            conn.execute(statement)
        set_password(conn, change.props)


def set_password(conn: psycopg.Connection, props: ObjectRef) -> None:
    """Set the role's password as a SCRAM verifier computed here, so the password itself
    never reaches the server, its logs or pg_stat_statements."""
    password = props.get("password")
    if not password:
        return
    verifier = conn.pgconn.encrypt_password(
        str(password).encode(), props["name"].encode(), b"scram-sha-256")
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(props["name"]), sql.Literal(verifier.decode())))


def unchanged(conn: psycopg.Connection, change: Change[RoleFields]) -> None:
    """An adopted role gets the stack's password (the stack publishes this credential); an
    unchanged one only a new password."""
    if change.olds is None or change.props.get("password") != change.olds.get("password"):
        with conn.transaction():
            set_password(conn, change.props)


def delete(conn: psycopg.Connection, change: Change[RoleFields]) -> None:
    props = change.props
    if props.get("adopted"):
        return  # it was there before this stack: leave it
    try:
        with conn.transaction():
            conn.execute(props["drop_sql"])
    except pg_errors.DependentObjectsStillExist as exc:
        raise SqlObjectError(
            f"cannot drop role {props['name']}: {exc.diag.message_primary}; "
            f"{exc.diag.message_detail or ''} Revoke what it still holds (REASSIGN OWNED BY / "
            "DROP OWNED BY in each database) and destroy again.") from None


SPEC = KindSpec(Kind.ROLE, Family.ROLES, RoleFields, read, ensure, delete, label=named_label,
                unchanged=unchanged, plan=plan)
