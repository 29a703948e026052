"""Kind `grant`: exactly the privileges a role (or PUBLIC) holds on one object.

The reader lists them from the object's ACL (`aclexplode`); a role that holds nothing
reads as `REVOKE ALL ... FROM role;`, so a declared absence of privileges is drift-checked
too. Apply revokes everything and grants the declared privileges in one transaction, and
on create is made to match rather than adopted.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from components.identifiers import quote_ident
from components.kinds.apply import execute_checked
from components.kinds.base import Change, Cursor, Family, Kind, KindSpec, ObjectRef
from components.kinds.steps import PlanStep, plain_steps


@dataclass(frozen=True)
class GrantFields:
    privileges: str  # "SELECT, INSERT"; empty: the role holds nothing on the object
    on: str  # what the grant is on, as SQL: "TABLE public.memories", "SCHEMA extensions"
    role: str  # the grantee; "PUBLIC" for everyone

    def ddl(self) -> str:
        if not self.privileges:
            return revoke_all_sql(self.on, self.role)
        return f"GRANT {self.privileges} ON {self.on} TO {grantee_sql(self.role)};"

    def drop_sql(self) -> str:
        """What undoes it: revoke what was granted; nothing for a declared absence."""
        return revoke_all_sql(self.on, self.role) if self.privileges else ""


def grantee_sql(role: str) -> str:
    return "PUBLIC" if role == "PUBLIC" else quote_ident(role)


def revoke_all_sql(on: str, role: str) -> str:
    """Take every privilege `role` holds on `on` ("TABLE public.t"): the start of every
    grant's apply, and the whole of a grant that declares none."""
    return f"REVOKE ALL ON {on} FROM {grantee_sql(role)};"


# The ACL of what a grant is on, with the owner's implicit defaults when none was set.
_ACL_QUERIES = {
    "TABLE": "SELECT COALESCE(relacl, pg_catalog.acldefault('r', relowner))"
             " FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(%s)",
    "SEQUENCE": "SELECT COALESCE(relacl, pg_catalog.acldefault('s', relowner))"
                " FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(%s)",
    "SCHEMA": "SELECT COALESCE(nspacl, pg_catalog.acldefault('n', nspowner))"
              " FROM pg_catalog.pg_namespace WHERE oid = pg_catalog.to_regnamespace(%s)",
    "FUNCTION": "SELECT COALESCE(proacl, pg_catalog.acldefault('f', proowner))"
                " FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure(%s)",
}


def granted(cur: Cursor, on: str, role: str) -> list[tuple[str, bool]] | None:
    """(privilege, grantable) pairs `role` (or PUBLIC) holds on `on` ("TABLE public.t"),
    or None when the object or the role does not exist."""
    object_type, object_name = on.split(" ", 1)
    if role != "PUBLIC" and cur.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                                        (role,)).fetchone() is None:
        return None
    acl = cur.execute(_ACL_QUERIES[object_type], (object_name,)).fetchone()
    if acl is None:
        return None
    rows = cur.execute(
        "SELECT a.privilege_type, a.is_grantable FROM pg_catalog.aclexplode(%s::aclitem[]) a"
        " WHERE a.grantee = CASE WHEN %s = 'PUBLIC' THEN 0"
        " ELSE (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s) END"
        " ORDER BY 1", (acl[0], role, role)).fetchall()
    return [(str(p), bool(g)) for p, g in rows]


def read(cur: Cursor, ref: ObjectRef) -> str | None:
    privileges = granted(cur, ref["on"], ref["role"])
    if privileges is None:
        return None
    if not privileges:
        return revoke_all_sql(ref["on"], ref["role"])
    grantee = grantee_sql(ref["role"])
    lines = [f"GRANT {', '.join(p for p, _ in privileges)} ON {ref['on']} TO {grantee};"]
    with_option = [p for p, grantable in privileges if grantable]
    if with_option:
        lines.append(f"GRANT {', '.join(with_option)} ON {ref['on']} TO {grantee}"
                     " WITH GRANT OPTION;")
    return "\n".join(lines)


def apply_statements(change: Change[GrantFields]) -> list[str]:
    """Revoke first: the grant declares exactly what the role holds, nothing more. `on` and
    `role` are identity inputs, present in every state. One transaction: no session sees
    the role holding nothing in between."""
    props = change.props
    revoke = revoke_all_sql(props["on"], props["role"])
    return [revoke] if props["ddl"] == revoke else [revoke, props["ddl"]]


def ensure(conn: psycopg.Connection, change: Change[GrantFields]) -> None:
    execute_checked(conn, apply_statements(change), change)


def plan(_cur: Cursor, change: Change[GrantFields]) -> list[PlanStep]:
    return plain_steps(apply_statements(change))


def delete(conn: psycopg.Connection, change: Change[GrantFields]) -> None:
    props = change.props
    if not props.get("drop_sql"):
        return  # a declared absence of privileges: nothing to undo
    with conn.cursor() as cur:
        if granted(cur, props["on"], props["role"]) is None:
            return  # the object or the role is gone, and the grant with it
    with conn.transaction():
        conn.execute(props["drop_sql"])


def label(ref: ObjectRef) -> str:
    return f"grant on {ref['on']} to {ref['role']}"


SPEC = KindSpec(Kind.GRANT, Family.GRANTS, GrantFields, read, ensure, delete, label=label,
                converge_on_create=True, plan=plan)
