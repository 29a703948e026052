"""Kind `default_privileges`: whether functions a role creates from now on keep PUBLIC's
EXECUTE (`pg_default_acl`). Apply runs the declared statement; delete gives it back."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.role import role_flags


@dataclass(frozen=True)
class DefaultPrivilegesFields:
    role: str  # whose future functions
    public_executes: bool  # PUBLIC may execute them (PostgreSQL's default)

    def ddl(self) -> str:
        verb = "GRANT EXECUTE ON FUNCTIONS TO" if self.public_executes else \
            "REVOKE EXECUTE ON FUNCTIONS FROM"
        return f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(self.role)} {verb} PUBLIC;"

    def drop_sql(self) -> str:
        """What undoes it: PostgreSQL's default back."""
        return DefaultPrivilegesFields(self.role, True).ddl()


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    if role_flags(cur, ref["role"]) is None:
        return None
    row = cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(d.defaclacl) a"
        "               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')"
        " FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_roles r ON r.oid = d.defaclrole"
        " WHERE r.rolname = %s AND d.defaclnamespace = 0 AND d.defaclobjtype = 'f'",
        (ref["role"],)).fetchone()
    return DefaultPrivilegesFields(ref["role"], row is None or bool(row[0])).ddl()


def ensure(conn: psycopg.Connection, change: Change[DefaultPrivilegesFields]) -> None:
    execute_checked(conn, [change.props["ddl"]], change)


def delete(conn: psycopg.Connection, change: Change[DefaultPrivilegesFields]) -> None:
    with conn.cursor() as cur:
        if role_flags(cur, change.props["role"]) is None:
            return  # the role is gone, and its default privileges with it
    with conn.transaction():
        conn.execute(change.props["drop_sql"])


def label(ref: ObjectRef) -> str:
    return f"default privileges of role {ref['role']}"


SPEC = KindSpec(Kind.DEFAULT_PRIVILEGES, Family.GRANTS, DefaultPrivilegesFields, read, ensure,
                delete, label=label, converge_on_create=True)
