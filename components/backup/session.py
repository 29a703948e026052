"""Acting as the stack's service role, the only role that sees every row.

Every table forces row-level security, so a role that does not bypass it reads (and
writes) only the rows its policies show, without any error: a backup taken as such a role
would look whole and hold a subset. Backup and restore therefore run as the service role
(BYPASSRLS; SELECT on every table, DML where a restore writes) and refuse to run as
anything else.
"""

from __future__ import annotations

from typing import Any

import psycopg

from components.identifiers import quote_ident


def act_as_service_role(cur: psycopg.Cursor[Any], role: str,
                        error: type[Exception]) -> str:
    """Become `role` for the rest of the open transaction (SET LOCAL ROLE, which needs the
    connection's role to be a superuser or a member of `role`), and make sure it bypasses
    row-level security. Returns the session user (what the history trigger records)."""
    row = cur.execute("SELECT session_user, current_user").fetchone()
    assert row is not None
    session_user, current = str(row[0]), str(row[1])
    if current != role:
        try:
            cur.execute(f"SET LOCAL ROLE {quote_ident(role)}")
        except psycopg.Error as exc:
            raise error(
                f"the connection's role {current} cannot act as the stack's service role "
                f"{role} ({str(exc).strip()}); connect as {role}, or as a superuser or a "
                f"member of it (GRANT {quote_ident(role)} TO {quote_ident(current)})"
            ) from exc
    row = cur.execute("SELECT r.rolbypassrls FROM pg_catalog.pg_roles r"
                      " WHERE r.rolname = current_user").fetchone()
    if row is None or not row[0]:
        raise error(
            f"the stack's service role {role} does not bypass row-level security, and every "
            "table forces it: it would see only the rows its policies show, so the result "
            f"would silently be a subset; refusing (give {role} BYPASSRLS, as the stack "
            "declares it: `pulumi up`)")
    return session_user
