"""The `tls` check: are the stack's sessions encrypted as its sslMode asks?

The server says so itself: `pg_stat_ssl` joined to `pg_stat_activity` for the session's
own backend (`pg_backend_pid()`) gives whether it is encrypted, the protocol version and
the cipher, and `client_addr` is NULL for a Unix socket. The preflight reads the
deployer's session and the root certificate (`sslRootCert`: it must exist and parse on
the machine that connects, which is why it is checked here and not when settings parse);
the validation also logs in as the app role with its password over the URL the stack
exports (`mem0Config`), as mem0 does.

An unencrypted session where sslMode asks for TLS fails, except over a Unix socket, where
libpq ignores sslmode: that passes with a warning in its detail (nothing crosses a
network, and the check says so rather than pretending).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from components.checks.core import Context, Outcome, failed, passed
from components.connection import resolve_dsn, role_url, stack_url
from components.settings import SslMode, Target

__all__ = ["SESSION_TLS", "SessionTls", "check_tls_deployer", "check_tls_sessions",
           "root_cert_problem", "session_tls"]

APPLICATION = "mem0infra-tls-check"
CONNECT_TIMEOUT_S = 10
SESSION_TLS = (
    "SELECT s.ssl, s.version, s.cipher, a.client_addr IS NULL AS local_socket"
    " FROM pg_catalog.pg_stat_ssl s"
    " JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid"
    " WHERE s.pid = pg_catalog.pg_backend_pid()")
FIX_SERVER = ("serve TLS: ssl = on with ssl_cert_file and ssl_key_file in postgresql.conf, "
              "and hostssl (not host) lines in pg_hba.conf (docs/security.md, TLS)")


@dataclass(frozen=True)
class SessionTls:
    """What the server says of one session's transport."""

    role: str
    ssl: bool
    version: str | None
    cipher: str | None
    local_socket: bool

    def describe(self) -> str:
        if self.ssl:
            return f"{self.role}: encrypted, {self.version} {self.cipher}"
        where = "a Unix socket" if self.local_socket else "TCP"
        return f"{self.role}: not encrypted ({where})"


def session_tls(conn: psycopg.Connection[Any], role: str) -> SessionTls:
    row = conn.execute(SESSION_TLS).fetchone()
    if row is None:  # the session's own row is always there; a server that hides it:
        return SessionTls(role, False, None, None, False)
    return SessionTls(role, bool(row[0]), row[1], row[2], bool(row[3]))


def root_cert_problem(path: str) -> str | None:
    """Why `sslRootCert` cannot serve here (missing, unreadable, not PEM), or None."""
    from cryptography import x509

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"sslRootCert {path!r} cannot be read on this machine: {exc.strerror}"
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        return f"sslRootCert {path!r} holds no PEM certificate"
    if not certificates:
        return f"sslRootCert {path!r} holds no PEM certificate"
    return None


def _judge(sessions: list[SessionTls], ctx: Context, notes: list[str]) -> Outcome:
    mode = ctx.settings.ssl_mode
    details = [s.describe() for s in sessions] + notes
    if mode == SslMode.DISABLE:
        return passed(f"sslMode disable (target {ctx.settings.target}): "
                      + "; ".join(details))
    plain = [s for s in sessions if not s.ssl]
    over_tcp = [s for s in plain if not s.local_socket]
    if over_tcp:
        return failed(f"sslMode is {mode}, but " + "; ".join(s.describe() for s in over_tcp)
                      + " (" + "; ".join(details) + ")",
                      "connect with the stack's URL (it carries sslmode), and " + FIX_SERVER)
    if plain:
        details.append(f"warning: sslMode is {mode}, but {', '.join(s.role for s in plain)} "
                       "connected over a Unix socket, where libpq ignores sslmode (nothing "
                       "crosses a network; TCP connections get TLS)")
    return passed(f"sslMode {mode}: " + "; ".join(details))


def _root_cert(ctx: Context, notes: list[str]) -> Outcome | None:
    path = ctx.settings.ssl_root_cert
    if not path:
        return None
    why = root_cert_problem(path)
    if why:
        return failed(why, "put the server's root certificate (PEM) at that path on every "
                      "machine that connects (this one, and the application's), or change "
                      "sslRootCert")
    notes.append(f"root certificate {path} parses")
    return None


def check_tls_deployer(ctx: Context) -> Outcome:
    """Preflight: the deployer's session, and the root certificate."""
    notes: list[str] = []
    problem = _root_cert(ctx, notes)
    if problem is not None:
        return problem
    return _judge([session_tls(ctx.conn, f"deployer {ctx.conn.info.user}")], ctx, notes)


def app_url(ctx: Context) -> str:
    """The URL the stack exports for mem0 (mem0Config): the deployer's URL with the
    stack's sslMode, as the app role with its password."""
    s = ctx.settings
    return role_url(stack_url(resolve_dsn(ctx.dsn), s), s.app_role, s.app_role_password)


def check_tls_sessions(ctx: Context) -> Outcome:
    """Validation: the deployer's session and a real login of the app role."""
    s = ctx.settings
    notes: list[str] = []
    problem = _root_cert(ctx, notes)
    if problem is not None:
        return problem
    sessions = [session_tls(ctx.conn, f"deployer {ctx.conn.info.user}")]
    if s.app_role_password is None and s.target != Target.EMBEDDED:
        notes.append(f"app role {s.app_role}: not checked (its password is not available to "
                     "this process: appRolePassword is encrypted in the stack file)")
        return _judge(sessions, ctx, notes)
    try:
        with psycopg.connect(app_url(ctx), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                             application_name=APPLICATION) as app:
            sessions.append(session_tls(app, f"app role {s.app_role}"))
    except psycopg.OperationalError as exc:
        return failed(f"the app role {s.app_role} could not log in over the stack's URL: "
                      f"{str(exc).strip()}",
                      "mem0 connects the same way: check appRolePassword, pg_hba.conf "
                      "(hostssl lines for the app role) and the server's TLS")
    return _judge(sessions, ctx, notes)
