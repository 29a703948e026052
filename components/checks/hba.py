"""The audit's `login_without_tls`: pg_hba.conf lines that let the stack's roles log in
over TCP without TLS.

`pg_hba_file_rules` shows the file as the server parsed it. A `host` line matches TLS and
plain TCP alike (`hostnossl` and `hostnogssenc` plain TCP too), so one whose method is not
`reject` and that matches a LOGIN role of the stack (by name, `all`, or a `+group` it is
a member of) and this database lets a client send the role's password and memories in
clear whatever sslMode the stack's own connections use. A line limited to loopback
addresses is a warning (nothing leaves the machine), any other an error. The view is
readable by superusers (and, where granted, pg_read_all_settings members): where the
auditing role cannot read it, the check says so as an informational skip, never a pass.
"""

from __future__ import annotations

import ipaddress

from components.checks.core import Context, Finding, Level, Outcome, found, not_visible
from components.identifiers import quote_ident

__all__ = ["CODE", "PLAIN_TYPES", "login_without_tls"]

CODE = "login_without_tls"
PLAIN_TYPES = ("host", "hostnossl", "hostnogssenc")  # lines a plain TCP client can match
_VISIBLE = ("SELECT pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()',"
            " 'EXECUTE') AND pg_catalog.has_table_privilege("
            "'pg_catalog.pg_hba_file_rules', 'SELECT')")
_RULES = """
SELECT r.line_number, r.type, r.database, r.user_name, r.address, r.netmask, r.auth_method
FROM pg_catalog.pg_hba_file_rules r
WHERE r.error IS NULL AND r.type = ANY (%s) AND r.auth_method <> 'reject'
ORDER BY r.line_number
"""
_LOGIN_ROLES = """
SELECT rolname FROM pg_catalog.pg_roles WHERE rolcanlogin AND rolname = ANY (%s) ORDER BY 1
"""
_MEMBER = "SELECT pg_catalog.pg_has_role(%s, %s, 'MEMBER')"


def _roles_matched(ctx: Context, users: list[str], roles: list[str]) -> list[str]:
    matched = []
    for role in roles:
        for user in users:
            if user == "all" or user == role:
                matched.append(role)
                break
            group = user[1:] if user.startswith("+") else None
            if group and ctx.value("SELECT to_regrole(%s) IS NOT NULL", (group,)) \
                    and ctx.value(_MEMBER, (role, group)):
                matched.append(role)
                break
    return matched


def _network(address: str | None, netmask: str | None) -> str | None:
    """The line's address as written in CIDR form, or None for a name (all, samehost,
    samenet, a host name), which may be anything."""
    if not address:
        return None
    try:
        return str(ipaddress.ip_network(f"{address}/{netmask}" if netmask else address,
                                        strict=False))
    except ValueError:
        return None


def _loopback(address: str | None, netmask: str | None) -> bool:
    network = _network(address, netmask)
    if network is None:
        return address == "localhost"
    return ipaddress.ip_network(network).is_loopback


def login_without_tls(ctx: Context) -> Outcome:
    if not ctx.value(_VISIBLE):
        return not_visible(
            f"{CODE}: not checked; pg_hba.conf is not visible to {ctx.conn.info.user} "
            "(pg_hba_file_rules needs a superuser)",
            "audit as a superuser, or read pg_hba.conf on the server for host lines "
            "(docs/security.md, TLS; on Supabase, postgres is no superuser)")
    s = ctx.settings
    stack_roles = [r for r in dict.fromkeys((s.app_role, s.readonly_role, s.service_role))
                   if r]
    roles = [r for (r,) in ctx.rows(_LOGIN_ROLES, (stack_roles,))]
    database = ctx.value("SELECT pg_catalog.current_database()")
    findings = []
    for line, kind, databases, users, address, netmask, method in ctx.rows(
            _RULES, (list(PLAIN_TYPES),)):
        if not any(d in ("all", "sameuser", "samerole", database) for d in databases):
            continue
        matched = _roles_matched(ctx, list(users), roles)
        if not matched:
            continue
        where = _network(address, netmask) or address or "all"
        local = _loopback(address, netmask)
        names = ", ".join(quote_ident(r) for r in matched)
        findings.append(Finding(
            CODE, Level.WARN if local else Level.ERROR, f"pg_hba.conf line {line}",
            f"line {line} ({kind} {','.join(databases)} {','.join(users)} {where} {method}) "
            f"lets {names} log in to {database} over TCP without TLS"
            + (" (loopback only)" if local else ""),
            f"make line {line} `hostssl` instead of `{kind}`, or put `hostnossl "
            f"{','.join(databases)} {','.join(users)} {where} reject` "
            "before it; then SELECT pg_reload_conf()"))
    return found(findings)
